"""Reading a worker's answer with limits: a worker (or whatever answers at its address) that
trickles bytes must not hold a server thread for ever, nor one that sends without end.

A socket timeout bounds one read only (a byte every few seconds never trips it); these bound
the time all reads of a body take together, and its size.
"""

from __future__ import annotations

import http.client
import socket
import time


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
