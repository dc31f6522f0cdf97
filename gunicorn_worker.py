"""The gunicorn worker class: gthread, keeping a busy connection on its thread.

gunicorn's gthread worker hands every request of a kept-alive connection through its main loop:
the answering thread gives the socket back, the main thread polls it, wakes on the next request
and queues it for a thread again — two thread hand-offs, a pipe write and two passes of the main
loop per request, about half of what a 256 KiB range costs the server (bench B5). A video player
seeking, or scrubbing through a VR file, sends its next range the moment the last one arrived.

This worker keeps a connection on its thread while its client answers quickly: after a
keep-alive response it waits up to LINGER for the next request and serves it at once. It stops
lingering — and the connection goes back to gunicorn's poller as usual — when the client is
quiet for LINGER, when other connections are waiting for a thread, or when the worker stops.
"""

from __future__ import annotations

import select
import ssl
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

LINGER = 0.002  # seconds a thread waits for a kept-alive client's next request


class Worker(ThreadWorker):
    """gthread, serving a kept-alive connection's next requests on the same thread."""

    def handle(self, conn: Any) -> Any:
        result = super().handle(conn)
        while result is True and self.alive and self._next_request_soon(conn):
            result = super().handle(conn)
        return result

    def _next_request_soon(self, conn: Any) -> bool:
        """Return whether the connection's next request is there or comes within LINGER."""
        if conn.parser.unreader.buf.getvalue():
            return True  # pipelined: already read
        if self.tpool._work_queue.qsize():
            return False  # others are waiting for a thread: back to the poller
        sock = conn.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True  # decrypted bytes the socket's readiness does not show
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(LINGER * 1000))
