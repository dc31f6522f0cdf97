"""Direct play, remux and transcode to HLS (issue 12), through the real app on real media.

The decision is checked against each clip's probe; the HLS routes and the session engine
(services/playback/transcoder.py) run real ffmpeg encoders on generated clips: segments line up
across restarts, idle sessions are reaped, the concurrency cap answers 503 with Retry-After,
the encoder restarts on a seek and pauses when far ahead, a second viewer is served from the
cache, the cache is evicted under a tiny cap, stale folders go at start-up, and hostile
parameters are refused with nothing of them in any ffmpeg argv.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import av
import pytest

from services import ffmpeg as runner
from services.playback import decision, encoders
from services.playback.transcoder import LocalTranscoder
from tests.conftest import mount_tmpfs, signed_in
from tests.mediagen import X264, X265, ffmpeg, file_arg, make_video
from tests.sample_library import media_hash, scan_library

# What Debian's Chromium reports (static/js/playback.js): no HEVC, no AC-3, no MKV.
CHROMIUM = "mse,mp4,webm,h264_baseline,h264_main,h264_high,h264_high_l51,vp8,vp9,av1,aac,mp3,opus,flac,vorbis"
LONG = 24  # seconds: 8 transcode segments of 3 s, 4 remux segments of 6 s


class Library:
    """A scanned library of short clips and the app serving it."""

    def __init__(self, base: Path, media: dict[str, Path]) -> None:
        from app import create_app
        from config import load_settings

        self.root = base / "library"
        self.root.mkdir(parents=True)
        self.files: dict[str, Path] = {}
        for key in ("hevc_mkv", "hevc10_mkv", "mpeg4_avi", "h264_mkv", "h264_ac3_mp4",
                    "vp9_webm", "mpeg2_ts", "rotated_mp4", "h264_mp4", "subtitle_mkv"):  # fmt: skip
            if key in media:
                self.files[key] = Path(shutil.copyfile(media[key], self.root / media[key].name))
        self.files["long_hevc"] = make_video(
            self.root / "long_hevc.mkv", vcodec=[*X265, "-pix_fmt", "yuv420p"],
            acodec=["aac", "-b:a", "48k"], seconds=LONG, size="640x360")  # fmt: skip
        self.files["long_remux"] = make_video(
            self.root / "long_remux.mkv", vcodec=X264, acodec=["aac", "-b:a", "48k"], seconds=LONG
        )
        self.files["two_audio"] = self._two_audio(self.root / "two_audio.mp4")
        self.data = base / "data"
        self.config = {"media_dirs": [str(self.root)], "data_dir": str(self.data),
                       "probe_workers": 1}  # fmt: skip
        self.settings = load_settings(self.config, environ={}, dotenv_path=base / "no.env")
        scan_library(self.settings)
        self.app = create_app(self.config)

    def _two_audio(self, out: Path) -> Path:
        ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=4",
               "-f", "lavfi", "-i", "sine=frequency=440:duration=4",
               "-f", "lavfi", "-i", "sine=frequency=880:duration=4",
               "-map", "0", "-map", "1", "-map", "2", "-c:v", *X264, "-c:a", "aac",
               "-shortest", file_arg(out))  # fmt: skip
        return out

    def hash(self, key: str) -> str:
        return media_hash(self.settings, self.files[key])

    def transcoder(self, **knobs) -> LocalTranscoder:
        """Give the app a transcoder with test-sized knobs (what LVS_TRANSCODE_* set)."""
        old = self.app.extensions.pop("transcoder", None)
        if old is not None:
            old.close()
        options = {"max_encoders": 2, "cache_bytes": 10**9, "idle": 60.0, "reaper": False}
        tc = LocalTranscoder(self.data / "hls", **{**options, **knobs})
        with tc._lock():  # each test starts with nobody watching (the cache stays)
            for s in tc._all():
                tc._end(s, "the next test")
        self.app.extensions["transcoder"] = tc
        return tc


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]):
    library = Library(tmp_path_factory.mktemp("hls"), media)
    yield library
    tc = library.app.extensions.get("transcoder")
    if tc is not None:
        tc.close()


@pytest.fixture
def argvs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the argv of every encoder started (they still run for real)."""
    seen: list[list[str]] = []
    real = runner.start_encoder

    def spy(args: list[str], **kw):
        seen.append(list(args))
        return real(args, **kw)

    monkeypatch.setattr(runner, "start_encoder", spy)
    return seen


def play(client, h: str, **params) -> dict:
    r = client.get(f"/media/{h}/play.json", query_string={"caps": CHROMIUM, **params})
    assert r.status_code == 200, r.data
    return r.get_json()


def open_session(client, h: str, **params) -> tuple[str, list[str]]:
    """Ask for the master playlist; return the session id and its segment names."""
    r = client.get(f"/media/{h}/hls/master.m3u8", query_string={"caps": CHROMIUM, **params})
    assert r.status_code == 200, r.data
    variant = r.data.decode().strip().splitlines()[-1]
    sid = variant.split("/")[0]
    r = client.get(f"/media/{h}/hls/{variant}")
    assert r.status_code == 200
    text = r.data.decode()
    assert text.startswith("#EXTM3U") and "#EXT-X-ENDLIST" in text
    return sid, [line for line in text.splitlines() if line and not line.startswith("#")]


def first_times(data: bytes) -> dict[str, float]:
    """Return the first timestamp of each stream type in a TS segment, in seconds."""
    found: dict[str, float] = {}
    with av.open(io.BytesIO(data), format="mpegts") as c:
        for packet in c.demux():
            if packet.pts is not None:
                found.setdefault(packet.stream.type, float(packet.pts * packet.time_base))
    return found


def alive(pid: int) -> str:
    """Return the process state letter (R, S, T…) or '' when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        return ""


# ---- the decision, from the probe and what the browser reported ----

EXPECTED = {
    # key: (method, reasons that must be there, words that must be there)
    "hevc_mkv": ("transcode", {"container", "video codec"}, "this browser has no HEVC decoder"),
    "hevc10_mkv": ("transcode", {"video codec"}, "Transcoding HEVC 10-bit → H.264"),
    "mpeg4_avi": ("transcode", {"container", "video codec"}, "MPEG-4 Part 2"),
    "h264_mkv": ("remux", {"container"}, "Remuxing MKV → HLS (video copied"),
    "h264_ac3_mp4": ("remux", {"audio codec", "channels"}, "AC-3 (Dolby Digital) audio → AAC"),
    "vp9_webm": ("direct", set(), "Playing the original"),
    "mpeg2_ts": ("transcode", {"interlaced", "video codec"}, "interlaced"),
    "rotated_mp4": ("direct", set(), "Playing the original"),
}


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_the_decision_matches_the_probe(lib, key):
    if key not in lib.files:
        pytest.skip(f"{key} could not be made by this ffmpeg")  # 10-bit x265 only
    method, reasons, words = EXPECTED[key]
    got = play(signed_in(lib.app), lib.hash(key))
    assert got["method"] == method
    assert reasons <= set(got["reasons"]), got
    assert words in got["words"]
    if method == "direct":
        assert got["url"].endswith("/file")
        assert got["qualities"][0] == "original"
    else:
        assert "/hls/master.m3u8?" in got["url"]
        assert "original" not in got["qualities"]


def test_without_a_report_the_conservative_rule_decides(lib):
    client = signed_in(lib.app)
    r = client.get(f"/media/{lib.hash('h264_mp4')}/play.json")
    assert r.get_json()["method"] == "direct"
    r = client.get(f"/media/{lib.hash('hevc_mkv')}/play.json")
    assert r.get_json()["method"] == "transcode"


def test_a_browser_with_hevc_and_ac3_gets_what_it_plays(lib):
    caps = CHROMIUM + ",hevc,ac3,eac3,mkv"
    client = signed_in(lib.app)
    got = client.get(f"/media/{lib.hash('hevc_mkv')}/play.json?caps={caps}").get_json()
    assert got["method"] == "direct"
    got = client.get(f"/media/{lib.hash('h264_ac3_mp4')}/play.json?caps={caps}").get_json()
    assert got["method"] == "direct"


def test_choices_audio_track_burn_in_quality_and_fallback(lib):
    client = signed_in(lib.app)
    h = lib.hash("two_audio")
    assert play(client, h)["method"] == "direct"
    tracks = play(client, h)["audio"]
    assert [t["index"] for t in tracks] == [1, 2]
    got = play(client, h, audio="2")
    assert got["method"] == "remux" and "audio track" in got["reasons"]
    got = play(client, h, nodirect="1")
    assert got["method"] == "remux" and got["reasons"] == ["direct play failed"]
    subs = play(client, lib.hash("subtitle_mkv"))
    index = subs["subtitles"][0]["index"]
    got = play(client, lib.hash("subtitle_mkv"), burn=str(index))
    assert got["method"] == "transcode" and "subtitles burn-in" in got["reasons"]
    assert "subtitles are burned in" in got["words"]
    assert play(client, lib.hash("long_hevc"))["qualities"] == []  # 640×360: all rungs above
    assert play(client, h)["qualities"] == ["original"]  # 160×120: no rung below it
    got = play(client, lib.hash("h264_mp4"), q="original")
    assert got["method"] == "direct"


def test_max_quality_keeps_the_source_size_this_machine_encodes(lib):
    got = play(signed_in(lib.app), lib.hash("hevc_mkv"), q="max")
    assert got["method"] == "transcode"
    assert got["height"] == 240  # a 320×240 source is well within real time here
    assert "original" not in got["qualities"] and got["qualities"] == []


def test_burn_in_transcodes_with_the_subtitles_drawn(lib, argvs):
    lib.transcoder()
    client = signed_in(lib.app)
    h = lib.hash("subtitle_mkv")
    index = play(client, h)["subtitles"][0]["index"]
    sid, names = open_session(client, h, burn=str(index))
    r = client.get(f"/media/{h}/hls/{sid}/{names[0]}")
    assert r.status_code == 200 and first_times(r.data)["video"] == pytest.approx(0, abs=0.1)
    graph = " ".join(argvs[-1])
    assert "subtitles=/proc/self/fd/" in graph and ":si=0" in graph


# ---- HLS: playlists, segments, restarts ----


def test_transcode_segments_line_up_across_a_restart(lib, argvs):
    tc = lib.transcoder()
    client = signed_in(lib.app)
    h = lib.hash("long_hevc")
    sid, names = open_session(client, h)
    assert len(names) == LONG // 3
    first = client.get(f"/media/{h}/hls/{sid}/0.ts")
    assert first.status_code == 200 and first.headers["Content-Type"] == "video/mp2t"
    assert first_times(first.data)["video"] == pytest.approx(0, abs=0.1)
    started = tc.started
    far = client.get(f"/media/{h}/hls/{sid}/6.ts")  # more than 24 s of encoding ahead? no: 18 s
    assert far.status_code == 200
    assert first_times(far.data)["video"] == pytest.approx(18.0, abs=0.1)
    back = client.get(f"/media/{h}/hls/{sid}/3.ts")
    assert back.status_code == 200
    assert first_times(back.data)["video"] == pytest.approx(9.0, abs=0.1)
    assert tc.started >= started  # whatever ran, the timestamps are the playlist's
    # Every argv: the trusted file by descriptor, our enums and numbers — no library path.
    for argv in argvs:
        assert not any(str(lib.root) in a for a in argv)
        assert any(a.startswith("file:/proc/self/fd/") for a in argv)


def test_a_seek_far_ahead_restarts_the_encoder_at_that_segment(lib):
    tc = lib.transcoder(restart_ahead=3.0, throttle_ahead=3.0, resume_ahead=0.0)
    client = signed_in(lib.app)
    h = lib.hash("long_hevc")
    for path in (lib.data / "hls" / "cache" / h).glob("*/*.ts"):
        path.unlink()
    sid, _ = open_session(client, h)
    assert client.get(f"/media/{h}/hls/{sid}/0.ts").status_code == 200
    deadline = time.monotonic() + 10
    while not tc.session(sid, client.user.id).run.paused:  # held 3 s ahead of the viewer
        assert time.monotonic() < deadline, "the encoder was never paused"
        time.sleep(0.02)
        tc.reap()
    before = tc.restarts
    # Drop the cached far segment so it must be made again, from a fresh run at 7.
    for path in (lib.data / "hls" / "cache" / h).glob("*/7.ts"):
        path.unlink()
    r = client.get(f"/media/{h}/hls/{sid}/7.ts")
    assert r.status_code == 200
    assert first_times(r.data)["video"] == pytest.approx(21.0, abs=0.1)
    session = tc.session(sid, client.user.id)
    assert tc.restarts == before + 1 and session.run is not None and session.run.start == 7


def test_remux_copies_the_video_and_cuts_at_its_keyframes(lib, argvs):
    lib.transcoder()
    client = signed_in(lib.app)
    h = lib.hash("long_remux")
    sid, names = open_session(client, h)
    assert len(names) == LONG // 6
    r = client.get(f"/media/{h}/hls/{sid}/{names[2]}")
    assert r.status_code == 200
    times = first_times(r.data)
    assert times["video"] == pytest.approx(12.0, abs=0.1)  # a keyframe every second
    assert "copy" in argvs[-1] and "-copyts" in argvs[-1]
    with av.open(io.BytesIO(r.data), format="mpegts") as c:
        assert c.streams.video[0].codec_context.name == "h264"


def test_a_second_viewer_is_served_from_the_cache(lib):
    tc = lib.transcoder()
    ann, bob = signed_in(lib.app), signed_in(lib.app, "viewer")
    h = lib.hash("long_remux")
    sid, names = open_session(ann, h)
    for name in names:
        assert ann.get(f"/media/{h}/hls/{sid}/{name}").status_code == 200
    started = tc.started
    sid2, names2 = open_session(bob, h)
    assert sid2 != sid and names2 == names
    bodies = [bob.get(f"/media/{h}/hls/{sid2}/{n}") for n in names]
    assert all(b.status_code == 200 for b in bodies)
    assert tc.started == started  # no encoder ran for the second viewer
    # Sessions are bound to their viewer: Bob cannot use Ann's.
    assert bob.get(f"/media/{h}/hls/{sid}/0.ts").status_code == 404
    assert bob.get(f"/media/{h}/hls/{sid}/stream.m3u8").status_code == 404


def test_idle_sessions_are_reaped_with_their_encoder(lib, caplog):
    tc = lib.transcoder(idle=0.5, throttle_ahead=3.0, resume_ahead=0.0)
    client = signed_in(lib.app)
    h = lib.hash("long_hevc")
    for path in (lib.data / "hls" / "cache" / h).glob("*/*.ts"):
        path.unlink()
    sid, _ = open_session(client, h)
    assert client.get(f"/media/{h}/hls/{sid}/0.ts").status_code == 200
    run = tc.session(sid, client.user.id).run
    assert run is not None
    time.sleep(0.7)
    with caplog.at_level("INFO"):
        tc.reap()
    assert "reaped after" in caplog.text
    assert alive(run.pid) in ("", "Z")
    assert not (lib.data / "hls" / "runs" / run.id).exists()
    assert client.get(f"/media/{h}/hls/{sid}/1.ts").status_code == 404


def test_the_encoder_pauses_far_ahead_and_continues_when_the_viewer_comes(lib):
    tc = lib.transcoder(throttle_ahead=6.0, resume_ahead=3.0)
    client = signed_in(lib.app)
    h = lib.hash("long_hevc")
    for path in (lib.data / "hls" / "cache" / h).glob("*/*.ts"):
        path.unlink()
    sid, _ = open_session(client, h)
    assert client.get(f"/media/{h}/hls/{sid}/0.ts").status_code == 200
    run = tc.session(sid, client.user.id).run
    deadline = time.monotonic() + 10
    while not tc.session(sid, client.user.id).run.paused:
        assert time.monotonic() < deadline, "the encoder was never paused"
        time.sleep(0.05)
        tc.reap()
    deadline = time.monotonic() + 2
    while alive(run.pid) != "T":  # stopped by SIGSTOP (the kernel takes a moment to say so)
        assert time.monotonic() < deadline, alive(run.pid)
        time.sleep(0.02)
    assert tc.sessions()[0].paused
    assert client.get(f"/media/{h}/hls/{sid}/2.ts").status_code == 200
    assert client.get(f"/media/{h}/hls/{sid}/7.ts").status_code == 200  # it had to continue


def test_beyond_the_cap_a_503_with_retry_after(lib):
    tc = lib.transcoder(max_encoders=1, throttle_ahead=3.0, resume_ahead=0.0)
    ann, bob = signed_in(lib.app), signed_in(lib.app, "viewer")
    for key in ("long_hevc", "mpeg4_avi"):
        for path in (lib.data / "hls" / "cache" / lib.hash(key)).glob("*/*.ts"):
            path.unlink()
    h = lib.hash("long_hevc")
    sid, _ = open_session(ann, h)
    assert ann.get(f"/media/{h}/hls/{sid}/0.ts").status_code == 200
    deadline = time.monotonic() + 10
    while not tc.session(sid, ann.user.id).run.paused:  # alive but paused: still counts
        assert time.monotonic() < deadline
        time.sleep(0.05)
        tc.reap()
    other = lib.hash("mpeg4_avi")
    sid2, _ = open_session(bob, other)
    r = bob.get(f"/media/{other}/hls/{sid2}/0.ts")
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
    assert b"transcoders are busy" in r.data
    assert ann.post(f"/media/{h}/hls/{sid}/stop").status_code == 204
    assert bob.get(f"/media/{other}/hls/{sid2}/0.ts").status_code == 200


def test_a_session_turned_away_by_the_cap_is_not_reaped_while_its_player_retries(lib):
    """A player retrying after 503s is a viewer: its session lives on past `idle` and gets the
    encoder when the slot frees (the request used to be recorded only after the cap's check)."""
    idle = 2.0
    tc = lib.transcoder(max_encoders=1, idle=idle, throttle_ahead=3.0, resume_ahead=0.0)
    ann, bob = signed_in(lib.app), signed_in(lib.app, "viewer")
    for key in ("long_hevc", "mpeg4_avi"):
        for path in (lib.data / "hls" / "cache" / lib.hash(key)).glob("*/*.ts"):
            path.unlink()
    h, other = lib.hash("long_hevc"), lib.hash("mpeg4_avi")
    sid, _ = open_session(ann, h)
    assert ann.get(f"/media/{h}/hls/{sid}/0.ts").status_code == 200
    deadline = time.monotonic() + 10
    while not tc.session(sid, ann.user.id).run.paused:  # alive but paused: holds the one slot
        assert time.monotonic() < deadline
        assert ann.get(f"/media/{h}/hls/{sid}/0.ts").status_code == 200
        time.sleep(0.05)
        tc.reap()
    sid2, _ = open_session(bob, other)
    until = time.monotonic() + 3 * idle  # three idle periods of retries
    while time.monotonic() < until:
        assert ann.get(f"/media/{h}/hls/{sid}/0.ts").status_code == 200  # ann watches on
        r = bob.get(f"/media/{other}/hls/{sid2}/0.ts")
        assert r.status_code == 503 and b"transcoders are busy" in r.data, r.status_code
        tc.reap()
        time.sleep(0.3)
    assert tc.session(sid2, bob.user.id).last_segment == 0  # not reaped: NotFound otherwise
    assert ann.post(f"/media/{h}/hls/{sid}/stop").status_code == 204
    assert bob.get(f"/media/{other}/hls/{sid2}/0.ts").status_code == 200


def test_the_cache_evicts_the_least_recently_used_under_a_tiny_cap(lib):
    tc = lib.transcoder(cache_bytes=1, idle=60.0)
    ann, bob = signed_in(lib.app), signed_in(lib.app, "viewer")
    old = lib.hash("long_remux")
    sid, names = open_session(ann, old)
    for name in names:
        assert ann.get(f"/media/{old}/hls/{sid}/{name}").status_code == 200
    ann.post(f"/media/{old}/hls/{sid}/stop")
    watching = lib.hash("long_hevc")
    sid2, names2 = open_session(bob, watching)
    for n in range(4):
        assert bob.get(f"/media/{watching}/hls/{sid2}/{n}.ts").status_code == 200
    with tc._lock():
        freed = tc.enforce_cache()
    assert freed > 0
    assert not any((lib.data / "hls" / "cache" / old).glob("*/*.ts"))  # the old one went
    kept = {p.name for p in (lib.data / "hls" / "cache" / watching).glob("*/*.ts")}
    assert "3.ts" in kept  # the one being watched stays
    assert "0.ts" not in kept  # long behind the viewer: may go


def test_a_full_disk_answers_503_and_leaves_no_partial_file(lib, tmp_path):
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    mount_tmpfs(tiny, "192k")
    old = lib.app.extensions.pop("transcoder", None)
    if old is not None:
        old.close()
    tc = LocalTranscoder(tiny, max_encoders=2, cache_bytes=10**9, reaper=False)
    lib.app.extensions["transcoder"] = tc
    try:
        client = signed_in(lib.app)
        h = lib.hash("long_hevc")  # 640×360: a few segments fill 192 KiB
        sid, names = open_session(client, h)
        answers = [client.get(f"/media/{h}/hls/{sid}/{name}") for name in names]
        full = [r for r in answers if r.status_code == 503]
        assert full, [r.status_code for r in answers]
        assert b"disk is full" in full[0].data and int(full[0].headers["Retry-After"]) > 0
        assert all(r.status_code in (200, 503) for r in answers)  # never a 500 or a 502
        assert not any((tiny / "runs").iterdir())  # the run's half-written segment went with it
        for segment in (tiny / "cache").rglob("*.ts"):  # what is cached is whole
            with av.open(str(segment), format="mpegts") as c:
                assert sum(1 for _ in c.demux()) > 10
    finally:
        tc.close()
        lib.app.extensions.pop("transcoder", None)
        subprocess.run(["umount", "-l", str(tiny)], check=False)


def test_stale_folders_are_removed_at_start_up(lib):
    root = lib.data / "hls"
    lib.transcoder()
    (root / "runs" / "deadbeef00000000").mkdir(parents=True)
    (root / "runs" / "deadbeef00000000" / "7.ts").write_bytes(b"partial")
    (root / "cache" / "0123456789abcdef" / "h264-720_a1t").mkdir(parents=True)
    (root / "cache" / "0123456789abcdef" / "h264-720_a1t" / "x.tmp").write_bytes(b"half")
    stale = '{"id": "00000000000000aa", "user_id": 1, "media_hash": "0123456789abcdef", '
    stale += '"key": "h264-720_a1t", "output": {"video": "h264", "height": 720, "audio": 1, '
    stale += '"audio_copy": false, "burn": null, "segment": 3.0}, "method": "transcode", '
    stale += '"words": "", "count": 3, "duration": 9.0, "created": 1, "last_request": 1, '
    stale += '"last_segment": 0, "run": {"id": "deadbeef00000000", "pid": 999999999, '
    stale += '"start": 0, "started": 1, "encoder": "libx264", "paused": false}}'
    (root / "sessions" / "00000000000000aa.json").write_text(stale)
    lib.transcoder()  # a server starting
    assert not (root / "runs" / "deadbeef00000000").exists()
    assert not (root / "sessions" / "00000000000000aa.json").exists()
    assert not (root / "cache" / "0123456789abcdef" / "h264-720_a1t" / "x.tmp").exists()


# ---- hostile input ----

HOSTILE = [
    {"caps": "mse,evil"},
    {"caps": "mp4;rm -rf /"},
    {"q": "720;id"},
    {"q": "2160"},  # above the source
    {"q": "-1"},
    {"audio": "-1"},
    {"audio": "1e3"},
    {"audio": "../../etc/passwd"},
    {"audio": "7"},  # no such stream
    {"audio": "0"},  # the video stream, not an audio track
    {"burn": "1"},  # an audio stream, not a subtitle
    {"burn": "'[0:v]'"},
    {"nodirect": "yes"},
    {"vf": "drawtext"},  # an unknown parameter
    {"ss": "1"},
]


@pytest.mark.parametrize(
    "params", HOSTILE, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items())
)
def test_hostile_parameters_get_a_400_and_reach_no_argv(lib, argvs, params):
    client = signed_in(lib.app)
    h = lib.hash("long_hevc")
    for path in ("play.json", "hls/master.m3u8"):
        query = {"caps": CHROMIUM, **params}
        r = client.get(f"/media/{h}/{path}", query_string=query)
        assert r.status_code == 400, (path, params, r.status_code)
    assert argvs == []


@pytest.mark.parametrize(
    "name",
    ["-1.ts", "01.ts", "1.ts.tmp", "1.mp4", "list.csv", "ffmpeg.log", "9999999.ts", "99.ts",
     "..%2F..%2Fsessions", "%2e%2e", "0.ts%00", "1.TS"],
)  # fmt: skip
def test_segment_names_match_one_strict_pattern(lib, name):
    lib.transcoder()
    client = signed_in(lib.app)
    h = lib.hash("long_remux")
    sid, _ = open_session(client, h)
    r = client.get(f"/media/{h}/hls/{sid}/{name}")
    assert r.status_code in (400, 404), name


def test_sessions_need_sign_in_and_the_right_hash(lib):
    lib.transcoder()
    client = signed_in(lib.app)
    h = lib.hash("long_remux")
    sid, _ = open_session(client, h)
    anon = lib.app.test_client()
    assert anon.get(f"/media/{h}/hls/{sid}/0.ts").status_code == 401
    assert anon.get(f"/media/{h}/play.json").status_code == 401
    other = lib.hash("long_hevc")
    assert client.get(f"/media/{other}/hls/{sid}/0.ts").status_code == 404
    assert client.get(f"/media/{h}/hls/{'0' * 16}/0.ts").status_code == 404
    assert client.get(f"/media/{h}/hls/{sid.upper()}/0.ts").status_code == 404
    assert client.get(f"/media/{h}/hls/../../file").status_code == 404


def test_hardware_detection_answers_none_quickly_here():
    encoders.detect.cache_clear()
    started = time.perf_counter()
    choice = encoders.detect()
    took = time.perf_counter() - started
    if os.path.exists("/dev/dri") or os.path.exists("/dev/nvidia0"):
        pytest.skip("this machine has a GPU device node")
    assert (choice.name, choice.hardware) == ("libx264", "none")
    assert "no GPU device" in choice.reason
    assert took < 0.1


def test_capabilities_are_a_closed_list():
    assert decision.parse_capabilities("").reported is False
    assert decision.parse_capabilities("mse,h264_high").names == {"mse", "h264_high"}
    with pytest.raises(Exception, match="unknown capability"):
        decision.parse_capabilities("mse,hevc;x")


# ---- operate: the dashboard, Prometheus, cache prune ----


def test_the_dashboard_and_prometheus_show_active_playbacks(lib):
    lib.transcoder()
    client = signed_in(lib.app)
    h = lib.hash("mpeg4_avi")
    sid, _ = open_session(client, h)
    assert client.get(f"/media/{h}/hls/{sid}/0.ts").status_code == 200
    data = client.get("/admin/performance.json").get_json()
    playback = data["playback"]
    mine = next(s for s in playback["sessions"] if s["id"] == sid)
    assert (mine["user"], mine["method"], mine["title"]) == ("test-admin", "transcode", "mpeg4.avi")
    assert "MPEG-4 Part 2" in mine["words"]
    assert playback["encoder"]["hardware"] == "none" or os.path.exists("/dev/dri")
    assert playback["cache_bytes"] > 0
    page = client.get("/admin/performance").data.decode()
    assert 'id="playbacks"' in page and "mpeg4.avi" in page
    text = client.get("/metrics").data.decode()
    assert 'lvs_playback_sessions{method="transcode"}' in text
    assert "lvs_transcode_cache_bytes" in text
    started = [line for line in text.splitlines()
               if line.startswith('lvs_playback_sessions_started_total{method="transcode"}')]  # fmt: skip
    assert started and float(started[0].split()[-1]) >= 1


def test_cache_prune_covers_the_transcode_cache(lib):
    lib.transcoder()
    root = lib.data / "hls"
    gone = root / "cache" / "fedcba9876543210" / "h264-480_a1t"
    gone.mkdir(parents=True)
    (gone / "0.ts").write_bytes(b"x" * 1000)
    (root / "runs" / "0000000000000bad").mkdir(parents=True)
    (root / "runs" / "0000000000000bad" / "3.ts").write_bytes(b"y" * 10)
    client = signed_in(lib.app)
    h = lib.hash("long_remux")
    sid, _ = open_session(client, h)
    assert client.get(f"/media/{h}/hls/{sid}/0.ts").status_code == 200
    result = lib.app.test_cli_runner().invoke(args=["cache", "prune"])
    assert result.exit_code == 0, result.output
    assert not gone.exists() and not (root / "runs" / "0000000000000bad").exists()
    assert any((root / "cache" / h).glob("*/0.ts"))  # media the library has keep theirs


# ---- the play index: a remux's cut points and the extra facts, once per file (B8) ----


def _cut_points_without_the_file(lib, h: str) -> list[float]:
    """Return the remux cut points as hls.boundaries finds them with no readable file (fd -1):
    only the play index can answer."""
    from services import db as dbmod
    from services.playback import hls, media_files, source

    db = dbmod.open_db(lib.data)
    try:
        media = media_files.open_media(db, h, lib.settings.media_dirs)
        with media.file as f:
            st = os.fstat(f.fileno())
            src = source.load(db, h, f.fileno(), (st.st_size, st.st_mtime_ns))
    finally:
        db.close()
    output = decision.decide(src, decision.parse_capabilities(CHROMIUM),
                             decision.parse_choice({}, src), allow_direct=False).output  # fmt: skip
    return hls.boundaries(src, output, -1, lib.data / "hls" / "index")


def test_cut_points_outlive_the_renditions_cache(lib):
    """Evicting a remux's segments must not cost its next play the keyframe search again."""
    lib.transcoder()
    client = signed_in(lib.app)
    h = lib.hash("long_remux")
    sid, names = open_session(client, h)
    assert client.get(f"/media/{h}/hls/{sid}/{names[1]}").status_code == 200
    client.post(f"/media/{h}/hls/{sid}/stop")
    shutil.rmtree(lib.data / "hls" / "cache" / h)  # what eviction or the bench does
    assert _cut_points_without_the_file(lib, h) == [0.0, 6.0, 12.0, 18.0]


def test_the_decision_finds_a_remuxs_cut_points_before_the_master_is_asked(lib):
    lib.transcoder()
    h = lib.hash("long_remux")
    index = lib.data / "hls" / "index" / f"{h}.json"
    index.unlink(missing_ok=True)
    assert play(signed_in(lib.app), h)["method"] == "remux"
    deadline = time.monotonic() + 10
    while "keyframes" not in (index.read_text() if index.exists() else ""):
        assert time.monotonic() < deadline, "the cut points were not read in the background"
        time.sleep(0.05)
    assert _cut_points_without_the_file(lib, h) == [0.0, 6.0, 12.0, 18.0]


def test_extra_facts_are_read_once_for_every_server_process(lib):
    """Another process (its memo empty) finds the level, interlacing and HDR in the index."""
    from services import db as dbmod
    from services.playback import media_files, source

    lib.transcoder()
    h = lib.hash("mpeg2_ts")
    client = signed_in(lib.app)
    assert play(client, h)["method"] == "transcode"
    source._memo.clear()  # as in the other gunicorn worker
    db = dbmod.open_db(lib.data)
    try:
        media = media_files.open_media(db, h, lib.settings.media_dirs)
        with media.file as f:
            st = os.fstat(f.fileno())
            version = (st.st_size, st.st_mtime_ns)
        # The file is closed: a PyAV read of /proc/self/fd/-1 would find nothing interlaced.
        src = source.load(db, h, -1, version, lib.data / "hls" / "index")
    finally:
        db.close()
    assert src.interlaced is True


def test_cache_prune_covers_the_play_index(lib):
    lib.transcoder()
    index = lib.data / "hls" / "index"
    index.mkdir(parents=True, exist_ok=True)
    gone = index / "fedcba9876543210.json"
    gone.write_text('{"version": [1, 2]}')
    h = lib.hash("long_remux")
    play(signed_in(lib.app), h)
    result = lib.app.test_cli_runner().invoke(args=["cache", "prune"])
    assert result.exit_code == 0, result.output
    assert not gone.exists()
    deadline = time.monotonic() + 10
    while not (index / f"{h}.json").exists():  # media the library has keep theirs
        assert time.monotonic() < deadline
        time.sleep(0.05)


# ---- cached segments on the lean path (blueprints/media_direct.py) ----


def test_a_cached_segment_is_answered_in_front_of_flask_as_flask_does(lib, monkeypatch):
    from werkzeug.test import Client
    from werkzeug.wrappers import Response as WResponse

    from blueprints.access import COOKIE
    from services.people import apitokens
    from tests.conftest import api_token, make_user, session_token
    from tests.test_media_direct import _same

    lib.transcoder()
    app = lib.app
    data_dir = lib.data
    ann = make_user(data_dir, "viewer", "ann-seg")
    bob = make_user(data_dir, "viewer", "bob-seg")
    cookie = {"Cookie": f"{COOKIE}={session_token(data_dir, ann.id)}"}
    h, other = lib.hash("long_remux"), lib.hash("h264_mkv")
    client = Client(app.wsgi_app, WResponse, use_cookies=False)
    r = client.get(f"/media/{h}/hls/master.m3u8", query_string={"caps": CHROMIUM}, headers=cookie)
    assert r.status_code == 200, r.data
    sid = r.data.decode().strip().splitlines()[-1].split("/")[0]
    url = f"/media/{h}/hls/{sid}/1.ts"
    made = client.get(url, headers=cookie)  # made now (Flask waits for the encoder)
    assert made.status_code == 200 and made.data[:1] == b"G"  # an MPEG-TS packet
    size = len(made.data)
    etag = made.headers["ETag"]

    handed_on: list[str] = []
    direct = app.wsgi_app
    flask = direct.flask
    monkeypatch.setattr(
        direct, "flask", lambda e, s: handed_on.append(e["PATH_INFO"]) or flask(e, s)
    )
    secret = app.extensions["media_secret"]
    signed = apitokens.sign_media(secret, ann.id, h)
    cases = [
        (cookie, {}),
        ({**cookie, "Range": "bytes=0-187"}, {}),
        ({**cookie, "Range": f"bytes={size - 188}-"}, {}),
        ({**cookie, "Range": "bytes=-188"}, {}),
        ({**cookie, "Range": f"bytes={size}-"}, {}),  # 416
        ({**cookie, "Range": "bytes=0-9,100-199"}, {}),  # multipart
        ({**cookie, "If-None-Match": etag}, {}),  # 304
        ({**cookie, "If-Match": '"other"'}, {}),  # 412
        ({}, signed),  # a headset's signed URL, no cookie
        ({}, apitokens.sign_media(secret, ann.id, other)),  # signed for another item: 401
        ({}, {**signed, "s": "0" * 32}),  # forged
        ({}, {}),  # nobody: 401
        ({**cookie, "Host": "evil.example.com"}, {}),
        ({**cookie, "X-Request-ID": "seg-1"}, {}),
    ]
    for headers, query in cases:
        for method in ("GET", "HEAD"):
            _same(app, url, method, headers=headers, query_string=query)
    # Flask's half of each comparison, and the four kinds the lean path hands on (nobody, a URL
    # signed for another item, a forged one, a foreign Host): the rest it answered itself …
    assert handed_on.count(url) == 2 * len(cases) + 2 * 4
    handed_on.clear()
    answer = client.get(url, headers=cookie)
    assert answer.status_code == 200 and answer.data == made.data
    assert handed_on == []  # … the lean path answered the cached segment itself
    # Refusals are Flask's (its error page): another viewer's session, the wrong item, an
    # unknown parameter, a segment beyond the playlist.
    bob_cookie = {"Cookie": f"{COOKIE}={session_token(data_dir, bob.id)}"}
    for path, headers, query, status in (
        (url, bob_cookie, {}, 404),
        (f"/media/{other}/hls/{sid}/1.ts", cookie, {}, 404),
        (url, cookie, {"x": "1"}, 400),
        (f"/media/{h}/hls/{sid}/999.ts", cookie, {}, 404),
    ):
        handed_on.clear()
        assert client.get(path, headers=headers, query_string=query).status_code == status
        assert handed_on == [path]
    token = {"Authorization": f"Bearer {api_token(data_dir, 'viewer', 'ann-seg')}"}
    assert _same(app, url, headers=token).status_code == 200
    # A segment not made yet goes to Flask, which starts the encoder and waits.
    shutil.rmtree(lib.data / "hls" / "cache" / other, ignore_errors=True)
    r = client.get(f"/media/{other}/hls/master.m3u8", query_string={"caps": CHROMIUM},
                   headers=cookie)  # fmt: skip
    fresh = f"/media/{other}/hls/{r.data.decode().strip().splitlines()[-1].split('/')[0]}/0.ts"
    handed_on.clear()
    assert client.get(fresh, headers=cookie).status_code == 200
    assert handed_on == [fresh]


def test_a_cached_segment_is_sent_in_one_step_and_an_ended_session_at_once(lib, monkeypatch):
    """A plain GET or one range of a cached segment is answered without media.prepare
    (MediaDirect._simple, as the original's ranges are); the session, remembered by the lean
    path while its file is unchanged, is still checked on every request: its owner, the request
    recorded, and a stopped session refused at once."""
    from blueprints import media as media_routes

    tc = lib.transcoder()
    ann = signed_in(lib.app, "viewer", "ann-one-step")
    bob = signed_in(lib.app, "viewer", "bob-one-step")
    h = lib.hash("long_remux")
    shutil.rmtree(lib.data / "hls" / "cache" / h, ignore_errors=True)
    sid, _ = open_session(ann, h)
    segments = {n: ann.get(f"/media/{h}/hls/{sid}/{n}.ts").data for n in (0, 1)}  # made now
    whole = segments[1]
    url = f"/media/{h}/hls/{sid}/1.ts"
    assert ann.get(url).data == whole  # on the lean path: the session remembered from now on

    def failing(*args, **kwargs):
        raise RuntimeError("the general way")

    monkeypatch.setattr(media_routes, "prepare", failing)
    for headers, status, body in (
        ({}, 200, whole),
        ({"Range": "bytes=0-187"}, 206, whole[:188]),
        ({"Range": f"bytes={len(whole) - 188}-"}, 206, whole[-188:]),
    ):
        got = ann.get(url, headers=headers)
        assert (got.status_code, got.data) == (status, body), headers
        assert got.headers["Cache-Control"] == "private, max-age=3600"
        assert "Content-Disposition" not in got.headers
    assert ann.head(url).status_code == 500  # HEAD goes the general way: prepare was asked
    monkeypatch.undo()
    assert ann.get(f"/media/{h}/hls/{sid}/0.ts").data == segments[0]
    assert tc.session(sid, ann.user.id).last_segment == 0  # the request was recorded
    assert bob.get(url).status_code == 404  # not bob's, whatever the lean path remembers
    assert ann.post(f"/media/{h}/hls/{sid}/stop").status_code == 204
    assert ann.get(url).status_code == 404  # ended: refused at once


# ---- hardware encoders: their command lines, and a failing one falls back per job ----

NODE = "/dev/dri/renderD128"


def _transcode_argv(lib, encoder: str, tmp_path: Path) -> tuple[list[str], int]:
    """Return the server's argv for segment 0 of the HEVC clip with `encoder`, and the open
    input's descriptor (the caller closes it)."""
    from services import db as dbmod
    from services.playback import hls, media_files, source

    h = lib.hash("hevc_mkv")
    db = dbmod.open_db(lib.data)
    try:
        media = media_files.open_media(db, h, lib.settings.media_dirs)
        st = os.fstat(media.file.fileno())
        src = source.load(db, h, media.file.fileno(), (st.st_size, st.st_mtime_ns))
    finally:
        db.close()
    out = decision.decide(src, decision.parse_capabilities(CHROMIUM),
                          decision.parse_choice({}, src), allow_direct=False).output  # fmt: skip
    bounds = hls.boundaries(src, out, -1, None)
    fd = os.dup(media.file.fileno())
    media.file.close()
    return hls.encoder_args(src, out, bounds, 0, tmp_path, fd, encoder, NODE), fd


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _filters(argv: list[str]) -> list[str]:
    """Return the video filters of a compiled graph in order, without their pad labels."""
    import re

    return [re.sub(r"\[[^\]]*\]", "", f) for f in _option(argv, "-filter_complex").split(";")]


@pytest.mark.parametrize("encoder", ["h264_vaapi", "h264_qsv", "h264_nvenc"])
def test_hardware_command_lines_upload_frames_and_parse(lib, tmp_path, encoder):
    argv, fd = _transcode_argv(lib, encoder, tmp_path)
    try:
        graph = _filters(argv)
        assert _option(argv, "-c:v") == encoder
        at = graph.index("format=yuv420p")  # the software graph (scale, 8-bit) comes first
        if encoder == "h264_vaapi":
            assert _option(argv, "-vaapi_device") == NODE
            assert graph[at:] == ["format=yuv420p", "format=pix_fmts=nv12", "hwupload"]
        elif encoder == "h264_qsv":
            assert _option(argv, "-init_hw_device") == f"qsv=hw:{NODE}"
            assert _option(argv, "-filter_hw_device") == "hw"
            assert graph[at:] == ["format=yuv420p", "format=pix_fmts=nv12",
                                  "hwupload=extra_hw_frames=64", "format=pix_fmts=qsv"]  # fmt: skip
        else:
            assert graph[-1] == "format=yuv420p" and _option(argv, "-forced-idr") == "1"
        assert "-sc_threshold" not in argv and "-crf" not in argv  # libx264's own options
        # FFmpeg's own parser: every option name is known to this ffmpeg (an unknown one stops
        # it with "Unrecognized option … Error splitting the argument list"), and the encoder's
        # options are its own (`ffmpeg -h encoder=…`). What fails then is the device: no GPU
        # here, so no hardware encode runs in this test suite.
        proc = subprocess.run([runner.ffmpeg_path(), "-hide_banner", "-nostdin", *argv],
                              pass_fds=(fd,), capture_output=True, text=True, timeout=60)  # fmt: skip
        assert proc.returncode != 0
        assert "Unrecognized option" not in proc.stderr, proc.stderr
        assert "Error splitting the argument list" not in proc.stderr, proc.stderr
        assert (
            "No such filter" not in proc.stderr and "Error parsing filterchain" not in proc.stderr
        )
        known = subprocess.run([runner.ffmpeg_path(), "-hide_banner", "-h", f"encoder={encoder}"],
                               capture_output=True, text=True, timeout=30).stdout  # fmt: skip
        if "Unknown encoder" in known or not known.strip():
            pytest.skip(f"this ffmpeg has no {encoder}")
        full = subprocess.run([runner.ffmpeg_path(), "-hide_banner", "-h", "full"],
                              capture_output=True, text=True, timeout=30).stdout  # fmt: skip
        generic = full[full.index("AVCodecContext AVOptions") :].split("\n\n")[0]
        for name in ("-preset", "-qp", "-cq", "-global_quality", "-forced-idr", "-profile"):
            if name in argv or f"{name}:v" in argv:
                assert f"\n  {name} " in known + generic, (name, encoder)
    finally:
        os.close(fd)


def test_a_failing_hardware_encoder_falls_back_to_software_for_that_job(lib, argvs, caplog):
    if os.path.exists("/dev/dri") or os.path.exists("/dev/nvidia0"):
        pytest.skip("this machine has a GPU device node: the forced encoder might work")
    # As if detection had found VAAPI on a render node that is not there (a GPU removed, a
    # container without /dev/dri): ffmpeg fails at start.
    tc = lib.transcoder(encoder="h264_vaapi", device=NODE, restart_ahead=1.0)
    client = signed_in(lib.app)
    h = lib.hash("long_hevc")
    shutil.rmtree(lib.data / "hls" / "cache" / h, ignore_errors=True)  # made by earlier tests
    sid, names = open_session(client, h)
    with caplog.at_level(logging.WARNING, logger="services.playback.transcoder"):
        r = client.get(f"/media/{h}/hls/{sid}/{names[0]}")
        assert r.status_code == 200 and first_times(r.data)["video"] == pytest.approx(0, abs=0.1)
        # A seek in the same job restarts in software at once: no second try, no second warning.
        r = client.get(f"/media/{h}/hls/{sid}/{names[-1]}")
        assert r.status_code == 200
    warnings = [x for x in caplog.records if x.levelno == logging.WARNING]
    assert len(warnings) == 1, [x.getMessage() for x in warnings]
    assert "h264_vaapi failed" in warnings[0].getMessage()
    assert "falls back to libx264" in warnings[0].getMessage()
    encoders_used = [_option(a, "-c:v") for a in argvs]
    assert encoders_used == ["h264_vaapi", "libx264", "libx264"]
    assert _option(argvs[0], "-vaapi_device") == NODE
    assert "-vaapi_device" not in argvs[1] and "hwupload" not in _option(
        argvs[1], "-filter_complex"
    )
    assert tc.encoder == "h264_vaapi"  # the next job tries the hardware again


def test_detection_refuses_a_hardware_encoder_whose_test_encode_fails(monkeypatch):
    """Where a render node is listed but encoding fails, the answer is software, with why."""
    monkeypatch.setattr(encoders, "_candidates", lambda: [("vaapi", "h264_vaapi", NODE)])
    encoders.detect.cache_clear()
    try:
        choice = encoders.detect()
    finally:
        encoders.detect.cache_clear()
    assert (choice.name, choice.hardware, choice.device) == ("libx264", "none", "")
    assert "h264_vaapi" in choice.reason and "failed" in choice.reason
