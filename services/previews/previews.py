"""Thumbnails, scrub previews and preview clips as library work: what is missing, making one.

`make` is the one way a thumbnail, sprite or clip gets made, for the job runner and the CLI
alike: it finds a copy of the media online, holds the per-media generation lock (so two requests
make it once), runs the renderer (thumbnails and sprites through a runner: a worker process with
a deadline, or in-process; a clip is ffmpeg's work, run by services/ffmpeg.py with its own
deadline from the calling thread) and records the outcome in the `thumbs` table. A failure is
recorded with its reason against the content it was made from (media_hash) and is not tried
again for that content; a file that cannot be read right now (offline share, moved away) is not
recorded at all, so it is tried again once it is back.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from threading import local
from typing import Any

from sqlite_utils import Database

from config import Settings
from services import db as dbmod
from services import fsutil
from services.errors import LVSError
from services.previews import clips
from services.previews.sprites import sprite_paths
from services.previews.thumbnails import generation_lock, is_ready, remove_stale_temps, thumb_path

log = logging.getLogger(__name__)

KINDS = ("thumbnail", "sprite", "clip")  # what a media can have made; sprites, clips: videos
VIDEO_ONLY = ("sprite", "clip")
Runner = Callable[..., Any]  # runner(task, *args, timeout=seconds): ProbePool.run or in-process
Progress = Callable[[str, int, int], None]  # kind, done, total

_ELIGIBLE = """m.probe_status = 'ok' {video}
    AND EXISTS (SELECT 1 FROM files f JOIN libraries l ON l.id = f.library_id
                WHERE f.media_id = m.id AND f.present = 1 AND l.state != 'offline')"""


@dataclass(frozen=True)
class Target:
    """A media to make a thumbnail, sprite or clip for."""

    media_id: int
    media_hash: str
    kind: str  # video | picture


@dataclass(frozen=True)
class Outcome:
    """How making one thumbnail or sprite went: made, skipped, failed or unavailable."""

    what: str
    target: Target
    status: str
    reason: str | None = None
    seconds: float = 0.0
    where: str | None = None  # the file it was made from, for messages


@dataclass
class Summary:
    """What a batch run made, for the CLI."""

    made: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (file, kind, reason)


def background_kinds(settings: Settings) -> tuple[str, ...]:
    """Return what the server makes by itself: preview clips only with LVS_PREVIEW_CLIPS=on."""
    return KINDS if settings.preview_clips else tuple(k for k in KINDS if k != "clip")


def outputs(data_dir: Path, what: str, media_hash: str) -> tuple[Path, ...]:
    """Return the files that make up a thumbnail, a sprite or a clip."""
    if what == "thumbnail":
        return (thumb_path(data_dir, media_hash),)
    if what == "clip":
        return (clips.clip_path(data_dir, media_hash),)
    return sprite_paths(data_dir, media_hash)


def is_made(data_dir: Path, what: str, media_hash: str) -> bool:
    """Return True when every file of this thumbnail or sprite is in place."""
    return all(is_ready(p) for p in outputs(data_dir, what, media_hash))


def target(db: Database, media_hash: str) -> tuple[Target, str] | None:
    """Return the media with this hash and its probe status, or None when it is unknown."""
    row = db.execute(
        "SELECT id, media_hash, kind, probe_status FROM media WHERE media_hash = ?", [media_hash]
    ).fetchone()
    return (Target(row[0], row[1], row[2]), row[3]) if row else None


def failure(db: Database, target: Target, what: str) -> str | None:
    """Return why making this failed for the media's current content, or None."""
    row = db.execute(
        "SELECT reason FROM thumbs WHERE media_id = ? AND kind = ? AND media_hash = ? "
        "AND status = 'failed'",
        [target.media_id, what, target.media_hash],
    ).fetchone()
    return (row[0] or "failed") if row else None


def missing(
    db: Database, what: str, *, below: int | None = None, above: int = 0, limit: int = 200
) -> list[Target]:
    """Return media (ids in (above, below), newest first) with no record of this kind made."""
    rows = db.execute(
        f"""SELECT m.id, m.media_hash, m.kind FROM media m
            WHERE m.id > ? AND m.id < ? AND {_eligible(what)}
              AND NOT EXISTS (SELECT 1 FROM thumbs t WHERE t.media_id = m.id AND t.kind = ?
                              AND t.media_hash = m.media_hash)
            ORDER BY m.id DESC LIMIT ?""",
        [above, below if below is not None else 1 << 62, what, limit],
    ).fetchall()
    return [Target(*row) for row in rows]


def count_missing(db: Database, what: str) -> int:
    """Return how many media still wait for this kind (never made, never failed)."""
    return db.execute(
        f"""SELECT count(*) FROM media m WHERE {_eligible(what)}
            AND NOT EXISTS (SELECT 1 FROM thumbs t WHERE t.media_id = m.id AND t.kind = ?
                            AND t.media_hash = m.media_hash)""",
        [what],
    ).fetchone()[0]


def _eligible(what: str) -> str:
    return _ELIGIBLE.format(video="AND m.kind = 'video'" if what in VIDEO_ONLY else "")


def source(db: Database, media_id: int) -> bytes | None:
    """Return the absolute path of a present copy in a library that is not offline."""
    found = location(db, media_id)
    return os.fsencode(found[0]) + b"/" + found[1] if found else None


def make(
    db: Database,
    settings: Settings,
    target: Target,
    what: str,
    runner: Runner,
    *,
    force: bool = False,
) -> Outcome:
    """Make a thumbnail, sprite or clip for target unless it exists; record and return how it went."""
    data_dir = settings.data_dir
    if what in VIDEO_ONLY and target.kind != "video":
        return Outcome(what, target, "skipped", "not a video")
    if not force and is_made(data_dir, what, target.media_hash):
        return Outcome(what, target, "skipped")
    path = source(db, target.media_id)
    if path is None:
        return Outcome(what, target, "unavailable", "no copy online")
    with generation_lock(data_dir, what, target.media_hash):
        if not force and is_made(data_dir, what, target.media_hash):
            return Outcome(what, target, "skipped")  # made while this waited for the lock
        started = time.perf_counter()
        status, reason = "made", None
        try:
            fsutil.retry_estale(lambda: _render(db, settings, target, what, path, runner), what)
        except LVSError as exc:
            status, reason = "failed", str(exc)
        except OSError as exc:
            status, reason = "unavailable", f"cannot read: {exc.strerror or exc}"
        finally:
            if status != "made":
                for out in outputs(data_dir, what, target.media_hash):
                    remove_stale_temps(out)
        seconds = time.perf_counter() - started
    if status == "unavailable":
        log.info("%s of %s postponed: %s", what, target.media_hash, reason)
    else:
        if status == "failed":
            log.warning("%s of %s failed: %s", what, os.fsdecode(path), reason)
        record(db, target, what, status, reason, seconds)
    return Outcome(what, target, status, reason, seconds, os.fsdecode(path))


def _render(
    db: Database, settings: Settings, target: Target, what: str, path: bytes, runner: Runner
) -> None:
    vr = what == "clip" and is_vr(db, target.media_id)
    render(settings.data_dir, settings, target.media_hash, target.kind, what, path, runner, vr=vr)


def render(data_dir: Path, settings: Settings, media_hash: str, media_kind: str, what: str,
           path: str | bytes, runner: Runner, *, vr: bool = False) -> None:  # fmt: skip
    """Make a thumbnail, sprite or clip of the file at `path` into `data_dir` (no database:
    the server's job runner and a worker on another machine make them alike); raise an
    LVSError for content it cannot be made from, OSError when the file cannot be read."""
    if what == "clip":
        dest = str(clips.clip_path(data_dir, media_hash))
        box = clips.VR_BOX if vr else clips.FLAT_BOX
        clips.render_clip(path, dest, box, timeout=settings.sprite_timeout)
    elif what == "thumbnail":
        dest = str(thumb_path(data_dir, media_hash))
        width = settings.thumbnail_width
        runner("thumbnail", path, media_kind, dest, width, timeout=settings.thumbnail_timeout)
    else:
        jpg, vtt = sprite_paths(data_dir, media_hash)
        args = (path, str(jpg), str(vtt), settings.sprite_width, settings.sprite_tiles)
        runner("sprite", *args, timeout=settings.sprite_timeout)


def location(db: Database, media_id: int) -> tuple[str, bytes] | None:
    """Return (library root as configured, path inside it) of the copy `source` names."""
    row = db.execute(
        """SELECT l.root, f.path FROM files f JOIN libraries l ON l.id = f.library_id
           WHERE f.media_id = ? AND f.present = 1 AND l.state != 'offline'
           ORDER BY f.id LIMIT 1""",
        [media_id],
    ).fetchone()
    return (row[0], bytes(row[1])) if row else None


def is_vr(db: Database, media_id: int) -> bool:
    """Return whether the media's first present file is not flat mono (a `projections` row)."""
    return (
        db.execute(
            """SELECT 1 FROM projections WHERE file_id = (SELECT min(f.id) FROM files f
               WHERE f.media_id = ? AND f.present = 1)""",
            [media_id],
        ).fetchone()
        is not None
    )


def record(
    db: Database, target: Target, what: str, status: str, reason: str | None, seconds: float
) -> None:
    """Write how making this went (status 'made' is stored as 'ok')."""
    with dbmod.write(db):
        db.execute(
            """INSERT INTO thumbs (media_id, kind, media_hash, status, reason, made_at, seconds)
               VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (media_id, kind) DO UPDATE SET
               media_hash = excluded.media_hash, status = excluded.status,
               reason = excluded.reason, made_at = excluded.made_at, seconds = excluded.seconds""",
            [
                target.media_id,
                what,
                target.media_hash,
                "ok" if status == "made" else status,
                reason,
                time.time(),
                seconds,
            ],
        )


def candidates(
    db: Database, data_dir: Path, what: str, *, everything: bool, check_files: bool = True
) -> list[Target]:
    """Return what a batch run works on: everything eligible, or only what is missing.

    Missing means never made nor failed for the current content or, with check_files, made but
    its file is gone (a cleared cache; this looks at every file).
    """
    if everything:
        rows = db.execute(
            f"SELECT m.id, m.media_hash, m.kind FROM media m WHERE {_eligible(what)} "
            "ORDER BY m.id DESC"
        ).fetchall()
        return [Target(*row) for row in rows]
    todo = missing(db, what, limit=1 << 62)
    if not check_files:
        return todo
    made = db.execute(
        f"""SELECT m.id, m.media_hash, m.kind FROM media m JOIN thumbs t
            ON t.media_id = m.id AND t.kind = ? AND t.media_hash = m.media_hash
            WHERE t.status = 'ok' AND {_eligible(what)} ORDER BY m.id DESC""",
        [what],
    ).fetchall()
    return todo + [Target(*r) for r in made if not is_made(data_dir, what, r[1])]


def count_eligible(db: Database, what: str) -> int:
    """Return how many media can have this kind (probed, online; videos for sprites)."""
    return db.execute(f"SELECT count(*) FROM media m WHERE {_eligible(what)}").fetchone()[0]


def make_all(
    settings: Settings,
    runner: Runner,
    workers: int,
    *,
    kinds: tuple[str, ...] = ("thumbnail", "sprite"),
    everything: bool = False,
    check_files: bool = True,
    progress: Progress | None = None,
) -> Summary:
    """Make every missing thumbnail and sprite (or clip: `kinds`), or all again, `workers` at a time.

    Failures of earlier runs count as skipped unless `everything` asks to retry them.
    """
    started = time.perf_counter()
    summary = Summary()
    # A connection belongs to one thread; each closes when its thread ends.
    connections = local()

    def one(item: tuple[Target, str]) -> Outcome:
        if not hasattr(connections, "db"):
            connections.db = dbmod.connect(settings.db_path)
        return make(connections.db, settings, item[0], item[1], runner, force=everything)

    db = dbmod.connect(settings.db_path)
    try:
        for what in kinds:
            todo = candidates(
                db, settings.data_dir, what, everything=everything, check_files=check_files
            )
            summary.skipped += count_eligible(db, what) - len(todo)
            done = 0
            with ThreadPoolExecutor(max(1, workers), thread_name_prefix="lvs-thumbs") as pool:
                for outcome in pool.map(one, [(t, what) for t in todo]):
                    _count(summary, outcome)
                    done += 1
                    if progress:
                        progress(what, done, len(todo))
    finally:
        db.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _count(summary: Summary, outcome: Outcome) -> None:
    if outcome.status == "made":
        summary.made += 1
    elif outcome.status == "failed":
        summary.failed += 1
        where = outcome.where or outcome.target.media_hash
        summary.failures.append((where, outcome.what, outcome.reason or ""))
    else:
        summary.skipped += 1
