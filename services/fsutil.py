"""Filesystem facts and resilient calls: mount types, ESTALE retries, opening beneath a folder
without symbolic links."""

from __future__ import annotations

import errno
import logging
import os
import stat as stat_module
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from services import metrics

log = logging.getLogger(__name__)

MOUNTINFO = Path("/proc/self/mountinfo")

# Filesystems whose files live on another machine. SQLite's locking is unreliable on them, event
# watching misses changes made by other clients, and they want fewer parallel readers.
NETWORK_FS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb",
        "smb2",
        "smb3",
        "smbfs",
        "9p",
        "ceph",
        "glusterfs",
        "afs",
        "fuse.sshfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.glusterfs",
        "fuse.cephfs",
        "davfs",
        "fuse.davfs2",
    }
)

RETRY_DELAYS = (0.05, 0.1, 0.2)  # ESTALE backoff: 50 -> 100 -> 200 ms, then give up

T = TypeVar("T")


@dataclass(frozen=True)
class Mount:
    """One line of the mount table: where a filesystem is mounted and its type."""

    point: str
    fstype: str

    @property
    def is_network(self) -> bool:
        return self.fstype in NETWORK_FS or self.fstype.startswith(("nfs", "smb", "cifs"))


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    return field.encode().decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")


def read_mounts(mountinfo: Path = MOUNTINFO) -> list[Mount]:
    """Return the mounts listed in a Linux mountinfo file (empty when there is none)."""
    try:
        text = mountinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        parts = left.split()
        if not sep or len(parts) < 5 or not right.split():
            continue
        mounts.append(Mount(point=_unescape(parts[4]), fstype=right.split()[0]))
    return mounts


def mount_of(path: Path, mounts: list[Mount] | None = None) -> Mount | None:
    """Return the mount that holds `path` (the longest mount point that is a prefix of it)."""
    mounts = read_mounts() if mounts is None else mounts
    target = os.path.realpath(path)
    best: Mount | None = None
    for mount in mounts:
        point = mount.point.rstrip("/") or "/"
        inside = target == point or target.startswith(point + "/") or point == "/"
        if inside and (best is None or len(point) >= len(best.point.rstrip("/") or "/")):
            best = mount
    return best


def is_network_path(path: Path, mounts: list[Mount] | None = None) -> bool:
    """Return True when `path` lives on a network filesystem."""
    mount = mount_of(path, mounts)
    return bool(mount and mount.is_network)


def retry_estale(call: Callable[[], T], what: str = "filesystem call") -> T:
    """Run `call`, retrying an NFS stale handle (ESTALE) with 50/100/200 ms backoff."""
    for attempt, delay in enumerate((*RETRY_DELAYS, None)):
        try:
            result = call()
        except OSError as exc:
            if exc.errno != errno.ESTALE or delay is None:
                if exc.errno == errno.ESTALE:
                    log.error("%s failed after %d ESTALE retries", what, attempt)
                raise
            metrics.count("estale_retries")
            time.sleep(delay)
            continue
        if attempt:
            log.info("%s succeeded on retry %d after ESTALE", what, attempt)
        return result
    raise AssertionError("unreachable")


def stat(path: str | bytes | Path, *, follow: bool = True) -> os.stat_result:
    """Return os.stat of `path`, retrying ESTALE."""
    return retry_estale(lambda: os.stat(path, follow_symlinks=follow), "stat")


def scandir(path: str | bytes | Path) -> list[os.DirEntry]:
    """Return the entries of a folder as a list, retrying ESTALE."""

    def listing() -> list[os.DirEntry]:
        with os.scandir(path) as it:
            return list(it)

    return retry_estale(listing, "scandir")


def open_beneath(root: str | Path, names: tuple[str, ...]) -> int | None:
    """Open the regular file root/names[0]/…/names[-1] for reading, following no symbolic link
    below `root` (each name opened relative to its folder's descriptor with O_NOFOLLOW), and
    return its descriptor (the caller closes it); None when it is not there or is anything but
    a regular file with one name (no hard link). For folders another machine writes (a symlink planted there must not
    lead to this machine's files). O_NONBLOCK: a FIFO planted there does not hang the open."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        for i, name in enumerate(names):
            if not name or name in (".", "..") or "/" in name:
                return None
            last = i == len(names) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
            flags |= os.O_NONBLOCK if last else os.O_DIRECTORY
            try:
                child = os.open(name, flags, dir_fd=fd)
            except OSError:
                return None
            os.close(fd)
            fd = child
        try:
            st = os.fstat(fd)
            # A hard link is a name for a file that may live anywhere on the same filesystem
            # (a share on this machine's own disk): only a file with this one name is taken.
            if not stat_module.S_ISREG(st.st_mode) or st.st_nlink != 1:
                return None
            os.set_blocking(fd, True)
        except OSError:
            return None
        found, fd = fd, -1
        return found
    finally:
        if fd >= 0:
            os.close(fd)
