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

Each thread keeps one inotify instance and adds and removes watches on it: closing an instance
waits for the kernel's grace period (~8 ms measured here, on every segment request), removing
a watch does not (~1 µs).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import select
import struct
import threading
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
# The folder: files made or moved in (not written: an encoder writes a segment in a hundred
# pieces, and each would wake the waiter). Each named file: written.
FOLDER_MASK = IN_CREATE | IN_MOVED_TO
FILE_MASK = IN_MODIFY | IN_CLOSE_WRITE
EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name

_libc: Any = None  # ctypes' libc once looked up; False: no inotify here


def _inotify() -> Any:
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            lib.inotify_init1.argtypes = [ctypes.c_int]
            lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
            _libc = lib
        except (OSError, AttributeError):
            log.info("no inotify: waits for encoders look every few milliseconds")
            _libc = False
    return _libc or None


class _Instance:
    """This thread's inotify instance; closed when the thread ends (off any request's path)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)

    def drain(self) -> None:
        """Drop the events of earlier watches still queued."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 65536):
                pass

    def __del__(self) -> None:
        os.close(self.fd)


_local = threading.local()


def _instance(lib: Any) -> _Instance | None:
    found: _Instance | None = getattr(_local, "instance", None)
    if found is None:
        fd = lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            return None  # out of inotify instances: sleep instead
        found = _local.instance = _Instance(fd)
    return found


class FolderWatch:
    """Wake a waiter when a file of `folder` named in `names` is made, moved in or written.
    One at a time in a thread (they share the thread's inotify instance)."""

    def __init__(self, folder: str | Path, names: Iterable[str]) -> None:
        self.folder = os.fsencode(folder)
        self.names = frozenset(os.fsencode(n) for n in names)
        self.fd = -1
        self.watches: list[int] = []
        self.files: set[int] = set()  # the named files' watches
        self.lib = _inotify()
        instance = _instance(self.lib) if self.lib is not None else None
        if instance is None:
            return
        instance.drain()
        self.fd, self.poller = instance.fd, instance.poller
        self.folder_wd = self.lib.inotify_add_watch(self.fd, self.folder, FOLDER_MASK)
        if self.folder_wd < 0:
            self.fd = -1  # the folder is gone already: the waiter finds out
            return
        self.watches.append(self.folder_wd)
        for name in self.names:
            self._follow(name)

    def _follow(self, name: bytes) -> None:
        wd = self.lib.inotify_add_watch(self.fd, self.folder + b"/" + name, FILE_MASK)
        if wd >= 0:  # else: not there yet (its creation wakes the waiter, then it is followed)
            self.files.add(wd)
            self.watches.append(wd)

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
            wd, mask, _cookie, length = EVENT.unpack_from(data, at)
            name = data[at + EVENT.size : at + EVENT.size + length].rstrip(b"\0")
            at += EVENT.size + length
            if wd in self.files or (wd == self.folder_wd and mask & IN_IGNORED):
                hit = True  # a named file written, or the folder gone
            elif wd == self.folder_wd and name in self.names:
                hit = True  # made or moved in: from now on its writes wake the waiter too
                self._follow(name)
        return hit

    def close(self) -> None:
        """Remove the watches (the thread's instance stays for its next wait)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            for wd in self.watches:
                self.lib.inotify_rm_watch(fd, wd)  # -1 for one already gone: nothing to do
        self.watches.clear()

    def __enter__(self) -> FolderWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
