"""B3: poster thumbnail of a 1080p H.264 and a 1080p HEVC clip, against one ffmpeg process.

Baseline (SPEC §5): `ffmpeg -ss T -i FILE -frames:v 1 -vf scale=320:-2 out.jpg`, T = 10 % of the
duration, the way a server that shells out to ffmpeg makes a poster.
Ours, timed in the same rounds:
- worker warm (headline): `ProbePool.run("thumbnail", ...)` on a pool whose worker process is
  already started, which is how the server makes thumbnails (the job runner sends each one to
  a killable worker process);
- in-process: `services.previews.thumbnails.render_thumbnail(...)` called directly.
Both write the JPEG to disk, as the baseline does. Targets: ≤ 0.2× H.264, ≤ 0.1× HEVC.
The clips (60 s, 1080p30, noisy test pattern so decoding costs what camera footage does) are
encoded once into bench/corpus/clips/ (about 2 minutes); B4 uses them too.

    python -m bench.b3_thumbnail [--pairs 9]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import CORPUS_DIR, Bench, ffmpeg_exe, run_cmd

log = logging.getLogger(__name__)

CLIP_DIR = CORPUS_DIR / "clips"
SECONDS = 60
WIDTH = 320
TARGETS = {"h264": 0.2, "hevc": 0.1}  # SPEC §5


@dataclass(frozen=True)
class Clip:
    """One 1080p benchmark clip."""

    label: str
    path: Path
    codec: str
    gop_seconds: int
    duration: float = SECONDS


# Noise gives the encoder real texture to spend bits on, so decoding costs what it does on
# camera footage (a bare test pattern decodes several times faster); bitrates are typical of
# 1080p files people keep. Keyframes every 2 s (H.264) and 5 s (HEVC, the sparse case).
CLIPS = (
    Clip("H.264 1080p", CLIP_DIR / "h264-1080p-gop2s.mp4", "h264", 2),
    Clip("HEVC 1080p", CLIP_DIR / "hevc-1080p-gop5s.mp4", "hevc", 5),
)
RATE = 30


def _encode_args(clip: Clip) -> list[str]:
    source = f"testsrc2=size=1920x1080:rate={RATE}:duration={SECONDS},noise=alls=10:allf=t"
    gop = str(RATE * clip.gop_seconds)
    args = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i", source]
    args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}"]
    if clip.codec == "h264":
        args += ["-c:v", "libx264", "-preset", "veryfast", "-b:v", "8M", "-maxrate", "10M"]
        args += ["-bufsize", "16M", "-pix_fmt", "yuv420p"]
    else:
        args += ["-c:v", "libx265", "-preset", "ultrafast", "-b:v", "5M", "-pix_fmt", "yuv420p"]
        args += ["-tag:v", "hvc1", "-x265-params", "log-level=error"]
    args += ["-g", gop, "-keyint_min", gop, "-sc_threshold", "0", "-c:a", "aac", "-b:a", "128k"]
    return [*args, "-movflags", "+faststart", "-f", "mp4"]


def ensure_clips() -> tuple[Clip, ...]:
    """Encode any missing benchmark clip (once; a few minutes on two cores) and return them."""
    CLIP_DIR.mkdir(parents=True, exist_ok=True)
    exe = ffmpeg_exe()
    for clip in CLIPS:
        if clip.path.exists():
            continue
        log.info("encoding %s (%d s of %s) ...", clip.path.name, SECONDS, clip.label)
        started = time.perf_counter()
        part = clip.path.with_name(clip.path.name + ".part")
        cmd = [exe, *_encode_args(clip), str(part)]
        subprocess.run(cmd, check=True, timeout=1800, stdin=subprocess.DEVNULL)
        part.rename(clip.path)
        log.info("made %s in %.0f s", clip.path.name, time.perf_counter() - started)
    return CLIPS


def _check_jpeg(path: Path, width: int) -> None:
    from PIL import Image

    with Image.open(path) as image:
        if image.format != "JPEG" or image.width != width:
            raise AssertionError(f"{path.name}: {image.format} {image.size}, not a {width}px JPEG")


def run_clip(bench: Bench, clip: Clip, pool, out: Path, pairs: int, target: float) -> None:
    """Time the baseline, ours in a warm worker and ours in-process on one clip."""
    from services.previews.thumbnails import render_thumbnail

    at = clip.duration * 0.10
    base_out, ours_out, inproc_out = (out / f"{clip.codec}-{n}.jpg" for n in ("ff", "w", "p"))
    baseline = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-ss", f"{at:g}"]
    baseline += ["-i", str(clip.path), "-frames:v", "1", "-vf", f"scale={WIDTH}:-2"]
    baseline.append(str(base_out))
    source = str(clip.path).encode()

    def worker() -> None:
        pool.run("thumbnail", source, "video", str(ours_out), WIDTH, timeout=60)

    def in_process() -> None:
        render_thumbnail(source, "video", str(inproc_out), WIDTH)

    bench.group(
        f"{clip.label} poster at {at:g} s",
        lambda: run_cmd(baseline, timeout=120),
        {"worker warm": worker, "in-process": in_process},
        pairs=pairs,
        warmup=1,
        targets={"worker warm": target},
        baseline_label="ffmpeg -ss T -i",
        headline="worker warm",
    )
    for path in (base_out, ours_out, inproc_out):
        _check_jpeg(path, WIDTH)


def main() -> int:
    """Run B3 and write bench/out/b3.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=9)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    clips = ensure_clips()
    from services.library.probe_pool import ProbePool

    out = CORPUS_DIR / "b3-out"
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(
        "b3",
        "poster thumbnail of 1080p H.264 and HEVC clips",
        params={"width": WIDTH, "clips": [c.path.name for c in clips], "ffmpeg": ffmpeg_exe()},
    )
    with ProbePool(1, 60) as pool:
        for clip in clips:
            run_clip(bench, clip, pool, out, args.pairs, TARGETS[clip.codec])
    bench.note(
        "Headline: ours in a warm worker process of services.library.probe_pool (how the server makes "
        "thumbnails: the job runner sends each render to a killable worker), including the "
        "request/reply over its pipe; in-process is render_thumbnail() called directly. Both "
        "open the file, seek to the keyframe at or before 10 %, decode it alone, check it is not "
        "black, scale to 320 px and write the JPEG, as the baseline process writes its JPEG."
    )
    bench.note(
        "The baseline seeks to the same 10 % (6 s) and decodes from the keyframe before it up to "
        "6 s: on the H.264 clip (keyframes every 2 s) 6 s is a keyframe, the baseline's best "
        "case; on the HEVC clip (every 5 s) it decodes 1 s of frames."
    )
    bench.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
