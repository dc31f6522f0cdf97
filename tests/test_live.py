"""Live pages' change feed and the installable app's parts (issue 19), without a browser:
the change log the triggers write, the feed's 204 and what a changed answer says, the activity
file every process reads, the manifest, the service worker and the offline page."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

from services import db as dbmod
from services.library.scanner import scan as run_scan
from services.live import activity, feed
from tests.conftest import signed_in


def _scan(settings, db) -> None:
    run_scan(db, settings)


def test_triggers_log_files_thumbs_and_metadata(settings, db, media, library_dir):
    shutil.copy(media["h264_mp4"], library_dir / "a.mp4")
    _scan(settings, db)
    start = feed.latest(db)
    assert start > 0  # the scan's new file is in the log
    assert feed.since(db, start) == feed.Changes(seq=start, reset=False)

    shutil.copy(media["vp9_webm"], library_dir / "b.webm")
    _scan(settings, db)
    got = feed.since(db, start)
    (new_hash,) = got.added
    folder = db.execute("SELECT folder_id FROM files WHERE name = 'b.webm'").fetchone()[0]
    assert got.folders == (folder,) and got.gone == () and not got.reset

    media_id = db.execute("SELECT id FROM media WHERE media_hash = ?", [new_hash]).fetchone()[0]
    at = feed.latest(db)
    db.execute(
        "INSERT INTO thumbs (media_id, kind, media_hash, status, made_at) "
        "VALUES (?, 'thumbnail', ?, 'ok', 0)",
        [media_id, new_hash],
    )
    db.execute(
        "INSERT INTO ratings (user_id, media_id, stars, rated_at) VALUES (1, ?, 4, 0)", [media_id]
    )
    got = feed.since(db, at)
    assert got.thumbs == (new_hash,) and got.meta == (new_hash,) and got.added == ()

    at = feed.latest(db)
    (library_dir / "b.webm").unlink()
    _scan(settings, db)
    got = feed.since(db, at)
    assert got.gone == (new_hash,) and got.folders == (folder,)


def test_a_failed_thumbnail_is_no_change(db, settings, media, library_dir):
    shutil.copy(media["h264_mp4"], library_dir / "a.mp4")
    _scan(settings, db)
    media_id, h = db.execute("SELECT id, media_hash FROM media").fetchone()
    at = feed.latest(db)
    db.execute(
        "INSERT INTO thumbs (media_id, kind, media_hash, status, made_at) "
        "VALUES (?, 'thumbnail', ?, 'failed', 0)",
        [media_id, h],
    )
    assert feed.latest(db) == at


def test_far_behind_or_ahead_is_a_reset(db, settings, media, library_dir):
    shutil.copy(media["h264_mp4"], library_dir / "a.mp4")
    _scan(settings, db)
    media_id = db.execute("SELECT id FROM media").fetchone()[0]
    at = feed.latest(db)
    for n in range(feed.LIMIT + 5):
        db.execute(
            "INSERT OR REPLACE INTO ratings (user_id, media_id, stars, rated_at) VALUES (1, ?, ?, 0)",
            [media_id, 1 + n % 5],
        )
    assert feed.since(db, at).reset
    assert feed.since(db, feed.latest(db) + 10).reset  # a restored older database
    assert not feed.since(db, feed.latest(db) - 1).reset


def test_the_log_stays_bounded(db):
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
        "INSERT INTO live_changes (kind, at) SELECT 'meta', 0 FROM n"
    )
    count, top = db.execute("SELECT count(*), max(seq) FROM live_changes").fetchone()
    assert top == 20000 and count <= 8192 + 256


def test_feed_answers_204_until_something_changes(app, library_dir, media):
    client = signed_in(app, "viewer")
    page = client.get("/")
    token = page.get_data(as_text=True).split('data-token="')[1].split('"')[0]
    seq = int(token.split("-")[0])
    answer = client.get(f"/live/feed?since={token}")
    assert answer.status_code == 204 and answer.headers["Cache-Control"] == "no-store"

    shutil.copy(media["h264_mp4"], library_dir / "new.mp4")
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    run_scan(db, app.config["SETTINGS"])
    db.close()
    answer = client.get(f"/live/feed?since={token}")
    assert answer.status_code == 200
    body = answer.get_json()
    assert int(body["token"].split("-")[0]) > seq and len(body["added"]) == 1
    assert "activity" not in body  # a viewer does not see the jobs
    assert client.get(f"/live/feed?since={body['token']}").status_code == 204


def test_feed_refuses_a_bad_token_and_strangers(app):
    client = signed_in(app, "viewer")
    for bad in ("", "x", "1-", "-1-2", "1" * 30 + "-0"):
        assert client.get(f"/live/feed?since={bad}").status_code == 400
    stranger = app.test_client().get("/live/feed?since=0-0")
    assert stranger.status_code in (302, 401)


def test_admins_get_the_activity_file(app, tmp_path):
    data_dir = app.config["SETTINGS"].data_dir
    running = [
        type("J", (), {"kind": "scan", "phase": "probe", "target": "", "done": 3, "total": 4})()
    ]
    look = {"value": activity.summarize(running, {"thumbnail": 7})}
    publisher = activity.Publisher(data_dir, lambda: look["value"])
    publisher.publish()
    admin = signed_in(app, "admin")
    page = admin.get("/").get_data(as_text=True)
    assert 'id="live-activity"' in page
    token = page.split('data-token="')[1].split('"')[0]
    body = admin.get(f"/live/feed?since={token}").get_json()
    assert body["activity"]["running"][0]["percent"] == 75.0
    assert body["activity"]["queued"] == {"thumbnail": 7}
    assert admin.get(f"/live/feed?since={body['token']}").status_code == 204
    assert not publisher.publish()  # unchanged: not written again
    look["value"] = activity.summarize([], {})
    assert publisher.publish()
    after = admin.get(f"/live/feed?since={body['token']}").get_json()
    assert after["activity"] == {"running": [], "queued": {}}
    publisher.stop()
    assert not publisher.path.exists()
    assert 'id="live-activity"' not in signed_in(app, "viewer", "v2").get("/").get_data(
        as_text=True
    )


def test_manifest_worker_and_offline_page_need_no_sign_in(app):
    client = app.test_client()
    manifest = client.get("/manifest.webmanifest")
    assert manifest.status_code == 200
    assert manifest.mimetype == "application/manifest+json"
    body = json.loads(manifest.data)
    assert body["display"] == "standalone" and body["start_url"] == "/"
    sizes = {icon["sizes"] for icon in body["icons"]}
    assert {"192x192", "512x512"} <= sizes
    assert [s["name"] for s in body["shortcuts"]] == ["Continue watching", "Search"]
    for icon in body["icons"]:
        got = client.get(icon["src"])
        assert got.status_code == 200 and got.mimetype == "image/png"
        from io import BytesIO

        from PIL import Image

        assert Image.open(BytesIO(got.data)).size == tuple(map(int, icon["sizes"].split("x")))

    sw = client.get("/sw.js")
    assert sw.status_code == 200 and sw.mimetype == "text/javascript"
    assert sw.headers["Service-Worker-Allowed"] == "/"
    text = sw.get_data(as_text=True)
    assert "self.LVS_CONFIG" not in text and '"offline": "/offline"' in text

    offline = client.get("/offline")
    assert offline.status_code == 200
    page = offline.get_data(as_text=True)
    assert "The server is not answering — is it on?" in page
    assert "csrf" not in page.lower()  # nothing of anyone's session


def test_pages_link_the_manifest_and_the_worker(app):
    page = signed_in(app, "viewer").get("/").get_data(as_text=True)
    assert 'rel="manifest" href="/manifest.webmanifest"' in page
    assert 'name="lvs-sw" content="/sw.js"' in page


def test_activity_reader_adds_up_processes_and_survives_torn_or_dead_files(tmp_path):
    reader = activity.Reader(tmp_path)
    assert reader.read() == activity.IDLE
    folder = tmp_path / activity.FOLDER
    folder.mkdir()
    mine = folder / f"{os.getpid()}.json"
    mine.write_text('{"v": 5, "running": [{"kind": "scan"}], "queued": {"thumbnail": 2}}')
    parent = folder / f"{os.getppid()}.json"  # another live process (pytest's parent)
    parent.write_text('{"v": 7, "running": [{"kind": "thumbnail"}], "queued": {"thumbnail": 1}}')
    dead = _dead_pid()
    (folder / f"{dead}.json").write_text('{"v": 100, "running": [{"kind": "scan"}], "queued": {}}')
    got = reader.read()
    assert got["v"] == 12 and got["queued"] == {"thumbnail": 3}
    assert sorted(j["kind"] for j in got["running"]) == ["scan", "thumbnail"]
    time.sleep(0.01)
    mine.write_text('{"v": 6, "runn')  # caught mid-write: the last one read stands
    assert reader.read()["v"] == 12


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_admins_see_a_running_transcode(tmp_path_factory, media):
    from tests.test_hls import Library, open_session

    lib = Library(tmp_path_factory.mktemp("live-hls"), media)
    try:
        admin = signed_in(lib.app, "admin")
        token = admin.get("/").get_data(as_text=True).split('data-token="')[1].split('"')[0]
        assert admin.get(f"/live/feed?since={token}").status_code == 204  # nothing runs
        h = lib.hash("long_hevc")
        sid, _ = open_session(admin, h)
        assert admin.get(f"/media/{h}/hls/{sid}/0.ts").status_code == 200  # its encoder runs
        body = admin.get(f"/live/feed?since={token}").get_json()
        (running,) = [j for j in body["activity"]["running"] if j["kind"] == "transcode"]
        assert running["target"] == h
    finally:
        tc = lib.app.extensions.get("transcoder")
        if tc is not None:
            tc.close()


def test_guests_pages_are_live_too(library_dir, tmp_path):
    from app import create_app

    app = create_app(
        {"media_dirs": [str(library_dir)], "data_dir": str(tmp_path / "data"), "guest": True}
    )
    guest = app.test_client()
    page = guest.get("/").get_data(as_text=True)
    assert 'id="live"' in page and 'id="live-activity"' not in page
    token = page.split('data-token="')[1].split('"')[0]
    assert guest.get(f"/live/feed?since={token}").status_code == 204


def test_nothing_changed_is_answered_in_front_of_flask(app, library_dir, media):
    """The 204 skips Flask (no before_request hook runs); everything else still reaches it."""
    seen = []
    app.before_request(lambda: seen.append(1))
    viewer = signed_in(app, "viewer")
    page = viewer.get("/").get_data(as_text=True)
    token = page.split('data-token="')[1].split('"')[0]
    seen.clear()
    answer = viewer.get(f"/live/feed?since={token}")
    assert answer.status_code == 204 and seen == []
    assert answer.headers["Cache-Control"] == "no-store" and answer.headers["X-Request-ID"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert viewer.get("/live/feed?since=bad").status_code == 400 and seen == [1]  # Flask's 400
    stranger = app.test_client().get(f"/live/feed?since={token}")
    assert stranger.status_code in (302, 401)  # Flask's guard: no valid credentials
    foreign = viewer.get(f"/live/feed?since={token}", headers={"Host": "evil.example.com"})
    assert foreign.status_code == 400  # the Host check, as Flask does it

    shutil.copy(media["h264_mp4"], library_dir / "new.mp4")
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    run_scan(db, app.config["SETTINGS"])
    db.close()
    changed = viewer.get(f"/live/feed?since={token}")  # a commit: the kept seq is dropped
    assert changed.status_code == 200 and len(changed.get_json()["added"]) == 1
