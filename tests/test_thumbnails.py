"""Poster thumbnails on real media: frame choice, size, rotation, pictures, failures, the lock."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageStat

from services import db as dbmod
from services.errors import ThumbnailError
from services.ffmpeg import file_arg
from services.library.probe_pool import run_in_process
from services.library.scanner import scan
from services.previews import previews
from services.previews.thumbnails import (
    placeholder_path,
    remove_stale_temps,
    render_thumbnail,
    thumb_path,
)
from tests.mediagen import X264, ffmpeg, lavfi_inputs

QUIET = {"capture_output": True, "text": True, "check": True}


def render(media: dict[str, Path], key: str, tmp_path: Path, width: int = 320) -> Image.Image:
    kind = "picture" if key in ("jpeg_exif", "png", "huge_png", "huge_jpg") else "video"
    dest = tmp_path / f"{key}.jpg"
    thumb = render_thumbnail(os.fsencode(media[key]), kind, str(dest), width)
    image = Image.open(dest)
    assert image.format == "JPEG"
    assert (image.width, image.height) == (thumb.width, thumb.height)
    return image.convert("RGB")


def luma(image: Image.Image) -> float:
    return ImageStat.Stat(image.convert("L")).mean[0]


def difference(a: Image.Image, b: Image.Image) -> float:
    """Return the mean absolute pixel difference of two same-sized pictures (0..255)."""
    assert a.size == b.size
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


@pytest.mark.parametrize("key", ["h264_mp4", "hevc_mkv", "vp9_webm", "mpeg4_avi", "hevc10_mp4"])
def test_video_thumbnail_is_a_jpeg_of_the_configured_width(media, tmp_path, key):
    if key not in media:
        pytest.skip("this ffmpeg cannot encode 10-bit HEVC")
    assert render(media, key, tmp_path, width=160).size == (160, 120)
    # Never wider than the video itself (320×240 here).
    assert render(media, key, tmp_path, width=640).size == (320, 240)


def test_video_that_starts_black_gets_a_frame_that_is_not(media, tmp_path):
    with av.open(str(media["black_start_mp4"])) as container:
        first = next(container.decode(video=0)).to_image()
    assert luma(first) < 5  # the clip really starts black: the test can fail

    image = render(media, "black_start_mp4", tmp_path)

    assert luma(image) > 60
    assert ImageStat.Stat(image.convert("L")).stddev[0] > 20  # a picture, not a flat colour


def test_black_start_with_one_keyframe_is_decoded_forward(tmp_path):
    # One keyframe for the whole clip, black for its first 1.6 s of 4: every seek lands on it.
    clip = tmp_path / "one_gop.mp4"
    ffmpeg(
        *lavfi_inputs(4, audio=False),
        *["-vf", "fade=type=in:start_time=1.6:duration=0.04", "-c:v", *X264],
        *["-g", "1000", "-sc_threshold", "0", file_arg(clip)],
    )
    with av.open(str(clip)) as container:
        keys = [p for p in container.demux(video=0) if p.is_keyframe and p.size]
    assert len(keys) == 1

    thumb = render_thumbnail(os.fsencode(clip), "video", str(tmp_path / "t.jpg"), 320)

    assert thumb.seconds is not None and 1.6 <= thumb.seconds < 2.5
    assert luma(Image.open(tmp_path / "t.jpg")) > 60


def test_rotation_of_the_video_is_respected(media, tmp_path):
    upright = render(media, "h264_mp4", tmp_path, width=320)  # 320×240 test pattern
    turned_cw = render(media, "rotated_mp4", tmp_path, width=320)  # shown turned 90° clockwise
    turned_ccw = render(media, "rotated_mov", tmp_path, width=320)  # 270° clockwise

    assert turned_cw.size == turned_ccw.size == (240, 320)
    same_cw = upright.transpose(Image.Transpose.ROTATE_270)
    same_ccw = upright.transpose(Image.Transpose.ROTATE_90)
    assert difference(turned_cw, same_cw) < 8 < difference(turned_cw, same_ccw)
    assert difference(turned_ccw, same_ccw) < 8 < difference(turned_ccw, same_cw)


def test_picture_is_turned_by_its_exif_orientation(tmp_path):
    # Stored 80×40: red left half, blue right half; orientation 6 = show it turned clockwise.
    stored = Image.new("RGB", (80, 40), (220, 20, 20))
    stored.paste((20, 20, 220), (40, 0, 80, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    source = tmp_path / "phone.jpg"
    stored.save(source, "JPEG", exif=exif, quality=95)

    render_thumbnail(os.fsencode(source), "picture", str(tmp_path / "t.jpg"), 320)

    shown = Image.open(tmp_path / "t.jpg").convert("RGB")
    assert shown.size == (40, 80)
    top, bottom = shown.getpixel((20, 10)), shown.getpixel((20, 70))
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]  # red on top, blue below


def test_corpus_pictures_and_decompression_bombs(media, tmp_path):
    assert render(media, "jpeg_exif", tmp_path).size == (48, 64)  # stored 64×48, orientation 6
    assert render(media, "png", tmp_path).size == (40, 30)
    # Valid, 12000² 1-bit: shrunk in its own mode, never made RGB at full size.
    assert render(media, "huge_png", tmp_path).size == (320, 320)
    # Its header says 12000² RGB (412 MiB decoded): JPEG draft mode decodes it at 1/8 scale,
    # under the decode limit that refuses the same size in any other format.
    assert render(media, "huge_jpg", tmp_path).size == (320, 320)
    with pytest.raises(ThumbnailError, match="^picture too large"):
        render_thumbnail(os.fsencode(media["bomb_png"]), "picture", str(tmp_path / "b.jpg"), 320)
    big_rgb = tmp_path / "big.png"  # its header says 9000² RGB: 243 MB decoded, over the limit
    Image.new("RGB", (1, 1)).save(big_rgb)
    data = bytearray(big_rgb.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", 9000, 9000)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    big_rgb.write_bytes(bytes(data))
    with pytest.raises(ThumbnailError, match="^picture too large to decode: 9000x9000"):
        render_thumbnail(os.fsencode(big_rgb), "picture", str(tmp_path / "c.jpg"), 320)


@pytest.mark.parametrize(
    ("key", "kind", "reason"),
    [
        ("corrupt_mp4", "video", "not a media file, or damaged"),
        ("truncated_mp4", "video", "not a media file, or damaged"),
        ("empty_mp4", "video", "empty file"),
        ("playlist_mp4", "video", "playlist files are not media"),
        ("audio_only_mp4", "video", "no video stream"),
        ("corrupt_jpg", "picture", "not a picture"),
    ],
)
def test_bad_files_fail_with_a_reason_and_write_nothing(media, tmp_path, key, kind, reason):
    dest = tmp_path / "thumbs" / "x.jpg"
    with pytest.raises(ThumbnailError, match=f"^{reason}$"):
        render_thumbnail(os.fsencode(media[key]), kind, str(dest), 320)
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def damaged_after_scan(path: Path) -> None:
    """Zero the media data of an MP4, keeping its index: it still probes, nothing decodes."""
    data = bytearray(path.read_bytes())
    start = data.index(b"mdat") + 4
    end = data.index(b"moov") if data.index(b"moov") > start else len(data)
    data[start:end] = bytes(end - start)
    path.write_bytes(bytes(data))


def test_failure_is_recorded_once_and_no_file_is_left_in_the_cache(
    media, library_dir, settings, db
):
    shutil.copy2(media["h264_mp4"], library_dir / "good.mp4")
    shutil.copy2(media["h264_mp4"], library_dir / "damaged.mp4")
    with open(library_dir / "damaged.mp4", "ab") as f:
        f.write(b"x")  # another fingerprint than good.mp4
    truncated = library_dir / "truncated.mp4"
    shutil.copy2(media["hevc10_mp4"] if "hevc10_mp4" in media else media["vp9_webm"], truncated)
    scan(db, settings)
    damaged_after_scan(library_dir / "damaged.mp4")
    truncated.write_bytes(truncated.read_bytes()[:2000])  # cut after the scan probed it
    targets = {t.media_hash: t for t in previews.missing(db, "thumbnail")}
    assert len(targets) == 3

    outcomes = [
        previews.make(db, settings, t, "thumbnail", run_in_process) for t in targets.values()
    ]

    by_status = sorted((o.status, o.reason) for o in outcomes)
    assert by_status == [
        ("failed", "no frame could be decoded"),
        ("failed", "not a media file, or damaged"),
        ("made", None),
    ]
    rows = db.execute("SELECT status, reason FROM thumbs ORDER BY status").fetchall()
    assert [r[0] for r in rows] == ["failed", "failed", "ok"]
    made = [p for p in (settings.data_dir / "thumbs").rglob("*") if p.is_file()]
    assert len(made) == 1 and made[0].stat().st_size > 0 and made[0].suffix == ".jpg"
    # Failed for this content: not tried again, not even offered to a batch run.
    assert previews.missing(db, "thumbnail") == []
    assert Image.open(placeholder_path()).format == "JPEG"


def test_temporary_file_of_a_dead_writer_is_removed(tmp_path):
    dest = thumb_path(tmp_path, "0123456789abcdef")
    dest.parent.mkdir(parents=True)
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **QUIET)
    dead = child.stdout.strip()  # a process id that has exited
    stale = dest.with_name(f".{dest.name}.{dead}.1.tmp")
    stale.write_bytes(b"half a jpeg")
    live = dest.with_name(f".{dest.name}.{os.getpid()}.1.tmp")  # a writer still at work
    live.write_bytes(b"")

    assert remove_stale_temps(dest) == 1
    assert not stale.exists() and live.exists()


def test_two_threads_asking_at_once_make_it_once(media, library_dir, settings, db):
    shutil.copy2(media["hevc_mkv"], library_dir / "clip.mkv")
    scan(db, settings)
    [target] = previews.missing(db, "thumbnail")
    start = threading.Barrier(4)
    outcomes: list[previews.Outcome] = []

    def ask() -> None:
        conn = dbmod.connect(settings.db_path)
        start.wait()
        outcomes.append(previews.make(conn, settings, target, "thumbnail", run_in_process))
        conn.close()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert sorted(o.status for o in outcomes) == ["made", "skipped", "skipped", "skipped"]
    assert thumb_path(settings.data_dir, target.media_hash).stat().st_size > 0


def test_thumb_path_refuses_anything_but_a_media_hash(tmp_path):
    assert thumb_path(tmp_path, "0123456789abcdef").name == "0123456789abcdef.jpg"
    for bad in ("../../etc/passwd", "0123456789ABCDEF", "0123", "0123456789abcdef/"):
        with pytest.raises(ValueError):
            thumb_path(tmp_path, bad)


def test_cli_scan_then_thumbnails_missing_and_all(app, runner, media, library_dir):
    for key in ("h264_mp4", "jpeg_exif"):
        shutil.copy2(media[key], library_dir / media[key].name)
    shutil.copy2(media["h264_mp4"], library_dir / "damaged.mp4")
    with open(library_dir / "damaged.mp4", "ab") as f:
        f.write(b"x")  # its own fingerprint; damaged later, after its thumbnail is made

    scanned = runner.invoke(args=["scan"])

    assert scanned.exit_code == 0, scanned.output
    # 3 thumbnails and 2 sprites for the new files.
    assert "Thumbnails and previews in" in scanned.output and ": 5 made, 0 failed" in scanned.output
    data_dir = app.config["SETTINGS"].data_dir
    thumbs = sorted((data_dir / "thumbs").rglob("*.jpg"))
    assert len(thumbs) == 3 and all(p.stat().st_size > 0 for p in thumbs)

    again = runner.invoke(args=["thumbnails", "--no-clips"])
    assert again.exit_code == 0 and ": 0 made, 0 failed, 5 skipped" in again.output

    thumbs[0].unlink()  # a cleared cache
    damaged_after_scan(library_dir / "damaged.mp4")  # same size: nothing notices until --all
    missing = runner.invoke(args=["thumbnails", "--missing", "--no-clips"])
    assert missing.exit_code == 0 and ": 1 made, 0 failed, 4 skipped" in missing.output

    everything = runner.invoke(args=["thumbnails", "--all", "--no-clips"])
    assert everything.exit_code == 0, everything.output
    assert ": 3 made, 2 failed, 0 skipped" in everything.output
    assert "Failed (thumbnail): " in everything.output and "damaged.mp4" in everything.output
