"""A storm of junk files costs one log line per scan, not one per file (issue 20, item 4)."""

from __future__ import annotations

import logging
import random
from pathlib import Path

from services import db as dbmod
from services.library.scanner import scan

JUNK = 600


def test_junk_storm_logs_one_warning_per_scan(app, library_dir: Path, runner, admin_client, caplog):
    rng = random.Random(20)
    for i in range(JUNK):
        (library_dir / f"download {i:04d}.mp4").write_bytes(b"junk" + rng.randbytes(1500))
    (library_dir / "empty.mkv").write_bytes(b"")
    settings = app.config["SETTINGS"]
    db = dbmod.open_db(settings.data_dir)
    caplog.set_level(logging.DEBUG)
    report = scan(db, settings)
    db.close()
    assert report.failed == JUNK + 1
    shown = [r for r in caplog.records if r.levelno >= logging.INFO]
    warnings = [r.getMessage() for r in shown if r.levelno >= logging.WARNING]
    assert warnings == [
        f"{JUNK + 1} files could not be read: {JUNK} not a media file, 1 empty file"
        " — see the dashboard or `flask stats`"
    ]
    assert len(shown) <= 3, [r.getMessage() for r in shown]  # that line and "scan done"
    # Each file's reason is still there for whoever turns DEBUG on.
    per_file = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert sum("download 0042.mp4: not a media file" in m for m in per_file) == 1
    # And where an admin looks.
    out = runner.invoke(args=["stats"]).output
    assert f"Failed: {JUNK} not a media file, 1 empty file" in out
    data = admin_client.get("/admin/performance.json").get_json()
    assert data["library"]["failure_reasons"] == [["not a media file", JUNK], ["empty file", 1]]
    page = admin_client.get("/admin/performance").get_data(as_text=True)
    assert f"{JUNK + 1} failed: {JUNK} not a media file, 1 empty file" in page
