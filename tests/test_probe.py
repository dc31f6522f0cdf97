"""Probe real files and hold the results against what the bundled ffmpeg reports for them."""

from __future__ import annotations

import os
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import av
import pytest
from PIL import Image

from services.errors import FFmpegError, ProbeError
from services.ffmpeg import file_arg, run_ffmpeg
from services.library.probe import MAX_PICTURE_PIXELS, ProbeResult, probe_file
from tests.mediagen import EXIF_TAKEN, HOSTILE_NAMES, VR_NAMES

VIDEO_KEYS = [
    "h264_mp4",
    "hevc_mkv",
    "vp9_webm",
    "mpeg4_avi",
    "black_start_mp4",
    "subtitle_mkv",
    "rotated_mp4",
    "rotated_mov",
    "hevc10_mp4",
    "h264_mkv",
    "vr_360_tb",
    *VR_NAMES,
    *HOSTILE_NAMES,
]

# --- ffmpeg's own report -----------------------------------------------------------------------

STREAM_LINE = re.compile(r"^\s*Stream #0:(\d+)(?:\[0x[0-9a-f]+\])?(?:\((\w+)\))?: (\w+): (.*)$")
CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "7.1": 8}


@dataclass
class Reported:
    """What `ffmpeg -i FILE` printed about a file."""

    demuxer: str | None = None
    duration: float | None = None
    bitrate_kbps: int | None = None
    streams: list[dict] = field(default_factory=list)


def split_top(text: str) -> list[str]:
    """Split ffmpeg's stream description on commas outside parentheses and brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def parse_rate(value: str) -> float:
    return float(value[:-1]) * 1000 if value.endswith("k") else float(value)


def ffmpeg_report(path: Path) -> Reported:
    """Run the bundled `ffmpeg -i` on path and parse what it says about the input."""
    proc = run_ffmpeg(["-i", file_arg(path)], timeout=60, check=False)
    rep = Reported()
    stream: dict | None = None
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        if m := re.match(r"Input #0, (.+?), from '", line):
            rep.demuxer = m.group(1)
        elif m := re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", line):
            h, mi, s = m.groups()
            rep.duration = int(h) * 3600 + int(mi) * 60 + float(s)
            if b := re.search(r"bitrate: (\d+) kb/s", line):
                rep.bitrate_kbps = int(b.group(1))
        elif m := STREAM_LINE.match(line):
            index, lang, kind, desc = m.groups()
            parts = split_top(desc)
            stream = {
                "index": int(index),
                "type": kind.lower(),
                "codec": parts[0].split()[0],
                "language": None if lang in (None, "und") else lang,
                "default": "(default)" in desc,
                "rotation": 0,
                "title": None,
                "kbps": next(
                    (int(p.split()[0]) for p in parts if re.match(r"\d+ kb/s\b", p)), None
                ),
            }
            if stream["type"] == "video":
                profiles = [p for p in re.findall(r"\(([^)]*)\)", parts[0]) if " / 0x" not in p]
                pix_fmt = parts[1].split("(")[0]
                bits = re.search(r"p(\d+)(?:le|be)$", pix_fmt)
                dims = next(filter(None, (re.match(r"(\d+)x(\d+)\b", p) for p in parts[1:])), None)
                fps = next((p.split()[0] for p in parts if p.endswith(" fps")), None)
                tbr = next((p.split()[0] for p in parts if p.endswith(" tbr")), None)
                stream.update(
                    profile=profiles[0] if profiles else None,
                    bit_depth=int(bits.group(1)) if bits else 8,
                    width=int(dims.group(1)) if dims else None,
                    height=int(dims.group(2)) if dims else None,
                    fps=parse_rate(fps or tbr) if (fps or tbr) else None,
                )
            elif stream["type"] == "audio":
                layout = parts[2].split("(")[0]
                many = re.fullmatch(r"(\d+) channels", layout)
                stream["channels"] = int(many.group(1)) if many else CHANNELS[layout]
            rep.streams.append(stream)
        elif stream is not None and (m := re.search(r"rotation of (-?[\d.]+) degrees", line)):
            stream["rotation"] = float(m.group(1))
        elif stream is not None and (m := re.match(r"\s+title\s+: (.*)$", line)):
            stream["title"] = m.group(1)
    return rep


# --- videos ------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", VIDEO_KEYS)
def test_video_probe_matches_ffmpeg_report(media: dict[str, Path], key: str) -> None:
    got = probe_file(media[key], "video")
    rep = ffmpeg_report(media[key])

    assert got.kind == "video"
    assert rep.duration is not None and got.duration is not None
    # ffmpeg prints the duration rounded to hundredths.
    assert abs(got.duration - rep.duration) <= 0.0051
    assert got.bitrate is not None and got.bitrate // 1000 == rep.bitrate_kbps
    assert [s.index for s in got.streams] == [s["index"] for s in rep.streams]
    for ours, theirs in zip(got.streams, rep.streams, strict=True):
        assert ours.type == theirs["type"]
        assert ours.codec == theirs["codec"]
        assert ours.language == theirs["language"]
        assert ours.is_default == theirs["default"]
        assert ours.title == theirs["title"]
        assert (ours.bitrate // 1000 if ours.bitrate else None) == theirs["kbps"]
        if ours.type == "video":
            assert (ours.width, ours.height) == (theirs["width"], theirs["height"])
            assert ours.bit_depth == theirs["bit_depth"]
            assert ours.profile == theirs["profile"]
            assert ours.fps is not None and abs(ours.fps - theirs["fps"]) < 0.006
        if ours.type == "audio":
            assert ours.channels == theirs["channels"]
    first_video = next(s for s in rep.streams if s["type"] == "video")
    assert (got.width, got.height) == (first_video["width"], first_video["height"])
    assert got.video_codec == first_video["codec"]
    assert got.audio_codec == next((s["codec"] for s in rep.streams if s["type"] == "audio"), None)
    # Ours is clockwise (how far to turn the picture); ffmpeg's display matrix is counter-clockwise.
    assert got.rotation == round(-first_video["rotation"]) % 360


@pytest.mark.parametrize(
    ("key", "container", "video", "audio"),
    [
        ("h264_mp4", "mp4", "h264", "aac"),
        ("rotated_mov", "mov", "h264", "aac"),
        ("hevc_mkv", "matroska", "hevc", None),
        ("vp9_webm", "webm", "vp9", "opus"),
        ("mpeg4_avi", "avi", "mpeg4", "mp3"),
        ("hevc10_mp4", "mp4", "hevc", "aac"),
    ],
)
def test_container_and_codecs(
    media: dict[str, Path], key: str, container: str, video: str, audio: str | None
) -> None:
    got = probe_file(media[key], "video")
    assert (got.container, got.video_codec, got.audio_codec) == (container, video, audio)
    assert (got.width, got.height, got.fps) == (320, 240, 25.0)
    assert abs(got.duration - 2.0) < 0.05


@pytest.mark.parametrize(
    ("key", "rotation"), [("h264_mp4", 0), ("rotated_mp4", 90), ("rotated_mov", 270)]
)
def test_rotation_matches_decoded_frame(media: dict[str, Path], key: str, rotation: int) -> None:
    got = probe_file(media[key], "video")
    with av.open(os.fspath(media[key])) as container:
        frame = next(container.decode(video=0))
    # PyAV's frame.rotation is FFmpeg's counter-clockwise display-matrix angle.
    assert got.rotation == rotation == round(-frame.rotation) % 360
    assert (got.width, got.height) == (frame.width, frame.height)  # stored size, not rotated


def test_ten_bit_hevc(media: dict[str, Path]) -> None:
    assert "hevc10_mp4" in media, "the bundled libx265 lost 10-bit support"
    video = next(s for s in probe_file(media["hevc10_mp4"], "video").streams if s.type == "video")
    assert (video.codec, video.profile, video.bit_depth) == ("hevc", "Main 10", 10)
    eight = next(s for s in probe_file(media["hevc_mkv"], "video").streams if s.type == "video")
    assert (eight.profile, eight.bit_depth) == ("Main", 8)


def test_subtitle_stream_language_and_title(media: dict[str, Path]) -> None:
    streams = probe_file(media["subtitle_mkv"], "video").streams
    assert [s.type for s in streams] == ["video", "audio", "subtitle"]
    sub = streams[2]
    assert (sub.codec, sub.language, sub.title, sub.is_default) == (
        "subrip",
        "eng",
        "English",
        False,
    )


@pytest.mark.parametrize("key", list(HOSTILE_NAMES))
def test_hostile_names_are_just_files(media: dict[str, Path], key: str) -> None:
    base = "h264_mkv" if os.fsdecode(HOSTILE_NAMES[key]).endswith(".mkv") else "h264_mp4"
    assert probe_file(media[key], "video") == probe_file(media[base], "video")
    assert probe_file(os.fsencode(media[key]), "video") == probe_file(media[base], "video")


def test_invalid_utf8_name_round_trips(media: dict[str, Path]) -> None:
    raw = os.fsencode(media["name_bad_utf8"])
    assert raw.endswith(b"/bad\xff.mp4")
    assert probe_file(raw, "video").video_codec == "h264"


# --- bad files ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "kind", "reason"),
    [
        ("corrupt_mp4", "video", "not a media file"),
        ("truncated_mp4", "video", "truncated: moov atom not found"),
        ("empty_mp4", "video", "empty file"),
        ("playlist_mp4", "video", "playlist files are not media"),
        ("ffconcat_mkv", "video", "playlist files are not media"),
        ("audio_only_mp4", "video", "no video stream"),
        ("jpeg_exif", "video", "not a video container"),
        ("corrupt_jpg", "picture", "not a picture"),
        ("h264_mp4", "picture", "not a picture"),
        ("playlist_mp4", "picture", "playlist files are not media"),
    ],
)
def test_bad_files_have_clear_reasons(
    media: dict[str, Path], key: str, kind: str, reason: str
) -> None:
    with pytest.raises(ProbeError) as err:
        probe_file(media[key], kind)
    assert str(err.value) == reason


@pytest.mark.parametrize(
    ("key", "says"), [("corrupt_mp4", "Invalid data"), ("truncated_mp4", "moov atom not found")]
)
def test_ffmpeg_also_rejects_what_we_reject(media: dict[str, Path], key: str, says: str) -> None:
    proc = run_ffmpeg(["-i", file_arg(media[key])], timeout=60, check=False)
    assert says in proc.stderr.decode("utf-8", "replace")
    assert ffmpeg_report(media[key]).streams == []


def test_damaged_headers_give_a_result_or_a_probe_error(
    media: dict[str, Path], tmp_path: Path
) -> None:
    # Flip bytes inside the moov (at the end of these files) and in the first kilobyte of MKV:
    # whatever FFmpeg and our own box walk make of it, the caller sees a result or ProbeError.
    rng = random.Random(7)
    outcomes = set()
    for key in ("rotated_mp4", "subtitle_mkv"):
        data = media[key].read_bytes()
        start = data.rfind(b"moov") - 4 if key == "rotated_mp4" else 0
        end = len(data) if key == "rotated_mp4" else 1024
        for i in range(40):
            damaged = bytearray(data)
            for _ in range(8):
                damaged[rng.randrange(start, end)] = rng.randrange(256)
            path = tmp_path / f"{i}-{media[key].name}"
            path.write_bytes(bytes(damaged))
            try:
                got = probe_file(path, "video")
                assert got.rotation in (0, 90, 180, 270)
                outcomes.add("ok")
            except ProbeError:
                outcomes.add("error")
    assert "ok" in outcomes


@pytest.mark.timeout(20)
def test_playlist_reference_is_never_opened(media: dict[str, Path], tmp_path: Path) -> None:
    # The playlist points at a FIFO: following it would block on open until a writer comes.
    fifo = tmp_path / "target.mp4"
    os.mkfifo(fifo)
    for name, text in [
        ("list.mp4", f"#EXTM3U\n#EXTINF:2.0,\n{fifo}\n"),
        ("list.mkv", f"\ufeff\n  #EXTM3U\n{fifo}\n"),
        ("concat.mp4", f"ffconcat version 1.0\nfile '{fifo}'\n"),
    ]:
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(ProbeError, match="playlist files are not media"):
            probe_file(tmp_path / name, "video")


@pytest.mark.timeout(20)
def test_fifo_and_directory_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    for path in (fifo, folder):
        started = time.monotonic()
        with pytest.raises(ProbeError, match="not a regular file"):
            probe_file(path, "video")
        assert time.monotonic() - started < 1


def test_missing_file_is_an_os_error_not_a_bad_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe_file(tmp_path / "gone.mp4", "video")


def test_unknown_kind_is_a_programming_error(media: dict[str, Path]) -> None:
    with pytest.raises(ValueError):
        probe_file(media["h264_mp4"], "audio")


# --- pictures ----------------------------------------------------------------------------------


def test_jpeg_exif_date_and_orientation(media: dict[str, Path]) -> None:
    got = probe_file(media["jpeg_exif"], "picture")
    assert got == ProbeResult(
        kind="picture",
        container="jpeg",
        duration=None,
        width=64,
        height=48,
        bitrate=None,
        fps=None,
        video_codec=None,
        audio_codec=None,
        rotation=90,
        taken_at=EXIF_TAKEN.replace(":", "-", 2).replace(" ", "T"),
        orientation=6,
        streams=(),
    )
    assert got.taken_at == "2021-07-04T12:34:56"
    with Image.open(media["jpeg_exif"]) as im:
        assert im.getexif()[0x0112] == 6


@pytest.mark.parametrize("key", ["jpeg_exif", "png"])
def test_picture_size_matches_ffmpeg(media: dict[str, Path], key: str) -> None:
    got = probe_file(media[key], "picture")
    video = ffmpeg_report(media[key]).streams[0]
    assert (got.width, got.height) == (video["width"], video["height"])


def test_png_without_exif(media: dict[str, Path]) -> None:
    got = probe_file(media["png"], "picture")
    assert (got.container, got.width, got.height) == ("png", 40, 30)
    assert (got.orientation, got.taken_at, got.rotation) == (None, None, 0)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("key", ["huge_png", "huge_jpg"])
def test_huge_picture_is_measured_not_decoded(media: dict[str, Path], key: str) -> None:
    started = time.perf_counter()
    got = probe_file(media[key], "picture")
    assert (got.width, got.height) == (12000, 12000)
    assert got.width * got.height <= MAX_PICTURE_PIXELS
    # Decoding 144 MP would take seconds (and 432 MB for the RGB one); the header takes ms.
    assert time.perf_counter() - started < 0.5


def test_picture_over_the_limit_is_refused(media: dict[str, Path]) -> None:
    with pytest.raises(ProbeError, match="picture too large"):
        probe_file(media["bomb_png"], "picture")


# --- the ffmpeg runner -------------------------------------------------------------------------


def _processes_with(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
def test_run_ffmpeg_kills_the_process_group_on_timeout(tmp_path: Path) -> None:
    marker = f"lvs-test-{uuid.uuid4()}"
    endless = ["-re", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25"]
    started = time.monotonic()
    with pytest.raises(FFmpegError, match="timed out after 1 s") as err:
        run_ffmpeg([*endless, "-metadata", f"comment={marker}", "-f", "null", "-"], timeout=1)
    assert time.monotonic() - started < 5
    assert "testsrc2" in err.value.stderr_tail or err.value.stderr_tail == ""
    assert _processes_with(marker) == []


def test_run_ffmpeg_reports_failure_with_stderr_tail(tmp_path: Path) -> None:
    with pytest.raises(FFmpegError) as err:
        run_ffmpeg(["-i", file_arg(tmp_path / "missing.mp4"), "-f", "null", "-"], timeout=30)
    assert "No such file or directory" in err.value.stderr_tail


def test_file_arg_writes_hostile_output_names(media: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "-y concat:x|y.mkv"
    run_ffmpeg(["-i", file_arg(media["h264_mp4"]), "-c", "copy", file_arg(out)], timeout=60)
    assert probe_file(out, "video").video_codec == "h264"
