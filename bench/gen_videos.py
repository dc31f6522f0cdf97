"""Make the probe corpus for B2: a few hundred short mixed media files and two long MP4s.

Short files (1–3 s, tiny sizes) cycle through H.264/AAC MP4, HEVC/AAC MKV, VP9/Opus WebM,
MPEG-4/MP3 AVI, H.264 MP4 without audio, JPEG and PNG pictures. The long MP4s are low-resolution
but 20 and 30 minutes long, so their sample tables (the moov index) are big: that is what costs
a prober. One keeps the moov at the end (ffmpeg's default), one is `+faststart`.

    python -m bench.gen_videos [--count 200]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.harness import CORPUS_DIR, ffmpeg_exe

log = logging.getLogger(__name__)

VIDEO_DIR = CORPUS_DIR / "videos"
PICTURE_SUFFIXES = frozenset({".jpg", ".png"})
SIZES = ("160x90", "192x108", "128x96", "176x144", "256x144")
RATES = (24, 25, 30)

# (suffix, muxer, output args); None audio means a silent file.
VARIANTS: tuple[tuple[str, str, list[str], list[str] | None], ...] = (
    (
        ".mp4",
        "mp4",
        ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
        ["-c:a", "aac", "-b:a", "48k"],
    ),
    (
        ".mkv",
        "matroska",
        ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=none"],
        ["-c:a", "aac", "-b:a", "48k"],
    ),
    (
        ".webm",
        "webm",
        ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k"],
        ["-c:a", "libopus", "-b:a", "32k", "-ar", "48000"],
    ),
    (".avi", "avi", ["-c:v", "mpeg4", "-q:v", "5"], ["-c:a", "libmp3lame", "-b:a", "64k"]),
    (".mp4", "mp4", ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"], None),
)
PICTURES: tuple[tuple[str, list[str]], ...] = (
    (".jpg", ["-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "4"]),
    (".png", ["-c:v", "png"]),
)
# Out of every ten files: 3 H.264 MP4, 2 HEVC MKV, 1 VP9 WebM, 1 AVI, 1 silent MP4, 1 JPEG, 1 PNG.
CYCLE = (0, 0, 0, 1, 1, 2, 3, 4, "jpg", "png")
LONG = (
    # name, minutes, fps, faststart
    ("long-20min-moov-at-end.mp4", 20, 30, False),
    ("long-30min-faststart.mp4", 30, 24, True),
)


@dataclass(frozen=True)
class VideoCorpus:
    """The generated files: short mixed files and the long MP4s."""

    short: tuple[Path, ...]
    long: tuple[Path, ...]


def kind_of(path: Path) -> str:
    """Return the probe kind of a corpus file: 'picture' or 'video'."""
    return "picture" if path.suffix.lower() in PICTURE_SUFFIXES else "video"


def _short_job(i: int) -> tuple[str, list[str]]:
    size = SIZES[i % len(SIZES)]
    rate = RATES[i % len(RATES)]
    duration = 1 + i % 3
    base = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    choice = CYCLE[i % len(CYCLE)]
    if isinstance(choice, str):
        suffix, codec = PICTURES[0 if choice == "jpg" else 1]
        w, h = (int(v) * 2 for v in size.split("x"))
        name = f"{i:04d}-{choice}{suffix}"
        source = f"testsrc2=size={w}x{h}:rate=1:duration=1"
        args = [*base, "-f", "lavfi", "-i", source, "-frames:v", "1", *codec]
        args += ["-update", "1", "-f", "image2"]
        return name, args
    suffix, muxer, vargs, aargs = VARIANTS[choice]
    name = f"{i:04d}-{muxer}{'-silent' if aargs is None else ''}{suffix}"
    args = [*base, "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={duration}"]
    if aargs is not None:
        audio = f"sine=frequency={200 + i}:sample_rate=44100:duration={duration}"
        args += ["-f", "lavfi", "-i", audio]
    args += [*vargs, *(aargs or []), "-threads", "1", "-f", muxer]
    return name, args


def _long_job(name: str, minutes: int, fps: int, faststart: bool) -> list[str]:
    seconds = minutes * 60
    video = f"testsrc2=size=192x108:rate={fps}:duration={seconds}"
    audio = f"sine=frequency=440:sample_rate=44100:duration={seconds}"
    return [
        *"-hide_banner -loglevel error -nostdin -y".split(),
        *["-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio],
        *f"-c:v libx264 -preset ultrafast -g {fps * 2} -b:v 100k -pix_fmt yuv420p".split(),
        *"-c:a aac -b:a 32k -threads 1".split(),
        *(["-movflags", "+faststart"] if faststart else []),
        *["-f", "mp4"],
    ]


def _run(exe: str, args: list[str], dest: Path, timeout: float) -> None:
    # Write beside the destination and rename, so an interrupted run leaves no half file behind.
    part = dest.with_name(dest.name + ".part")
    subprocess.run([exe, *args, str(part)], check=True, timeout=timeout, stdin=subprocess.DEVNULL)
    os.replace(part, dest)


def ensure_videos(count: int = 200, root: Path = VIDEO_DIR) -> VideoCorpus:
    """Create any missing corpus file (two ffmpeg processes at a time) and return the corpus."""
    short_dir = root / "short"
    long_dir = root / "long"
    short_dir.mkdir(parents=True, exist_ok=True)
    long_dir.mkdir(parents=True, exist_ok=True)
    marker = root / f"done-{count}.json"
    jobs: list[tuple[list[str], Path, float]] = []
    long_paths = [long_dir / name for name, *_ in LONG]
    for (name, minutes, fps, faststart), dest in zip(LONG, long_paths, strict=True):
        if not dest.exists():
            jobs.append((_long_job(name, minutes, fps, faststart), dest, 900.0))
    short_paths = []
    for i in range(count):
        name, args = _short_job(i)
        dest = short_dir / name
        short_paths.append(dest)
        if not dest.exists():
            jobs.append((args, dest, 120.0))
    corpus = VideoCorpus(tuple(short_paths), tuple(long_paths))
    if not jobs and marker.exists():
        return corpus
    exe = ffmpeg_exe()
    start = time.perf_counter()
    log.info("making %d media files with %s", len(jobs), exe)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(_run, exe, a, d, t) for a, d, t in jobs]:
            future.result()
    marker.write_text(json.dumps({"count": count, "long": [p.name for p in long_paths]}))
    log.info("made %d files in %.1f s", len(jobs), time.perf_counter() - start)
    return corpus


def main() -> None:
    """Parse options and make the corpus."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    corpus = ensure_videos(args.count)
    print(f"{len(corpus.short)} short files, {len(corpus.long)} long files under {VIDEO_DIR}")


if __name__ == "__main__":
    main()
