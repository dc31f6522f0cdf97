"""Preview work on other machines (issue 18): the two messages and their allow-lists.

With LVS_REDIS_URL set the server sends thumbnail, sprite and preview-clip jobs to the
Dramatiq batch queue (services/previews/batch_server.py); a worker makes them in its scratch
folder with the code the server uses (services/previews/batch_worker.py) and says so on the
server's DONE_QUEUE; the server then fetches the files from the worker's HTTP side (signed,
as segments are), checks them and writes them into its own content-addressed cache.

- A job (`job_message`) carries the media_hash, the kind (an enum), whether the media is a
  video or a picture, the VR flag and the sizes (bounded numbers), and where the file lies:
  the server's library root and the path inside it. Never argv, never a path from a user:
  `parse_job` checks every field, and the root, mapped through LVS_PATH_MAP, must be one of
  the worker's own library folders (services/compute/pathmap.location).
- A report (`done_message`) carries the worker id, media_hash, kind, status (made, failed,
  unavailable), a short reason, and the SHA-256 of each file made: the server keeps only
  bytes whose digest is the one reported (`parse_done` checks the fields).

Both are at-least-once: a job done twice makes the same files (named by media_hash) and the
second report finds them in place and writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.compute.pathmap import location
from services.errors import LVSError
from services.previews import clips
from services.previews.previews import KINDS
from services.previews.sprites import sprite_paths
from services.previews.thumbnails import thumb_path

MAKE_ACTOR = "lvs.preview.make"
DONE_ACTOR = "lvs.preview.done"
DONE_QUEUE = "lvs-previews-done"  # consumed by the server that feeds the queue
MEDIA = frozenset({"video", "picture"})
STATUSES = frozenset({"made", "failed", "unavailable"})
# The files of each kind, by the name a worker serves them under.
FILES = {"thumbnail": ("thumb.jpg",), "sprite": ("sprite.jpg", "sprite.vtt"), "clip": ("clip.mp4",)}
MAX_BYTES = {"thumb.jpg": 8 << 20, "sprite.jpg": 32 << 20, "sprite.vtt": 1 << 20,
             "clip.mp4": 64 << 20}  # fmt: skip
HEX16 = re.compile(r"[0-9a-f]{16}")
SHA256 = re.compile(r"[0-9a-f]{64}")
WORKER_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class BadJob(LVSError):
    """A preview job or report that fails its checks (refused, never acted on)."""


@dataclass(frozen=True)
class BatchJob:
    """One preview to make for the server."""

    media_hash: str
    kind: str  # thumbnail | sprite | clip
    media: str  # video | picture
    vr: bool  # a clip of VR media gets the larger box
    width: int  # the thumbnail's width, or a sprite tile's
    tiles: int  # most sprite tiles
    root: str  # the library folder (the server's; on a worker: mapped and checked)
    rel: str  # the file's path inside it


@dataclass(frozen=True)
class Done:
    """A worker's report on one job."""

    worker: str
    media_hash: str
    kind: str
    status: str  # made | failed | unavailable
    reason: str
    seconds: float
    files: dict[str, str]  # name → SHA-256 (hex) of what it made


def paths(data_dir: Path, kind: str, media_hash: str) -> dict[str, Path]:
    """Return the files of a kind under `data_dir`, by the name they travel under."""
    if kind == "thumbnail":
        found: tuple[Path, ...] = (thumb_path(data_dir, media_hash),)
    elif kind == "clip":
        found = (clips.clip_path(data_dir, media_hash),)
    else:
        found = sprite_paths(data_dir, media_hash)
    return dict(zip(FILES[kind], found, strict=True))


def job_message(job: BatchJob) -> dict[str, Any]:
    """Return the job as the server sends it (JSON-safe)."""
    return {"media_hash": job.media_hash, "kind": job.kind, "media": job.media, "vr": job.vr,
            "width": job.width, "tiles": job.tiles, "root": job.root, "rel": job.rel}  # fmt: skip


def _int(value: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadJob(f"{what} is not a whole number in {lo}..{hi}")
    return value


def _text(value: Any, limit: int, what: str) -> str:
    if not isinstance(value, str) or len(value) > limit or "\0" in value:
        raise BadJob(f"{what} is not a short text")
    return value


def _fields(data: Any, expected: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict) or set(data) != expected:
        raise BadJob("unexpected fields")
    media_hash, kind = data["media_hash"], data["kind"]
    if not isinstance(media_hash, str) or not HEX16.fullmatch(media_hash):
        raise BadJob("media_hash is not 16 hex characters")
    if not isinstance(kind, str) or kind not in KINDS:
        raise BadJob("kind is not thumbnail, sprite or clip")
    return data


def parse_job(
    data: Any, roots: tuple[Path, ...], path_map: tuple[tuple[str, str], ...]
) -> BatchJob:
    """Return the checked job, or raise BadJob saying which check failed."""
    data = _fields(data, {"media_hash", "kind", "media", "vr", "width", "tiles", "root", "rel"})
    if not isinstance(data["media"], str) or data["media"] not in MEDIA:
        raise BadJob("media is not video or picture")
    if data["kind"] != "thumbnail" and data["media"] != "video":
        raise BadJob("sprites and clips are made of videos only")
    if not isinstance(data["vr"], bool):
        raise BadJob("vr is not true or false")
    rel = _text(data["rel"], 4096, "rel")
    try:
        root = location(_text(data["root"], 4096, "root"), rel, roots, path_map)
    except ValueError as exc:
        raise BadJob(str(exc)) from None
    return BatchJob(data["media_hash"], data["kind"], data["media"], data["vr"],
                    _int(data["width"], 16, 4096, "width"), _int(data["tiles"], 1, 400, "tiles"),
                    root, rel)  # fmt: skip


def done_message(worker: str, job: BatchJob, status: str, reason: str = "",
                 seconds: float = 0.0, files: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Return a worker's report on `job` (JSON-safe)."""
    return {"worker": worker, "media_hash": job.media_hash, "kind": job.kind, "status": status,
            "reason": reason[:500], "seconds": round(seconds, 3), "files": files or {}}  # fmt: skip


def parse_done(data: Any) -> Done:
    """Return the checked report, or raise BadJob saying which check failed."""
    data = _fields(data, {"worker", "media_hash", "kind", "status", "reason", "seconds", "files"})
    worker, status, files = data["worker"], data["status"], data["files"]
    if not isinstance(worker, str) or not WORKER_ID.fullmatch(worker):
        raise BadJob("worker is not a worker id")
    if not isinstance(status, str) or status not in STATUSES:
        raise BadJob("status is not made, failed or unavailable")
    seconds = data["seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < 1e5:
        raise BadJob("seconds is not a duration")
    if not isinstance(files, dict):
        raise BadJob("files is not an object")
    if status == "made" and set(files) != set(FILES[data["kind"]]):
        raise BadJob(f"the files of a {data['kind']} are {', '.join(FILES[data['kind']])}")
    if status != "made" and files:
        raise BadJob("files are reported only for a made preview")
    if not all(isinstance(v, str) and SHA256.fullmatch(v) for v in files.values()):
        raise BadJob("a file's digest is not a SHA-256")
    return Done(worker, data["media_hash"], data["kind"], status,
                _text(data["reason"], 500, "reason"), float(seconds), dict(files))  # fmt: skip
