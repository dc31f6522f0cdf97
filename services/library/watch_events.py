"""Filesystem events of one library root, from inotify through watchdog, filtered and classified.

Only what can change the library counts: media files (by extension) created, written, closed,
deleted or moved, and folders created, deleted or moved. Hidden files, anything in a hidden or
system folder, and our own data dir are ignored. Opens and closes without writing are not even
asked for (the scanner's own reads, thumbnails and streaming would otherwise wake the watcher),
nor are attribute changes (atime updates after a read would cause a scan per scan).

watchdog hides two failures that matter here (watchdog 7.1, pinned): a subfolder it cannot watch
(the inotify watch limit, ENOSPC) is skipped silently, and a kernel queue overflow loses events
with only a log line. The small subclasses below report both to the root's `Sink`, which then
polls instead, or rescans the root.
"""

from __future__ import annotations

import errno
import logging
import os
import warnings
from dataclasses import dataclass
from typing import Protocol

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver

from services.library.sidecars import is_sidecar_name
from services.library.walker import is_skipped_folder, kind_of

log = logging.getLogger(__name__)

# watchdog re-adds a watch it already holds when a folder moves inside the tree, and warns each
# time; the re-add is harmless (inotify returns the same watch).
warnings.filterwarnings("ignore", r"Callback with id .* already exists", RuntimeWarning)

EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]
LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE)  # inotify watch / instance limits


class Sink(Protocol):
    """What a root's watcher does with the events of its root (relative paths, raw bytes)."""

    def changed(self, folder: bytes) -> None: ...

    def writing(self, file: bytes) -> None: ...

    def closed(self, file: bytes) -> None: ...

    def overflow(self) -> None: ...

    def limit(self, exc: OSError) -> None: ...

    def root_gone(self) -> None: ...


class RootHandler(FileSystemEventHandler):
    """Turn watchdog events under one root into Sink calls, dropping what cannot matter."""

    def __init__(self, root: bytes, sink: Sink, *, exclude: bytes | None = None) -> None:
        self.root = root.rstrip(b"/")
        self.sink = sink
        self.exclude = exclude  # our data dir, relative to the root, when it lies inside

    def _rel(self, path: bytes | str) -> bytes | None:
        raw = os.fsencode(path)
        if raw == self.root:
            return b""
        if not raw.startswith(self.root + b"/"):
            return None
        rel = raw[len(self.root) + 1 :]
        if self.exclude is not None and (
            rel == self.exclude or rel.startswith(self.exclude + b"/")
        ):
            return None
        return rel

    def _file(self, path: bytes | str) -> bytes | None:
        rel = self._rel(path)
        if not rel:
            return None
        folders, _, name = rel.rpartition(b"/")
        if name.startswith(b".") or (kind_of(name) is None and not is_sidecar_name(name)):
            return None
        if folders and any(is_skipped_folder(part) for part in folders.split(b"/")):
            return None
        return rel

    def _folder(self, path: bytes | str) -> bytes | None:
        rel = self._rel(path)
        if rel and any(is_skipped_folder(part) for part in rel.split(b"/")):
            return None
        return rel

    def dispatch(self, event: FileSystemEvent) -> None:
        """Classify one event; called on watchdog's observer thread."""
        if event.is_directory:
            paths = [event.src_path]
            if isinstance(event, DirMovedEvent):
                paths.append(event.dest_path)
            for path in paths:
                rel = self._folder(path)
                if rel == b"" and isinstance(event, DirDeletedEvent):
                    self.sink.root_gone()
                elif rel is not None:
                    self.sink.changed(rel)
            return
        if isinstance(event, FileMovedEvent):
            src, dest = self._file(event.src_path), self._file(event.dest_path)
            if src is not None:
                self.sink.closed(src)
            if dest is not None:
                self.sink.closed(dest)
            return
        rel = self._file(event.src_path)
        if rel is None:
            return
        if isinstance(event, FileModifiedEvent):
            self.sink.writing(rel)
        elif isinstance(event, FileCreatedEvent):
            # An empty new file is about to be written (cp, a download): wait for its close. A
            # hard link or a moved-in file has its content already, and no close will follow.
            try:
                empty = os.stat(os.fsencode(event.src_path)).st_size == 0
            except OSError:
                empty = False
            if empty:
                self.sink.writing(rel)
            else:
                self.sink.changed(rel.rpartition(b"/")[0])
        else:  # closed after writing, or deleted
            self.sink.closed(rel)


def start_observer(root: bytes, handler: RootHandler, sink: Sink) -> BaseObserver:
    """Start an inotify observer on `root` (recursive); raise OSError when it cannot watch it."""
    try:
        from watchdog.observers.inotify import InotifyEmitter, InotifyObserver, InotifyWatchGroup
    except (ImportError, OSError) as exc:  # not Linux, or no usable libc
        raise OSError(errno.ENOSYS, f"inotify is not available ({exc})") from None

    @dataclass
    class WatchGroup(InotifyWatchGroup):
        sink: Sink | None = None

        def _add_callback(self, path: bytes) -> None:
            try:
                wd = self._inotify_fd.add_callback(path, self.event_mask, self._callback, self._id)
            except OSError as exc:
                if exc.errno in LIMIT_ERRNOS and self.sink is not None:
                    self.sink.limit(exc)
                if path == self.path:
                    raise
                return  # vanished or unreadable subfolder: as watchdog does
            self._active_callbacks_by_path[path] = wd
            self._active_callbacks_by_watch[wd] = path

        def on_queue_overflow(self) -> None:
            super().on_queue_overflow()
            if self.sink is not None:
                self.sink.overflow()

    class Emitter(InotifyEmitter):
        def __init__(self, *args: object, sink: Sink, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            self._sink = sink

        def on_thread_start(self) -> None:
            self._inotify = WatchGroup(
                self._inotify_fd,
                os.fsencode(self.watch.path),
                is_recursive=self.watch.is_recursive,
                event_mask=self.get_event_mask_from_filter(),
                follow_symlink=self.watch.follow_symlink,
                sink=self._sink,
            )

    observer = InotifyObserver()
    observer._emitter_class = Emitter  # one inotify instance per root, as InotifyObserver makes
    observer._emitter_kwargs["sink"] = sink
    try:
        observer.schedule(handler, root, recursive=True, event_filter=EVENTS)
        observer.start()
    except BaseException:
        stop_observer(observer)
        raise
    return observer


def stop_observer(observer: BaseObserver, timeout: float = 5.0) -> None:
    """Stop an observer and wait for its threads."""
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(timeout)
    except Exception:  # a half-started observer must not stop the caller's clean-up
        log.exception("stopping the file watcher failed")
