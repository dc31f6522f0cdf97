"""The parallel folder walk: which media files are on disk, with their size and mtime.

Only regular files with a media extension are reported. FIFOs, devices and sockets are skipped from
the directory entry's type before anything opens them, and so are folders named like videos.
Folder symlinks are not followed (no loops, nothing outside the library); file symlinks are, when
their target is a regular file inside the library.

Speed (SPEC B1): an unchanged re-scan must cost little more than `find`. Walking 100k files is
CPU-bound in Python, so subtrees are walked in worker processes, and each folder's listing is reduced
to a digest of its (name, size, mtime) entries. A worker sends back the entries of a folder only when
its digest differs from the one the database holds, so an unchanged library costs one digest per
folder, not one row per file.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import stat
from array import array
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from services import fsutil
from services.library import sidecars as sc

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mkv .webm .avi .mov .wmv .flv .mpg .mpeg .ts .m2ts .mts .3gp .ogv .vob .divx".split()
)
PICTURE_EXTENSIONS = frozenset(".jpg .jpeg .png .gif .webp .bmp .tif .tiff .heic .avif".split())
_EXT_KIND = {e.encode(): "video" for e in VIDEO_EXTENSIONS} | {
    e.encode(): "picture" for e in PICTURE_EXTENSIONS
}

# Folders that NAS boxes, operating systems and trash cans leave in shares.
SYSTEM_FOLDERS = frozenset(
    {
        b"@eadir",
        b"#recycle",
        b"@recycle",
        b"#snapshot",
        b"$recycle.bin",
        b"lost+found",
        b"system volume information",
        b"@tmp",
    }
)

# (name, size, mtime_ns) of each media file in a folder, sorted by name.
Entries = list[tuple[bytes, int, int]]
# (name, size, mtime_ns, kind, role) of each sidecar file (services/library/sidecars.py).
Sidecars = list[tuple[bytes, int, int, str, str | None]]


def kind_of(name: bytes | str) -> str | None:
    """Return 'video' or 'picture' for a media file name, None for anything else."""
    raw = os.fsencode(name)
    dot = raw.rfind(b".")
    return _EXT_KIND.get(raw[dot:].lower()) if dot > 0 else None


def is_skipped_folder(name: bytes) -> bool:
    """Return True for hidden and system folders, which are never walked."""
    return name.startswith(b".") or name.lower() in SYSTEM_FOLDERS


def digest(entries: Entries, sidecars: Sidecars | None = None) -> bytes:
    """Return a 16-byte digest of a folder's sorted (name, size, mtime_ns) entries.

    Sidecars count too, so an edited `.nfo` or a new poster makes its folder change; a folder
    without any keeps the digest it had before sidecars were followed.
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(b"\0".join(e[0] for e in entries))
    h.update(array("q", [v for e in entries for v in e[1:]]).tobytes())
    if sidecars:
        h.update(b"\0sidecars\0" + b"\0".join(e[0] for e in sidecars))
        h.update(array("q", [v for e in sidecars for v in e[1:3]]).tobytes())
    return h.digest()


def join(parent: bytes, name: bytes) -> bytes:
    """Join a relative folder path and a name, both raw bytes ('' is the root)."""
    return parent + b"/" + name if parent else name


@dataclass
class FolderListing:
    """One folder seen by the walk. `entries` is None when its digest matched the known one."""

    path: bytes
    digest: bytes
    entries: Entries | None
    dev: int = 0  # st_dev of the folder: a child on another device is a mount point
    empty: bool = False  # nothing at all in it (an unmounted share's mount point looks so)
    sidecars: Sidecars | None = None  # with `entries`: the folder's sidecar files


@dataclass
class WalkResult:
    """Everything one walk saw: folders listed, and folders that could not be read."""

    folders: dict[bytes, FolderListing] = field(default_factory=dict)
    failed: dict[bytes, str] = field(default_factory=dict)  # folder -> reason

    def add(self, other: WalkResult) -> None:
        self.folders.update(other.folders)
        self.failed.update(other.failed)


def _list_folder(
    root: bytes, rel: bytes, *, known: Mapping[bytes, bytes] | None
) -> tuple[FolderListing, list[tuple[bytes, tuple[int, int]]]]:
    """Read one folder: its listing and the subfolders to walk next, with their (dev, ino)."""
    entries: Entries = []
    side: Sidecars = []
    arty: list[bytes] = []  # names that may be artwork: looked at again below
    subdirs: list[tuple[bytes, tuple[int, int]]] = []
    folder = join(root, rel) if rel else root
    for entry in fsutil.scandir(folder):
        name = entry.name
        if entry.is_dir(follow_symlinks=False):
            if not is_skipped_folder(name):
                st = entry.stat(follow_symlinks=False)
                subdirs.append((join(rel, name), (st.st_dev, st.st_ino)))
        elif entry.is_file(follow_symlinks=False):
            dot = name.rfind(b".")
            # dot > 0 also skips hidden files (".x.mp4", macOS's "._x.mp4" resource forks).
            if dot > 0 and name[0] != 46:
                ext = name[dot:].lower()
                kind = _EXT_KIND.get(ext)
                if kind is not None:
                    st = entry.stat(follow_symlinks=False)
                    entries.append((name, st.st_size, st.st_mtime_ns))
                    # Cheap test first: only a name like an artwork picture's is looked at again.
                    if kind == "picture" and sc.might_be_artwork(name[:dot].lower()):
                        arty.append(name)
                elif ext in _SIDECAR_EXTS:
                    st = entry.stat(follow_symlinks=False)
                    text = _TEXT_KIND.get(ext)
                    side.append((name, st.st_size, st.st_mtime_ns, text or "", None))
                    if text is None:  # a Kodi <video>.tbn thumb
                        arty.append(name)
        elif entry.is_symlink():
            _follow(root, entry, entries)
    entries.sort()
    if arty:
        entries, side = _sort_sidecars(entries, side, arty)
    elif side:
        side.sort()
    d = digest(entries, side)
    same = known is not None and known.get(rel) == d
    dev = fsutil.stat(folder).st_dev
    empty = not entries and not subdirs and not side
    if same:
        return FolderListing(rel, d, None, dev, empty), subdirs
    return FolderListing(rel, d, entries, dev, empty, side), subdirs


_SIDECAR_EXTS = sc.TEXT_EXTENSIONS | {b".tbn"}
_NO_STEMS: frozenset[bytes] = frozenset()
_TEXT_KIND = {e: "nfo" for e in sc.NFO_EXTENSIONS} | {e: "subtitle" for e in sc.SUBTITLE_EXTENSIONS}


def _sort_sidecars(
    entries: Entries, side: Sidecars, maybe: list[bytes]
) -> tuple[Entries, Sidecars]:
    """Move the artwork among `maybe` from the (sorted) media entries to the sidecars."""
    stems: frozenset[bytes] | None = None
    roles: dict[bytes, str] = {}
    for name in maybe:
        role = sc.artwork_role(name, _NO_STEMS)  # poster, fanart, season01-poster, ...
        low = name[: name.rfind(b".")].lower()
        if role is None and (low.endswith(sc.ART_SUFFIXES) or name.lower().endswith(b".tbn")):
            if stems is None:  # <video>-poster, <video>.tbn: only beside that video
                stems = sc.video_stems([e[0] for e in entries])
            role = sc.artwork_role(name, stems)
        if role is not None:
            roles[name] = role
    out: Sidecars = [s for s in side if s[3]]  # .nfo and subtitles, classified by the walk
    out += [(e[0], e[1], e[2], "artwork", roles[e[0]]) for e in entries if e[0] in roles]
    out += [(s[0], s[1], s[2], "artwork", roles[s[0]]) for s in side if s[0] in roles]
    out.sort()
    if roles:
        entries = [e for e in entries if e[0] not in roles]
    return entries, out


def _follow(root: bytes, entry: os.DirEntry, entries: Entries) -> None:
    """Record a symlinked media file whose target is a regular file inside the library.

    Folder symlinks are never followed: one that stays inside the library leads to folders the walk
    reaches anyway (or to a loop), and one that leaves it is out of bounds.
    """
    name = entry.name
    if name.startswith(b".") or kind_of(name) is None:
        return
    target = os.path.realpath(entry.path)
    if not target.startswith(root.rstrip(b"/") + b"/"):
        return  # leaves the library
    try:
        st = fsutil.stat(entry.path)
    except OSError:
        return  # dangling
    if stat.S_ISREG(st.st_mode):
        entries.append((name, st.st_size, st.st_mtime_ns))


def walk_subtrees(
    root: bytes,
    starts: list[bytes],
    known: Mapping[bytes, bytes] | None,
    exclude: frozenset[tuple[int, int]] = frozenset(),
) -> WalkResult:
    """Walk each start folder's whole subtree in this process (depth first)."""
    result = WalkResult()
    visited: set[tuple[int, int]] = set(exclude)
    stack = list(reversed(starts))
    while stack:
        rel = stack.pop()
        try:
            listing, subdirs = _list_folder(root, rel, known=known)
        except OSError as exc:
            result.failed[rel] = exc.strerror or str(exc)
            continue
        result.folders[rel] = listing
        for sub, key in reversed(subdirs):
            if key not in visited:
                visited.add(key)
                stack.append(sub)
    return result


class Walker:
    """Walk a library root, or a folder inside it, with a few worker processes."""

    def __init__(self, workers: int):
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver, not fork: the server process has threads.
            ctx = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def walk(
        self,
        root: bytes,
        start: bytes = b"",
        *,
        known: Mapping[bytes, bytes] | None = None,
        exclude: frozenset[tuple[int, int]] = frozenset(),
        progress: Callable[[int], None] | None = None,
    ) -> WalkResult:
        """Walk `start` (relative to `root`); `known` maps folder -> digest held by the database.

        The first levels are read here, breadth first, until there are enough subtrees to share
        among the workers; each worker then walks whole subtrees. Folders whose (dev, ino) is in
        `exclude` (our own data dir) are never entered.
        """
        root = os.path.realpath(root)
        result = WalkResult()
        frontier = [start]
        want = 4 * self.workers
        while frontier and len(frontier) < want:
            level, frontier = frontier, []
            for rel in level:
                try:
                    listing, subdirs = _list_folder(root, rel, known=known)
                except OSError as exc:
                    if rel == start:
                        raise
                    result.failed[rel] = exc.strerror or str(exc)
                    continue
                result.folders[rel] = listing
                frontier.extend(sub for sub, key in subdirs if key not in exclude)
        if not frontier:
            return result
        if self.workers == 1:
            result.add(walk_subtrees(root, frontier, known, exclude))
            return result
        batches = [frontier[i::want] for i in range(min(want, len(frontier)))]
        pool = self._executor()
        futures: list[Future] = []
        for batch in batches:
            tops, prefixes = set(batch), tuple(b + b"/" for b in batch)
            subset = None
            if known is not None:
                subset = {k: v for k, v in known.items() if k in tops or k.startswith(prefixes)}
            futures.append(pool.submit(walk_subtrees, root, batch, subset, exclude))
        for future in futures:
            result.add(future.result())
            if progress:
                progress(len(result.folders))
        return result
