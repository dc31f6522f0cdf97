"""A storm of junk files costs one log line per scan, not one per file (issue 20, item 4)."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import pytest

from config import load_settings
from services import db as dbmod
from services.jobs import Jobs
from services.library.scanner import scan
from services.library.watcher import Watcher
from tests.test_watcher import wait_for

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


@pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")
def test_a_storm_arriving_under_the_watcher_logs_per_scan(library_dir: Path, tmp_path, caplog):
    """Junk copied into a watched library: a few lines per scan the watcher runs, not per file."""
    settings = load_settings(
        {
            "media_dirs": [str(library_dir)],
            "data_dir": str(tmp_path / "data"),
            "watch": "events",
            "watch_debounce": 0.3,
            "watch_settle": 0.15,
        },
        environ={},
        dotenv_path=tmp_path / "no.env",
    )
    db = dbmod.open_db(settings.data_dir)
    scan(db, settings)
    jobs = Jobs(settings, feed=False, workers=1)
    watcher = Watcher(settings, lambda folders: jobs.scan(folders))
    watcher.start()
    assert watcher.wait_started()
    caplog.set_level(logging.INFO)
    rng = random.Random(4)
    try:
        for d in range(5):
            (library_dir / f"dl{d}").mkdir()
            for i in range(200):
                (library_dir / f"dl{d}" / f"part{i}.mp4").write_bytes(b"junk" + rng.randbytes(900))
            time.sleep(0.1)

        def done() -> bool:
            st = jobs.status()
            failed = db.execute("SELECT count(*) FROM probe_errors").fetchone()[0]
            return failed == 1000 and not st.running and not st.queued.get("scan")

        wait_for(done, 60, "the watcher's scans")
    finally:
        watcher.stop()
        jobs.close()
        db.close()
    scans = [r for r in caplog.records if r.getMessage().startswith("scan done")]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 <= len(scans) <= 10
    assert len(warnings) <= len(scans)
    assert all("could not be read: not a media file" in w for w in warnings), warnings
    assert sum(int(w.split()[0].replace(",", "")) for w in warnings) == 1000
    assert len(caplog.records) <= 4 * len(scans) + 5  # the watcher's own lines besides
