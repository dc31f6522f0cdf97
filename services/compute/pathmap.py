"""Media paths as a worker sees them: LVS_PATH_MAP "from=to[,from=to]", longest prefix first."""

from __future__ import annotations

from pathlib import PurePosixPath


def to_worker(path: str, path_map: tuple[tuple[str, str], ...]) -> str:
    """Return `path` (absolute, on the server) as this worker sees it; unchanged when no
    prefix of the map matches (the media is mounted at the same path)."""
    p = PurePosixPath(path)
    for src, dst in sorted(path_map, key=lambda pair: -len(pair[0])):
        try:
            rest = p.relative_to(src)
        except ValueError:
            continue
        return str(PurePosixPath(dst) / rest)
    return str(p)
