"""A worker's side of preview work (issue 18): check a job, make it in scratch, report it.

`BatchWorker.make` is the body of the MAKE_ACTOR on the batch queue (cli/worker.py declares
it). A job that fails the allow-lists (services/previews/batch.parse_job) is refused with a log
line and dropped. The file is opened inside the mapped library folder as the server opens media
and must still be the job's media (its media_hash): a file gone or changed drops the job with a
log line and an "unavailable" report. The preview is then made by `previews.render` — the code
the server runs — into `<scratch>/previews`, under the same content-addressed names and the same
generation lock, so a job delivered twice (Dramatiq is at-least-once) is made once. Thumbnails
and sprites run in a process of this worker's own pool (killed on their deadline), clips in
ffmpeg with its deadline, as on the server.

The report goes to the server's DONE_QUEUE with each file's SHA-256; the server fetches the
files from this worker's HTTP side (`file`, signed requests only: cli/node_http.py) and then
asks it to `forget` them. What the server never fetched is removed after KEEP seconds.
A report that cannot be sent (Redis away) raises, so Dramatiq tries the job again later and
finds the files already made.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from config import Settings
from services.compute import broker
from services.errors import LVSError
from services.playback import media_files
from services.previews import batch, previews
from services.previews.batch import BadJob, BatchJob
from services.previews.thumbnails import generation_lock, remove_stale_temps

log = logging.getLogger(__name__)

KEEP = 3600.0  # seconds a made preview waits in scratch for the server to fetch it
SWEEP_EVERY = 300.0


class ReportFailed(Exception):
    """The report could not be sent (Redis unreachable): Dramatiq tries the job again."""


class BatchWorker:
    """The preview jobs of one worker, made in `<scratch>/previews`."""

    def __init__(self, worker_id: str, scratch: Path, settings: Settings,
                 runner: previews.Runner) -> None:  # fmt: skip
        self.worker_id = worker_id
        self.out = scratch / "previews"
        self.settings = settings
        self.runner = runner
        self._swept = 0.0
        self._lock = threading.Lock()
        shutil.rmtree(self.out, ignore_errors=True)  # a stopped worker's are not reported
        self.out.mkdir(parents=True, exist_ok=True)

    def make(self, message: Any) -> None:
        """Take a preview job (the body of MAKE_ACTOR): check it, make it, report it."""
        self._sweep()
        try:
            job = batch.parse_job(message, self.settings.media_dirs, self.settings.path_map)
        except BadJob as exc:
            log.warning("worker %s: refused a preview job: %s", self.worker_id, exc)
            return
        try:
            f = media_files.open_checked(job.root, job.rel, job.media_hash)
        except (OSError, LVSError) as exc:
            log.warning("worker %s: %s of %s dropped: %s", self.worker_id, job.kind,
                        job.media_hash, exc)  # fmt: skip
            self._report(job, "unavailable", f"cannot read it on {self.worker_id}: {exc}")
            return
        log.info("worker %s: making %s of %s", self.worker_id, job.kind, job.media_hash)
        with f:  # made from the file checked, by its real name (a format hint, as on the server)
            real = os.readlink(b"/proc/self/fd/%d" % f.fileno())
            status, reason, seconds = self._render(job, real)
        files = {}
        if status == "made":
            files = {name: _sha256(p) for name, p in batch.paths(self.out, job.kind,
                                                                 job.media_hash).items()}  # fmt: skip
        self._report(job, status, reason, seconds, files)
        log.info("worker %s: %s of %s %s", self.worker_id, job.kind, job.media_hash, status)

    def _render(self, job: BatchJob, source: bytes) -> tuple[str, str, float]:
        settings = replace(self.settings, thumbnail_width=job.width, sprite_width=job.width,
                           sprite_tiles=job.tiles)  # fmt: skip
        started = time.perf_counter()
        with generation_lock(self.out, job.kind, job.media_hash):
            if previews.is_made(self.out, job.kind, job.media_hash):
                return "made", "", 0.0  # made before (a job delivered again)
            try:
                previews.render(self.out, settings, job.media_hash, job.media, job.kind, source,
                                self.runner, vr=job.vr)  # fmt: skip
            except LVSError as exc:
                return "failed", str(exc), time.perf_counter() - started
            except OSError as exc:
                return "unavailable", f"cannot read: {exc.strerror or exc}", 0.0
            finally:
                for out in previews.outputs(self.out, job.kind, job.media_hash):
                    remove_stale_temps(out)
        return "made", "", time.perf_counter() - started

    def _report(self, job: BatchJob, status: str, reason: str, seconds: float = 0.0,
                files: dict[str, str] | None = None) -> None:  # fmt: skip
        message = batch.done_message(self.worker_id, job, status, reason, seconds, files)
        if not broker.send_to(self.settings.redis_url, batch.DONE_QUEUE, batch.DONE_ACTOR,
                              message):  # fmt: skip
            raise ReportFailed("Redis is unreachable: the report waits for a retry")

    def file(self, media_hash: str, name: str) -> Path | None:
        """Return a made preview file the server asks for, None when there is none."""
        kind = next((k for k, names in batch.FILES.items() if name in names), None)
        if kind is None or not batch.HEX16.fullmatch(media_hash):
            return None
        path = batch.paths(self.out, kind, media_hash)[name]
        return path if path.is_file() else None

    def forget(self, media_hash: str, kind: str) -> None:
        """Remove a preview the server has fetched (or does not want)."""
        if kind in batch.FILES and batch.HEX16.fullmatch(media_hash):
            for path in batch.paths(self.out, kind, media_hash).values():
                path.unlink(missing_ok=True)

    def _sweep(self) -> None:
        """Remove what the server never fetched, every SWEEP_EVERY seconds at most."""
        now = time.time()
        with self._lock:
            if now - self._swept < SWEEP_EVERY:
                return
            self._swept = now
        for path in self.out.rglob("*"):
            try:
                if path.is_file() and now - path.stat().st_mtime > KEEP:
                    path.unlink()
            except OSError:
                continue


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
