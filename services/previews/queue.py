"""The queue of thumbnail, sprite and clip jobs: priorities, one job per media and kind, the feed.

Jobs are ordered by priority (VISIBLE: a request waits for it; NEW: media added since the runner
started; BACKLOG: the rest), thumbnails before sprites at each level, then in the order queued.
Preview clips come after every thumbnail and sprite (nobody waits for one, and each costs
seconds of encoding), and at most all workers but one make clips at a time, so a thumbnail a
page asks for finds a free worker. Asking again for a queued job raises its priority instead of
queueing a second one. The feed
fills the queue from the database a batch at a time, newest media first, only when it runs low
or was poked (after a scan), so a library of 100,000 items costs memory for a few dozen jobs.

Everything here runs under the queue's condition `cv`; methods say which take it themselves.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from services.previews import previews

log = logging.getLogger(__name__)

FEED_BATCH = 32  # media fetched per refill
LAST = ("clip",)  # kinds queued after every job of the other kinds, whatever their priority


class Priority(IntEnum):
    """Who waits for a job: a user looking at it, a new file, or nobody yet."""

    VISIBLE = 0
    NEW = 1
    BACKLOG = 2


@dataclass(frozen=True)
class JobInfo:
    """A job as the dashboard shows it."""

    id: int
    kind: str
    target: str
    priority: str
    state: str
    phase: str | None
    done: int
    total: int | None
    error: str | None
    created: float
    started: float | None
    finished: float | None


@dataclass(eq=False)
class Job:
    """One piece of work and its progress; `wait()` blocks until it has finished."""

    id: int
    kind: str  # scan | thumbnail | sprite | clip
    target: str  # media_hash, or the folders a scan covers ('' for every library)
    priority: Priority
    media: previews.Target | None = None
    paths: list[Path] | None = None
    full: bool = False
    state: str = "queued"  # queued | running | done | failed | cancelled
    phase: str | None = None
    done: int = 0
    total: int | None = None
    error: str | None = None
    result: Any = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_requested: bool = False
    _event: threading.Event = field(default_factory=threading.Event, repr=False)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job has finished (or timeout seconds); return whether it has."""
        return self._event.wait(timeout)

    def finish(self, state: str) -> None:
        """Mark the job finished in `state` and wake whoever waits for it."""
        self.state, self.finished = state, time.time()
        self._event.set()

    def info(self) -> JobInfo:
        """Return a snapshot of the job for status pages."""
        return JobInfo(
            self.id,
            self.kind,
            self.target,
            self.priority.name.lower(),
            self.state,
            self.phase,
            self.done,
            self.total,
            self.error,
            self.created,
            self.started,
            self.finished,
        )


@dataclass
class _Source:
    """A range of media ids the queue is fed from, newest first, and how far it has got."""

    kind: str
    priority: Priority
    above: int
    below: int | None  # the next refill takes ids below this
    exhausted: bool = False


class JobQueue:
    """Thumbnail and sprite jobs by priority, fed from the database; see the module docstring."""

    def __init__(
        self,
        *,
        workers: int,
        mark: int,
        feed: bool,
        paused: bool,
        kinds: tuple[str, ...] = previews.KINDS,
    ) -> None:
        self.cv = threading.Condition()
        self.paused = paused
        self.closing = False
        self.next_id = itertools.count(1).__next__
        self._workers = workers
        self._feed = feed
        self._heap: list[tuple[int, int, int, Job]] = []
        self._active: dict[tuple[str, int], Job] = {}  # queued or running
        self.running: dict[int, Job] = {}
        self._skip: set[tuple[str, int]] = set()  # unreadable now, or cancelled: not fed again
        self._feeding = False
        self._poked = feed  # look for missing work at once, however full the queue is
        # Media up to `mark` existed when the runner started: the backlog. Newer ones are new.
        # Clips last: a refill reaches them only once nothing else is left to queue.
        self._sources = [
            _Source(kind, priority, mark if priority == Priority.NEW else 0, None)
            for last in (False, True)
            for priority in (Priority.NEW, Priority.BACKLOG)
            for kind in kinds
            if (kind in LAST) == last
        ]
        # Clips at once, at most: all workers but one (one when there is only one).
        self._clip_slots = max(1, workers - 1)
        self._mark = mark

    def add(self, kind: str, target: previews.Target, priority: Priority) -> Job:
        """Queue a job, or raise the priority of the one already queued; return it (locks)."""
        with self.cv:
            key = (kind, target.media_id)
            job = self._active.get(key)
            if job is None:
                job = Job(self.next_id(), kind, target.media_hash, priority, media=target)
                self._active[key] = job
                self._push(job)
            elif job.state == "queued" and priority < job.priority:
                job.priority = priority
                self._push(job)  # the old heap entry is skipped when popped
            self.cv.notify_all()  # a scan thread waits on this condition too
            return job

    def _push(self, job: Job) -> None:
        order = previews.KINDS.index(job.kind)
        heapq.heappush(self._heap, (_rank(job), order, self.next_id(), job))

    def pop(self) -> Job | None:
        """Take the most urgent job and mark it running; only VISIBLE ones while paused, and
        no clip while the clips' workers are busy (every job after a clip is a clip too)."""
        while self._heap:
            rank, _, _, job = self._heap[0]
            if self.paused and rank != Priority.VISIBLE:
                return None
            if job.kind in LAST and self._running_clips() >= self._clip_slots:
                return None
            heapq.heappop(self._heap)
            if job.state == "queued" and rank == _rank(job):
                self.start(job)
                return job
        return None

    def _running_clips(self) -> int:
        return sum(1 for j in self.running.values() if j.kind in LAST)

    def start(self, job: Job) -> None:
        """Mark a queued job running (pop does; inline mode runs a job it just queued)."""
        job.state, job.started = "running", time.time()
        self.running[job.id] = job

    def finished(self, job: Job, state: str, *, retry: bool = True) -> None:
        """Take a media job off the queue; with retry=False the feed never queues it again."""
        assert job.media is not None
        key = (job.kind, job.media.media_id)
        self._active.pop(key, None)
        self.running.pop(job.id, None)
        if not retry:
            self._skip.add(key)
        job.finish(state)
        self.cv.notify_all()

    def cancel(self, job_id: int) -> Job | None:
        """Cancel a queued job (not fed again); return it, or None if none is queued so."""
        job = next((j for j in self._active.values() if j.id == job_id), None)
        if job is None or job.state != "queued":
            return None
        self.finished(job, "cancelled", retry=False)
        return job

    def drop_queued(self) -> None:
        """Cancel every queued job (shutting down)."""
        for job in [j for j in self._active.values() if j.state == "queued"]:
            self.finished(job, "cancelled")

    def upcoming(self, count: int) -> list[Job]:
        """Return the next queued jobs in the order they will run."""
        entries = heapq.nsmallest(count, (e for e in self._heap if e[0] == _rank(e[3])))
        return [e[3] for e in entries if e[3].state == "queued"]

    def queued(self) -> list[Job]:
        """Return every queued job."""
        return [j for j in self._active.values() if j.state == "queued"]

    # -- the feed ----------------------------------------------------------------------------------

    def poke(self) -> None:
        """Make the feed look through the whole library again, now."""
        for source in self._sources:
            source.below, source.exhausted = None, False
        self._poked = self._feed
        self.cv.notify_all()

    def needs_feed(self) -> bool:
        """Return whether a refill is due: poked, or the queue runs low with work left."""
        if not self._feed or self._feeding or self.closing:
            return False
        if self._poked:
            return True
        fed = sum(1 for _, _, _, j in self._heap if j.priority != Priority.VISIBLE)
        return fed < 2 * self._workers and not all(s.exhausted for s in self._sources)

    def exhausted(self) -> bool:
        """Return whether the feed has found everything there is to do."""
        return not self._poked and all(s.exhausted for s in self._sources)

    def refill(self, db: Database) -> None:
        """Queue the next batch of media missing a thumbnail, sprite or clip, most urgent first (locks)."""
        with self.cv:
            if self._feeding:
                return
            self._feeding, self._poked = True, False
        try:
            wanted = FEED_BATCH
            for source in self._sources:
                if source.exhausted or wanted <= 0:
                    continue
                below = source.below
                if source.priority == Priority.BACKLOG:
                    below = min(below or self._mark + 1, self._mark + 1)
                found = previews.missing(
                    db, source.kind, below=below, above=source.above, limit=wanted
                )
                with self.cv:
                    source.exhausted = len(found) < wanted
                    if found:
                        source.below = found[-1].media_id
                    for target in found:
                        key = (source.kind, target.media_id)
                        if key not in self._active and key not in self._skip:
                            self.add(source.kind, target, source.priority)
                            wanted -= 1
        except Exception:
            log.exception("looking for missing thumbnails failed")
        finally:
            with self.cv:
                self._feeding = False
                self.cv.notify_all()

    def next_job(self, idle: float | None, refill: Callable[[], None]) -> Job | None:
        """Wait for a job to run (refilling the queue when due); None when closing (locks)."""
        while True:
            with self.cv:
                while True:
                    if self.closing:
                        return None
                    job = self.pop()
                    if job is not None:
                        return job
                    if self.needs_feed():
                        break
                    if not self.cv.wait(idle if self._feed else None):
                        self.poke()  # idle a while: look for work another process added
            refill()


def _rank(job: Job) -> int:
    """Return where a job's priority puts it in the heap: clips below every other kind's."""
    return job.priority + (len(Priority) if job.kind in LAST else 0)
