"""The server's side of preview work on other machines (issue 18): which jobs go to workers.

The job runner (services/jobs.py) asks `BatchSender.take(db, job)` before it makes a thumbnail,
sprite or clip itself; True means the job is left to the workers (sent now, or before):

- Redis unreachable, or no worker alive: False — made here. With LVS_LOCAL_WORK=off that is
  said once by a WARNING (RedisLink's for Redis; here for "no worker answers"), not per job,
  and once more (INFO) when workers are back.
- Sent within SENT_TTL seconds (`lvs:batch:sent:<kind>:<media_hash>`, written before sending,
  removed when the report is handled): True — a worker has it, this server skips it.
- LVS_LOCAL_WORK=on: a job someone is waiting for (on screen) is made here; the others are sent
  while the batch queue holds fewer than AHEAD jobs per live worker (waiting or taken), else
  made here. So the workers are kept busy, this server does the rest, and no job is made by
  both — except after a marker lapsed, which costs time only: outputs are content-addressed.
- LVS_LOCAL_WORK=off: every job is sent; while the queue is full the runner's thread waits for
  room (this server makes nothing itself while a worker is alive).

A job carries the media_hash, the kind, the media's kind and VR flag, this server's sizes and
the file's library root and path inside it (services/previews/batch.py); the reports come
back to services/previews/batch_deliveries.py.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

from config import Settings
from services.compute import broker, registry, status
from services.compute.conn import redis_link
from services.previews import batch, previews
from services.previews.queue import Job, Priority

log = logging.getLogger(__name__)

SENT = "lvs:batch:sent:"
SENT_TTL = 600  # seconds a sent job is left to the workers before it may be sent (or made) again
AHEAD = 4  # jobs per live worker in the batch queue (waiting or taken) before more are sent
LIVE_CACHE = 1.0  # seconds the list of live workers is reused
ROOM_WAIT = 0.25  # seconds between looks for room in the queue (LVS_LOCAL_WORK=off)


def sent_key(kind: str, media_hash: str) -> str:
    return f"{SENT}{kind}:{media_hash}"


class BatchSender:
    """Send preview jobs to the workers' batch queue; see the module docstring."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.redis_url
        self.local_work = settings.local_work
        self.link = redis_link(self.url)
        self._lock = threading.Lock()
        self._live: tuple[float, int] = (0.0, 0)
        self._alone = False  # said that no worker answers (LVS_LOCAL_WORK=off)

    def take(self, db: Database, job: Job, closing: Callable[[], bool] = lambda: False) -> bool:
        """Return True when the job is left to the workers, False to make it here."""
        assert job.media is not None
        if self.local_work and job.priority == Priority.VISIBLE:
            return False  # someone waits for it: no round trip through Redis
        client = self.link.client()
        if client is None:
            return False
        try:
            return self._take(client, db, job, closing)
        except self.link.errors as exc:
            self.link.failed(exc)
            return False

    def _take(self, client: Any, db: Database, job: Job, closing: Callable[[], bool]) -> bool:
        assert job.media is not None
        target, key = job.media, sent_key(job.kind, job.media.media_hash)
        while True:
            live = self._workers(client)
            if not live:
                return False
            if client.exists(key):
                return True  # a worker has it
            if self._outstanding(client) < AHEAD * live:
                break
            if self.local_work or closing():
                return False
            time.sleep(ROOM_WAIT)
        where = previews.location(db, target.media_id)
        if where is None:
            return False  # no copy online: the local runner says so
        vr = job.kind == "clip" and previews.is_vr(db, target.media_id)
        width = (
            self.settings.sprite_width if job.kind == "sprite" else self.settings.thumbnail_width
        )
        message = batch.job_message(batch.BatchJob(
            target.media_hash, job.kind, target.kind, vr, width, self.settings.sprite_tiles,
            where[0], os.fsdecode(where[1])))  # fmt: skip
        if not client.set(key, str(time.time()), nx=True, ex=SENT_TTL):
            return True  # sent by another process meanwhile
        if not broker.send_to(self.url, broker.BATCH_QUEUE, batch.MAKE_ACTOR, message):
            client.delete(key)
            return False
        log.debug("%s of %s sent to the workers", job.kind, target.media_hash)
        return True

    def _workers(self, client: Any) -> int:
        """Return how many workers are alive (reused LIVE_CACHE seconds); say when none is."""
        with self._lock:
            at, count = self._live
            if time.monotonic() - at < LIVE_CACHE:
                return count
            count = len(registry.workers(client))
            self._live = (time.monotonic(), count)
            if not self.local_work and not count and not self._alone:
                log.warning("no worker answers: thumbnails and previews are made on this server "
                            "until one does (LVS_LOCAL_WORK=off)")  # fmt: skip
            elif not self.local_work and count and self._alone:
                log.info("workers answer again: thumbnails and previews go to them")
            self._alone = not count
            return count

    def _outstanding(self, client: Any) -> int:
        """Return the batch queue's jobs waiting or taken by a worker (not yet acknowledged)."""
        size = status.queue_sizes(client).get(broker.BATCH_QUEUE)
        return size.waiting + size.delayed + size.running if size else 0
