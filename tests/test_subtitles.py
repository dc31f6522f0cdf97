"""Subtitles on real files: sidecars found by the scan and the watcher, decoded from several
encodings, converted to WebVTT, served; embedded tracks extracted in one ffmpeg pass; prefs."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from services import db as dbmod
from services.library import languages
from services.library.probe_pool import ProbePool
from services.library.scanner import scan
from services.library.subtitle_files import match
from services.playback.subtitles import convert, extract, prefs, tracks
from tests.conftest import signed_in
from tests.subtitle_media import (
    ASS,
    SRT_ACCENTS,
    make_mov_text_mp4,
    make_plain_mp4,
    make_tracks_mkv,
    write_sidecars,
)
from tests.test_watcher import live, wait_for  # noqa: F401 (the live-watcher fixture)

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("subclips")
    return {
        "plain": make_plain_mp4(work / "plain.mp4"),
        "mkv": make_tracks_mkv(work / "tracks.mkv", work),
        "mp4": make_mov_text_mp4(work / "movtext.mp4", work),
    }


def cues(vtt: str) -> list[tuple[str, str, str]]:
    """Return (start, end, text) of each cue of a WebVTT text."""
    out = []
    for block in vtt.split("\n\n")[1:]:
        lines = block.strip().splitlines()
        if lines and "-->" in lines[0]:
            start, end = (p.strip() for p in lines[0].split("-->"))
            out.append((start, end, "\n".join(lines[1:])))
    return out


# ---- names and languages -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, language, forced, sdh, title",
    [
        ("Movie.srt", None, False, False, None),
        ("Movie.en.srt", "en", False, False, None),
        ("Movie.eng.forced.srt", "en", True, False, None),
        ("Movie.English.SDH.srt", "en", False, True, None),
        ("Movie.pt-BR.srt", "pt-BR", False, False, None),
        ("Movie.ger.commentary.srt", "de", False, False, "commentary"),
        ("movie.FR.hi.srt", "fr", False, True, None),
    ],
)
def test_sidecar_names_give_language_and_flags(name, language, forced, sdh, title):
    stem, facts = match(["Movie"], name, any_name=False)
    assert stem == "Movie"
    assert (facts.language, facts.forced, facts.sdh, facts.title) == (language, forced, sdh, title)


def test_sidecar_belongs_to_the_longest_base_name_and_not_to_others():
    assert match(["Movie", "Movie.Part2"], "Movie.Part2.en.srt", any_name=False)[0] == "Movie.Part2"
    assert match(["Movie"], "Moviegoer.en.srt", any_name=False) is None
    assert match(["Movie"], "2_English.srt", any_name=True)[1].language == "en"
    assert match(["A", "B"], "English.srt", any_name=True) is None


def test_stream_language_codes_compare_as_one_tag():
    assert [languages.tag(c) for c in ("eng", "en", "ger", "deu", "pt_br", "und")] == [
        "en", "en", "de", "de", "pt-BR", None,
    ]  # fmt: skip
    assert set(languages.codes("de")) >= {"de", "deu", "ger"}


# ---- decoding and conversion ---------------------------------------------------------------


@pytest.mark.parametrize(
    "data, encoding",
    [
        (SRT_ACCENTS.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + SRT_ACCENTS.encode("utf-8"), "utf-8 (BOM)"),
        (SRT_ACCENTS.encode("utf-16"), "utf-16 (BOM)"),
        (SRT_ACCENTS.encode("cp1252"), None),
    ],
)
def test_encodings_are_detected_and_accents_survive(data: bytes, encoding: str | None):
    done = convert.convert_bytes(data, "srt")
    assert "Café, déjà vu, naïve façade — œuvre" in done.vtt
    assert "À bientôt, garçon!" in done.vtt
    if encoding:
        assert done.encoding == encoding
    else:
        assert done.encoding not in ("utf-8", "ascii")  # a legacy code page was guessed
    assert cues(done.vtt)[0][:2] == ("00:00:00.250", "00:00:01.500")


def test_ass_styles_and_override_tags_are_stripped_timing_exact():
    done = convert.convert_bytes(ASS.encode(), "ass")
    assert cues(done.vtt) == [
        ("00:00:00.250", "00:00:01.370", "Styled line\nsecond row"),
        ("00:00:01.500", "00:00:02.990", "A sign"),
    ]  # the comment and the drawing are gone
    assert "{" not in done.vtt and "\\" not in done.vtt


def test_cue_text_is_data_not_markup():
    done = convert.convert_bytes(
        b"1\n00:00:01,000 --> 00:00:02,000\n<script>alert(1)</script> a & b --> c\n", "srt"
    )
    text = cues(done.vtt)[0][2]
    assert "<" not in text and ">" not in text
    assert "&lt;script&gt;" not in text or "alert(1)" in text  # tags dropped or escaped
    assert "a &amp; b --&gt; c" in text


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (os.urandom(4096), "not text"),
        (b"\x00\x01\x02\x03" * 2000, "not text"),
        (b"just some words, no cues at all\n", "not a srt file|no subtitles"),
        (b"x" * (convert.MAX_BYTES + 1), "too large"),
    ],
)
def test_bad_subtitle_data_fails_with_a_reason(data: bytes, reason: str):
    with pytest.raises(convert.SubtitleError, match=reason):
        convert.convert_bytes(data, "srt")


# ---- the scan finds sidecars ---------------------------------------------------------------


def _library(library_dir: Path, clips: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    film = library_dir / "Arrival (2016)"
    film.mkdir()
    shutil.copyfile(clips["plain"], film / "Arrival (2016) 1080p.mp4")
    found = write_sidecars(film, "Arrival (2016) 1080p")
    subs = film / "Subs"
    subs.mkdir()
    (subs / "2_Spanish.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nHola\n", "utf-8")
    outside = tmp_path / "outside.en.srt"
    outside.write_text("1\n00:00:01,000 --> 00:00:02,000\nsecret\n", "utf-8")
    os.symlink(outside, film / "Arrival (2016) 1080p.it.srt")  # leaves the library: ignored
    (film / "Arrival (2016) 1080p.nl.srt").write_bytes(os.urandom(3000))  # binary
    (film / "Arrival (2016) 1080p.sv.srt").write_bytes(b"")  # empty
    with open(film / "Arrival (2016) 1080p.da.srt", "wb") as huge:
        huge.truncate(21 * 2**20)  # over the cap (sparse: costs no disk)
    found["film"] = film
    return found


def _tracks(db, media_hash: str) -> dict[str, tracks.SubtitleTrack]:
    return {t.path or t.key: t for t in tracks.list_tracks(db, media_hash).subtitles}


def _hash(db, name: str) -> str:
    return db.execute(
        "SELECT m.media_hash FROM media m JOIN files f ON f.media_id = m.id WHERE f.name = ?",
        [name],
    ).fetchone()[0]


def test_scan_finds_sidecars_reads_them_once_and_records_failures(
    settings, db, library_dir: Path, clips, tmp_path: Path
):
    _library(library_dir, clips, tmp_path)
    with ProbePool(1, 30.0) as pool:
        scan(db, settings, probe_pool=pool)
    media_hash = _hash(db, "Arrival (2016) 1080p.mp4")
    found = _tracks(db, media_hash)
    base = "Arrival (2016)/Arrival (2016) 1080p"
    assert set(found) == {
        f"{base}.en.srt",
        f"{base}.de.forced.srt",
        f"{base}.English.SDH.srt",
        f"{base}.fr.srt",
        f"{base}.ja.ass",
        f"{base}.pt-BR.vtt",
        f"{base}.nl.srt",
        f"{base}.sv.srt",
        f"{base}.da.srt",
        "Arrival (2016)/Subs/2_Spanish.srt",
    }  # not the symlink that leaves the library
    assert found[f"{base}.de.forced.srt"].forced and found[f"{base}.de.forced.srt"].language == "de"
    assert found[f"{base}.English.SDH.srt"].sdh
    assert found[f"{base}.pt-BR.vtt"].language == "pt-BR"
    assert found["Arrival (2016)/Subs/2_Spanish.srt"].language == "es"
    assert found[f"{base}.nl.srt"].status == "failed"
    assert "not text" in found[f"{base}.nl.srt"].reason
    assert (found[f"{base}.sv.srt"].status, found[f"{base}.sv.srt"].reason) == (
        "failed", "empty file",
    )  # fmt: skip
    assert found[f"{base}.da.srt"].status == "failed"
    assert found[f"{base}.da.srt"].reason.startswith("too large for a subtitle file")
    ok = [t for t in found.values() if t.status == "ok"]
    assert len(ok) == 7
    encodings = dict(db.execute("SELECT language, encoding FROM subtitle_files").fetchall())
    assert encodings["de"] == "utf-8 (BOM)" and encodings["en"] in ("utf-8", "utf-16 (BOM)")


def test_a_sidecar_added_or_removed_later_is_followed_by_the_watcher(
    live,  # noqa: F811
    library_dir: Path,
    clips,
):
    film = library_dir / "Show"
    film.mkdir()
    shutil.copyfile(clips["plain"], film / "Show.S01E01.mp4")
    w = live(watch="events")
    media_hash = _hash(w.db, "Show.S01E01.mp4")
    assert tracks.list_tracks(w.db, media_hash).subtitles == ()
    scans_before = len(w.calls)
    (film / "Show.S01E01.en.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nHi\n", "utf-8")
    wait_for(
        lambda: len(tracks.list_tracks(w.db, media_hash).subtitles) == 1, what="the new sidecar"
    )
    # Only the folder was scanned, and the film was not read again (no new probe).
    assert all(p == film for _, folders, _ in w.calls[scans_before:] for p in folders)
    assert all(r.new == r.changed == 0 for _, _, r in w.calls[scans_before:])
    subs = film / "Subtitles"
    subs.mkdir()
    (subs / "Show.S01E01.de.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nHallo\n", "utf-8")
    wait_for(
        lambda: len(tracks.list_tracks(w.db, media_hash).subtitles) == 2, what="the Subtitles/ one"
    )
    (film / "Show.S01E01.en.srt").unlink()
    shutil.rmtree(subs)
    wait_for(lambda: tracks.list_tracks(w.db, media_hash).subtitles == (), what="both dropped")


# ---- serving -------------------------------------------------------------------------------


@pytest.fixture
def scanned(app, library_dir: Path, clips, tmp_path: Path):
    _library(library_dir, clips, tmp_path)
    shutil.copyfile(clips["mkv"], library_dir / "tracks.mkv")
    shutil.copyfile(clips["mp4"], library_dir / "movtext.mp4")
    cfg = app.config["SETTINGS"]
    database = dbmod.open_db(cfg.data_dir)
    with ProbePool(1, 30.0) as pool:
        scan(database, cfg, probe_pool=pool)
    tracks.check_new(database)  # as the job runner and `flask scan` do after a scan
    yield database
    database.close()


def test_tracks_json_and_vtt_are_served_to_the_signed_in_only(app, scanned):
    media_hash = _hash(scanned, "Arrival (2016) 1080p.mp4")
    anonymous = app.test_client()
    assert anonymous.get(f"/media/{media_hash}/subtitles.json").status_code in (302, 401)
    client = signed_in(app, "viewer")
    body = client.get(f"/media/{media_hash}/subtitles.json").get_json()
    by_lang = {t["language"]: t for t in body["subtitles"]}
    assert by_lang["de"]["forced"] and by_lang["de"]["label"] == "German (forced)"
    answer = client.get(by_lang["fr"]["url"])
    assert answer.status_code == 200 and answer.mimetype == "text/vtt"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "Café, déjà vu" in answer.get_data(as_text=True)
    again = client.get(by_lang["fr"]["url"], headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304
    failed = by_lang["nl"]
    assert failed["status"] == "failed" and failed["url"] is None
    key = failed["key"]
    refused = client.get(f"/media/{media_hash}/subtitles/{key}.vtt")
    assert refused.status_code == 422 and "not text" in refused.get_data(as_text=True)
    for bad in ("x1", "s99999", "e77", "s1.5", "../etc"):
        assert client.get(f"/media/{media_hash}/subtitles/{bad}.vtt").status_code == 404
    assert client.get("/media/0000000000000000/subtitles.json").status_code == 404


def test_a_signed_media_url_opens_the_tracks_of_that_item(app, scanned):
    from services.people import apitokens

    media_hash = _hash(scanned, "Arrival (2016) 1080p.mp4")
    user = signed_in(app, "viewer").user
    params = apitokens.sign_media(app.extensions["media_secret"], user.id, media_hash)
    anonymous = app.test_client()
    body = anonymous.get(f"/media/{media_hash}/subtitles.json", query_string=params).get_json()
    url = next(t["url"] for t in body["subtitles"] if t["language"] == "en")
    assert "s=" in url
    assert anonymous.get(url).status_code == 200
    other = _hash(scanned, "tracks.mkv")
    assert anonymous.get(f"/media/{other}/subtitles.json", query_string=params).status_code in (
        302, 401, 403,
    )  # fmt: skip


def test_embedded_tracks_are_listed_and_extracted_in_one_pass(app, scanned):
    client = signed_in(app, "viewer")
    media_hash = _hash(scanned, "tracks.mkv")
    body = client.get(f"/media/{media_hash}/subtitles.json").get_json()
    subs = body["subtitles"]
    assert [(t["key"], t["language"], t["kind"], t["forced"]) for t in subs] == [
        ("e3", "en", "text", False),
        ("e4", "de", "text", True),
        ("e5", "en", "picture", False),
    ]
    assert subs[2]["url"] is None and subs[2]["codec"] == "hdmv_pgs_subtitle"
    audio = body["audio"]
    assert [(a["index"], a["language"], a["channels"], a["codec"]) for a in audio] == [
        (1, "en", 2, "aac"),
        (2, "de", 6, "ac3"),
    ]
    en = client.get(subs[0]["url"])  # waits for the extraction (no ?partial=1)
    assert en.headers["X-Subtitles-Complete"] == "1"
    assert cues(en.get_data(as_text=True)) == [
        ("00:00:00.500", "00:00:01.750", "Hello there &amp; welcome"),
        ("00:00:02.000", "00:00:03.500", "alert(1)Second line"),
    ]
    folder = extract.cache_dir(app.config["SETTINGS"].data_dir, media_hash)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["tracks"]) == {"3", "4"}  # both text tracks from the one pass
    assert sorted(p.name for p in folder.glob("*.vtt")) == ["3.vtt", "4.vtt"]
    de = client.get(subs[1]["url"]).get_data(as_text=True)
    assert "Hallo zusammen" in de
    pgs = client.get(f"/media/{media_hash}/subtitles/e5.vtt")
    assert pgs.status_code == 422 and "burned in" in pgs.get_data(as_text=True)


def test_mov_text_is_extracted(app, scanned):
    client = signed_in(app, "viewer")
    media_hash = _hash(scanned, "movtext.mp4")
    subs = client.get(f"/media/{media_hash}/subtitles.json").get_json()["subtitles"]
    assert [(t["codec"], t["language"]) for t in subs] == [("mov_text", "en")]
    text = client.get(subs[0]["url"]).get_data(as_text=True)
    assert [c[:2] for c in cues(text)] == [
        ("00:00:00.500", "00:00:01.750"),
        ("00:00:02.000", "00:00:03.500"),
    ]


def test_a_changed_file_is_extracted_again(app, scanned, library_dir: Path):
    cfg = app.config["SETTINGS"]
    media_hash = _hash(scanned, "movtext.mp4")
    source = os.fsencode(library_dir / "movtext.mp4")
    status = extract.ensure(cfg.data_dir, media_hash, source, [(1, "mov_text")], wait=20)
    assert status.done
    folder = extract.cache_dir(cfg.data_dir, media_hash)
    first = (folder / "manifest.json").stat().st_mtime_ns
    st = os.stat(source)
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert extract.read_manifest(folder, st.st_size, st.st_mtime_ns + 10**9) is None
    status = extract.ensure(cfg.data_dir, media_hash, source, [(1, "mov_text")], wait=20)
    assert status.done and (folder / "manifest.json").stat().st_mtime_ns != first


def test_partial_answers_come_while_extracting(app, scanned, library_dir: Path):
    client = signed_in(app, "viewer")
    media_hash = _hash(scanned, "tracks.mkv")
    answer = client.get(f"/media/{media_hash}/subtitles/e3.vtt?partial=1")
    assert answer.status_code == 200 and answer.mimetype == "text/vtt"
    assert answer.headers["X-Subtitles-Complete"] in ("0", "1")
    assert answer.get_data(as_text=True).startswith("WEBVTT")
    wait_for(
        lambda: (
            client.get(f"/media/{media_hash}/subtitles/e3.vtt?partial=1").headers[
                "X-Subtitles-Complete"
            ]
            == "1"
        ),
        what="the extraction to finish",
    )


# ---- preferences ---------------------------------------------------------------------------


def test_preferences_pick_the_tracks_and_forced_ones_show_by_themselves(app, scanned):
    client = signed_in(app, "viewer")
    media_hash = _hash(scanned, "tracks.mkv")
    url = f"/media/{media_hash}/subtitles.json"
    german = {"Accept-Language": "de-DE,de;q=0.9"}
    assert client.get(url, headers=german).get_json()["choice"] == {"subtitle": "e4", "audio": None}
    assert (
        client.get(url, headers={"Accept-Language": "fr"}).get_json()["choice"]["subtitle"] is None
    )
    saved = client.post(
        "/playback/prefs",
        data={"subtitles_on": "1", "subtitle_language": "eng", "audio_language": "de"},
    )
    assert saved.get_json() == {
        "subtitles_on": True, "subtitle_language": "en", "audio_language": "de",
    }  # fmt: skip
    assert client.get(url).get_json()["choice"] == {"subtitle": "e3", "audio": 2}
    assert client.post("/playback/prefs", data={"subtitles_on": "yes"}).status_code == 400
    assert (
        client.post("/playback/prefs", data={"subtitle_language": "klingonish"}).status_code == 400
    )
    other = signed_in(app, "viewer", name="someone-else")
    assert other.get(url).get_json()["prefs"]["subtitles_on"] is False


def test_watch_page_lists_the_tracks(app, scanned):
    client = signed_in(app, "viewer")
    media_hash = _hash(scanned, "tracks.mkv")
    html = client.get(f"/watch/{media_hash}").get_data(as_text=True)
    details = html[html.index('id="details-title"') :]
    assert re.search(r"English.*SubRip", details)
    assert "German (forced)" in details and "PGS" in details
    assert "Deutsch 5.1" in details
    assert f'data-tracks="/media/{media_hash}/subtitles.json"' in html
    # Pages without JavaScript: the text tracks as <track>s of the video (not the picture one).
    assert html.count('<track kind="subtitles"') == 2
    assert f'srclang="de" src="/media/{media_hash}/subtitles/e4.vtt"' in html


def test_prefs_choice_helpers():
    t = tracks.Tracks(1, "h", (), ())
    assert prefs.choose(t, prefs.Prefs(True, "en", None)) == prefs.Choice(None, None)


def test_unreadable_sidecar_is_recorded_not_a_500(app, scanned, library_dir: Path):
    film = library_dir / "Arrival (2016)"
    target = film / "Arrival (2016) 1080p.en.srt"
    client = signed_in(app, "viewer")
    media_hash = _hash(scanned, "Arrival (2016) 1080p.mp4")
    body = client.get(f"/media/{media_hash}/subtitles.json").get_json()
    track = next(t for t in body["subtitles"] if t["language"] == "en" and not t["sdh"])
    target.unlink()
    gone = client.get(track["url"])
    assert gone.status_code == 404
    time.sleep(0)  # the row stays until the next scan of the folder drops it


# ---- filters -------------------------------------------------------------------------------


def _names(html: str) -> set[str]:
    """Return the media hashes of the cards on a page."""
    return set(re.findall(r'href="/watch/([0-9a-f]{16})', html))


def test_folder_and_search_filter_by_subtitle_language(app, scanned):
    client = signed_in(app, "viewer")
    root = client.get("/browse/library").get_data(as_text=True)
    everything = _names(root)
    assert len(everything) >= 2
    german = _names(client.get("/browse/library?subs=de").get_data(as_text=True))
    english = _names(client.get("/browse/library?subs=en").get_data(as_text=True))
    assert len(german) == 1 and german < english and english <= everything  # mkv; mkv + mov_text
    assert _names(client.get("/browse/library?subs=ko").get_data(as_text=True)) == set()
    film = "/browse/library/Arrival%20(2016)"
    assert len(_names(client.get(f"{film}?subs=es").get_data(as_text=True))) == 1  # Subs/ folder
    assert _names(client.get(f"{film}?subs=it").get_data(as_text=True)) == set()  # symlink out
    assert _names(client.get(f"{film}?subs=nl").get_data(as_text=True)) == set()  # failed file
    found = client.get("/search?q=arrival&subs=pt").get_data(as_text=True)  # pt-BR sidecar
    assert len(_names(found)) == 1
    assert client.get("/browse/library?subs=xx").status_code == 400
    assert 'name="subs"' in root and ">in German</option>" in root


def test_flask_scan_reads_new_subtitle_files_and_records_failures(runner, library_dir, clips):
    shutil.copyfile(clips["plain"], library_dir / "Clip.mp4")
    (library_dir / "Clip.en.srt").write_text(SRT_ACCENTS, "utf-8")
    (library_dir / "Clip.nl.srt").write_bytes(b"\x00\xff" * 4000)
    result = runner.invoke(args=["scan", "--no-thumbnails"])
    assert result.exit_code == 0, result.output
    db = dbmod.open_db(runner.app.config["SETTINGS"].data_dir)
    try:
        rows = dict(
            db.execute("SELECT language, status || ':' || coalesce(reason, '') FROM subtitle_files")
        )
    finally:
        db.close()
    assert rows["en"] == "ok:" and rows["nl"].startswith("failed:not text")


def test_cache_prune_removes_the_subtitles_of_media_gone(app, scanned):
    from services.operate import maintenance

    client = signed_in(app, "viewer")
    media_hash = _hash(scanned, "movtext.mp4")
    url = client.get(f"/media/{media_hash}/subtitles.json").get_json()["subtitles"][0]["url"]
    assert client.get(url).status_code == 200
    data_dir = app.config["SETTINGS"].data_dir
    folder = extract.cache_dir(data_dir, media_hash)
    assert (folder / "manifest.json").is_file()
    assert folder not in {p.parent for p in maintenance.orphaned_caches(scanned, data_dir)}
    with dbmod.write(scanned):
        scanned.execute(
            "DELETE FROM files WHERE media_id = (SELECT id FROM media WHERE media_hash = ?)",
            [media_hash],
        )
        scanned.execute("DELETE FROM media WHERE media_hash = ?", [media_hash])
    maintenance.prune_caches(scanned, data_dir)
    assert not folder.exists()


def test_vobsub_tracks_are_listed_as_picture_based(app, clips, library_dir: Path, tmp_path: Path):
    from services.ffmpeg import file_arg
    from tests.mediagen import ffmpeg

    out = library_dir / "vobsub.mkv"
    ffmpeg("-i", file_arg(clips["mkv"]), "-map", "0:v", "-map", "0:5", "-c:v", "copy",
           "-c:s", "dvdsub", "-metadata:s:s:0", "language=fre", file_arg(out))  # fmt: skip
    cfg = app.config["SETTINGS"]
    database = dbmod.open_db(cfg.data_dir)
    with ProbePool(1, 30.0) as pool:
        scan(database, cfg, probe_pool=pool)
    found = tracks.list_tracks(database, _hash(database, "vobsub.mkv")).subtitles
    database.close()
    assert [(t.codec, t.kind, t.language, t.label) for t in found] == [
        ("dvd_subtitle", "picture", "fr", "French — PGS signs")
    ]  # its title came along from the PGS track it was made of


def test_a_short_legacy_file_decodes_in_its_languages_code_page():
    polish = "1\n00:00:01,000 --> 00:00:02,000\nZażółć gęślą jaźń\n".encode("cp1250")
    assert "Zażółć gęślą jaźń" in convert.convert_bytes(polish, "srt", language="pl").vtt
    russian = "1\n00:00:01,000 --> 00:00:02,000\nПривет, мир\n".encode("cp1251")
    assert "Привет, мир" in convert.convert_bytes(russian, "srt", language="ru").vtt


def test_microdvd_sub_counts_frames_at_the_videos_rate():
    data = b"{25}{50}Hello|second line\n{75}{100}{y:i}Bye\n"
    done = convert.convert_bytes(data, "sub", fps=25.0)
    assert cues(done.vtt) == [
        ("00:00:01.000", "00:00:02.000", "Hello\nsecond line"),
        ("00:00:03.000", "00:00:04.000", "Bye"),
    ]
