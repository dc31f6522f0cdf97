"""Maintenance commands (SPEC §3.4) through Click's runner: backup, restore, export, import, db,
cache prune, purge-missing; each with its failure; a backup taken while requests write."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from services import db as dbmod
from services.operate import maintenance, userdata


def _scan(runner) -> None:
    result = runner.invoke(args=["scan", "--no-thumbnails"])
    assert result.exit_code == 0, result.output


@pytest.fixture
def indexed(app, runner, media, library_dir):
    """A library of two videos and a picture, scanned, with watch state for the first video."""
    shutil.copy2(media["h264_mp4"], library_dir / "a.mp4")
    shutil.copy2(media["hevc_mkv"], library_dir / "b.mkv")
    shutil.copy2(media["jpeg_exif"], library_dir / "c.jpg")
    _scan(runner)
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    ids = [r[0] for r in db.execute("SELECT id FROM media ORDER BY id")]
    with dbmod.write(db):
        db.execute(
            "INSERT INTO watch_state (user_id, media_id, position, duration, watched, play_count,"
            " last_played) VALUES (1, ?, 1.5, 2.0, 0, 1, 1)",
            [ids[0]],
        )
    yield db
    db.close()


def test_backup_is_checked_and_restores(app, runner, indexed, tmp_path):
    dest = tmp_path / "b.db"
    result = runner.invoke(args=["backup", str(dest)])
    assert result.exit_code == 0, result.output
    assert "integrity check ok" in result.output
    assert maintenance.integrity_check(dest) == []

    again = runner.invoke(args=["backup", str(dest)])
    assert again.exit_code == 1 and "exists (pass --yes to replace it)" in again.output
    assert runner.invoke(args=["backup", "--yes", str(dest)]).exit_code == 0
    missing_dir = runner.invoke(args=["backup", str(tmp_path / "nope" / "b.db")])
    assert missing_dir.exit_code == 1 and "no such folder" in missing_dir.output

    with dbmod.write(indexed):
        indexed.execute("DELETE FROM watch_state")
    needs_yes = runner.invoke(args=["restore", str(dest)])
    assert needs_yes.exit_code == 1 and "--yes" in needs_yes.output
    restored = runner.invoke(args=["restore", "--yes", str(dest)])
    assert restored.exit_code == 0, restored.output
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    assert db.execute("SELECT count(*) FROM watch_state").fetchone()[0] == 1
    assert list((tmp_path / "data").glob("library.db.before-restore-*"))


def test_restore_refuses_bad_files(runner, indexed, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = runner.invoke(args=["restore", "--yes", str(text)])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {text}: not an SQLite database"

    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    result = runner.invoke(args=["restore", "--yes", str(other)])
    assert result.exit_code == 1 and "not a Local Video Server database" in result.output

    newer = tmp_path / "newer.db"
    assert runner.invoke(args=["backup", str(newer)]).exit_code == 0
    conn = sqlite3.connect(newer)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
        "VALUES ('lvs', 'm9999_future', '2099-01-01')"
    )
    conn.commit()
    conn.close()
    result = runner.invoke(args=["restore", "--yes", str(newer)])
    assert result.exit_code == 1 and "newer version (schema m9999_future)" in result.output


def test_restore_refuses_while_the_server_runs(app, runner, indexed, tmp_path):
    from services import background

    dest = tmp_path / "b.db"
    assert runner.invoke(args=["backup", str(dest)]).exit_code == 0
    fd = background._take_lock(app.config["SETTINGS"])
    assert fd is not None
    try:
        result = runner.invoke(args=["restore", "--yes", str(dest)])
    finally:
        import os

        os.close(fd)
    assert result.exit_code == 1
    assert "the server is running: stop it before restoring" in result.output


def test_restore_refuses_while_a_server_without_background_work_runs(
    app, runner, indexed, tmp_path
):
    """LVS_BACKGROUND=off takes no owner lock; the server lock still says a server is up."""
    from services import background
    from tests.server import Gunicorn

    dest = tmp_path / "b.db"
    assert runner.invoke(args=["backup", str(dest)]).exit_code == 0
    settings = app.config["SETTINGS"]
    server = Gunicorn()
    env = {"LVS_MEDIA_DIRS": str(settings.media_dirs[0]), "LVS_DATA_DIR": str(settings.data_dir)}
    server.start({**env, "LVS_BACKGROUND": "off", "LVS_WORKERS": "1"}, tmp_path / "g.log")
    try:
        owner_lock = settings.data_dir / background.LOCK_NAME
        assert not owner_lock.exists() or _free(owner_lock)  # alone, it would say "stopped"
        result = runner.invoke(args=["restore", "--yes", str(dest)])
        assert result.exit_code == 1
        assert "the server is running: stop it before restoring" in result.output
    finally:
        server.stop()
    assert runner.invoke(args=["restore", "--yes", str(dest)]).exit_code == 0  # stopped: fine


def _free(path: Path) -> bool:
    """Return whether nobody holds a lock on `path`."""
    import fcntl
    import os

    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_backup_while_requests_write_is_consistent(app, indexed, tmp_path):
    """Threads keep recording watch progress through the app while backups are taken."""
    media_hash = indexed.execute("SELECT media_hash FROM media WHERE kind = 'video'").fetchone()[0]
    stop = threading.Event()
    writes = [0]
    from services.people import apitokens

    token = apitokens.create(indexed, 1, "writer")
    headers = {"Authorization": f"Bearer {token}"}
    progress_url = None
    for rule in app.url_map.iter_rules():
        if "progress" in rule.rule and "media_hash" in rule.arguments:
            progress_url = rule.rule.replace("<media_hash>", media_hash)
    assert progress_url, "no watch progress route"

    def writer() -> None:
        client = app.test_client()
        pos = 0.0
        while not stop.is_set():
            pos = (pos + 0.01) % 1.8
            r = client.post(
                progress_url,
                data={"position": f"{pos:.2f}", "duration": "2", "viewing": "v" * 16},
                headers=headers,
            )
            assert r.status_code < 400, r.data
            writes[0] += 1

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 10
        while writes[0] < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        copies = []
        for i in range(3):
            dest = tmp_path / f"live{i}.db"
            maintenance.backup(app.config["SETTINGS"].db_path, dest)
            copies.append(dest)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert writes[0] >= 10
    for dest in copies:
        assert maintenance.integrity_check(dest) == []
        conn = sqlite3.connect(dest)
        assert conn.execute("SELECT count(*) FROM media").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM watch_state").fetchone()[0] >= 1
        conn.close()


def test_export_import_round_trip(app, runner, indexed, tmp_path):
    out = tmp_path / "user.json"
    result = runner.invoke(args=["export", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["format"] == "lvs-userdata"
    (state,) = doc["tables"]["watch_state"]
    assert state["position"] == 1.5 and len(state["media_hash"]) > 8 and "media_id" not in state
    assert [u["id"] for u in doc["tables"]["users"]] == [1]
    assert out.stat().st_mode & 0o077 == 0  # hashes inside: owner only

    with dbmod.write(indexed):
        indexed.execute("DELETE FROM watch_state")
    no = runner.invoke(args=["import", str(out)])
    assert no.exit_code == 1 and "--yes" in no.output
    yes = runner.invoke(args=["import", "--yes", str(out)])
    assert yes.exit_code == 0, yes.output
    assert indexed.execute("SELECT position FROM watch_state").fetchone()[0] == 1.5

    # A media this library does not hold is skipped and said so.
    doc["tables"]["watch_state"].append(dict(state, media_hash="f" * 16))
    out.write_text(json.dumps(doc))
    skipped = runner.invoke(args=["import", "--yes", str(out)])
    assert skipped.exit_code == 0 and "skipped 1 about media" in skipped.output


def test_import_refuses_what_is_not_an_export(runner, indexed, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = runner.invoke(args=["import", "--yes", str(bad)])
    assert result.exit_code == 1 and "not JSON" in result.output
    bad.write_text(json.dumps({"format": "lvs-userdata", "version": 99, "tables": {}}))
    result = runner.invoke(args=["import", "--yes", str(bad)])
    assert result.exit_code == 1 and "newer than this server's" in result.output
    bad.write_text(json.dumps({"format": "lvs-userdata", "version": 1, "tables": {"media": []}}))
    result = runner.invoke(args=["import", "--yes", str(bad)])
    assert result.exit_code == 1 and "not user data: media" in result.output
    assert runner.invoke(args=["import", "--yes", str(tmp_path / "none.json")]).exit_code == 1


def test_every_table_is_classified_as_user_data_or_not(db):
    """A migration that adds a table must say whether exports carry it (services/operate/userdata.py)."""
    new = userdata.unclassified_tables(db)
    assert new == [], "add them to USER_TABLES or DERIVED_TABLES in services/operate/userdata.py"


def test_db_check_vacuum_migrate(app, runner, indexed):
    assert runner.invoke(args=["db", "check"]).output.strip() == "Database ok"
    vac = runner.invoke(args=["db", "vacuum"])
    assert vac.exit_code == 0 and vac.output.startswith("Vacuumed:")
    assert runner.invoke(args=["db", "migrate"]).output.strip() == "Schema up to date"


def test_db_check_fails_on_a_damaged_database(app, runner, indexed):
    path: Path = app.config["SETTINGS"].db_path
    indexed.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    indexed.close()
    data = bytearray(path.read_bytes())
    page = 4096
    # Garble the middle of the second page onward: a b-tree page the check must notice.
    for i in range(page + 100, min(len(data), 4 * page)):
        data[i] = 0x5A
    path.write_bytes(bytes(data))
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 1
    assert "Error:" in result.output


def test_cache_prune_removes_only_orphans(app, runner, indexed):
    data_dir = app.config["SETTINGS"].data_dir
    assert runner.invoke(args=["thumbnails", "--clips"]).exit_code == 0
    kept = list((data_dir / "thumbs").rglob("*.jpg")) + list((data_dir / "clips").rglob("*.mp4"))
    assert len(kept) == 3 + 2  # a thumbnail each, a preview clip for each video
    orphan = data_dir / "thumbs" / "ab" / ("ab" + "0" * 14 + ".jpg")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"x" * 100)
    orphan_clip = data_dir / "clips" / "ab" / ("ab" + "1" * 14 + ".mp4")
    orphan_clip.parent.mkdir(parents=True, exist_ok=True)
    orphan_clip.write_bytes(b"x" * 50)
    dry = runner.invoke(args=["cache", "prune", "--dry-run"])
    assert dry.output.strip() == "Would delete 2 files (150 B)" and orphan.exists()
    result = runner.invoke(args=["cache", "prune"])
    assert result.exit_code == 0 and "Deleted 2 files (150 B)" in result.output
    assert not orphan.exists() and not orphan_clip.exists() and all(p.exists() for p in kept)


def test_purge_missing_needs_yes_and_keeps_present_items(app, runner, indexed, library_dir):
    (library_dir / "b.mkv").unlink()
    _scan(runner)
    dry = runner.invoke(args=["purge-missing", "--dry-run"])
    assert dry.exit_code == 0
    assert dry.output.strip() == "1 missing files and 1 items without files would go"
    refused = runner.invoke(args=["purge-missing"])
    assert refused.exit_code == 1 and "pass --yes" in refused.output
    assert indexed.execute("SELECT count(*) FROM media").fetchone()[0] == 3
    done = runner.invoke(args=["purge-missing", "--yes"])
    assert done.exit_code == 0 and "Purged 1 missing files and 1 items" in done.output
    assert indexed.execute("SELECT count(*) FROM media").fetchone()[0] == 2
    assert indexed.execute("SELECT count(*) FROM watch_state").fetchone()[0] == 1


def test_purge_never_touches_an_offline_library(app, runner, indexed, library_dir, tmp_path):
    library_dir.rename(tmp_path / "away")
    # Every library offline: the scan fails and marks nothing missing.
    assert runner.invoke(args=["scan", "--no-thumbnails"]).exit_code == 1
    dry = runner.invoke(args=["purge-missing", "--dry-run"])
    assert dry.output.strip() == "0 missing files and 0 items without files would go"


def test_export_carries_every_user_table_and_imports_into_a_fresh_index(
    app, indexed, tmp_path, settings
):
    """Tags, ratings, favourites, playlists, markers travel by media_hash into another index."""
    now = time.time()
    a, b = [r[0] for r in indexed.execute("SELECT id FROM media ORDER BY id LIMIT 2")]
    with dbmod.write(indexed):
        indexed.execute("INSERT INTO tags (id, name, created_at) VALUES (7, 'beach', ?)", [now])
        indexed.execute("INSERT INTO media_tags (media_id, tag_id) VALUES (?, 7)", [b])
        indexed.execute(
            "INSERT INTO ratings (user_id, media_id, stars, rated_at) VALUES (1, ?, 4, ?)", [b, now]
        )
        indexed.execute(
            "INSERT INTO favorites (user_id, media_id, added_at) VALUES (1, ?, ?)", [a, now]
        )
        indexed.execute(
            "INSERT INTO playlists (id, user_id, name, created_at) VALUES (3, 1, 'mix', ?)", [now]
        )
        indexed.execute(
            "INSERT INTO playlist_items (playlist_id, media_id, position) VALUES (3, ?, 0)", [b]
        )
        indexed.execute(
            "INSERT INTO markers (user_id, media_id, seconds, label, created_at) "
            "VALUES (1, ?, 0.5, 'start', ?)",
            [a, now],
        )
    doc = json.loads(json.dumps(userdata.export(indexed)))
    for table in userdata.USER_TABLES:
        assert table in doc["tables"], table
    hashes = dict(indexed.execute("SELECT id, media_hash FROM media").fetchall())

    # Another data dir, the same files indexed afresh in the other order: other media ids.
    from config import load_settings
    from services.library.scanner import scan

    other = load_settings(
        {"media_dirs": [str(settings.media_dirs[0])], "data_dir": str(tmp_path / "other")},
        environ={},
        dotenv_path=tmp_path / "no.env",
    )
    fresh = dbmod.open_db(other.data_dir)
    with dbmod.write(fresh):
        fresh.execute(
            "INSERT INTO media (id, media_hash, kind, size, added_at) VALUES (50, 'ffffffffffffffff',"
            " 'video', 1, 0)"
        )
    scan(fresh, other)
    report = userdata.import_(fresh, doc)
    assert sum(report.skipped.values()) == 0
    by_hash = dict(fresh.execute("SELECT media_hash, id FROM media").fetchall())
    assert by_hash[hashes[b]] != b  # the ids differ; the content matches
    assert fresh.execute("SELECT media_id, stars FROM ratings").fetchall() == [
        (by_hash[hashes[b]], 4)
    ]
    assert (
        fresh.execute("SELECT media_id FROM media_tags WHERE tag_id = 7").fetchone()[0]
        == (by_hash[hashes[b]])
    )
    assert fresh.execute("SELECT count(*) FROM playlist_items").fetchone()[0] == 1
    assert fresh.execute("SELECT label FROM markers").fetchone()[0] == "start"
    assert fresh.execute("SELECT media_id FROM favorites").fetchone()[0] == by_hash[hashes[a]]
    fresh.close()


def test_a_partial_import_is_refused_and_erases_nothing(runner, indexed, tmp_path):
    """Importing only `users` would cascade-delete watch state, ratings, playlists: refused."""
    out = tmp_path / "user.json"
    assert runner.invoke(args=["export", str(out)]).exit_code == 0
    doc = json.loads(out.read_text())
    partial = tmp_path / "users-only.json"
    partial.write_text(json.dumps({**doc, "tables": {"users": doc["tables"]["users"]}}))
    before = indexed.execute("SELECT count(*) FROM watch_state").fetchone()[0]
    result = runner.invoke(args=["import", "--yes", str(partial)])
    assert result.exit_code == 1 and "refusing a partial import" in result.output
    assert indexed.execute("SELECT count(*) FROM watch_state").fetchone()[0] == before == 1
