"""The admin dashboard: who may see it, what it shows, its live region, and its actions."""

from __future__ import annotations

import shutil

import pytest

from services import background
from services import db as dbmod


@pytest.fixture
def inline_jobs(app):
    """Give the app an in-process job runner, as a server's background owner has."""
    from dataclasses import replace

    settings = replace(app.config["SETTINGS"], background="inline")
    running = background.start(settings)
    app.extensions["background"] = running
    yield running.jobs
    running.stop()


def test_anonymous_and_viewers_are_kept_out(app, viewer_client):
    anonymous = app.test_client()
    for url in ("/admin/performance", "/admin/performance.json", "/admin/purge"):
        assert anonymous.get(url).status_code in (302, 303, 401)
        assert viewer_client.get(url).status_code == 403
    assert viewer_client.post("/admin/actions/purge", data={"confirm": "0:0"}).status_code == 403


def test_dashboard_page_and_live_region(admin_client):
    page = admin_client.get("/admin/performance")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="performance-live"' in html and 'hx-trigger="every 3s"' in html
    assert "<svg" in html and "<polyline" in html  # charts drawn on the server
    for heading in ("Requests", "Endpoints", "Jobs", "Library", "Watching", "Recent errors"):
        assert f">{heading}</h2>" in html
    part = admin_client.get(
        "/admin/performance", headers={"HX-Request": "true", "HX-Target": "performance-live"}
    )
    body = part.get_data(as_text=True)
    assert part.status_code == 200 and "<html" not in body and "admin-grid" in body
    assert "admin.performance" in body  # the first page view is in the endpoint table now
    assert part.headers["Cache-Control"] == "no-store"


def test_dashboard_shows_library_jobs_and_failures(
    app, admin_client, inline_jobs, media, library_dir
):
    shutil.copy2(media["h264_mp4"], library_dir / "clip.mp4")
    shutil.copy2(media["corrupt_mp4"], library_dir / "broken.mp4")
    response = admin_client.post("/admin/actions/scan")
    assert response.status_code == 303
    assert "Scan+started" in response.headers["Location"]
    data = admin_client.get("/admin/performance.json").get_json()
    totals = data["library"]["totals"]
    assert totals["items"] == 2 and totals["failed"] == 1  # the broken file is an item too
    assert data["library"]["codecs"] == [["h264", 1]]
    (failure,) = data["library"]["probe_failures"]
    assert failure["path"].endswith("broken.mp4") and failure["reason"]
    assert data["jobs"]["owner"] is True and data["jobs"]["scan"]["state"] == "done"
    assert data["library"]["previews"].get("thumbnail:ok") == 1
    assert data["disk"]["thumbs"]["files"] >= 1
    html = admin_client.get("/admin/performance").get_data(as_text=True)
    assert "broken.mp4" in html and "h264 1" in html


def test_retry_failed_forgets_failures_and_tries_again(
    app, admin_client, inline_jobs, media, library_dir
):
    shutil.copy2(media["corrupt_mp4"], library_dir / "broken.mp4")
    assert admin_client.post("/admin/actions/scan").status_code == 303
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    assert db.execute("SELECT count(*) FROM probe_errors").fetchone()[0] == 1
    response = admin_client.post("/admin/actions/retry-failed")
    assert "Retrying+0+failed+previews+and+1+failed+files" in response.headers["Location"]
    # Tried again by a full scan of its folder: it fails again, recorded afresh.
    assert db.execute("SELECT count(*) FROM probe_errors").fetchone()[0] == 1
    db.close()


def test_regenerate_thumbnails_makes_missing_ones(
    app, admin_client, inline_jobs, media, library_dir
):
    shutil.copy2(media["h264_mp4"], library_dir / "clip.mp4")
    admin_client.post("/admin/actions/scan")
    data_dir = app.config["SETTINGS"].data_dir
    (thumb,) = list((data_dir / "thumbs").rglob("*.jpg"))
    thumb.unlink()
    db = dbmod.open_db(data_dir)
    with dbmod.write(db):
        db.execute("DELETE FROM thumbs WHERE kind = 'thumbnail'")
    db.close()
    response = admin_client.post("/admin/actions/thumbnails")
    assert response.status_code == 303
    assert thumb.exists()


def test_purge_shows_the_count_first_and_needs_it_back(
    app, admin_client, inline_jobs, media, library_dir
):
    shutil.copy2(media["h264_mp4"], library_dir / "a.mp4")
    shutil.copy2(media["jpeg_exif"], library_dir / "b.jpg")
    admin_client.post("/admin/actions/scan")
    (library_dir / "b.jpg").unlink()
    admin_client.post("/admin/actions/scan")
    page = admin_client.get("/admin/purge").get_data(as_text=True)
    assert 'id="purge-files">1<' in page and 'id="purge-media">1<' in page
    assert 'name="confirm" value="1:1"' in page
    stale = admin_client.post("/admin/actions/purge", data={"confirm": "0:0"})
    assert stale.status_code == 200 and "The numbers changed" in stale.get_data(as_text=True)
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    assert db.execute("SELECT count(*) FROM media").fetchone()[0] == 2
    done = admin_client.post("/admin/actions/purge", data={"confirm": "1:1"})
    assert (
        done.status_code == 303 and "Purged+1+missing+files+and+1+items" in done.headers["Location"]
    )
    assert db.execute("SELECT count(*) FROM media").fetchone()[0] == 1
    db.close()


def test_actions_need_csrf_from_a_browser_session(app):
    from tests.conftest import signed_in

    client = signed_in(app, "admin")
    del client.environ_base["HTTP_X_CSRFTOKEN"]
    assert client.post("/admin/actions/scan").status_code in (400, 403)


def test_health_probes(app):
    client = app.test_client()
    assert client.get("/health").data == b"ok\n"
    assert client.get("/livez").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503  # never scanned: the library is not known yet
    assert ready.get_json()["database"] == "ok"


def test_active_streams_count_while_a_file_is_being_sent(
    app, admin_client, inline_jobs, media, library_dir
):
    shutil.copy2(media["h264_mp4"], library_dir / "clip.mp4")
    admin_client.post("/admin/actions/scan")
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    (media_hash,) = db.execute("SELECT media_hash FROM media").fetchone()
    db.close()

    def active() -> int:
        return admin_client.get("/admin/performance.json").get_json()["active_streams"]

    before = active()
    playing = admin_client.get(f"/media/{media_hash}/file", buffered=False)
    assert playing.status_code == 200
    assert active() == before + 1
    next(iter(playing.response))  # a first chunk arrives; the rest is still to send
    assert active() == before + 1
    playing.close()
    assert active() == before
