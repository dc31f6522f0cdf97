"""Generate a real, tiny media corpus with the bundled ffmpeg for tests and benchmarks.

Every clip is made by ffmpeg from lavfi sources (`testsrc2` + `sine`), so probes, thumbnails and
transcodes run against files a real encoder wrote. Variants that only differ by name (VR names,
hostile names) are hard links of one base clip, so the whole corpus costs a few ffmpeg runs.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

from PIL import Image

from services.ffmpeg import ffmpeg_path, file_arg

log = logging.getLogger(__name__)

SIZE = "320x240"
FPS = 25
SECONDS = 2
# A keyframe every second (and no scene-cut keyframes) so seek tests know where keyframes are.
GOP = ["-g", str(FPS), "-keyint_min", str(FPS), "-sc_threshold", "0"]
EXIF_TAKEN = "2021:07:04 12:34:56"
SUBTITLE_SRT = (
    "1\n00:00:00,000 --> 00:00:01,000\nHello\n\n2\n00:00:01,000 --> 00:00:02,000\nWorld\n"
)

# Stable keys of make_corpus() for the files that are copies of the H.264 clip under other names.
VR_NAMES = {
    "vr_180_sbs": "scene_180_sbs.mp4",
    "vr_mkx200": "MKX200 test.mp4",
}
HOSTILE_NAMES: dict[str, str | bytes] = {
    "name_dash_vf": "-vf.mp4",
    "name_concat": "concat:a|b.mp4",
    "name_subst": "$(id).mkv",
    "name_space": "my holiday video.mp4",
    "name_unicode": "ünïcødé 日本語.mp4",
    "name_hash": "part #1.mp4",
    "name_percent": "100%.mp4",
    "name_question": "why?.mp4",
    # 83 three-byte characters + "xx.mp4" = exactly 255 bytes, the usual NAME_MAX.
    "name_long": "日" * 83 + "xx.mp4",
    "name_bad_utf8": b"bad\xff.mp4",
}


@cache
def encoders() -> frozenset[str]:
    """Return the names of the encoders the ffmpeg binary was built with."""
    out = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-encoders"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        # Encoder lines look like " V....D libx264  description"; the legend lines have "=".
        if len(parts) >= 2 and len(parts[0]) == 6 and "=" not in line:
            names.add(parts[1])
    return frozenset(names)


@cache
def pixel_formats(encoder: str) -> frozenset[str]:
    """Return the pixel formats an encoder accepts."""
    out = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-h", f"encoder={encoder}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for line in out.splitlines():
        if "Supported pixel formats:" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg quietly, overwriting outputs; fail loudly with its stderr."""
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {cmd}\n{proc.stderr[-2000:]}")


def lavfi_inputs(seconds: float = SECONDS, *, size: str = SIZE, audio: bool = True) -> list[str]:
    """Return input arguments for a test pattern and, if asked, a 440 Hz tone."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    return args


def make_video(
    out: Path,
    *,
    vcodec: list[str],
    acodec: list[str] | None = None,
    seconds: float = SECONDS,
    size: str = SIZE,
    vfilter: str | None = None,
) -> Path:
    """Encode a test-pattern clip (with a tone when acodec is given) to out; return out."""
    args = lavfi_inputs(seconds, size=size, audio=acodec is not None)
    if vfilter:
        args += ["-vf", vfilter]
    args += ["-c:v", *vcodec, *GOP]
    if acodec is not None:
        args += ["-c:a", *acodec]
    ffmpeg(*args, "-shortest", file_arg(out))
    return out


X264 = ["libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
X265 = ["libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"]


def _h264_mp4(out: Path) -> Path:
    return make_video(out, vcodec=X264, acodec=["aac", "-b:a", "64k"])


def _hevc_mkv(out: Path) -> Path:
    return make_video(out, vcodec=[*X265, "-pix_fmt", "yuv420p"])


def _vp9_webm(out: Path) -> Path:
    if "libvpx-vp9" not in encoders():
        # The file keeps its key so tests still find a WebM; VP8 is the other WebM codec.
        log.warning("ffmpeg has no libvpx-vp9 encoder; the WebM clip is VP8 instead")
        vcodec = ["libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k"]
    else:
        vcodec = ["libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1"]
        vcodec += ["-b:v", "300k"]
    acodec = ["libopus", "-b:a", "48k"] if "libopus" in encoders() else ["libvorbis"]
    return make_video(out, vcodec=vcodec, acodec=acodec)


def _mpeg4_avi(out: Path) -> Path:
    acodec = ["libmp3lame", "-b:a", "64k"] if "libmp3lame" in encoders() else ["pcm_s16le"]
    return make_video(out, vcodec=["mpeg4", "-q:v", "5"], acodec=acodec)


def _black_start_mp4(out: Path) -> Path:
    # Every frame before 0.8 s (40 % of 2 s) is pure black: fade-in renders them black.
    return make_video(
        out,
        vcodec=X264,
        acodec=["aac", "-b:a", "64k"],
        vfilter=f"fade=type=in:start_time={SECONDS * 0.4}:duration=0.04",
    )


def _hevc10_mp4(out: Path) -> Path | None:
    if "yuv420p10le" not in pixel_formats("libx265"):
        log.warning("libx265 cannot encode 10-bit here; no 10-bit HEVC clip in the corpus")
        return None
    vcodec = [*X265, "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1"]
    return make_video(out, vcodec=vcodec, acodec=["aac", "-b:a", "64k"])


def _h264_ac3_mp4(out: Path) -> Path:
    """H.264 with AC-3 5.1: only the audio needs converting (a remux with the audio encoded)."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={FPS}:duration={SECONDS}"]
    args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}"]
    args += ["-filter_complex", "[1:a]pan=5.1|FL=c0|FR=c0|FC=c0|LFE=c0|BL=c0|BR=c0[a]"]
    args += ["-map", "0:v", "-map", "[a]", "-c:v", *X264, *GOP, "-c:a", "ac3", "-b:a", "192k"]
    ffmpeg(*args, "-shortest", file_arg(out))
    return out


def _mpeg2_ts(out: Path) -> Path:
    """Interlaced (top field first) MPEG-2 with MP2 audio in MPEG-TS, as a DVB recording."""
    return make_video(
        out,
        vcodec=["mpeg2video", "-flags", "+ilme+ildct", "-b:v", "1M"],
        acodec=["mp2", "-b:a", "96k"],
        vfilter="setfield=tff",
    )


def _hevc10_mkv(out: Path) -> Path | None:
    if "yuv420p10le" not in pixel_formats("libx265"):
        return None
    return make_video(out, vcodec=[*X265, "-pix_fmt", "yuv420p10le"], acodec=["aac", "-b:a", "64k"])


def _subtitle_mkv(out: Path, base: Path) -> Path:
    srt = out.with_suffix(".srt.txt")
    srt.write_text(SUBTITLE_SRT, encoding="utf-8")
    ffmpeg(
        "-i",
        file_arg(base),
        "-f",
        "srt",
        "-i",
        file_arg(srt),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-c:s",
        "srt",
        "-metadata:s:s:0",
        "language=eng",
        "-metadata:s:s:0",
        "title=English",
        file_arg(out),
    )
    srt.unlink()
    return out


def _rotated(out: Path, base: Path, ccw_degrees: int) -> Path:
    # -display_rotation is counter-clockwise, like FFmpeg's display matrix report.
    ffmpeg("-display_rotation", str(ccw_degrees), "-i", file_arg(base), "-c", "copy", file_arg(out))
    return out


def _remux(out: Path, base: Path) -> Path:
    ffmpeg("-i", file_arg(base), "-c", "copy", file_arg(out))
    return out


def _jpeg_exif(out: Path) -> Path:
    img = Image.new("RGB", (64, 48), (200, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif.get_ifd(0x8769)[0x9003] = EXIF_TAKEN  # DateTimeOriginal
    img.save(out, "JPEG", exif=exif, quality=80)
    return out


def _png(out: Path) -> Path:
    Image.new("RGB", (40, 30), (20, 120, 220)).save(out, "PNG")
    return out


def _huge_png(out: Path, side: int = 12000) -> Path:
    """Write a valid side×side 1-bit PNG without ever holding its pixels (it is ~20 KB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed 1-bit pixels
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    out.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return out


def _huge_jpeg(out: Path, side: int = 12000) -> Path:
    """Write a small JPEG whose header claims side×side: decoding it would take side² × 3 bytes."""
    _png(out.with_suffix(".tmp.png"))
    with Image.open(out.with_suffix(".tmp.png")) as img:
        img.convert("RGB").save(out, "JPEG")
    out.with_suffix(".tmp.png").unlink()
    data = bytearray(out.read_bytes())
    sof = data.index(b"\xff\xc0")  # baseline start-of-frame: length, precision, height, width
    data[sof + 5 : sof + 9] = struct.pack(">HH", side, side)
    out.write_bytes(bytes(data))
    return out


def _bomb_png(out: Path, side: int = 20000) -> Path:
    """Write a PNG whose header claims side×side (400 MP) over a token IDAT."""
    Image.new("L", (1, 1)).save(out, "PNG")
    data = bytearray(out.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", side, side)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    out.write_bytes(bytes(data))
    return out


def _audio_only_mp4(out: Path) -> Path:
    tone = f"sine=frequency=440:sample_rate=48000:duration={SECONDS}"
    ffmpeg("-f", "lavfi", "-i", tone, "-c:a", "aac", "-b:a", "64k", file_arg(out))
    return out


def _link(src: Path, dst: Path | bytes) -> Path:
    """Hard-link src to dst (copy where links are refused); return dst as a Path."""
    dst_path = Path(os.fsdecode(dst))
    try:
        os.link(src, dst_path)
    except OSError:
        shutil.copyfile(src, dst_path)
    return dst_path


def make_corpus(root: Path) -> dict[str, Path]:
    """Create the test corpus under root and return its files by stable key.

    Keys: h264_mp4, hevc_mkv, vp9_webm, mpeg4_avi, black_start_mp4, subtitle_mkv, rotated_mp4
    (phone-style: shown turned 90° clockwise), rotated_mov (270°), hevc10_mp4 and hevc10_mkv
    (when libx265 has 10-bit), h264_ac3_mp4 (AC-3 5.1 audio), mpeg2_ts (interlaced), h264_mkv,
    audio_only_mp4, jpeg_exif, png, huge_png (valid, 12000² 1-bit), huge_jpg (header says
    12000², RGB), bomb_png (header says 20000²), corrupt_mp4, corrupt_jpg,
    truncated_mp4, empty_mp4, playlist_mp4, ffconcat_mkv, the VR_NAMES keys plus vr_360_tb, and the
    HOSTILE_NAMES keys (name_bad_utf8's Path holds a surrogate-escaped invalid UTF-8 name).
    """
    root.mkdir(parents=True, exist_ok=True)
    videos = root / "videos"
    names = root / "names"
    pictures = root / "pictures"
    bad = root / "bad"
    for folder in (videos, names, pictures, bad):
        folder.mkdir(exist_ok=True)

    files: dict[str, Path] = {}
    encodes: dict[str, tuple[Callable[[Path], Path | None], Path]] = {
        "h264_mp4": (_h264_mp4, videos / "h264.mp4"),
        "hevc_mkv": (_hevc_mkv, videos / "hevc.mkv"),
        "vp9_webm": (_vp9_webm, videos / "vp9.webm"),
        "mpeg4_avi": (_mpeg4_avi, videos / "mpeg4.avi"),
        "black_start_mp4": (_black_start_mp4, videos / "black_start.mp4"),
        "hevc10_mp4": (_hevc10_mp4, videos / "hevc10.mp4"),
        "hevc10_mkv": (_hevc10_mkv, videos / "hevc10.mkv"),
        "h264_ac3_mp4": (_h264_ac3_mp4, videos / "h264_ac3.mp4"),
        "mpeg2_ts": (_mpeg2_ts, videos / "interlaced.ts"),
        "audio_only_mp4": (_audio_only_mp4, bad / "audio_only.mp4"),
    }
    # Two cores: encode in parallel; each ffmpeg is mostly single-threaded for clips this small.
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {key: pool.submit(fn, out) for key, (fn, out) in encodes.items()}
        base = futures["h264_mp4"].result()
        derived = {
            "subtitle_mkv": pool.submit(_subtitle_mkv, videos / "subtitles.mkv", base),
            "rotated_mp4": pool.submit(_rotated, videos / "rotated.mp4", base, -90),
            "rotated_mov": pool.submit(_rotated, videos / "rotated.mov", base, 90),
            "h264_mkv": pool.submit(_remux, videos / "h264.mkv", base),
        }
        for key, future in {**futures, **derived}.items():
            path = future.result()
            if path is not None:
                files[key] = path

    files["jpeg_exif"] = _jpeg_exif(pictures / "photo.jpg")
    files["png"] = _png(pictures / "picture.png")
    files["huge_png"] = _huge_png(pictures / "huge.png")
    files["huge_jpg"] = _huge_jpeg(pictures / "huge.jpg")
    files["bomb_png"] = _bomb_png(bad / "bomb.png")

    rng = random.Random(20240601)  # fixed seed: the same "corrupt" bytes every run
    files["corrupt_mp4"] = bad / "corrupt.mp4"
    files["corrupt_mp4"].write_bytes(rng.randbytes(64 * 1024))
    files["corrupt_jpg"] = bad / "corrupt.jpg"
    files["corrupt_jpg"].write_bytes(rng.randbytes(16 * 1024))
    data = base.read_bytes()
    files["truncated_mp4"] = bad / "truncated.mp4"
    files["truncated_mp4"].write_bytes(data[: len(data) * 3 // 10])
    files["empty_mp4"] = bad / "empty.mp4"
    files["empty_mp4"].touch()
    # Playlists that point at a real local video: a probe must refuse them, not follow them.
    files["playlist_mp4"] = bad / "playlist.mp4"
    files["playlist_mp4"].write_text(f"#EXTM3U\n#EXTINF:2.0,\n{base}\n#EXT-X-ENDLIST\n")
    files["ffconcat_mkv"] = bad / "ffconcat.mkv"
    files["ffconcat_mkv"].write_text(f"ffconcat version 1.0\nfile '{base}'\n")

    for key, name in VR_NAMES.items():
        files[key] = _link(base, videos / name)
    files["vr_360_tb"] = _link(files["h264_mkv"], videos / "clip_360_tb.mkv")
    for key, name in HOSTILE_NAMES.items():
        src = files["h264_mkv"] if os.fsdecode(name).endswith(".mkv") else base
        files[key] = _link(src, os.fsencode(names) + b"/" + os.fsencode(name))
    return files


if __name__ == "__main__":
    import sys
    import time

    started = time.perf_counter()
    corpus = make_corpus(Path(sys.argv[1]))
    took = time.perf_counter() - started
    for corpus_key, corpus_path in corpus.items():
        print(f"{corpus_key:16} {os.fsencode(corpus_path)!r}")
    print(f"{len(corpus)} files in {took:.2f} s")
