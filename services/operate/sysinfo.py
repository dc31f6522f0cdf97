"""The process and the data dir: memory, CPU, disk used by the caches."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

CACHES = (
    "thumbs",
    "sprites",
    "clips",
    "transcodes",
    "hls",
)  # folders of the data dir that can be remade
DISK_CACHE_SECONDS = 30.0  # a walk of 100k thumbnails takes a while: reuse it for a polling page

_proc = psutil.Process()
_disk: dict[Path, tuple[float, dict[str, tuple[int, int]]]] = {}
_disk_guard = threading.Lock()


@dataclass(frozen=True)
class ProcessInfo:
    """This process (and its children, the worker pool) now."""

    pid: int
    rss: int
    children_rss: int
    cpu_percent: float  # of one core, since the previous call
    threads: int


def process() -> ProcessInfo:
    """Return memory and CPU of this process; the first call's CPU reads 0."""
    with _proc.oneshot():
        rss = _proc.memory_info().rss
        cpu = _proc.cpu_percent(interval=None)
        threads = _proc.num_threads()
    children = 0
    for child in _proc.children(recursive=True):
        try:
            children += child.memory_info().rss
        except psutil.Error:
            continue
    return ProcessInfo(os.getpid(), rss, children, cpu, threads)


def _walk_size(folder: Path) -> tuple[int, int]:
    total = files = 0
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
            except OSError:
                continue
    return total, files


def cache_usage(data_dir: Path, fresh: bool = False) -> dict[str, tuple[int, int]]:
    """Return (bytes, files) per cache folder and for the database files, reused for 30 s."""
    now = time.monotonic()
    with _disk_guard:
        cached = _disk.get(data_dir)
        if cached and not fresh and now - cached[0] < DISK_CACHE_SECONDS:
            return cached[1]
    usage = {name: _walk_size(data_dir / name) for name in CACHES if (data_dir / name).is_dir()}
    db_bytes = db_files = 0
    for path in data_dir.glob("library.db*"):
        try:
            db_bytes += path.stat().st_size
            db_files += 1
        except OSError:
            continue
    usage["database"] = (db_bytes, db_files)
    with _disk_guard:
        _disk[data_dir] = (now, usage)
    return usage
