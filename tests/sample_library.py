"""A small real library for page, watch-state and browser tests, scanned with the real scanner.

Layout (names chosen so the name order is known):

    Movies/            h264.mp4, hevc.mkv, vp9.webm, Show.S01E01.mp4, Show.S01E02.mp4,
                       Show.S01E03.mp4, long.mp4 (6 min, for resume), mpeg4.avi
    Movies/Extras/     bonus.mp4
    Pictures/          photo.jpg, picture.png, p03.png .. p05.png
    Many/              p000.png .. p069.png (70 tiny pictures: more than one page of 60)
    Odd/               HOSTILE_VIDEO (markup in a file name)
    HOSTILE_FOLDER/    x.png (markup in a folder name)

Copies of one clip get distinct content (and so distinct media) by an appended MP4 `free`
box, which players skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from PIL import Image

from tests.mediagen import X264, ffmpeg, file_arg

LONG_SECONDS = 360
HOSTILE_VIDEO = '<img src=x onerror=alert(1)> & "q".mp4'
HOSTILE_FOLDER = "<svg onload=alert(2)>"


def _variant(src: Path, dst: Path, n: int) -> Path:
    """Copy an MP4 with a trailing free box of n bytes: same picture, another media_hash."""
    data = src.read_bytes()
    box = (8 + n).to_bytes(4, "big") + b"free" + bytes([n % 251]) * n
    dst.write_bytes(data + box)
    return dst


def _png(path: Path, n: int) -> Path:
    Image.new("RGB", (48, 32), ((n * 37) % 256, (n * 91) % 256, (n * 13) % 256)).save(path)
    return path


def long_clip(out: Path) -> Path:
    """Encode a 6-minute, 5 fps, 160x90 H.264 MP4 (no audio): long enough to resume."""
    if not out.exists():
        ffmpeg(
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=160x90:rate=5:duration={LONG_SECONDS}",
            "-c:v",
            *X264,
            "-g",
            "10",
            "-movflags",
            "+faststart",
            file_arg(out),
        )
    return out


def make_library(root: Path, media: dict[str, Path], cache: Path) -> dict[str, Any]:
    """Fill `root` with the layout above from the session corpus; return paths by name."""
    movies, extras = root / "Movies", root / "Movies" / "Extras"
    pictures, many = root / "Pictures", root / "Many"
    for folder in (extras, pictures, many):
        folder.mkdir(parents=True, exist_ok=True)
    base = media["h264_mp4"]
    files = {
        "h264": shutil.copyfile(base, movies / "h264.mp4"),
        "hevc": shutil.copyfile(media["hevc_mkv"], movies / "hevc.mkv"),
        "vp9": shutil.copyfile(media["vp9_webm"], movies / "vp9.webm"),
        "avi": shutil.copyfile(media["mpeg4_avi"], movies / "mpeg4.avi"),
        "long": shutil.copyfile(long_clip(cache / "long.mp4"), movies / "long.mp4"),
        "bonus": _variant(base, extras / "bonus.mp4", 16),
        "photo": shutil.copyfile(media["jpeg_exif"], pictures / "photo.jpg"),
        "picture": shutil.copyfile(media["png"], pictures / "picture.png"),
    }
    for episode in (1, 2, 3):
        files[f"ep{episode}"] = _variant(base, movies / f"Show.S01E0{episode}.mp4", episode)
    for n in range(3, 6):
        files[f"p{n:02d}"] = _png(pictures / f"p{n:02d}.png", 1000 + n)
    for n in range(70):
        _png(many / f"p{n:03d}.png", n)
    (root / "Odd").mkdir()
    files["hostile"] = _variant(base, root / "Odd" / HOSTILE_VIDEO, 40)
    (root / HOSTILE_FOLDER).mkdir()
    files["hostile_folder_png"] = _png(root / HOSTILE_FOLDER / "x.png", 999)
    return files


def scan_library(settings: Any) -> None:
    """Index the library with the real scanner."""
    from services import db as dbmod
    from services.library.scanner import scan

    db = dbmod.open_db(settings.data_dir)
    try:
        scan(db, settings)
    finally:
        db.close()


def media_hash(settings: Any, path: Path) -> str:
    """Return the media_hash the scan recorded for a file of the library."""
    from services import db as dbmod

    db = dbmod.connect(settings.db_path)
    try:
        root = settings.media_dirs[0]
        rel = os.fsencode(path.relative_to(root))
        row = db.execute(
            "SELECT m.media_hash FROM files f JOIN media m ON m.id = f.media_id WHERE f.path = ?",
            [rel],
        ).fetchone()
    finally:
        db.close()
    assert row, f"{path} was not indexed"
    return row[0]


class Site:
    """A scanned library, its settings and the app serving it."""

    def __init__(self, base: Path, media: dict[str, Path], **overrides: Any) -> None:
        from app import create_app
        from config import load_settings

        self.root = base / "library"
        self.root.mkdir(parents=True)
        self.data = base / "data"
        cache = base.parent / "site-cache"
        cache.mkdir(exist_ok=True)
        self.files = make_library(self.root, media, cache)
        config = {
            "media_dirs": [str(self.root)],
            "data_dir": str(self.data),
            "probe_workers": 2,
            **overrides,
        }
        self.settings = load_settings(config, environ={}, dotenv_path=base / "no.env")
        scan_library(self.settings)
        self.app = create_app(config)
        self.lib = self.root.name  # the library's name in /browse/ URLs

    def hash(self, key: str) -> str:
        """Return the media_hash of a file by its key in `files`."""
        return media_hash(self.settings, self.files[key])
