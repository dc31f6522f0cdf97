"""Wait for a file in one folder to change: Linux inotify, no polling; a plain sleep without it.

A segment request waits for its encoder to list the segment (hls/runs/<id>/list.csv). Looking
every few milliseconds costs the server CPU that the encoder — two cores busy, at a lower
priority than the server — then lacks, and adds half a look's interval to every first segment
(bench B8). inotify wakes the waiter when ffmpeg writes the list, and not otherwise.

    with FolderWatch(run_dir, {"list.csv", "exit"}) as watch:
        while not done():
            watch.wait(0.05)  # returns at a change of one of those names, or after 50 ms

The waiter always looks again after `wait` returns (a change may be one it does not care
about; the folder may be gone), so a missed or spurious wake-up costs at most the timeout.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import struct
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

IN_MODIFY = 0x2
IN_CLOSE_WRITE = 0x8
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_IGNORED = 0x8000  # the watch is gone: the folder was removed
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name

_libc: Any = None  # ctypes' libc once looked up; False: no inotify here


def _inotify() -> Any:
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            lib.inotify_init1.argtypes = [ctypes.c_int]
            lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            _libc = lib
        except (OSError, AttributeError):
            log.info("no inotify: waits for encoders look every few milliseconds")
            _libc = False
    return _libc or None


class FolderWatch:
    """Wake a waiter when a file of `folder` named in `names` is created, written or moved in."""

    def __init__(self, folder: str | Path, names: Iterable[str]) -> None:
        self.names = frozenset(os.fsencode(n) for n in names)
        self.fd = -1
        lib = _inotify()
        if lib is None:
            return
        fd = lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            return  # out of inotify instances: sleep instead
        if lib.inotify_add_watch(fd, os.fsencode(folder), MASK) < 0:
            os.close(fd)  # the folder is gone already: the waiter finds out
            return
        self.fd = fd
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)

    @property
    def watching(self) -> bool:
        """True when changes wake the waiter; False: `wait` only sleeps."""
        return self.fd >= 0

    def wait(self, timeout: float) -> None:
        """Return when a file of the names changed or the folder went away (maybe spuriously),
        or after `timeout` seconds."""
        if self.fd < 0:
            time.sleep(timeout)
            return
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self.poller.poll(left * 1000):
                return
            if self._relevant():
                return

    def _relevant(self) -> bool:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return False
        at, hit = 0, False
        while at + EVENT.size <= len(data):
            _wd, mask, _cookie, length = EVENT.unpack_from(data, at)
            name = data[at + EVENT.size : at + EVENT.size + length].rstrip(b"\0")
            hit = hit or mask & IN_IGNORED or name in self.names
            at += EVENT.size + length
        return bool(hit)

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> FolderWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
