"""The job runner: library work in the background, in priority order, with progress and cancel.

Kinds of work: `scan` (the libraries or some folders; its `probe` phase runs in the same worker
processes as everything else), `thumbnail`, `sprite` and `clip` (LVS_PREVIEW_CLIPS).

- Thumbnails, sprites and clips run on `workers` threads of a ThreadPoolExecutor, taken from the
  job queue (services.previews.queue: on-screen first, then new files, then the backlog; clips
  after all of those). Each thread hands a thumbnail or sprite to a process of the shared worker
  pool (services.library.probe_pool), which kills it on its deadline, so a file that hangs the
  decoder costs one recorded failure, not a thread; a clip is an ffmpeg the thread starts with a
  deadline of its own (services/ffmpeg.py), at a lower CPU priority.
- Scans run one at a time on their own thread. A scan asked for while one waits joins it (its
  folders merge; a whole-library scan absorbs the rest); a running scan can be cancelled, and
  one that finds another process scanning (`flask scan`) waits for it.
- Inline mode (tests): no threads and no worker processes; work asked for runs in the caller,
  in-process, and a scan makes its new files' thumbnails and sprites before it returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from config import Settings
from services import db as dbmod
from services.errors import LVSError, NotFound, ScanBusy
from services.library.probe_pool import ProbePool, run_in_process
from services.library.scanner import scan as run_scan
from services.organize import search
from services.playback.subtitles import tracks as subtitle_tracks
from services.previews import previews
from services.previews.queue import Job, JobInfo, JobQueue, Priority
from services.previews.sprites import sprite_paths
from services.previews.thumbnails import HASH_RE, is_ready, thumb_path
from services.shows import ingest as shows_ingest

log = logging.getLogger(__name__)

__all__ = ["KINDS", "Job", "JobInfo", "Jobs", "JobsStatus", "Priority"]

KINDS = ("scan", "probe", "thumbnail", "sprite", "clip")
IDLE_RECHECK = 120.0  # seconds an idle runner waits before looking for missing work again
SCAN_BUSY_RETRY = 2.0  # seconds between tries while another process holds the scan lock
MISSING_CACHE = 5.0  # seconds a count of missing thumbnails is reused by status()


class Cancelled(Exception):
    """Raised inside a running scan to stop it."""


@dataclass(frozen=True)
class JobsStatus:
    """The runner at a glance: queues, running jobs, totals, recent failures."""

    inline: bool
    paused: bool
    workers: int
    queued: dict[str, int]  # by kind
    queued_by_priority: dict[str, int]
    running: tuple[JobInfo, ...]
    upcoming: tuple[JobInfo, ...]  # the next queued jobs, in the order they will run
    done: dict[str, int]  # since start, by kind
    failed: dict[str, int]
    missing: dict[str, int]  # thumbnails, sprites, clips still to make (database); -1: unknown
    scan: JobInfo | None  # the running or last scan
    errors: tuple[tuple[float, str, str, str], ...]  # (when, kind, target, reason), newest last
    sent: dict[str, int] = field(default_factory=dict)  # left to workers since start, by kind


class Jobs:
    """Run scans, thumbnails and sprites; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        inline: bool = False,
        feed: bool = True,
        workers: int | None = None,
        pool: ProbePool | None = None,
        paused: bool = False,
    ) -> None:
        self.settings = settings
        self.inline = inline
        self.workers = workers or settings.effective_probe_workers()
        self._own_pool = pool is None and not inline
        if pool is None and not inline:
            pool = ProbePool(self.workers, settings.probe_timeout)
        self._pool = pool
        self._runner: Callable[..., Any] = pool.run if pool is not None else run_in_process
        self._batch: Any = None  # with workers on other machines: services.previews.batch_server
        if settings.redis_url and not inline:
            from services.previews.batch_server import BatchSender

            self._batch = BatchSender(settings)
        self._local = threading.local()
        mark = self._db().execute("SELECT coalesce(max(id), 0) FROM media").fetchone()[0]
        self.kinds = previews.background_kinds(settings)  # what the feed queues
        self._queue = JobQueue(
            workers=self.workers, mark=mark, feed=feed, paused=paused, kinds=self.kinds
        )
        self._cv = self._queue.cv  # one condition for the queue, the scans and the counters
        self._done: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._sent: Counter[str] = Counter()  # left to workers on other machines
        self._errors: deque[tuple[float, str, str, str]] = deque(maxlen=20)
        self._scan_queued: Job | None = None
        self._last_scan: Job | None = None
        self._missing: tuple[float, dict[str, int]] = (0.0, {})
        self._executor: ThreadPoolExecutor | None = None
        if not inline:
            self._executor = ThreadPoolExecutor(self.workers + 1, thread_name_prefix="lvs-job")
            self._executor.submit(self._scan_loop)
            for _ in range(self.workers):
                self._executor.submit(self._media_loop)

    # -- asking for work ---------------------------------------------------------------------------

    def thumbnail(self, media_hash: str, wait: float) -> Path | None:
        """Return the thumbnail's path, making it first at top priority (up to `wait` seconds).

        None means: not there (yet), or it cannot be made; serve the placeholder. Raise NotFound
        for a hash no media has.
        """
        path = thumb_path(self.settings.data_dir, _checked(media_hash))
        if not is_ready(path):
            self._ask("thumbnail", media_hash, wait)
        return path if is_ready(path) else None

    def sprite(self, media_hash: str, wait: float) -> tuple[Path, Path] | None:
        """Return the sprite sheet and VTT, making them first at top priority; None if not there."""
        paths = sprite_paths(self.settings.data_dir, _checked(media_hash))
        if not all(is_ready(p) for p in paths):
            self._ask("sprite", media_hash, wait)
        return paths if all(is_ready(p) for p in paths) else None

    def _ask(self, kind: str, media_hash: str, wait: float) -> None:
        found = previews.target(self._db(), media_hash)
        if found is None:
            raise NotFound("no such media")
        target, probe_status = found
        if probe_status == "failed" or (kind == "sprite" and target.kind != "video"):
            return
        if previews.failure(self._db(), target, kind):
            return  # failed for this content: not retried on every page view
        job = self._queue.add(kind, target, Priority.VISIBLE)
        if self.inline:
            with self._cv:
                if job.state != "queued":
                    return  # another thread runs it: this one has nothing to wait for
                self._queue.start(job)
            self._run_media(job)
        job.wait(wait)

    def scan(self, paths: list[Path] | None = None, *, full: bool = False) -> Job:
        """Queue a scan of the libraries (or of `paths`: folders inside them); return its job.

        A scan already waiting absorbs this one. The watcher calls this with touched folders.
        """
        wanted = sorted({Path(p) for p in paths}) if paths is not None else None
        with self._cv:
            job = self._scan_queued
            if job is not None:  # join the waiting scan
                job.paths = (
                    None
                    if job.paths is None or wanted is None
                    else sorted(set(job.paths) | set(wanted))
                )
                job.full = job.full or full
            else:
                job = Job(self._queue.next_id(), "scan", "", Priority.NEW, paths=wanted, full=full)
                if not self.inline:
                    self._scan_queued = job
            job.target = ", ".join(map(str, job.paths)) if job.paths else ""
            self._cv.notify_all()
        if self.inline:
            self._run_scan(job)
            self.run_pending()
        return job

    def backlog(self) -> None:
        """Look again for media without a thumbnail or sprite (after a scan, or on demand)."""
        with self._cv:
            self._queue.poke()
            self._missing = (0.0, {})

    def run_pending(self) -> int:
        """Run every queued and missing job now, in priority order (inline mode); return how many."""
        count = 0
        while True:
            with self._cv:
                job = self._queue.pop()
                if job is None and not self._queue.needs_feed():
                    return count
            if job is None:
                self._queue.refill(self._db())
                continue
            self._run_media(job)
            count += 1

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued job, or ask a running scan to stop; return whether it applied."""
        with self._cv:
            scan, last = self._scan_queued, self._last_scan
            if scan is not None and scan.id == job_id:
                self._scan_queued = None
                scan.finish("cancelled")
                return True
            if last is not None and last.id == job_id and last.state == "running":
                last.cancel_requested = True
                return True
            return self._queue.cancel(job_id) is not None

    def pause(self) -> None:
        """Stop starting background thumbnails and sprites (on-screen ones and scans still run)."""
        with self._cv:
            self._queue.paused = True

    def resume(self) -> None:
        """Start background thumbnails and sprites again."""
        with self._cv:
            self._queue.paused = False
            self._cv.notify_all()

    # -- status ------------------------------------------------------------------------------------

    def status(self) -> JobsStatus:
        """Return queues, running jobs with progress, totals and recent failures."""
        missing = self._count_missing()
        with self._cv:
            queued: Counter[str] = Counter(j.kind for j in self._queue.queued())
            by_priority = Counter(j.priority.name.lower() for j in self._queue.queued())
            queued.update(["scan"] if self._scan_queued else [])
            running = [j.info() for j in self._queue.running.values()]
            scan = self._last_scan
            if scan is not None and scan.state == "running":
                running.append(scan.info())
                if scan.phase == "probe":  # the scan's probes, shown as the work they are
                    running.append(replace(scan.info(), kind="probe"))
            return JobsStatus(
                inline=self.inline,
                paused=self._queue.paused,
                workers=self.workers,
                queued=dict(queued),
                queued_by_priority=dict(by_priority),
                running=tuple(running),
                upcoming=tuple(j.info() for j in self._queue.upcoming(10)),
                done=dict(self._done),
                failed=dict(self._failed),
                missing=missing,
                scan=scan.info() if scan else None,
                errors=tuple(self._errors),
                sent=dict(self._sent),
            )

    def activity(self) -> tuple[list[JobInfo], dict[str, int]]:
        """Return the running jobs and the queued counts by kind: status() without counting the
        library, cheap enough to look at twice a second (services/live/activity.py)."""
        with self._cv:
            queued: Counter[str] = Counter(j.kind for j in self._queue.queued())
            queued.update(["scan"] if self._scan_queued else [])
            running = [j.info() for j in self._queue.running.values()]
            scan = self._last_scan
            if scan is not None and scan.state == "running":
                running.insert(0, scan.info())
            return running, dict(queued)

    def _count_missing(self) -> dict[str, int]:
        # A count over the whole library: reused a few seconds for a dashboard that polls.
        at, counts = self._missing
        if counts and time.monotonic() - at < MISSING_CACHE:
            return counts
        try:
            counts = {kind: previews.count_missing(self._db(), kind) for kind in self.kinds}
        except Exception as exc:  # a status page must not fail on a busy database
            log.warning("counting missing thumbnails failed: %s", exc)
            return {kind: -1 for kind in self.kinds}
        self._missing = (time.monotonic(), counts)
        return counts

    def worker_pids(self) -> list[int]:
        """Return the process ids of the worker processes running now (metrics, tests)."""
        return self._pool.worker_pids() if self._pool is not None else []

    # -- stopping ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop: drop queued work, stop a running scan, kill renders in flight, join threads."""
        with self._cv:
            if self._queue.closing:
                return
            self._queue.closing = True
            self._queue.drop_queued()
            if self._scan_queued is not None:
                self._scan_queued.finish("cancelled")
                self._scan_queued = None
            if self._last_scan is not None:
                self._last_scan.cancel_requested = True
            self._cv.notify_all()
        if self._pool is not None and self._own_pool:
            self._pool.close(kill=True)  # renders in flight end now, unrecorded
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def __enter__(self) -> Jobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- thumbnails and sprites --------------------------------------------------------------------

    def _media_loop(self) -> None:
        while True:
            job = self._queue.next_job(IDLE_RECHECK, lambda: self._queue.refill(self._db()))
            if job is None:
                return
            self._run_media(job)

    def _run_media(self, job: Job) -> None:
        assert job.media is not None
        try:
            if self._batch is not None and self._batch.take(self._db(), job, self._closing):
                outcome = previews.Outcome(job.kind, job.media, "sent", "left to the workers")
            else:
                outcome = previews.make(self._db(), self.settings, job.media, job.kind,
                                        self._runner)  # fmt: skip
        except Exception as exc:  # a bug or shutdown: this job's failure, never the runner's
            if not self._queue.closing:
                log.exception("%s of %s failed unexpectedly", job.kind, job.target)
            outcome = previews.Outcome(job.kind, job.media, "unavailable", str(exc))
        job.result = outcome
        with self._cv:
            if outcome.status == "failed":
                self._failed[job.kind] += 1
                self._errors.append((time.time(), job.kind, job.target, outcome.reason or ""))
            self._done[job.kind] += int(outcome.status == "made")
            self._sent[job.kind] += int(outcome.status == "sent")
            job.error = outcome.reason if outcome.status in ("failed", "unavailable") else None
            # An unreadable file (offline share) is not fed again until the next start.
            retry = outcome.status != "unavailable"
            self._queue.finished(
                job, "failed" if outcome.status == "failed" else "done", retry=retry
            )

    # -- scans -------------------------------------------------------------------------------------

    def _scan_loop(self) -> None:
        while True:
            with self._cv:
                while self._scan_queued is None and not self._queue.closing:
                    self._cv.wait()
                if self._queue.closing:
                    return
                job, self._scan_queued = self._scan_queued, None
            self._run_scan(job)

    def _run_scan(self, job: Job) -> None:
        with self._cv:
            job.state, job.started = "running", time.time()
            self._last_scan = job

        def progress(phase: str, done: int, total: int | None) -> None:
            if job.cancel_requested:
                raise Cancelled
            job.phase, job.done, job.total = phase, done, total

        state = "done"
        try:
            job.result = self._scan_until_free(job, progress)
        except Cancelled:
            state = "cancelled"
        except LVSError as exc:
            state, job.error = "failed", str(exc)
        except Exception as exc:
            if not self._queue.closing:  # closing kills the probes: not worth a traceback
                log.exception("scan of %s failed", job.target or "the libraries")
            state, job.error = "failed", f"{type(exc).__name__}: {exc}"
        self.backlog()  # the new files are probed and written: their thumbnails come next
        with self._cv:
            if state == "failed":
                self._failed["scan"] += 1
                self._errors.append((time.time(), "scan", job.target, job.error or ""))
            self._done["scan"] += int(state == "done")
            job.finish(state)
            self._cv.notify_all()

    def _scan_until_free(self, job: Job, progress: Callable[[str, int, int | None], None]) -> Any:
        """Run the scan; while another process scans (the CLI), wait for it and try again."""
        while True:
            try:
                report = run_scan(
                    self._db(),
                    self.settings,
                    paths=job.paths,
                    full=job.full,
                    progress=progress,
                    probe_pool=self._pool,
                )
                search.optimize_after_scan(self._db(), report)
                shows_ingest.after_scan(self._db(), self.settings.data_dir, report, full=job.full)
                subtitle_tracks.check_new(self._db())
                return report
            except ScanBusy:
                job.phase = "waiting for another scan"
                with self._cv:
                    self._cv.wait(SCAN_BUSY_RETRY)
                if job.cancel_requested:
                    raise Cancelled from None

    def _closing(self) -> bool:
        return self._queue.closing

    def _db(self) -> Database:
        """Return this thread's connection (a connection belongs to one thread)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = dbmod.connect(self.settings.db_path)
        return db


def _checked(media_hash: str) -> str:
    if not HASH_RE.fullmatch(media_hash):
        raise NotFound("no such media")
    return media_hash
