"""Live sync: follow the library roots on disk and say which folders need a scan.

One thread per root (a hung network mount stalls only its own root) watches it in one of two ways:

- events: an inotify observer (watchdog) on the root, recursive; the default for local disks;
- poll: a re-walk every `watch_poll_interval` seconds that compares each folder's digest of
  (name, size, mtime) with the one the previous walk saw, and marks the folders that differ.
  Used for network mounts (NFS, SMB/CIFS, FUSE: other machines' changes raise no local events)
  and for any root where event watching fails (the inotify watch limit), with one WARNING line.

Why this poll and not the alternatives: calling on_dirty([root]) every interval would let the
scanner's digest compare do the same work, but it would write a scans row every interval and
hand the scanner a file still being copied; watchdog's PollingObserver keeps a stat result for
every file (tens of MB at 100k files) and reports per-file events. This walk keeps one 16-byte
digest per folder, runs in the walker's worker processes when the tree is big (off the server's
GIL), and feeds changed folders into the same settling as events (services.library.settle), so network
copies are not probed half-written either; without close events to go by, the settle time on
polled roots is at least a tenth of the poll interval (3 s by default). Its cost is measured in
bench/README.md (B10).

Changes are debounced and settled per folder (services.library.settle) and handed to `on_dirty` as a
short list of folders — never the root for one new file — from one dispatcher thread, so calls
never overlap. A root that disappears (unplugged, unmounted: missing, unreadable, or empty while
the database holds its files) is 'offline': no events, nothing reported, so nothing is marked
missing; it is re-checked every min(poll interval, 5 s) and, when it is back (or was replaced by
another mount), watched afresh and reported whole, since anything may have changed meanwhile.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from config import Settings
from services.fsutil import Mount
from services.library.watch_root import RETRY_AFTER, RootStatus, RootWatch

log = logging.getLogger(__name__)

__all__ = ["RootStatus", "Watcher"]


class Watcher:
    """Follow every library root and call `on_dirty(folders)` when folders need a scan."""

    def __init__(
        self,
        settings: Settings,
        on_dirty: Callable[[list[Path]], None],
        *,
        mounts: list[Mount] | None = None,
    ) -> None:
        self.settings = settings
        self.mounts = mounts  # None: read the mount table when needed
        self._on_dirty = on_dirty
        self._roots = [RootWatch(self, root) for root in settings.media_dirs]
        self.stopping = threading.Event()
        self._cv = threading.Condition()
        self._outbox: set[bytes] = set()
        self._dispatcher = threading.Thread(target=self._dispatch, name="lvs-watch", daemon=True)
        self._started = False
        self.calls = 0  # on_dirty calls made

    def start(self) -> None:
        """Start watching every root (one thread each); return at once."""
        if self._started or self.settings.watch == "off":
            return
        self._started = True
        self._dispatcher.start()
        for root in self._roots:
            root.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching and wait for the threads (a root hung on a dead mount is left behind)."""
        if not self._started:
            return
        self.stopping.set()
        with self._cv:
            self._cv.notify_all()
        for root in self._roots:
            root.wake.set()
        deadline = time.monotonic() + timeout
        for thread in [r.thread for r in self._roots] + [self._dispatcher]:
            thread.join(max(0.1, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop in time", thread.name)
        self._started = False

    def status(self) -> list[RootStatus]:
        """Return how each root is followed: mode, why, changes seen, folders waiting."""
        if self.settings.watch == "off":
            return [RootStatus(r.path, "off", "LVS_WATCH=off", 0, None, 0) for r in self._roots]
        return [root.status() for root in self._roots]

    def wait_started(self, timeout: float = 30.0) -> bool:
        """Wait until every root has left 'starting' (its watches are set up); return whether so."""
        deadline = time.monotonic() + timeout
        while any(s.mode == "starting" for s in self.status()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    # -- called by the roots' threads ------------------------------------------------------

    def emit(self, root: bytes, folders: list[bytes]) -> None:
        """Queue ready folders of a root for the next on_dirty call."""
        with self._cv:
            self._outbox.update(root + b"/" + f if f else root for f in folders)
            self._cv.notify()

    # -- the dispatcher thread ------------------------------------------------------------------

    def _dispatch(self) -> None:
        while True:
            with self._cv:
                while not self._outbox and not self.stopping.is_set():
                    self._cv.wait()
                if self.stopping.is_set():
                    return
                batch = sorted(self._outbox)
                self._outbox.clear()
            # Drop folders inside others in the batch: a scan walks the whole subtree.
            tops = [p for p in batch if not any(p.startswith(q + b"/") for q in batch)]
            folders = [Path(os.fsdecode(_scannable(p))) for p in tops]
            try:
                self._on_dirty(folders)
                self.calls += 1
            except Exception:
                log.exception("re-scanning %d changed folders failed; retrying", len(folders))
                with self._cv:
                    self._outbox.update(tops)
                    self._cv.wait(RETRY_AFTER)


def _scannable(path: bytes) -> bytes:
    """Return `path`, or its parent when a file now sits where a folder was."""
    try:
        if not stat.S_ISDIR(os.stat(path).st_mode):
            return os.path.dirname(path)
    except OSError:
        pass  # gone: the scan marks what it held missing
    return path
