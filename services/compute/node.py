"""A worker process's parts: heartbeat and Dramatiq worker threads (its HTTP side is the
caller's: cli/worker.py serves blueprints/node.py).

`Node(...)` is given what to announce and how to count its sessions. `start()` starts:

- Dramatiq worker threads consuming every declared queue, among them this worker's own
  `registry.queue_of(id)` (session requests meant for it), with a short poll (POLL_MS); with
  `batch_threads`, `threads` take only that queue and `batch_threads` others take the batch
  queue (preview jobs), so a session request never waits behind batch work;
- the heartbeat: `registry.announce` every HEARTBEAT seconds with the current sessions and load.

`stop()` withdraws the announcement and stops both. While Redis is unreachable the HTTP
side keeps serving the sessions it has; the heartbeat and the queue resume when Redis returns.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from services.compute import registry
from services.compute.broker import BATCH_QUEUE, get_broker
from services.compute.conn import redis_link
from services.compute.registry import WorkerInfo

log = logging.getLogger(__name__)

POLL_MS = 100  # longest wait of an idle Dramatiq consumer before it asks Redis again


class Node:
    """One worker: announce, take messages, serve HTTP."""

    def __init__(
        self,
        redis_url: str,
        info: WorkerInfo,
        *,
        sessions: Callable[[], int] = lambda: 0,
        threads: int = 4,
        batch_threads: int = 0,
    ) -> None:
        self.redis_url = redis_url
        self.info = info
        self.count_sessions = sessions
        self.threads = threads
        self.batch_threads = batch_threads
        self.link = redis_link(redis_url)
        self._stop = threading.Event()
        self._worker: Any = None
        self._batch_worker: Any = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self.beat()
        t = threading.Thread(target=self._beat_loop, name="node-heartbeat", daemon=True)
        t.start()
        self._threads.append(t)
        self._start_worker()
        log.info("worker %s: announced as %s, queue %s, %d encoder(s) %s", self.info.id,
                 self.info.url, registry.queue_of(self.info.id), self.info.capacity,
                 ",".join(self.info.encoders))  # fmt: skip

    def _start_worker(self) -> None:
        broker = get_broker(self.redis_url)
        own = registry.queue_of(self.info.id)
        broker.declare_queue(own)
        # With batch_threads, batch work has threads of its own: a session's job never waits
        # behind thumbnails and clips that took every thread.
        queues = {own} if self.batch_threads else None
        self._worker = self._dramatiq_worker(broker, self.threads, queues)
        if self.batch_threads:
            broker.declare_queue(BATCH_QUEUE)
            # A second Worker on one broker makes Dramatiq warn of a middleware added twice;
            # with disjoint queue lists the two never meet, so that warning is not logged.
            level = broker.logger.level
            broker.logger.setLevel(logging.ERROR)
            try:
                self._batch_worker = self._dramatiq_worker(broker, self.batch_threads,
                                                           {BATCH_QUEUE})  # fmt: skip
            finally:
                broker.logger.setLevel(level)

    @staticmethod
    def _dramatiq_worker(broker: Any, threads: int, queues: set[str] | None) -> Any:
        import dramatiq

        worker = dramatiq.Worker(broker, queues=queues, worker_threads=threads,
                                 worker_timeout=POLL_MS)  # fmt: skip
        # Take no more messages than threads to run them: a batch job waits in the queue, where
        # any worker can take it, not in a busy worker's buffer (Dramatiq's default is twice).
        worker.queue_prefetch = threads
        worker.start()
        return worker

    def beat(self) -> WorkerInfo:
        """Announce this worker now (when Redis answers); return what was announced."""
        try:
            load = os.getloadavg()[0] / max(1, self.info.cpus)
        except OSError:
            load = 0.0
        info = dataclasses.replace(self.info, sessions=self.count_sessions(),
                                   load=round(load, 2), seen=time.time())  # fmt: skip
        client = self.link.client()
        if client is not None:
            try:
                registry.announce(client, info)
            except self.link.errors as exc:
                self.link.failed(exc)
        return info

    def _beat_loop(self) -> None:
        while not self._stop.wait(registry.HEARTBEAT):
            try:
                self.beat()
            except Exception:
                log.exception("worker heartbeat failed")

    def stop(self) -> None:
        """Withdraw the announcement and stop the Dramatiq threads."""
        self._stop.set()
        client = self.link.client()
        if client is not None:
            try:
                registry.withdraw(client, self.info.id)
            except self.link.errors:
                pass
        for worker in (self._worker, self._batch_worker):
            if worker is not None:
                worker.stop(timeout=5000)
