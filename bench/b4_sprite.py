"""B4: scrub-preview sprite (81 tiles + WebVTT) against one keyframe-only ffmpeg pass.

Baseline (SPEC §5): `ffmpeg -skip_frame nokey -i FILE -vf fps=81/D,scale=160:-2,tile=9x9
-frames:v 1 out.jpg`, D the duration: one process decoding every keyframe into a 9×9 sheet.
Ours, timed in the same rounds:
- worker warm (headline): `ProbePool.run("sprite", ...)` on a started worker process, how the
  server makes sprites (sheet and VTT written to disk);
- in-process: `services.previews.sprites.render_sprite(...)` called directly, keyframes found the way
  the server finds them (by seeking when the index has an entry per cue, else in one pass);
- one pass: the same, forced to find keyframes in one pass over the packets.
Clips: B3's 1080p H.264 (keyframe every 2 s) and HEVC (every 5 s) clips, the HEVC one remuxed
to Matroska (cues per cluster: found in one pass), and B2's 20-minute MP4 when it exists.
Target: ≤ 0.5× on every clip.

    python -m bench.b4_sprite [--pairs 7]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

from bench.b3_thumbnail import CLIPS, Clip, ensure_clips
from bench.harness import CORPUS_DIR, Bench, ffmpeg_exe, run_cmd

log = logging.getLogger(__name__)

TARGET = 0.5
TILES = 81
TILE_WIDTH = 160
LONG = CORPUS_DIR / "videos" / "long" / "long-20min-moov-at-end.mp4"


def all_clips() -> list[Clip]:
    """Return B3's clips, a Matroska copy of the HEVC one, and B2's long MP4 if it is there."""
    clips = list(ensure_clips())
    hevc = next(c for c in CLIPS if c.codec == "hevc")
    mkv = hevc.path.with_suffix(".mkv")
    if not mkv.exists():
        part = mkv.with_name(mkv.name + ".part")
        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(hevc.path)]
        subprocess.run([*cmd, "-c", "copy", "-f", "matroska", str(part)], check=True, timeout=300)
        part.rename(mkv)
    clips.append(Clip("HEVC 1080p MKV", mkv, "hevc", hevc.gop_seconds))
    if LONG.exists():
        clips.append(Clip("H.264 20 min 192×108", LONG, "h264", 2, duration=1200.0))
    else:
        log.info("no %s (bench/run gen makes it): B4 runs without it", LONG)
    return clips


def run_clip(bench: Bench, clip: Clip, pool, out: Path, pairs: int) -> None:
    """Time the baseline and ours (worker, in-process, forced one pass) on one clip."""
    from services.previews.sprites import render_sprite

    stem = clip.path.stem
    paths = {name: (out / f"{stem}-{name}.jpg", out / f"{stem}-{name}.vtt") for name in "wpo"}
    baseline = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-skip_frame", "nokey"]
    baseline += ["-i", str(clip.path), "-vf", f"fps={TILES}/{clip.duration:g},"]
    baseline[-1] += f"scale={TILE_WIDTH}:-2,tile=9x9"
    baseline += ["-frames:v", "1", str(out / f"{stem}-ffmpeg.jpg")]
    source = str(clip.path).encode()
    results = {}

    def ours(name: str, mode: str | None = None, worker: bool = False):
        jpg, vtt = paths[name]

        def run() -> None:
            args = (source, str(jpg), str(vtt), TILE_WIDTH, TILES)
            if worker:
                results[name] = pool.run("sprite", *args, timeout=600)
            else:
                results[name] = render_sprite(*args, mode=mode)

        return run

    bench.group(
        clip.label,
        lambda: run_cmd(baseline, timeout=600),
        {
            "worker warm": ours("w", worker=True),
            "in-process": ours("p"),
            "one pass": ours("o", mode="pass"),
        },
        pairs=pairs,
        warmup=1,
        targets={"worker warm": TARGET},
        baseline_label="ffmpeg -skip_frame nokey",
        headline="worker warm",
    )
    for name, sprite in results.items():
        if sprite.cues != TILES or paths[name][1].read_text().count(" --> ") < 1:
            raise AssertionError(f"{clip.label} {name}: {sprite}")
    bench.extra[clip.label] = {name: repr(sprite) for name, sprite in results.items()}


def main() -> int:
    """Run B4 and write bench/out/b4.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    clips = all_clips()
    from services.library.probe_pool import ProbePool

    out = CORPUS_DIR / "b4-out"
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(
        "b4",
        "scrub-preview sprite (81 tiles + VTT) vs one keyframe-only ffmpeg pass",
        params={"tiles": TILES, "tile_width": TILE_WIDTH, "clips": [c.path.name for c in clips]},
    )
    with ProbePool(1, 600) as pool:
        for clip in clips:
            run_clip(bench, clip, pool, out, args.pairs)
    bench.note(
        "Headline: ours in a warm worker process of services.library.probe_pool, as the server runs it. "
        "Ours writes 81 cues over the whole duration; the sheet holds one tile per distinct "
        "keyframe (consecutive cues showing the same keyframe share a tile), where ffmpeg's "
        "fps filter repeats a keyframe in several tiles: the same pictures at the same times."
    )
    bench.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
