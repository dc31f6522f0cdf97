"""A worker process's parts: heartbeat and Dramatiq worker threads (its HTTP side is the
caller's: cli/worker.py serves blueprints/node.py).

`Node(...)` is given what to announce and how to count its sessions. `start()` starts:

- Dramatiq worker threads consuming every declared queue, among them this worker's own
  `registry.queue_of(id)` (session requests meant for it), with a short poll (POLL_MS);
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
from services.compute.broker import get_broker
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
    ) -> None:
        self.redis_url = redis_url
        self.info = info
        self.count_sessions = sessions
        self.threads = threads
        self.link = redis_link(redis_url)
        self._stop = threading.Event()
        self._worker: Any = None
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
        import dramatiq

        broker = get_broker(self.redis_url)
        broker.declare_queue(registry.queue_of(self.info.id))
        self._worker = dramatiq.Worker(broker, worker_threads=self.threads, worker_timeout=POLL_MS)
        # Take no more messages than threads to run them: a batch job waits in the queue, where
        # any worker can take it, not in a busy worker's buffer (Dramatiq's default is twice).
        self._worker.queue_prefetch = self.threads
        self._worker.start()

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
        if self._worker is not None:
            self._worker.stop(timeout=5000)
