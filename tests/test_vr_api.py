"""The DeoVR and HereSphere APIs (issue 15, SPEC appendix A): contract tests over real videos.

Every response is parsed and every field's name, type and unit checked against appendix A for a
flat film and mono 360°, 180° SBS, 360° TB, fisheye MKX200 and eye-swapped 180° files (real
H.264 clips made by ffmpeg, VR-named); the URLs in them are fetched with no cookie (thumbnail a
JPEG, a Range of the video, the HLS rendition of a file a headset cannot play as it is);
credentials right, wrong, missing and revoked; write-back off and on; the event server moving
the resume position the watch page shows. The preview clip each answer names (DeoVR
`videoPreview`, HereSphere `thumbnailVideo`) is fetched and opened with PyAV: an H.264 MP4 of
the right size and length, the VR ones with their layout kept; no clip, no field.
"""

from __future__ import annotations

import io
import re
import shutil
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

import av
import pytest

from services import db as dbmod
from services.people import apitokens, users
from services.previews import clips
from services.shows import ingest
from tests.conftest import TEST_PASSWORD, signed_in
from tests.mediagen import _subtitle_mkv
from tests.sample_library import long_clip, media_hash, scan_library
from tests.vr_media import pattern_video

HS = {"HereSphere-JSON-Version": "1"}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# file key -> (path under the library, width, height, layout, colours)
PLOT = "A day at the sea & a storm <at night>."
FILES = {
    "flat": ("Films/holiday.mp4", 640, 360, "mono", ("red", "red")),
    "mono360": ("VR/pano_360_mono.mp4", 400, 200, "mono", ("blue", "blue")),
    "sbs180": ("VR/beach_180_sbs.mp4", 1280, 640, "sbs", ("red", "blue")),
    "tb360": ("VR/city_360_tb.mp4", 200, 200, "tb", ("red", "blue")),
    "fisheye": ("VR/forest_MKX200.mp4", 400, 200, "sbs", ("lime", "red")),
    "swap": ("VR/lake_180_RL.mp4", 400, 200, "sbs", ("blue", "red")),
}
# What appendix A's fields must say for each (DeoVR screenType, stereoMode, is3d;
# HereSphere projection, stereo, isEyeSwapped, fov, lens).
EXPECTED = {
    "flat": ("flat", "off", False, "perspective", "mono", False, 180.0, "Linear"),
    "mono360": ("sphere", "off", False, "equirectangular360", "mono", False, 360.0, "Linear"),
    "sbs180": ("dome", "sbs", True, "equirectangular", "sbs", False, 180.0, "Linear"),
    "tb360": ("sphere", "tb", True, "equirectangular360", "tb", False, 360.0, "Linear"),
    "fisheye": ("mkx200", "sbs", True, "fisheye", "sbs", False, 200.0, "MKX200"),
    "swap": ("dome", "sbs", True, "equirectangular", "sbs", True, 180.0, "Linear"),
}
# The preview clip's frame: a flat video fits 480×480, a VR one 960×960, never enlarged.
CLIP_SIZE = {"flat": (480, 270), "sbs180": (960, 480)}


class Lib:
    def __init__(self, base: Path) -> None:
        from app import create_app
        from config import load_settings

        self.root, self.data = base / "library", base / "data"
        self.paths: dict[str, Path] = {}
        for key, (rel, w, h, layout, colors) in FILES.items():
            self.paths[key] = pattern_video(self.root / rel, w, h, layout, colors=colors)
        films = self.root / "Films"
        self.paths["subs"] = _subtitle_mkv(films / "talk.mkv", self.paths["flat"])
        self.paths["long"] = shutil.copyfile(long_clip(base / "long.mp4"), films / "long.mp4")
        (films / "holiday.nfo").write_text(f"<movie><plot>{escape(PLOT)}</plot></movie>")
        self.config = {"media_dirs": [str(self.root)], "data_dir": str(self.data)}
        self.settings = load_settings(self.config, environ={}, dotenv_path=base / "none")
        scan_library(self.settings)
        db = dbmod.open_db(self.data)
        try:
            ingest.after_scan(db, self.data)  # the .nfo beside the flat film, as a scan job does
        finally:
            db.close()
        self.app = create_app(self.config)
        made = self.app.test_cli_runner().invoke(args=["thumbnails"])
        assert made.exit_code == 0, made.output
        db = dbmod.open_db(self.data)
        try:
            self.ann = users.create(db, "ann", "admin", TEST_PASSWORD, rounds=4)
            self.bob = users.create(db, "bob", "viewer", TEST_PASSWORD, rounds=4)
            self.ann_token = apitokens.create(db, self.ann.id, "tests")
        finally:
            db.close()

    def hash(self, key: str) -> str:
        return media_hash(self.settings, self.paths[key])

    def app_with(self, **overrides):
        from app import create_app

        return create_app({**self.config, **overrides})


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Lib:
    library = Lib(tmp_path_factory.mktemp("vrapi"))
    yield library
    for app in (library.app,):
        tc = app.extensions.get("transcoder")
        if tc is not None:
            tc.close()


def fetch(client, url: str, **kw):
    """GET an absolute URL the API handed out, with a fresh cookie-less client."""
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "localhost", url
    return client.get(parts.path + ("?" + parts.query if parts.query else ""), **kw)


def hs_auth(client, name: str = "ann", password: str = TEST_PASSWORD) -> dict:
    r = client.post("/heresphere/auth", json={"username": name, "password": password})
    assert r.status_code == 200 and r.headers["HereSphere-JSON-Version"] == "1"
    return r.get_json()


def hs_token(client) -> dict[str, str]:
    body = hs_auth(client)
    assert body["access"] == 1 and isinstance(body["auth-token"], str) and body["auth-token"]
    return {"auth-token": body["auth-token"]}


def deovr(client, path: str = "/deovr", name: str = "ann", password: str = TEST_PASSWORD):
    r = client.post(path, data={"login": name, "password": password})
    assert r.status_code == 200
    return r.get_json()


def is_abs(url: object) -> bool:
    return isinstance(url, str) and url.startswith("http://localhost/")


def colour(rgb: tuple[int, int, int]) -> str:
    """Name the pattern colour a pixel is (lavfi's red, blue, lime)."""
    names = {"red": (255, 0, 0), "blue": (0, 0, 255), "lime": (0, 255, 0)}
    return min(names, key=lambda n: sum(abs(a - b) for a, b in zip(names[n], rgb, strict=True)))


def check_clip(lib: Lib, url: object, size: tuple[int, int], seconds: tuple[float, float]):
    """Fetch a preview clip's URL with no cookie, as a player does: a Range of it, then all of it;
    check it is a silent H.264 MP4 of `size`, its length within `seconds`, moov first (faststart);
    return its first frame."""
    assert is_abs(url) and "/clip.mp4?" in url, url
    client = lib.app.test_client()
    head = fetch(client, url, headers={"Range": "bytes=0-99"})
    assert head.status_code == 206 and head.headers["Content-Range"].startswith("bytes 0-99/")
    whole = fetch(client, url)
    assert whole.status_code == 200 and whole.mimetype == "video/mp4"
    assert whole.data[:100] == head.data
    assert 0 < whole.data.find(b"moov") < whole.data.find(b"mdat")  # starts before it is all in
    with av.open(io.BytesIO(whole.data)) as container:
        assert not container.streams.audio
        [stream] = container.streams.video
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == size
        length = container.duration / av.time_base
        assert seconds[0] <= length <= seconds[1], length
        return next(container.decode(stream))


# --- DeoVR ----------------------------------------------------------------------------------


def test_deovr_library_sections_and_entries(lib):
    client = lib.app.test_client()
    body = deovr(client)
    assert set(body) == {"authorized", "scenes"} and body["authorized"] == "1"
    names = [s["name"] for s in body["scenes"]]
    assert names[0] == "Recent" and "VR" in names
    assert "Folder: Films" in names and "Folder: VR" in names
    vr = next(s for s in body["scenes"] if s["name"] == "VR")
    assert len(vr["list"]) == 5  # the flat film and the mkv/long films are not VR
    for section in body["scenes"]:
        assert set(section) == {"name", "list"} and isinstance(section["name"], str)
        for entry in section["list"]:
            assert set(entry) == {"title", "videoLength", "thumbnailUrl", "video_url"}
            assert isinstance(entry["title"], str) and entry["title"]
            assert isinstance(entry["videoLength"], int)
            assert is_abs(entry["thumbnailUrl"]) and is_abs(entry["video_url"])
    anon = lib.app.test_client()  # the entries' URLs answer, the thumbnail with no cookie
    for entry in vr["list"]:
        thumb = fetch(anon, entry["thumbnailUrl"])
        assert thumb.status_code == 200 and thumb.data[:3] == b"\xff\xd8\xff"
        scene = deovr(anon, urlsplit(entry["video_url"]).path)
        assert scene["title"] == entry["title"] and scene["screenType"] != "flat"
    recent = body["scenes"][0]["list"]
    long_entry = next(e for e in recent if e["title"] == "long")
    assert long_entry["videoLength"] == 360  # seconds


@pytest.mark.parametrize("key", list(FILES))
def test_deovr_scene_fields_for_each_projection(lib, key):
    client = lib.app.test_client()
    h = lib.hash(key)
    body = deovr(client, f"/deovr/{h}")
    expected = {
        "id", "title", "authorized", "description", "date", "isFavorite", "is3d",
        "thumbnailUrl", "screenType", "stereoMode", "videoLength", "encodings", "timeStamps",
        "videoPreview",
    }  # fmt: skip
    assert set(body) == expected
    screen, stereo, is3d = EXPECTED[key][:3]
    assert (body["screenType"], body["stereoMode"], body["is3d"]) == (screen, stereo, is3d)
    assert body["authorized"] == "1" and isinstance(body["id"], int)
    assert isinstance(body["date"], int) and body["date"] > 1_600_000_000  # unix seconds
    assert body["videoLength"] == 2 and isinstance(body["videoLength"], int)
    assert body["isFavorite"] is False and isinstance(body["description"], str)
    assert body["description"] == (PLOT if key == "flat" else "")  # the plot of its .nfo
    assert body["title"] == Path(FILES[key][0]).stem
    [encoding] = body["encodings"]
    assert encoding["name"] == "original"  # H.264 MP4: a headset plays it as it is
    [source] = encoding["videoSources"]
    assert set(source) == {"resolution", "height", "width", "size", "url"}
    w, h_px = FILES[key][1:3]
    assert (source["width"], source["height"], source["resolution"]) == (w, h_px, h_px)
    assert source["size"] == lib.paths[key].stat().st_size
    # The URLs answer without a cookie: a JPEG thumbnail, a Range of the file.
    anon = lib.app.test_client()
    thumb = fetch(anon, body["thumbnailUrl"])
    assert thumb.status_code == 200 and thumb.data[:3] == b"\xff\xd8\xff"
    part = fetch(anon, source["url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.data == lib.paths[key].read_bytes()[:100]
    # The preview clip: the whole two seconds (a short video is its own preview), the frame
    # fitted in its box, never enlarged.
    size = CLIP_SIZE.get(key, (w, h_px))
    frame = check_clip(lib, body["videoPreview"], size, (1.8, 2.3))
    if FILES[key][3] == "sbs":  # the layout is kept: each eye in its half, in its colour
        image = frame.to_image()
        left, right = FILES[key][4]
        assert colour(image.getpixel((size[0] // 4, size[1] // 2))) == left
        assert colour(image.getpixel((size[0] * 3 // 4, size[1] // 2))) == right


def test_deovr_scene_markers_favourite_and_hls_for_what_a_headset_cannot_play(lib):
    admin = signed_in(lib.app, "admin", "ann")
    h = lib.hash("subs")
    assert admin.post(f"/watch/{h}/favorite", data={"on": "1"}).status_code == 200
    r = admin.post(f"/watch/{h}/markers", data={"seconds": "1.4", "label": "Hello"})
    assert r.status_code < 400, r.data
    body = deovr(lib.app.test_client(), f"/deovr/{h}")
    assert body["isFavorite"] is True
    assert body["timeStamps"] == [{"ts": 1, "name": "Hello"}]
    [encoding] = body["encodings"]
    assert encoding["name"] == "hls"  # Matroska: the HLS rendition
    url = encoding["videoSources"][0]["url"]
    assert "/hls/master.m3u8" in url
    anon = lib.app.test_client()
    master = fetch(anon, url)
    assert master.status_code == 200 and master.data.startswith(b"#EXTM3U"), master.data
    variant = master.data.decode().strip().splitlines()[-1]
    base = urlsplit(url).path.rsplit("/", 1)[0]
    playlist = anon.get(f"{base}/{variant}")
    assert playlist.status_code == 200 and b"#EXT-X-ENDLIST" in playlist.data
    segment = next(x for x in playlist.data.decode().splitlines() if x and x[0] != "#")
    seg = anon.get(f"{base}/{variant.split('/')[0]}/{segment}")
    assert seg.status_code == 200 and seg.data[:1] == b"\x47"  # an MPEG-TS packet
    favourites = next(
        s for s in deovr(lib.app.test_client())["scenes"] if s["name"] == "Favourites"
    )
    assert [e["title"] for e in favourites["list"]] == ["talk"]


def test_deovr_auth_right_wrong_missing_token_and_revoked(lib):
    client = lib.app.test_client()
    h = lib.hash("sbs180")
    assert client.get("/deovr").get_json() == {"authorized": "0", "scenes": []}
    assert client.post("/deovr").get_json() == {"authorized": "0", "scenes": []}
    assert deovr(client, name="ann", password="wrong") == {"authorized": "-1", "scenes": []}
    assert deovr(client, f"/deovr/{h}", password="wrong") == {"authorized": "-1"}
    assert client.get(f"/deovr/{h}").get_json() == {"authorized": "0"}
    gone = client.post("/deovr/0123456789abcdef", data={"login": "ann", "password": TEST_PASSWORD})
    assert gone.status_code == 200 and gone.get_json()["error"] == "no such video"
    # An API token (header, or as the password) and a signed-in browser work too.
    bearer = {"Authorization": f"Bearer {lib.ann_token}"}
    assert client.get("/deovr", headers=bearer).get_json()["authorized"] == "1"
    assert deovr(client, password=lib.ann_token)["authorized"] == "1"
    assert signed_in(lib.app, "admin", "ann").get("/deovr").get_json()["authorized"] == "1"
    # Revoked: a disabled account's password and its signed media URLs stop working.
    body = deovr(client, f"/deovr/{h}", name="bob")
    url = body["encodings"][0]["videoSources"][0]["url"]
    assert fetch(lib.app.test_client(), url, headers={"Range": "bytes=0-9"}).status_code == 206
    db = dbmod.open_db(lib.data)
    try:
        users.set_disabled(db, lib.bob.id, True)
    finally:
        db.close()
    try:
        assert deovr(client, name="bob") == {"authorized": "-1", "scenes": []}
        refused = fetch(lib.app.test_client(), url, headers={"Range": "bytes=0-9"})
        assert refused.status_code in (401, 403)
    finally:
        db = dbmod.open_db(lib.data)
        users.set_disabled(db, lib.bob.id, False)
        db.close()


def test_wrong_passwords_count_against_the_sign_in_limit(lib):
    db = dbmod.open_db(lib.data)
    try:
        users.create(db, "cy", "viewer", TEST_PASSWORD, rounds=4)
    finally:
        db.close()
    app = lib.app_with(login_limit=3)
    client = app.test_client()
    for _ in range(3):
        assert deovr(client, name="cy", password="nope")["authorized"] == "-1"
    # Over the limit: even the right password is refused for a while, in both formats.
    assert deovr(client, name="cy")["authorized"] == "-1"
    assert hs_auth(client, "cy")["access"] == -1


# --- HereSphere -----------------------------------------------------------------------------


def test_heresphere_auth_and_library(lib):
    client = lib.app.test_client()
    r = client.post("/heresphere", json={})
    assert r.headers["HereSphere-JSON-Version"] == "1"
    assert r.get_json() == {"access": 0, "library": []}
    assert hs_auth(client, password="wrong") == {"auth-token": "", "access": -1}
    token = hs_token(client)
    r = client.post("/heresphere", json={}, headers=token)
    body = r.get_json()
    assert r.status_code == 200 and r.headers["HereSphere-JSON-Version"] == "1"
    assert set(body) == {"access", "library"} and body["access"] == 1
    for section in body["library"]:
        assert set(section) == {"name", "list"}
        assert all(is_abs(u) and "/heresphere/" in u for u in section["list"])
    vr = next(s for s in body["library"] if s["name"] == "VR")
    assert len(vr["list"]) == 5
    for url in vr["list"]:
        video = client.post(urlsplit(url).path, json={}, headers=token).get_json()
        assert video["access"] == 1 and video["projection"] != "perspective"
    # A forged or garbled token is not signed in; username/password in the body works too.
    bad = client.post("/heresphere", json={}, headers={"auth-token": token["auth-token"] + "x"})
    assert bad.get_json()["access"] == 0 and bad.headers["HereSphere-JSON-Version"] == "1"
    body = client.post("/heresphere", json={"username": "ann", "password": TEST_PASSWORD})
    assert body.get_json()["access"] == 1
    wrong = client.post("/heresphere", json={"username": "ann", "password": "x"})
    assert wrong.get_json() == {"access": -1, "library": []}
    # Malformed bodies are a clear 400 with the header, never a 500.
    r = client.post("/heresphere", data=b"{not json", content_type="application/json")
    assert r.status_code == 400 and r.headers["HereSphere-JSON-Version"] == "1"


def check_hs_video(body: dict, key: str, *, media: bool = True) -> None:
    required = {
        "access", "title", "description", "thumbnailImage", "dateAdded", "duration",
        "rating", "isFavorite", "projection", "stereo", "isEyeSwapped", "fov", "lens",
        "eventServer", "subtitles", "tags", "media", "writeFavorite", "writeRating", "writeTags",
    }  # fmt: skip
    optional = {"dateReleased", "thumbnailVideo"}  # a release date, a preview clip, when known
    assert required <= set(body) <= required | optional, set(body) ^ required
    assert body["access"] == 1 and isinstance(body["title"], str)
    assert is_abs(body["thumbnailImage"]) and is_abs(body["eventServer"])
    assert DATE.match(body["dateAdded"])
    if "dateReleased" in body:
        assert DATE.match(body["dateReleased"])
    assert isinstance(body["duration"], float)
    assert isinstance(body["rating"], float) and 0 <= body["rating"] <= 5
    for flag in ("isFavorite", "isEyeSwapped", "writeFavorite", "writeRating", "writeTags"):
        assert isinstance(body[flag], bool)
    assert isinstance(body["fov"], float)
    projection, stereo, swapped, fov, lens = EXPECTED[key][3:] if key in EXPECTED else (
        "perspective", "mono", False, 180.0, "Linear")  # fmt: skip
    assert (body["projection"], body["stereo"], body["isEyeSwapped"]) == (
        projection,
        stereo,
        swapped,
    )
    assert (body["fov"], body["lens"]) == (fov, lens)
    for sub in body["subtitles"]:
        assert set(sub) == {"name", "language", "url"} and is_abs(sub["url"])
    for tag in body["tags"]:
        assert set(tag) == {"name", "start", "end", "track", "rating"}
        assert isinstance(tag["name"], str) and isinstance(tag["start"], float)
        assert isinstance(tag["end"], float) and isinstance(tag["track"], int)
    if media:
        assert len(body["media"]) == 2
    for m in body["media"]:
        assert set(m) == {"name", "sources"}
        for s in m["sources"]:
            assert set(s) == {"resolution", "height", "width", "size", "url"}
            assert all(isinstance(s[k], int) for k in ("resolution", "height", "width", "size"))
            assert is_abs(s["url"])


@pytest.mark.parametrize("key", list(FILES))
def test_heresphere_video_fields_for_each_projection(lib, key):
    client = lib.app.test_client()
    h = lib.hash(key)
    r = client.post(f"/heresphere/{h}", json={"needsMediaSource": True}, headers=hs_token(client))
    assert r.status_code == 200 and r.headers["HereSphere-JSON-Version"] == "1"
    body = r.get_json()
    check_hs_video(body, key)
    assert body["duration"] == pytest.approx(2000.0, abs=60)  # milliseconds
    assert body["title"] == Path(FILES[key][0]).stem
    assert body["description"] == (PLOT if key == "flat" else "")  # the plot of its .nfo
    assert body["writeFavorite"] is body["writeRating"] is body["writeTags"] is False
    original = body["media"][0]
    assert original["name"] == "Original"
    anon = lib.app.test_client()
    url = original["sources"][0]["url"]
    part = fetch(anon, url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == lib.paths[key].read_bytes()[100:200]
    thumb = fetch(anon, body["thumbnailImage"])
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert thumb.data[:3] == b"\xff\xd8\xff"  # JPEG, never WebP
    w, h = FILES[key][1:3]
    check_clip(lib, body["thumbnailVideo"], CLIP_SIZE.get(key, (w, h)), (1.8, 2.3))


def test_preview_clip_of_a_long_video_and_no_field_without_one(lib):
    """A six-minute film's clip is its twelve snippets (about nine seconds); a video whose clip
    is not made (yet) has neither field, and its clip URL answers 404; a clip needs the
    video's own signed URL, a session or an API token like every media route."""
    client = lib.app.test_client()
    h = lib.hash("long")
    check_clip(lib, deovr(client, f"/deovr/{h}")["videoPreview"], (160, 90), (8.5, 10.5))
    bearer = {"Authorization": f"Bearer {lib.ann_token}"}
    assert client.get(f"/media/{h}/clip.mp4", headers=bearer).status_code == 200
    assert lib.app.test_client().get(f"/media/{h}/clip.mp4").status_code in (302, 401)
    secret = lib.app.extensions["media_secret"]
    other = apitokens.sign_media(secret, lib.ann.id, lib.hash("flat"))
    refused = lib.app.test_client().get(f"/media/{h}/clip.mp4", query_string=other)
    assert refused.status_code in (302, 401, 403)

    h = lib.hash("subs")
    path = clips.clip_path(lib.data, h)
    hidden = path.rename(path.with_name("hidden"))
    try:
        scene = deovr(client, f"/deovr/{h}")
        assert scene["authorized"] == "1" and "videoPreview" not in scene
        video = client.post(f"/heresphere/{h}", json={}, headers=hs_token(client)).get_json()
        check_hs_video(video, "subs")
        assert "thumbnailVideo" not in video
        signed = apitokens.sign_media(secret, lib.ann.id, h)
        gone = lib.app.test_client().get(f"/media/{h}/clip.mp4", query_string=signed)
        assert gone.status_code == 404
    finally:
        hidden.rename(path)


def test_heresphere_subtitles_tags_markers_and_transcoded_media(lib):
    admin = signed_in(lib.app, "admin", "ann")
    h = lib.hash("subs")
    assert admin.post(f"/watch/{h}/tags", data={"tag": "Interview"}).status_code == 200
    client = lib.app.test_client()
    body = client.post(f"/heresphere/{h}", json={}, headers=hs_token(client)).get_json()
    check_hs_video(body, "subs")
    assert body["media"][0]["name"] == "Transcoded (HLS)"
    [sub] = body["subtitles"]
    assert sub["language"] == "en"
    vtt = fetch(lib.app.test_client(), sub["url"])
    assert vtt.status_code == 200 and vtt.data.startswith(b"WEBVTT")
    names = {t["name"]: t for t in body["tags"]}
    marker = names["Marker:Hello"]  # made in the DeoVR marker test
    assert marker["start"] == 1400.0 and marker["track"] == 1
    assert marker["end"] == pytest.approx(body["duration"])
    assert names["Tag:Interview"]["start"] == 0.0 and names["Tag:Interview"]["end"] == 0.0
    # Without media sources (HereSphere's scan), the rest is the same.
    lean = client.post(f"/heresphere/{h}", json={"needsMediaSource": False},
                       headers=hs_token(client)).get_json()  # fmt: skip
    check_hs_video(lean, "subs", media=False)
    assert lean["media"] == []


def test_write_back_off_by_default_then_on(lib):
    h = lib.hash("tb360")
    client = lib.app.test_client()
    token = hs_token(client)
    change = {
        "rating": 4,
        "isFavorite": True,
        "tags": [{"name": "Tag:ocean", "start": 0, "end": 0, "track": 0, "rating": 0}],
    }
    body = client.post(f"/heresphere/{h}", json=change, headers=token).get_json()
    assert body["rating"] == 0.0 and body["isFavorite"] is False
    assert not [t for t in body["tags"] if t["name"].startswith("Tag:")]
    on = lib.app_with(vr_write_back="rating,favorite,tags")
    client = on.test_client()
    body = client.post(f"/heresphere/{h}", json=change, headers=token).get_json()
    assert body["writeRating"] is body["writeFavorite"] is body["writeTags"] is True
    assert body["rating"] == 4.0 and body["isFavorite"] is True
    assert [t["name"] for t in body["tags"]] == ["Tag:ocean"]
    admin = signed_in(on, "admin", "ann")
    assert admin.get(f"/api/ratings/{h}").get_json()["your_rating"] == 4
    body = client.post(f"/heresphere/{h}", json={"rating": 0.5}, headers=token).get_json()
    assert body["rating"] == 1.0  # half a star is our one star
    # 0 clears the rating; an empty tag list removes the tags; unfavourite.
    clear = {"rating": 0, "isFavorite": False, "tags": []}
    body = client.post(f"/heresphere/{h}", json=clear, headers=token).get_json()
    assert body["rating"] == 0.0 and body["isFavorite"] is False and body["tags"] == []
    assert admin.get(f"/api/ratings/{h}").get_json()["your_rating"] is None
    # A viewer without the shared-metadata permission may not write tags even when on.
    viewer = client.post("/heresphere/auth", json={"username": "bob", "password": TEST_PASSWORD})
    vt = {"auth-token": viewer.get_json()["auth-token"]}
    body = client.post(f"/heresphere/{h}", json={"tags": change["tags"]}, headers=vt).get_json()
    assert body["writeTags"] is False and body["tags"] == []
    # Bad values are a clear 400.
    r = client.post(f"/heresphere/{h}", json={"rating": "five"}, headers=token)
    assert r.status_code == 400 and "rating" in r.get_json()["error"]


def test_delete_file_is_refused_and_logged(lib, caplog):
    h = lib.hash("flat")
    client = lib.app_with(vr_write_back="rating,favorite,tags").test_client()
    with caplog.at_level("WARNING"):
        r = client.post(f"/heresphere/{h}", json={"deleteFile": True}, headers=hs_token(client))
    assert r.status_code == 403 and "never honoured" in r.get_json()["error"]
    assert r.headers["HereSphere-JSON-Version"] == "1"
    assert lib.paths["flat"].is_file()
    assert any("delete" in rec.getMessage() and h in rec.getMessage() for rec in caplog.records)


def test_event_server_moves_the_resume_position_the_watch_page_shows(lib):
    h = lib.hash("long")
    client = lib.app.test_client()
    token = hs_token(client)
    body = client.post(f"/heresphere/{h}", json={}, headers=token).get_json()
    parts = urlsplit(body["eventServer"])
    path = parts.path + "?" + parts.query

    def send(code: int, ms: float, headers: dict | None = None):
        event = {"username": "ann", "id": h, "title": "long", "event": code, "time": ms, "speed": 1}
        r = lib.app.test_client().post(path, json=event, headers=headers or {})
        assert r.status_code == 200 and r.headers["HereSphere-JSON-Version"] == "1", r.data
        return r.get_json()

    assert send(0, 0)["access"] == 1
    send(1, 60_000)
    send(2, 123_500)
    admin = signed_in(lib.app, "admin", "ann")
    page = admin.get(f"/watch/{h}").data.decode()
    assert 'data-resume="123.50"' in page
    # One viewing is one play; a close keeps the position; the history lists it.
    send(3, 150_000)
    db = dbmod.open_db(lib.data)
    try:
        row = db.execute(
            "SELECT w.position, w.play_count FROM watch_state w JOIN media m ON m.id = w.media_id "
            "WHERE m.media_hash = ? AND w.user_id = ?",
            [h, lib.ann.id],
        ).fetchone()
    finally:
        db.close()
    assert row == (150.0, 1)
    assert 'data-resume="150.00"' in admin.get(f"/watch/{h}").data.decode()
    assert "long" in admin.get("/history").data.decode()
    # Without a valid signature or token an event changes nothing.
    forged = lib.app.test_client().post(
        f"/heresphere/event/{h}?u={lib.ann.id}&e=9999999999&s=00", json={"event": 1, "time": 5}
    )
    assert forged.get_json() == {"access": 0}
    bad = lib.app.test_client().post(path, json={"event": 7, "time": 5})
    assert bad.status_code == 400


def test_cors_only_for_configured_origins(lib):
    client = lib.app.test_client()
    r = client.post("/heresphere/auth", json={}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403  # a cross-site write from an origin not configured
    allowed = lib.app_with(cors_origins="https://vr.example.lan").test_client()
    r = allowed.post("/heresphere", json={}, headers={"Origin": "https://vr.example.lan"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://vr.example.lan"
    r = allowed.options("/heresphere", headers={"Origin": "https://vr.example.lan"})
    assert r.status_code == 200 and "auth-token" in r.headers["Access-Control-Allow-Headers"]
    r = allowed.get("/deovr", headers={"Origin": "http://other.example"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_account_page_tells_the_address(lib):
    page = signed_in(lib.app, "admin", "ann").get("/account").data.decode()
    assert "Watch in DeoVR / HereSphere" in page
    assert re.search(r"https?://[a-z0-9-]+\.local(:\d+)?/deovr", page)


def test_a_session_cookie_alone_never_writes_back(lib):
    """A browser's cookie rides on cross-site posts; the players' APIs skip CSRF, so they read
    with it but never write."""
    h = lib.hash("sbs180")
    on = lib.app_with(vr_write_back="rating,favorite,tags")
    browser = signed_in(on, "admin", "ann")
    del browser.environ_base["HTTP_X_CSRFTOKEN"]
    r = browser.post(f"/heresphere/{h}", json={"rating": 5, "isFavorite": True})
    assert r.status_code == 200 and r.get_json()["access"] == 1
    assert r.get_json()["rating"] == 0.0 and r.get_json()["isFavorite"] is False


def test_on_a_real_server_the_players_urls_stream_without_a_cookie(lib):
    """gunicorn (the lean media path in front of Flask): the URLs name the server's host and
    port, the video streams a Range and the thumbnail is a JPEG, with no cookie."""
    import json
    from http.client import HTTPConnection
    from urllib.parse import urlencode

    from tests.server import Gunicorn

    server = Gunicorn()
    env = {"LVS_MEDIA_DIRS": str(lib.root), "LVS_DATA_DIR": str(lib.data),
           "LVS_BACKGROUND": "off", "LVS_WORKERS": "1"}  # fmt: skip
    server.start(env, lib.data / "gunicorn-vrapi.log", ready="/livez")
    try:
        h = lib.hash("fisheye")
        conn = HTTPConnection("127.0.0.1", server.port, timeout=20)
        form = urlencode({"login": "ann", "password": TEST_PASSWORD})
        conn.request("POST", f"/deovr/{h}", body=form,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        scene = json.loads(conn.getresponse().read())
        url = scene["encodings"][0]["videoSources"][0]["url"]
        assert url.startswith(f"http://127.0.0.1:{server.port}/media/{h}/file?")
        for target, headers, status in (
            (url, {"Range": "bytes=10-29"}, 206),
            (scene["thumbnailUrl"], {}, 200),
            (scene["videoPreview"], {"Range": "bytes=0-7"}, 206),
        ):
            parts = urlsplit(target)
            fresh = HTTPConnection("127.0.0.1", server.port, timeout=20)
            fresh.request("GET", f"{parts.path}?{parts.query}", headers=headers)
            r = fresh.getresponse()
            body = r.read()
            assert r.status == status, body[:200]
            if "/clip.mp4?" in target:
                assert r.getheader("Content-Type") == "video/mp4" and body[4:8] == b"ftyp"
            elif status == 206:
                assert body == lib.paths["fisheye"].read_bytes()[10:30]
            else:
                assert r.getheader("Content-Type") == "image/jpeg" and body[:3] == b"\xff\xd8\xff"
    finally:
        server.stop()


def test_heresphere_token_ends_with_a_password_change_or_a_disabled_account(lib):
    db = dbmod.open_db(lib.data)
    try:
        dee = users.create(db, "dee", "viewer", TEST_PASSWORD, rounds=4)
    finally:
        db.close()
    client = lib.app.test_client()
    token = {"auth-token": hs_auth(client, "dee")["auth-token"]}
    h = lib.hash("sbs180")
    assert client.post("/heresphere", json={}, headers=token).get_json()["access"] == 1
    event = {"event": 2, "time": 1000}
    r = client.post(f"/heresphere/event/{h}", json=event, headers=token)
    assert r.get_json() == {"access": 1}  # the event server takes the auth-token too
    db = dbmod.open_db(lib.data)
    try:
        users.set_disabled(db, dee.id, True)
    finally:
        db.close()
    assert client.post("/heresphere", json={}, headers=token).get_json() == {
        "access": 0,
        "library": [],
    }
    assert client.post(f"/heresphere/event/{h}", json=event, headers=token).get_json() == {
        "access": 0
    }
    db = dbmod.open_db(lib.data)
    try:
        users.set_disabled(db, dee.id, False)
        assert client.post("/heresphere", json={}, headers=token).get_json()["access"] == 1
        users.set_password(db, dee.id, "another long password")
    finally:
        db.close()
    assert client.post("/heresphere", json={}, headers=token).get_json()["access"] == 0
    assert hs_auth(client, "dee")["access"] == -1  # the old password no longer works
    assert hs_auth(client, "dee", "another long password")["access"] == 1


def test_an_admin_switches_write_back_on_the_account_page(lib):
    h = lib.hash("mono360")
    admin = signed_in(lib.app, "admin", "ann")
    page = admin.get("/account").data.decode()
    assert "Ratings: <strong>off</strong>" in page  # the switches, off
    viewer = signed_in(lib.app, "viewer", "bob")
    assert "data-vr-write-back" not in viewer.get("/account").data.decode()
    switch = "/admin/vr-players/write-back"
    assert viewer.post(switch, data={"name": "rating", "on": "1"}).status_code == 403
    client = lib.app.test_client()
    token = hs_token(client)
    first = client.post(f"/heresphere/{h}", json={"rating": 3}, headers=token).get_json()
    assert first["rating"] == 0.0
    assert admin.post(switch, data={"name": "rating", "on": "1"}).status_code == 303
    assert "Ratings: <strong>on</strong>" in admin.get("/account").data.decode()
    body = client.post(f"/heresphere/{h}", json={"rating": 3, "isFavorite": True}, headers=token)
    body = body.get_json()
    assert body["writeRating"] is True and body["writeFavorite"] is False
    assert body["rating"] == 3.0 and body["isFavorite"] is False
    assert admin.post(switch, data={"name": "rating", "on": "0"}).status_code == 303
    body = client.post(f"/heresphere/{h}", json={"rating": 0}, headers=token).get_json()
    assert body["writeRating"] is False and body["rating"] == 3.0
    assert admin.post(switch, data={"name": "delete", "on": "1"}).status_code == 400
