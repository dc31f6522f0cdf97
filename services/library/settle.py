"""Settling: which changed folders of one library root are ready to be scanned, and when.

A changed folder goes to the scanner only when
- it has been quiet (no event, no change seen) for `debounce` seconds, so a burst costs one scan;
- its media files kept their size and mtime between two looks `settle` seconds apart, the first one
  taken after the last change, so a file still being copied is never hashed or probed half-written;
- no file under it has been written and not closed yet (inotify's IN_CLOSE_WRITE), so a copy that
  pauses longer than the debounce is still one change. A writer that keeps a file open without
  writing holds its folder back for WRITE_HOLD seconds at most (a missed close must not block it
  forever).
A scan of a folder walks its whole subtree, so a changed folder and the changed folders below it
form one group that goes out as its topmost folder, and only when every member is ready. Many
groups are collapsed into common parents (see `collapse`), since each path costs the scanner a walk.

Memory is one small record per changed folder, never one per event. Beyond MAX_DIRTY folders the
root itself is marked and the records dropped: a storm ends in one scoped scan of the root.
"""

from __future__ import annotations

import logging
import math
import stat
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from services import fsutil
from services.library.sidecars import is_sidecar_name
from services.library.walker import digest, join, kind_of

log = logging.getLogger(__name__)

SIBLINGS = 50  # more ready folders than this under one parent: scan the parent instead
MAX_PATHS = 32  # at most this many folders per scan (each one is a walk and a folder query)
MAX_DIRTY = 5000  # more changed folders than this in one root: mark the root instead
WRITE_HOLD = 120.0  # seconds a file written and not closed holds its folder back, at most
GONE = b"gone"

Snapshot = Callable[[bytes, bytes], bytes]


def folder_digest(root: bytes, rel: bytes) -> bytes:
    """Return a digest of a folder's media files (name, size, mtime); GONE when it is not there."""
    entries = []
    try:
        listing = fsutil.scandir(join(root, rel) if rel else root)
    except (FileNotFoundError, NotADirectoryError):
        return GONE
    except OSError as exc:
        return b"error %d" % (exc.errno or 0)
    for entry in listing:
        name = entry.name
        if name.startswith(b".") or (kind_of(name) is None and not is_sidecar_name(name)):
            continue
        try:
            st = entry.stat()
        except OSError:
            continue  # removed since the listing, or a dangling symlink
        if stat.S_ISREG(st.st_mode):
            entries.append((name, st.st_size, st.st_mtime_ns))
    entries.sort()
    return digest(entries)


def parent(rel: bytes) -> bytes:
    """Return the parent of a folder relative to the root ('' is the root)."""
    return rel.rpartition(b"/")[0]


def under(path: bytes, top: bytes) -> bool:
    """Return True when `path` is `top` or inside it (relative paths, '' is the root)."""
    return not top or path == top or path.startswith(top + b"/")


def ancestors(rel: bytes) -> Iterable[bytes]:
    """Yield `rel`, its parent, and so on up to the root ('')."""
    while rel:
        yield rel
        rel = parent(rel)
    yield b""


def collapse(tops: Iterable[bytes], forbidden: Callable[[bytes], bool]) -> list[bytes]:
    """Merge folders into common parents: crowded siblings, then the deepest until few remain.

    `forbidden(folder)` says a folder may not be scanned yet (something below it is unsettled).
    """
    result = set(tops)
    while True:
        kids: dict[bytes, list[bytes]] = defaultdict(list)
        for top in result:
            if top:
                kids[parent(top)].append(top)
        chosen = [p for p, ks in kids.items() if len(ks) > SIBLINGS and not forbidden(p)]
        if not chosen and len(result) > MAX_PATHS:
            depth = max(t.count(b"/") for t in result if t)
            deepest = {parent(t) for t in result if t and t.count(b"/") == depth}
            chosen = [p for p in deepest if not forbidden(p)]
        if not chosen:
            return sorted(result)
        for p in chosen:
            result = {t for t in result if not under(t, p)} | {p}


@dataclass
class _Folder:
    changed: float  # monotonic time of the last change seen in it
    snap: bytes | None = None  # digest of its media files at snap_at
    snap_at: float = -math.inf
    stable: bool = False  # a second look, `settle` after snap_at, found the same digest


class DirtySet:
    """The changed folders of one root, waiting to settle. Thread-safe."""

    def __init__(
        self,
        root: bytes,
        *,
        debounce: float,
        settle: float,
        snapshot: Snapshot = folder_digest,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.debounce = debounce
        self.settle = settle
        self._snapshot = snapshot
        self._clock = clock
        self._lock = threading.Lock()
        self._folders: dict[bytes, _Folder] = {}
        self._writing: dict[bytes, float] = {}  # file (relative) -> last write
        self._whole = False  # the root itself stands for every change

    def __len__(self) -> int:
        return len(self._folders)

    def mark(self, rel: bytes) -> bool:
        """Record a change in folder `rel`; return True when the folder was not waiting yet."""
        now = self._clock()
        with self._lock:
            if self._whole:
                rel = b""
            folder = self._folders.get(rel)
            if folder is not None:
                folder.changed, folder.stable = now, False
                return False
            if len(self._folders) >= MAX_DIRTY:
                log.info(
                    "more than %d folders changed under %r: scanning the root", MAX_DIRTY, self.root
                )
                self._folders.clear()
                self._whole, rel = True, b""
            self._folders[rel] = _Folder(now)
            return True

    def mark_root(self) -> None:
        """Mark the whole root changed (events were lost, or it came back)."""
        with self._lock:
            self._folders = {b"": _Folder(self._clock())}
            self._whole = True

    def writing(self, rel_file: bytes) -> bool:
        """Record a write to a file that is not closed yet; return True as `mark` does."""
        with self._lock:
            self._writing[rel_file] = self._clock()
        return self.mark(parent(rel_file))

    def closed(self, rel_file: bytes) -> bool:
        """Record that a file was closed after writing, deleted or moved; True when that matters.

        It matters when the folder was not waiting yet, or when this file was holding it back.
        """
        with self._lock:
            held = self._writing.pop(rel_file, None) is not None
        return self.mark(parent(rel_file)) or held

    def clear(self) -> None:
        """Forget every change (the root went offline)."""
        with self._lock:
            self._folders.clear()
            self._writing.clear()
            self._whole = False

    def step(self) -> tuple[list[bytes], float]:
        """Look at folders that are due, take out the ready groups; return them and the next time.

        The folders come back collapsed (see `collapse`); the time is when to step again
        (monotonic; math.inf when nothing waits).
        """
        now = self._clock()
        with self._lock:
            items = list(self._folders.items())
        looks = {}
        for rel, f in items:  # filesystem reads happen outside the lock
            if self._look_due(f) <= now:
                looks[rel] = self._snapshot(self.root, rel)
        with self._lock:
            for rel, value in looks.items():
                folder = self._folders.get(rel)
                if folder is not None:
                    self._record(folder, value, now)
            return self._take_ready(now)

    # -- inside the lock ------------------------------------------------------------------------

    def _look_due(self, f: _Folder) -> float:
        if f.snap is None or f.snap_at < f.changed:  # first look after the last change
            return f.changed + max(0.0, self.debounce - self.settle)
        return math.inf if f.stable else f.snap_at + self.settle

    def _record(self, f: _Folder, value: bytes, taken: float) -> None:
        if f.snap is None or f.snap_at < f.changed:
            f.snap, f.snap_at, f.stable = value, taken, False
        elif value == f.snap:
            f.stable = True
        else:  # it changed without an event (polling), or under one we have not seen yet
            f.snap, f.snap_at, f.changed, f.stable = value, taken, taken, False

    def _ready(self, f: _Folder, now: float) -> bool:
        return f.stable and f.snap_at >= f.changed and now >= f.changed + self.debounce

    def _take_ready(self, now: float) -> tuple[list[bytes], float]:
        for path, at in list(self._writing.items()):
            if now - at >= WRITE_HOLD:
                log.info("%r was written but never closed; scanning its folder anyway", path)
                del self._writing[path]
        held = {a for path in self._writing for a in ancestors(parent(path))}
        groups: dict[bytes, list[bytes]] = defaultdict(list)
        for rel in self._folders:
            top = rel
            for a in ancestors(rel):
                if a in self._folders:
                    top = a
            groups[top].append(rel)
        ready, waiting = [], []
        for top, members in groups.items():
            ok = top not in held and all(self._ready(self._folders[m], now) for m in members)
            (ready if ok else waiting).append(top)

        def forbidden(p: bytes) -> bool:
            return p in held or any(under(w, p) for w in waiting)

        out = collapse(ready, forbidden) if ready else []
        for top in ready:
            for rel in groups[top]:
                del self._folders[rel]
        if not self._folders:
            self._whole = False
        wake = min((self._next(f, now) for f in self._folders.values()), default=math.inf)
        if self._writing:
            wake = min(wake, min(self._writing.values()) + WRITE_HOLD)
        return out, wake

    def _next(self, f: _Folder, now: float) -> float:
        look = self._look_due(f)
        if look < math.inf:
            return look
        due = f.changed + self.debounce
        return due if due > now else math.inf  # ready, waiting for its group or a writer
