"""What playing a video needs to know that the probe does not keep, kept on disk per media_hash.

    <data dir>/hls/index/<media_hash>.json   {"version": [size, mtime_ns], "extra": {...},
                                              "keyframes": {"<stream>/<every>": [seconds, …]}}

The extra facts (level, interlaced, HDR: services/playback/source.py) and a remux's cut points
(the source's keyframes below every 6 s: services/playback/hls.py) cost 10–300 ms of PyAV work
each. Kept in a process's memory they are paid again by every gunicorn worker and after every
restart; kept in the rendition's cache they were paid again whenever that rendition was evicted.
Here they are read once per file version, by any process, and survive cache eviction (a few
kilobytes per video: a 2-hour film has 1,200 cut points). A file's record is rewritten whole
under a temporary name and renamed, so a reader never sees half of one; two processes that
compute the same fact at once write the same answer. A record of another version (the file
changed under the same media_hash) is ignored and replaced.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_HEX = frozenset("0123456789abcdef")
_computing: dict[tuple[str, str], threading.Event] = {}  # facts being computed by this process
_guard = threading.Lock()


def path_of(root: Path, media_hash: str) -> Path | None:
    """Return the record's path, or None for a media_hash that is not plain lowercase hex."""
    if not media_hash or len(media_hash) > 128 or not set(media_hash) <= _HEX:
        return None
    return root / f"{media_hash}.json"


def read(root: Path, media_hash: str, version: tuple[int, int]) -> dict[str, Any]:
    """Return the facts recorded for this version of the file ({} when none)."""
    path = path_of(root, media_hash)
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != list(version):
        return {}
    return data


def remember(root: Path, media_hash: str, version: tuple[int, int], key: str, value: Any) -> None:
    """Record one fact (a top-level key, or "keyframes/<k>") for this version of the file."""
    path = path_of(root, media_hash)
    if path is None:
        return
    data = read(root, media_hash, version) or {"version": list(version)}
    section, _, sub = key.partition("/")
    if sub:
        data.setdefault(section, {})[sub] = value
    else:
        data[section] = value
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, path)
    except OSError as exc:  # a full disk costs the next play the work again, nothing more
        log.info("play index of %s not written: %s", media_hash, exc)
        with contextlib.suppress(OSError):
            tmp.unlink()


def fact(root: Path | None, media_hash: str, version: tuple[int, int], key: str,
         compute: Callable[[], Any]) -> Any:  # fmt: skip
    """Return a recorded fact, or compute, record and return it. Threads of this process that
    ask for the same fact at once wait for the first one's answer instead of computing it too."""
    if root is None:
        return compute()
    section, _, sub = key.partition("/")
    found = read(root, media_hash, version).get(section)
    if sub and isinstance(found, dict):
        found = found.get(sub)
    if found is not None:
        return found
    token = (media_hash, key)
    with _guard:
        running = _computing.get(token)
        mine = running is None
        if mine:
            running = _computing[token] = threading.Event()
    if not mine:
        running.wait(60)
        return fact(root, media_hash, version, key, compute) if running.is_set() else compute()
    try:
        value = compute()
        remember(root, media_hash, version, key, value)
        return value
    finally:
        with _guard:
            _computing.pop(token, None)
        running.set()


def prunable(root: Path, known: set[str]) -> list[Path]:
    """Return the records of media the library no longer has."""
    if not root.is_dir():
        return []
    return [p for p in root.glob("*.json") if p.stem not in known]
