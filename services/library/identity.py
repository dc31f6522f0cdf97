"""The media_hash: OpenSubtitles' "oshash" content fingerprint (SPEC §3.2)."""

from __future__ import annotations

import errno
import os
import stat
import struct

from services.fsutil import retry_estale

CHUNK = 64 * 1024
_MASK = 0xFFFFFFFFFFFFFFFF


def _word_sum(data: bytes) -> int:
    if len(data) % 8:
        data += b"\0" * (8 - len(data) % 8)
    return sum(struct.unpack(f"<{len(data) // 8}Q", data))


def oshash_fd(fd: int, size: int) -> str:
    """Return the oshash of an open file of `size` bytes: size + head 64 KiB + tail 64 KiB words."""
    head = os.pread(fd, min(CHUNK, size), 0)
    tail = os.pread(fd, min(CHUNK, size), max(0, size - CHUNK))
    if len(head) != min(CHUNK, size) or len(tail) != min(CHUNK, size):
        raise OSError(
            f"short read: the file changed size while it was read ({size} bytes expected)"
        )
    return f"{(size + _word_sum(head) + _word_sum(tail)) & _MASK:016x}"


def oshash(path: str | bytes | os.PathLike) -> tuple[str, os.stat_result]:
    """Return the media_hash of a file and the stat it was taken with.

    Files smaller than 64 KiB hash their whole content twice (head and tail overlap); that keeps the
    value well defined for tiny files without changing it for normal ones.
    """

    def run() -> tuple[str, os.stat_result]:
        # O_NONBLOCK: if a FIFO was put where a file stood, open must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file", os.fsdecode(path))
            return oshash_fd(fd, st.st_size), st
        finally:
            os.close(fd)

    return retry_estale(run, "hash")
