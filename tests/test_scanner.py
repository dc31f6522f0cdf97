"""The scanner on real generated media: identity, moves, offline roots, failures, hostile trees."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from services.errors import LVSError, ScanBusy
from services.library.scanner import scan, scan_lock

GOOD = ["h264_mp4", "hevc_mkv", "vp9_webm", "mpeg4_avi", "jpeg_exif", "png"]
BAD = ["corrupt_mp4", "truncated_mp4", "empty_mp4", "playlist_mp4"]


def put(media: dict[str, Path], root: Path, key: str, rel: str | None = None) -> Path:
    """Copy one corpus file into the library (a real copy, so tests may change it)."""
    src = media[key]
    dst = root / (rel or os.fsdecode(src.name))
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    return dst


def file_row(db, name: str) -> dict:
    row = db.execute(
        "SELECT f.id, f.media_id, f.present, f.path, m.media_hash, m.probe_status FROM files f "
        "LEFT JOIN media m ON m.id = f.media_id WHERE f.name = ?",
        [name],
    ).fetchone()
    assert row, f"no file row named {name}"
    return dict(zip(["id", "media_id", "present", "path", "hash", "status"], row, strict=True))


def test_first_scan_probes_and_parses_everything(media, library_dir, settings, db):
    for key in GOOD:
        put(media, library_dir, key, f"Movies/{media[key].name}")
    put(media, library_dir, "vr_180_sbs", "VR/scene_180_sbs.mp4")
    for key in BAD:
        put(media, library_dir, key, f"bad/{media[key].name}")

    report = scan(db, settings)

    assert report.new == len(GOOD) + 1 + len(BAD) - 1  # the empty file cannot be identified
    assert report.failed == len(BAD)
    assert report.missing == report.moved == report.changed == 0
    h264 = db.execute(
        "SELECT kind, container, width, height, video_codec, audio_codec, duration, probe_status "
        "FROM media m JOIN files f ON f.media_id = m.id WHERE f.name = 'h264.mp4'"
    ).fetchone()
    assert h264[:6] == ("video", "mp4", 320, 240, "h264", "aac")
    assert h264[6] == pytest.approx(2.0, abs=0.1) and h264[7] == "ok"
    streams = db.execute(
        "SELECT type, codec FROM streams s JOIN files f ON f.media_id = s.media_id "
        "WHERE f.name = 'hevc.mkv' ORDER BY idx"
    ).fetchall()
    assert ("video", "hevc") in streams
    photo = db.execute(
        "SELECT kind, width, height, taken_at, orientation FROM media m "
        "JOIN files f ON f.media_id = m.id WHERE f.name = 'photo.jpg'"
    ).fetchone()
    assert photo[0] == "picture" and photo[3].startswith("2021-07-04") and photo[4] == 6
    vr = db.execute(
        "SELECT p.projection, p.stereo, p.title FROM parses p JOIN files f ON f.id = p.file_id "
        "WHERE f.name = 'scene_180_sbs.mp4'"
    ).fetchone()
    assert vr[:2] == ("180", "sbs")
    reasons = dict(
        db.execute(
            "SELECT f.name, e.reason FROM probe_errors e JOIN files f ON f.id = e.file_id"
        ).fetchall()
    )
    assert reasons["empty.mp4"] == "empty file"
    assert "truncated" in reasons["truncated.mp4"]
    assert "playlist" in reasons["playlist.mp4"]
    assert set(reasons) == {media[k].name for k in BAD}


def test_unchanged_rescan_costs_no_probe_or_hash(media, library_dir, settings, db):
    for key in GOOD + BAD:
        put(media, library_dir, key, f"a/{media[key].name}")
    scan(db, settings)
    again = scan(db, settings)
    assert (again.new, again.changed, again.moved, again.missing, again.failed) == (0,) * 5
    assert again.probed == 0 and again.unchanged == len(GOOD) + len(BAD)


def test_rename_and_move_keep_the_row(media, library_dir, settings, db):
    a = put(media, library_dir, "h264_mp4", "one/clip.mp4")
    b = put(media, library_dir, "hevc_mkv", "one/other.mkv")
    scan(db, settings)
    before_a, before_b = file_row(db, "clip.mp4"), file_row(db, "other.mkv")

    a.rename(a.with_name("renamed clip.mp4"))
    (library_dir / "two" / "deeper").mkdir(parents=True)
    b.rename(library_dir / "two" / "deeper" / "other.mkv")
    report = scan(db, settings)

    assert (report.moved, report.new, report.missing) == (2, 0, 0)
    after_a, after_b = file_row(db, "renamed clip.mp4"), file_row(db, "other.mkv")
    assert (after_a["id"], after_a["media_id"]) == (before_a["id"], before_a["media_id"])
    assert (after_b["id"], after_b["media_id"]) == (before_b["id"], before_b["media_id"])
    assert after_b["path"] == b"two/deeper/other.mkv"
    assert db.execute("SELECT count(*) FROM media").fetchone()[0] == 2


def test_vanished_file_is_missing_then_gets_its_row_back(
    media, library_dir, settings, db, tmp_path
):
    clip = put(media, library_dir, "h264_mp4", "x/clip.mp4")
    scan(db, settings)
    before = file_row(db, "clip.mp4")
    outside = tmp_path / "elsewhere.mp4"
    clip.rename(outside)

    gone = scan(db, settings)
    assert gone.missing == 1
    assert file_row(db, "clip.mp4")["present"] == 0

    (library_dir / "y").mkdir()
    outside.rename(library_dir / "y" / "back.mp4")
    back = scan(db, settings)
    assert back.moved == 1 and back.new == 0
    row = file_row(db, "back.mp4")
    assert (row["id"], row["media_id"], row["present"]) == (before["id"], before["media_id"], 1)


def test_copies_are_recorded_as_duplicates(media, library_dir, settings, db):
    put(media, library_dir, "h264_mp4", "a/clip.mp4")
    put(media, library_dir, "h264_mp4", "b/copy of clip.mp4")
    report = scan(db, settings)
    assert report.duplicates == 1
    a, b = file_row(db, "clip.mp4"), file_row(db, "copy of clip.mp4")
    assert a["media_id"] == b["media_id"] and a["id"] != b["id"]


def test_rewritten_file_keeps_its_media_row_and_is_probed_again(media, library_dir, settings, db):
    clip = put(media, library_dir, "h264_mp4", "clip.mp4")
    scan(db, settings)
    before = file_row(db, "clip.mp4")
    shutil.copyfile(media["hevc10_mp4"] if "hevc10_mp4" in media else media["hevc_mkv"], clip)
    os.utime(clip, ns=(time.time_ns(), time.time_ns() + 10**9))
    report = scan(db, settings)
    after = file_row(db, "clip.mp4")
    assert report.changed == 1
    assert after["media_id"] == before["media_id"] and after["hash"] != before["hash"]
    codec = db.execute("SELECT video_codec FROM media WHERE id = ?", [after["media_id"]]).fetchone()
    assert codec[0] == "hevc"


def test_offline_root_marks_nothing_missing(media, library_dir, settings, db, tmp_path):
    put(media, library_dir, "h264_mp4", "a/clip.mp4")
    scan(db, settings)
    library_dir.rename(tmp_path / "unplugged")

    report = scan(db, settings)
    assert report.missing == 0 and report.offline
    assert "does not exist" in report.offline[0]
    assert file_row(db, "clip.mp4")["present"] == 1
    state = db.execute("SELECT state, state_reason FROM libraries").fetchone()
    assert state[0] == "offline"

    # An unmounted share leaves an empty mount point: offline too, not "everything deleted".
    library_dir.mkdir()
    report = scan(db, settings)
    assert report.missing == 0 and "empty" in report.offline[0]
    assert file_row(db, "clip.mp4")["present"] == 1

    library_dir.rmdir()
    (tmp_path / "unplugged").rename(library_dir)
    report = scan(db, settings)
    assert not report.offline and report.unchanged == 1
    assert db.execute("SELECT state FROM libraries").fetchone()[0] == "online"


def test_failed_files_are_not_retried_until_they_change(media, library_dir, settings, db):
    corrupt = put(media, library_dir, "corrupt_mp4")
    put(media, library_dir, "truncated_mp4")
    first = scan(db, settings)
    assert first.failed == 2
    assert scan(db, settings).failed == 0
    assert scan(db, settings, full=True).failed == 0  # even a full scan does not retry them
    assert db.execute("SELECT count(*) FROM probe_errors").fetchone()[0] == 2

    shutil.copyfile(media["h264_mp4"], corrupt)  # the user replaced the file: now it works
    fixed = scan(db, settings)
    assert fixed.changed == 1 and fixed.failed == 0
    assert file_row(db, corrupt.name)["status"] == "ok"
    assert db.execute("SELECT count(*) FROM probe_errors").fetchone()[0] == 1


def test_special_files_hidden_folders_and_links(media, library_dir, settings, db, tmp_path):
    put(media, library_dir, "h264_mp4", "real/clip.mp4")
    os.mkfifo(library_dir / "real" / "pipe.mp4")  # would block any reader forever
    put(media, library_dir, "hevc_mkv", "folder.mp4/inside.mkv")  # a folder named like a video
    put(media, library_dir, "png", ".hidden/secret.png")
    put(media, library_dir, "hevc_mkv", "real/.hidden file.mkv")
    put(media, library_dir, "vp9_webm", "real/._clip.mp4")  # a macOS resource fork
    put(media, library_dir, "png", "@eaDir/thumb.png")
    put(media, library_dir, "png", "#recycle/deleted.png")
    (library_dir / "real" / "loop").symlink_to(library_dir)  # a folder symlink loop
    outside = tmp_path / "outside"
    put(media, outside, "vp9_webm", "escaped.webm")
    (library_dir / "out").symlink_to(outside)  # a folder link that leaves the library
    (library_dir / "real" / "link to escaped.webm").symlink_to(outside / "escaped.webm")
    (library_dir / "real" / "link to clip.mp4").symlink_to(library_dir / "real" / "clip.mp4")

    started = time.monotonic()
    report = scan(db, settings)
    assert time.monotonic() - started < 30

    names = {r[0] for r in db.execute("SELECT name FROM files")}
    assert names == {"clip.mp4", "inside.mkv", "link to clip.mp4"}
    assert report.duplicates == 1  # the in-library file link is the same content


def test_hostile_names_are_just_files(media, library_dir, settings, db):
    keys = [
        "name_dash_vf",
        "name_concat",
        "name_subst",
        "name_unicode",
        "name_percent",
        "name_question",
        "name_hash",
        "name_long",
        "name_bad_utf8",
    ]
    for key in keys:
        dst = os.fsencode(library_dir) + b"/" + os.fsencode(media[key].name)
        shutil.copyfile(media[key], dst)
    report = scan(db, settings)
    assert report.new == len(keys) and report.failed == 0
    rows = db.execute(
        "SELECT f.path, f.name, m.probe_status FROM files f JOIN media m ON m.id = f.media_id"
    ).fetchall()
    assert {r[2] for r in rows} == {"ok"}
    paths = {r[0] for r in rows}
    assert b"bad\xff.mp4" in paths and b"-vf.mp4" in paths and b"concat:a|b.mp4" in paths
    assert "bad\ufffd.mp4" in {r[1] for r in rows}  # shown with a replacement character


def test_scoped_scan_and_paths_outside(media, library_dir, settings, db, tmp_path):
    put(media, library_dir, "h264_mp4", "a/one.mp4")
    put(media, library_dir, "hevc_mkv", "b/two.mkv")
    report = scan(db, settings, paths=[library_dir / "a"])
    assert report.new == 1
    assert {r[0] for r in db.execute("SELECT name FROM files")} == {"one.mp4"}
    shutil.rmtree(library_dir / "a")
    gone = scan(db, settings, paths=[library_dir / "a"])
    assert gone.missing == 1
    with pytest.raises(LVSError, match="is not inside a library folder"):
        scan(db, settings, paths=[tmp_path])


def test_one_scan_at_a_time(library_dir, settings, db):
    with scan_lock(settings.data_dir):
        with pytest.raises(ScanBusy):
            scan(db, settings)


def test_data_dir_inside_the_library_is_not_walked(media, library_dir, tmp_path):
    from config import load_settings
    from services import db as dbmod

    data = library_dir / "lvs-data"
    settings = load_settings(
        {"media_dirs": [str(library_dir)], "data_dir": str(data)},
        environ={},
        dotenv_path=tmp_path / "none",
    )
    put(media, library_dir, "h264_mp4", "clip.mp4")
    put(media, data, "png", "thumbs/ab.png")
    db = dbmod.open_db(data)
    report = scan(db, settings)
    assert report.new == 1


def _mount_tmpfs(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(path)], capture_output=True,
                              timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def test_an_unmounted_share_inside_a_library_is_offline_not_missing(media, library_dir, settings,
                                                                    db):  # fmt: skip
    """A NAS share mounted on a subfolder, then unmounted: its files wait, nothing is missing."""
    share = library_dir / "nas"
    if not _mount_tmpfs(share):
        pytest.skip("mounting a tmpfs needs root")
    try:
        put(media, library_dir, "h264_mp4", "local/clip.mp4")
        put(media, share, "hevc_mkv", "Shows/ep.mkv")
        first = scan(db, settings)
        assert first.new == 2
        assert db.execute("SELECT is_mount FROM folders WHERE path = ?", [b"nas"]).fetchone()[0]
    finally:
        subprocess.run(["umount", str(share)], check=True, timeout=30)

    gone = scan(db, settings)
    assert gone.missing == 0 and gone.unmounted == [f"{library_dir}/nas"]
    assert file_row(db, "ep.mkv")["present"] == 1

    assert _mount_tmpfs(share)
    try:
        put(media, share, "hevc_mkv", "Shows/ep.mkv")
        back = scan(db, settings)
        assert back.unmounted == [] and back.missing == 0 and back.new == 0
        assert file_row(db, "ep.mkv")["present"] == 1
    finally:
        subprocess.run(["umount", str(share)], check=True, timeout=30)
    # Files put into the empty folder itself make it a plain folder again: normal rules apply.
    put(media, library_dir, "png", "nas/picture.png")
    plain = scan(db, settings)
    assert plain.missing == 1 and plain.new == 1 and plain.unmounted == []
