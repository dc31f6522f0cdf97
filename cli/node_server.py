"""The worker's HTTP server: werkzeug's threaded server, bounded (issue 18, review F5).

Anyone on the LAN can connect to a worker's port. werkzeug's threaded server gives each
connection a thread with no socket timeout, so a few hundred half-sent requests would hold as
many threads for ever. Here a connection's socket operations time out after TIMEOUT seconds
and at most MAX_CONNECTIONS are served at once: one more is closed at once (with a log line
every REFUSED_LOG_EVERY seconds). The server opens a new connection per request, so the cap
only has to cover the segments and previews being fetched at the same moment.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

log = logging.getLogger(__name__)

TIMEOUT = 30.0  # seconds a socket read or write of a connection may wait
MAX_CONNECTIONS = 64  # connections served at once; more are closed
REFUSED_LOG_EVERY = 60.0  # seconds between log lines about closed connections


class NodeRequestHandler(WSGIRequestHandler):
    @property  # type: ignore[override]
    def timeout(self) -> float:  # read by setup(): the connection's socket timeout
        return TIMEOUT


class NodeServer(ThreadedWSGIServer):
    """A threaded WSGI server with socket timeouts and at most MAX_CONNECTIONS threads."""

    daemon_threads = True

    def __init__(self, host: str, port: int, app: Any) -> None:
        super().__init__(host, port, app, handler=NodeRequestHandler)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._refused_logged = -REFUSED_LOG_EVERY

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            now = time.monotonic()
            if now - self._refused_logged >= REFUSED_LOG_EVERY:
                self._refused_logged = now
                log.warning("%d connections are being served: one from %s is closed",
                            MAX_CONNECTIONS, client_address[0])  # fmt: skip
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()
