"""The `flask` commands through Click's runner: output a person reads, exit codes a script checks."""

from __future__ import annotations

import shutil
import subprocess
import sys

from services.library.scanner import scan_lock


def test_scan_prints_a_summary_and_stats_the_totals(app, runner, media, library_dir):
    shutil.copy2(media["h264_mp4"], library_dir / "clip.mp4")
    shutil.copy2(media["jpeg_exif"], library_dir / "photo.jpg")
    shutil.copy2(media["corrupt_mp4"], library_dir / "broken.mp4")

    result = runner.invoke(args=["scan"])
    assert result.exit_code == 0, result.output
    assert "3 new, 0 changed, 0 moved, 0 missing, 1 failed" in result.output
    assert "broken.mp4: not a media file" in result.output

    again = runner.invoke(args=["scan"])
    assert "0 new, 0 changed, 0 moved, 0 missing, 0 failed (3 unchanged)" in again.output

    stats = runner.invoke(args=["stats"])
    assert stats.exit_code == 0
    # broken.mp4 is one of the items but no video (it is not media): it counts as failed.
    assert "3 items: 1 video, 1 picture" in stats.output
    assert "1 failed" in stats.output and "Codecs: h264 1" in stats.output


def test_scan_of_a_path_outside_the_libraries_fails_clearly(runner, tmp_path):
    result = runner.invoke(args=["scan", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().endswith("is not inside a library folder (see LVS_MEDIA_DIRS)")


def test_scan_fails_when_every_library_is_offline(runner, media, library_dir, tmp_path):
    shutil.copy2(media["h264_mp4"], library_dir / "clip.mp4")
    assert runner.invoke(args=["scan"]).exit_code == 0
    library_dir.rename(tmp_path / "away")
    result = runner.invoke(args=["scan"])
    assert result.exit_code == 1
    assert "Offline, nothing marked missing" in result.output
    assert "Error: every library folder is offline" in result.output


def test_scan_while_another_runs_is_refused(app, runner):
    with scan_lock(app.config["SETTINGS"].data_dir):
        result = runner.invoke(args=["scan"])
    assert result.exit_code == 1 and "another scan is already running" in result.output


def test_wrong_setting_stops_the_cli_with_one_line(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "LVS_DATA_DIR": str(tmp_path),
        "LVS_WATCH": "never",
        "FLASK_APP": "app",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "stats"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=__file__.rsplit("/tests/", 1)[0],
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: LVS_WATCH (environment): 'never' is not one of auto, events, poll, off"
    )
