"""Media paths as a worker sees them: LVS_PATH_MAP "from=to[,from=to]", longest prefix first."""

from __future__ import annotations

from pathlib import Path, PurePosixPath


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


def location(server_root: str, rel: str, roots: tuple[Path, ...],
             path_map: tuple[tuple[str, str], ...]) -> str:  # fmt: skip
    """Return the library folder a job's file lies in, as this worker sees it: `server_root`
    (absolute) mapped through `path_map`, which must be one of this worker's `roots`, with
    `rel` a plain path inside it (no `..`, not absolute). Raise ValueError saying which check
    failed (a worker's allow-list for every job that names a file)."""
    if not server_root.startswith("/"):
        raise ValueError("root is not absolute")
    parts = PurePosixPath(rel).parts
    if not rel or rel.startswith("/") or any(p in ("..", ".") for p in parts):
        raise ValueError("the path is not a plain path inside its library folder")
    mapped = to_worker(server_root, path_map)
    allowed = {str(r.resolve()) for r in roots} | {str(r) for r in roots}
    if mapped not in allowed and str(Path(mapped).resolve()) not in allowed:
        raise ValueError(f"{mapped} is not one of this worker's library folders (LVS_MEDIA_DIRS)")
    return mapped
