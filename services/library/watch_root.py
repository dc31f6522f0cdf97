"""One library root followed by its own thread: events or polling, offline and back, settling.

See services/library/watcher.py for the whole picture. The thread checks the root every
min(poll interval, CHECK_EVERY) seconds, runs the poll walk when it is due, and steps the root's
DirtySet at the times it asks for, handing ready folders to the Watcher's dispatcher.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from watchdog.observers.api import BaseObserver

from config import Settings
from services import fsutil
from services.fsutil import Mount
from services.library import watch_events
from services.library.settle import DirtySet
from services.library.walker import Walker

log = logging.getLogger(__name__)

CHECK_EVERY = 5.0  # seconds between checks that a root is still there (at most)
RETRY_AFTER = 5.0  # seconds before a failed step is tried again
MIN_STEP = 0.02  # seconds: the shortest sleep of a root's thread
POLL_WORKERS = 2  # walker processes for a big polled tree


@dataclass(frozen=True)
class RootStatus:
    """How one library root is being followed, for the admin dashboard."""

    root: Path
    mode: str  # starting | events | poll | offline | off
    reason: str
    events: int  # changes seen: filtered events, or changed folders found by polls
    last_change: float | None  # unix time of the last one
    pending: int  # changed folders waiting to settle


class Host(Protocol):
    """What a RootWatch needs from the Watcher that owns it."""

    settings: Settings
    mounts: list[Mount] | None
    stopping: threading.Event

    def emit(self, root: bytes, folders: list[bytes]) -> None: ...


def data_dir_keys(data_dir: Path) -> frozenset[tuple[int, int]]:
    """Return the (dev, ino) of our data dir, so a data dir inside a library is never walked."""
    try:
        st = os.stat(data_dir)
    except OSError:
        return frozenset()
    return frozenset({(st.st_dev, st.st_ino)})


def data_dir_inside(data_dir: Path, root: bytes) -> bytes | None:
    """Return the data dir relative to `root` when it lies inside it (events use that spelling)."""
    data = os.fsencode(os.path.realpath(data_dir))
    top = os.fsencode(os.path.realpath(root)).rstrip(b"/")
    return data[len(top) + 1 :] if data.startswith(top + b"/") else None


def _holds_files(db_path: Path, root: str) -> bool:
    """Return True when the database records present files under this library root."""
    if not db_path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute(
                "SELECT 1 FROM files f JOIN libraries l ON l.id = f.library_id "
                "WHERE l.root = ? AND f.present = 1 LIMIT 1",
                [root],
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return True  # cannot tell: an empty root is safer treated as offline
    return row is not None


class RootWatch:
    """One library root: its mode, observer or poll state, and changed folders."""

    def __init__(self, watcher: Host, root: Path) -> None:
        self.watcher = watcher
        self.path = root
        self.raw = os.fsencode(root)
        s = watcher.settings
        self.dirty = DirtySet(self.raw, debounce=s.watch_debounce, settle=s.watch_settle)
        self.mode, self.reason = "starting", ""
        self.events = 0
        self.last_change: float | None = None
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"lvs-watch:{root}", daemon=True)
        self._observer: BaseObserver | None = None
        self._identity: tuple[int, int] | None = None
        self._digests: dict[bytes, bytes] = {}
        self._check_now = False
        self._overflowed = False
        self._limit: OSError | None = None

    # -- Sink: called on the observer's thread -----------------------------------------------

    def _seen(self, new: bool) -> None:
        self.events += 1
        self.last_change = time.time()
        if new:
            self.wake.set()

    def changed(self, folder: bytes) -> None:
        self._seen(self.dirty.mark(folder))

    def writing(self, file: bytes) -> None:
        self._seen(self.dirty.writing(file))

    def closed(self, file: bytes) -> None:
        self._seen(self.dirty.closed(file))

    def overflow(self) -> None:
        self._overflowed = True
        self.wake.set()

    def limit(self, exc: OSError) -> None:
        self._limit = exc
        self.wake.set()

    def root_gone(self) -> None:
        self._check_now = True
        self.wake.set()

    # -- the root's thread ---------------------------------------------------------------------

    def _run(self) -> None:
        stopping = self.watcher.stopping
        settings = self.watcher.settings
        check_every = min(settings.watch_poll_interval, CHECK_EVERY)
        next_check = next_poll = 0.0
        try:
            while not stopping.is_set():
                try:
                    now = time.monotonic()
                    if self._check_now or now >= next_check:
                        self._check_now = False
                        before = self.mode
                        self._check()
                        next_check = now + check_every
                        if self.mode == "poll" and before != "poll":
                            next_poll = now + settings.watch_poll_interval  # just walked
                    if self._overflowed:
                        self._overflowed = False
                        log.warning("events were lost under %s (inotify queue overflow)", self.path)
                        self.dirty.mark_root()
                    if self._limit is not None and self.mode == "events":
                        self._fall_back(f"event watching failed: {self._limit.strerror}")
                        next_poll = time.monotonic() + settings.watch_poll_interval
                    if self.mode == "poll" and time.monotonic() >= next_poll:
                        self._poll()
                        next_poll = time.monotonic() + settings.watch_poll_interval
                    wake = math.inf
                    if self.mode in ("events", "poll"):
                        ready, wake = self.dirty.step()
                        if ready:
                            self.watcher.emit(self.raw, ready)
                    until = min(wake, next_check, next_poll if self.mode == "poll" else math.inf)
                except Exception:
                    log.exception("watching %s failed; trying again", self.path)
                    until = time.monotonic() + RETRY_AFTER
                stepped = time.monotonic()
                self.wake.wait(max(MIN_STEP, until - stepped))
                self.wake.clear()
                # During a storm every close wakes this thread: step at most every MIN_STEP.
                stopping.wait(max(0.0, stepped + MIN_STEP - time.monotonic()))
        finally:
            self._stop_watching()

    def _probe(self) -> tuple[str | None, tuple[int, int] | None]:
        """Return why the root cannot be watched now (None when it can) and its (dev, ino)."""
        try:
            st = fsutil.stat(self.raw)
        except FileNotFoundError:
            return "the folder does not exist (unplugged drive or unmounted share?)", None
        except OSError as exc:
            return f"cannot reach the folder: {exc.strerror}", None
        if not stat.S_ISDIR(st.st_mode):
            return "not a folder", None
        try:
            with os.scandir(self.raw) as it:
                empty = next(it, None) is None
        except OSError as exc:
            return f"cannot read the folder: {exc.strerror}", None
        if empty and _holds_files(self.watcher.settings.db_path, str(self.path)):
            return "the folder is empty but the library holds files (unmounted share?)", None
        return None, (st.st_dev, st.st_ino)

    def _check(self) -> None:
        """Notice the root going offline, coming back, or being replaced by another mount."""
        reason, identity = self._probe()
        if reason:
            if self.mode != "offline":
                log.warning("library root %s is offline: %s; not watching it", self.path, reason)
                self._stop_watching()
                self.dirty.clear()
                self.mode, self.reason = "offline", reason
            else:
                self.reason = reason
            return
        if self.mode == "events" and not self._observer_alive():
            # watchdog stops an emitter whose root was deleted; a root re-created at once (even
            # with the same inode number) needs a new observer, and may hold anything.
            log.info("library root %s was re-created; watching it afresh", self.path)
            self._stop_watching()
            self._start_watching(identity)
            self.dirty.mark_root()
            self._seen(True)
        elif self.mode in ("starting", "offline"):
            back = self.mode == "offline"
            self._start_watching(identity)
            if back:
                log.info("library root %s is back; watching it again", self.path)
                self.dirty.mark_root()
                self._seen(True)
        elif identity != self._identity:
            log.info(
                "library root %s was replaced (mounted or unmounted?); watching afresh", self.path
            )
            self._stop_watching()
            self._start_watching(identity)
            self.dirty.mark_root()
            self._seen(True)

    def _choose(self) -> tuple[str, str]:
        setting = self.watcher.settings.watch
        if setting == "poll":
            return "poll", "LVS_WATCH=poll"
        mount = fsutil.mount_of(self.path, self.watcher.mounts)
        if setting == "auto" and mount is not None and mount.is_network:
            return "poll", (
                f"network filesystem ({mount.fstype} at {mount.point}): changes made by other "
                "machines raise no events here"
            )
        return "events", f"inotify (LVS_WATCH={setting})"

    def _settle(self, mode: str) -> float:
        """Return the settle time: on polled roots at least a tenth of the poll interval.

        Without close events, settling is all that tells a finished file from a copy that
        paused, and copies to network shares pause longer than local ones.
        """
        s = self.watcher.settings
        return max(s.watch_settle, s.watch_poll_interval / 10) if mode == "poll" else s.watch_settle

    def _start_watching(self, identity: tuple[int, int] | None) -> None:
        self._identity = identity
        self._limit = None
        mode, reason = self._choose()
        if mode == "events":
            inside = data_dir_inside(self.watcher.settings.data_dir, self.raw)
            handler = watch_events.RootHandler(self.raw, self, exclude=inside)
            try:
                self._observer = watch_events.start_observer(self.raw, handler, self)
            except OSError as exc:
                mode, reason = "poll", f"event watching failed: {exc.strerror or exc}"
            else:
                if self._limit is not None:  # the root is watched, some subfolders are not
                    watch_events.stop_observer(self._observer)
                    self._observer = None
                    mode, reason = "poll", f"event watching failed: {self._limit.strerror}"
        self.dirty.settle = self._settle(mode)
        if mode == "poll":
            self._digests = self._walk({}) or {}
            level = logging.INFO if reason == "LVS_WATCH=poll" else logging.WARNING
            interval = self.watcher.settings.watch_poll_interval
            log.log(level, "watching %s by polling every %gs: %s", self.path, interval, reason)
        else:
            log.info("watching %s with %s", self.path, reason)
        self.mode, self.reason = mode, reason

    def _fall_back(self, reason: str) -> None:
        """Switch from events to polling after a failure; events may have been missed."""
        self._stop_watching()
        self._digests = self._walk({}) or {}
        self.mode, self.reason = "poll", reason
        self.dirty.settle = self._settle("poll")
        interval = self.watcher.settings.watch_poll_interval
        log.warning("watching %s by polling every %gs: %s", self.path, interval, reason)
        self.dirty.mark_root()

    def _observer_alive(self) -> bool:
        observer = self._observer
        if observer is None:
            return False
        return observer.is_alive() and all(e.is_alive() for e in observer.emitters)

    def _stop_watching(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            watch_events.stop_observer(observer)

    def _walk(self, known: dict[bytes, bytes]) -> dict[bytes, bytes] | None:
        """Walk the root; mark folders whose digest differs from `known` (unless it is empty)."""
        walker = Walker(POLL_WORKERS)
        try:
            result = walker.walk(
                self.raw, b"", known=known, exclude=data_dir_keys(self.watcher.settings.data_dir)
            )
        except OSError:
            self._check_now = True  # the root itself is unreadable: see whether it is offline
            return None
        finally:
            walker.close()
        digests = {rel: listing.digest for rel, listing in result.folders.items()}
        # A folder that could not be read keeps what we knew of it and everything below.
        below = tuple(f + b"/" for f in result.failed)
        for rel, value in known.items():
            if rel in result.failed or (below and rel.startswith(below)):
                digests.setdefault(rel, value)
        if known:
            changed = [
                rel for rel, listing in result.folders.items() if listing.entries is not None
            ]
            changed += [rel for rel in known if rel not in digests]
            for rel in changed:
                self.changed(rel)
        return digests

    def _poll(self) -> None:
        digests = self._walk(self._digests)
        if digests is not None:
            self._digests = digests

    def status(self) -> RootStatus:
        return RootStatus(
            self.path, self.mode, self.reason, self.events, self.last_change, len(self.dirty)
        )
