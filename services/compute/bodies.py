"""Reading a worker's answer with limits: a worker (or whatever answers at its address) that
trickles bytes must not hold a server thread for ever, nor one that sends without end.

A socket timeout bounds one read only (a byte every few seconds never trips it); these bound
the time all reads of a body take together, and its size; `cut_off_after` bounds a status
line and headers (http.client reads them line by line: nothing between its reads to check).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator


@contextlib.contextmanager
def cut_off_after(sock: socket.socket, seconds: float) -> Iterator[None]:
    """Shut the socket down when the block is still running after `seconds` (its reads then
    end at once) and raise TimeoutError after it (http.client takes the end of the stream for
    the end of the headers); the connection is left as it was when the block ends in time."""
    lock, state = threading.Lock(), {"ended": False, "cut": False}

    def cut() -> None:
        with lock:
            if not state["ended"]:
                state["cut"] = True
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(max(seconds, 0.0), cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            state["ended"] = True
        timer.cancel()
        if state["cut"]:
            raise TimeoutError(f"cut off after {seconds:.1f} s")


def read_piece(resp: http.client.HTTPResponse, sock: socket.socket | None, n: int, left: float,
               per_read: float) -> bytes:  # fmt: skip
    """Return what has come of the body, at most n bytes (b"" at its end), waiting at most
    `left` seconds (TimeoutError when none are left) and `per_read`."""
    if left <= 0:
        raise TimeoutError("the body took too long")
    if sock is not None:
        sock.settimeout(min(per_read, left))
    return resp.read1(n)


def read_all(resp: http.client.HTTPResponse, sock: socket.socket | None, cap: int,
             deadline: float, per_read: float) -> bytes:  # fmt: skip
    """Return the body, at most cap + 1 bytes (more than cap: the caller refuses it), complete
    by `deadline` (time.monotonic()) or TimeoutError."""
    data = bytearray()
    while len(data) <= cap:
        piece = read_piece(resp, sock, cap + 1 - len(data), deadline - time.monotonic(), per_read)
        if not piece:
            break
        data += piece
    return bytes(data)
