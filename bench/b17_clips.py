"""B17: preview clips — making one for a 1080p 10-minute video, against the same file's scrub
sprite and against ffmpeg doing the same by hand in one command; their cost in CPU, memory, bytes.

Corpus (made once, `bench/corpus/clips17/`): a 10-minute 1920×1080 30 fps H.264 MP4 (B3's
recipe: testsrc2 with noise, 8 Mb/s, a keyframe every 2 s, AAC) and a 60 s 3840×1920 side by
side 180° H.264 (a keyframe every 2 s) for a VR clip (the 960 px box, layout kept).

Rows, interleaved (one untimed warm-up round, then ≥ 5 rounds):
- `1080p 10 min: clip vs sprite` — baseline: the sprite (81 tiles + VTT) of the same file made
  as the server makes it (`ProbePool.run("sprite")`, a warm worker); ours:
  `services.previews.clips.render_clip` as the job runner calls it (12 ffmpeg snippet runs and a
  join, at nice 10). No target: how much more background work a clip is than the sprite every
  video gets already.
- `… clip vs by hand` (1080p and the 4K VR file) — baseline: ONE ffmpeg with twelve
  `-ss S -t 0.75 -i FILE` inputs, scaled and joined by the concat filter, libx264 with the same
  settings and the same nice (what one would type); ours: render_clip. Target ≤ 1.5×: ours pays
  12 process starts for holding one decoder at a time.
- CPU seconds (user + system of the ffmpeg processes) of both, and each one's peak memory (the
  largest ffmpeg's resident set, measured once in a fresh process).
- The clips' sizes, and the share of the source file they add.

    python -m bench.b17_clips [--pairs 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import CORPUS_DIR, Bench, Samples, ffmpeg_exe

log = logging.getLogger(__name__)

DIR = CORPUS_DIR / "clips17"
FLAT = DIR / "h264-1080p-10min.mp4"
VR = DIR / "vr-4k-60s_180_sbs.mp4"
TARGET = 1.5


def _encode(dest: Path, args: list[str]) -> None:
    if dest.exists():
        return
    DIR.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    log.info("encoding %s (a few minutes on two cores) ...", dest.name)
    started = time.perf_counter()
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    subprocess.run([*cmd, "-movflags", "+faststart", "-f", "mp4", str(part)], check=True)
    part.rename(dest)
    log.info("made %s in %.0f s", dest.name, time.perf_counter() - started)


def ensure_corpus() -> None:
    """Encode the two videos if they are missing."""
    noise = "testsrc2=size=1920x1080:rate=30:duration=600,noise=alls=10:allf=t"
    _encode(FLAT, ["-f", "lavfi", "-i", noise, "-f", "lavfi", "-i",
                   "sine=frequency=440:sample_rate=48000:duration=600", "-c:v", "libx264",
                   "-preset", "veryfast", "-b:v", "8M", "-maxrate", "10M", "-bufsize", "16M",
                   "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
                   "-c:a", "aac", "-b:a", "128k"])  # fmt: skip
    _encode(VR, ["-f", "lavfi", "-i", "testsrc2=size=3840x1920:rate=30:duration=60",
                 "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "60",
                 "-keyint_min", "60", "-sc_threshold", "0"])  # fmt: skip


def by_hand_args(source: Path, dest: Path, box: int, duration: float) -> list[str]:
    """One ffmpeg: a `-ss -t -i` input per snippet of the same plan, scaled, concat filter,
    libx264 with our settings."""
    from services.previews import clips

    snippets = clips.plan(duration)
    args = ["-loglevel", "error", "-y"]
    for start, seconds in snippets:
        args += ["-an", "-ss", f"{start:.3f}", "-t", f"{seconds:.3f}", "-i", str(source)]
    scale = f"scale=w='min({box},iw)':h=-2,setsar=1"
    graph = ";".join(f"[{n}:v:0]{scale}[v{n}]" for n in range(len(snippets)))
    graph += ";" + "".join(f"[v{n}]" for n in range(len(snippets)))
    graph += f"concat=n={len(snippets)}:v=1:a=0,format=yuv420p[out]"
    args += ["-filter_complex", graph, "-map", "[out]", "-c:v", "libx264", "-preset",
             clips.PRESET, "-crf", str(clips.CRF), "-profile:v", "high", "-movflags", "+faststart",
             "-f", "mp4", str(dest)]  # fmt: skip
    return args


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Timed:
    """A callable for Bench.group that also keeps the CPU seconds its ffmpeg children took."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.cpu: list[float] = []

    def __call__(self) -> None:
        before = children_cpu()
        self.fn()
        self.cpu.append(children_cpu() - before)

    def samples(self, label: str, warmup: int) -> Samples:
        s = Samples(label)
        for value in self.cpu[warmup:]:
            s.add(value)
        return s


PEAK = """
import json, resource, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from bench.b17_clips import by_hand_args
from services.ffmpeg import ENCODER_NICE, run_ffmpeg
from services.previews import clips
source, dest, box, duration, way = {args!r}
if way == "ours":
    clips.render_clip(source.encode(), dest, box, timeout=600)
else:
    run_ffmpeg(by_hand_args(Path(source), Path(dest), box, duration), timeout=600, nice=ENCODER_NICE)
print(json.dumps(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
"""


def peak_kib(source: Path, dest: Path, box: int, duration: float, way: str) -> int:
    """Return the largest resident set (KiB) of the ffmpeg processes making one clip."""
    root = str(Path(__file__).resolve().parent.parent)
    code = PEAK.format(root=root, args=(str(source), str(dest), box, duration, way))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(json.loads(out.stdout.strip().splitlines()[-1]))


def duration_of(path: Path) -> float:
    from services.previews import frames

    with frames.open_video(path) as video:
        return float(video.duration or 0.0)


def main() -> int:
    """Run B17 and write bench/out/b17.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ensure_corpus()
    from services.ffmpeg import ENCODER_NICE, run_ffmpeg
    from services.library.probe_pool import ProbePool
    from services.previews import clips

    out = CORPUS_DIR / "b17-out"
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(
        "b17",
        "preview clip of a 1080p 10-minute video vs its sprite and vs one ffmpeg by hand",
        params={"snippets": clips.SNIPPETS, "snippet_seconds": clips.SNIPPET_SECONDS,
                "crf": clips.CRF, "preset": clips.PRESET, "files": [FLAT.name, VR.name]},
    )  # fmt: skip
    cases = [("1080p 10 min", FLAT, clips.FLAT_BOX), ("4K 180° SBS 60 s", VR, clips.VR_BOX)]
    sizes: dict[str, dict[str, int]] = {}
    with ProbePool(1, 600) as pool:
        for label, source, box in cases:
            duration = duration_of(source)
            ours_path, hand_path = out / f"{source.stem}-ours.mp4", out / f"{source.stem}-hand.mp4"
            ours = Timed(lambda s=source, d=ours_path, b=box: clips.render_clip(
                os.fsencode(s), str(d), b, timeout=600))  # fmt: skip
            hand = Timed(lambda s=source, d=hand_path, b=box, t=duration: run_ffmpeg(
                by_hand_args(s, d, b, t), timeout=600, nice=ENCODER_NICE))  # fmt: skip
            if source == FLAT:
                jpg, vtt = out / "sprite.jpg", out / "sprite.vtt"
                bench.pair(
                    f"{label}: clip vs sprite",
                    lambda s=source, j=jpg, v=vtt: pool.run(
                        "sprite", os.fsencode(s), str(j), str(v), 160, 81, timeout=600
                    ),  # fmt: skip
                    ours,
                    pairs=args.pairs,
                    baseline_label="sprite (warm worker)",
                    ours_label="clip",
                )
                ours.cpu.clear()
            bench.pair(
                f"{label}: clip vs by hand",
                hand,
                ours,
                pairs=args.pairs,
                target=TARGET,
                baseline_label="one ffmpeg, 12 inputs",
                ours_label="ours",
                headline=source == FLAT,
            )
            bench.compare(
                f"{label}: CPU seconds, ours vs by hand",
                hand.samples("one ffmpeg, 12 inputs", 1),
                ours.samples("ours", 1),
            )
            peak_ours = peak_kib(source, out / "peak-ours.mp4", box, duration, "ours")
            peak_hand = peak_kib(source, out / "peak-hand.mp4", box, duration, "hand")
            bench.extra[f"{label}: peak RSS KiB"] = {"ours": peak_ours, "by hand": peak_hand}
            sizes[label] = {
                "source": source.stat().st_size,
                "ours": ours_path.stat().st_size,
                "by hand": hand_path.stat().st_size,
            }
            bench.note(
                f"{label}: clip {sizes[label]['ours'] / 1024:.0f} KiB "
                f"({100 * sizes[label]['ours'] / sizes[label]['source']:.3f} % of the source), "
                f"by hand {sizes[label]['by hand'] / 1024:.0f} KiB; peak memory ours "
                f"{peak_ours / 1024:.0f} MiB, by hand {peak_hand / 1024:.0f} MiB"
            )
    bench.extra["sizes"] = sizes
    bench.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
