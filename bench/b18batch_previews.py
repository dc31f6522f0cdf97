"""B18 batch: thumbnails and sprites of new media made by workers vs by the server alone.

A library of N distinct 720p H.264 clips (bench/corpus/b18_batch), scanned once; every round
starts from a copy of that database with no preview made, runs the server's job runner (the
real services.jobs.Jobs, as services/background.py starts it, LVS_PREVIEW_CLIPS=off) and
times how long until every thumbnail and sprite is recorded:

- baseline "server alone": no Redis (today's single node), the runner's own worker processes;
- "2 workers, local off": LVS_REDIS_URL set, LVS_LOCAL_WORK=off — every job goes to two real
  `flask worker` processes through Redis, each file comes back over a signed GET and is
  checked and written here (services/previews/batch_*.py);
- "2 workers, local on": the same with LVS_LOCAL_WORK=on — the server works too.

Everything runs on this one machine: the "other machines" share its cores, so the rows show
the overhead of the round trip (queue, report, fetch, checks), not the speed-up a second box
would bring (each real worker adds its own cores).

    bench/run b18batch [--pairs 5] [--videos 16]     (python -m bench.b18batch_previews)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.b18_workers import SECRET, Redis, Workers, copy_data
from bench.harness import CORPUS_DIR, Bench, Samples, ffmpeg_exe

CORPUS = CORPUS_DIR / "b18_batch"
KINDS = ("thumbnail", "sprite")


def make_library(count: int) -> Path:
    """Return a folder of `count` distinct 1280×720 H.264 clips (made once)."""
    CORPUS.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        out = CORPUS / f"clip{i:02d}-60s.mp4"
        if out.exists():
            continue
        part = out.with_suffix(".part.mp4")
        src = f"testsrc2=size=1280x720:rate=30:duration={60 + i}"
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", src, "-c:v", "libx264", "-preset", "ultrafast", "-g", "60",
                        "-pix_fmt", "yuv420p", str(part)], check=True, timeout=300)  # fmt: skip
        part.rename(out)
    return CORPUS


def settings_for(data: Path, media: Path, redis_url: str = "", local_work: str = "on"):
    from config import load_settings

    values = {"media_dirs": [str(media)], "data_dir": str(data), "watch": "off",
              "preview_clips": "off", "redis_url": redis_url, "local_work": local_work,
              "node_secret": SECRET if redis_url else ""}  # fmt: skip
    return load_settings(values, environ={}, dotenv_path=data / "no.env")


def made(settings) -> int:
    from services import db as dbmod

    db = dbmod.connect(settings.db_path)
    try:
        return db.execute("SELECT count(*) FROM thumbs WHERE status = 'ok'").fetchone()[0]
    finally:
        db.close()


def one_round(scanned: Path, work: Path, media: Path, wanted: int, redis_url: str = "",
              local_work: str = "on") -> float:  # fmt: skip
    """Return the seconds from the runner's start until every preview is recorded."""
    from services.jobs import Jobs
    from services.previews.batch_deliveries import Deliveries

    data = copy_data(scanned, work)
    settings = settings_for(data, media, redis_url, local_work)
    deliveries = Deliveries(settings).start() if redis_url else None
    started = time.perf_counter()
    jobs = Jobs(settings)
    try:
        while made(settings) < wanted:
            time.sleep(0.05)
            if time.perf_counter() - started > 600:
                raise RuntimeError(f"only {made(settings)} of {wanted} previews after 600 s")
        return time.perf_counter() - started
    finally:
        jobs.close()
        if deliveries is not None:
            deliveries.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--videos", type=int, default=16)
    args = parser.parse_args()
    media = make_library(args.videos)
    base = Path(tempfile.mkdtemp(prefix="b18-batch-"))
    redis = Redis(base / "redis")
    workers = Workers(base, redis.url, media)
    bench = Bench("b18_batch", "B18: thumbnails + sprites by 2 workers vs the server alone",
                  params={"pairs": args.pairs, "videos": args.videos})  # fmt: skip
    try:
        from services import db as dbmod
        from services.library.scanner import scan

        scanned = base / "scanned"
        settings = settings_for(scanned, media)
        db = dbmod.open_db(scanned)
        scan(db, settings)
        db.close()
        wanted = args.videos * len(KINDS)
        workers.start("w-1")
        workers.start("w-2")
        alone = Samples("server alone")
        off = Samples("2 workers, local off")
        on = Samples("2 workers, local on")
        for n in range(args.pairs + 1):  # the first round warms up (not recorded)
            times = (one_round(scanned, base / "a", media, wanted),
                     one_round(scanned, base / "b", media, wanted, redis.url, "off"),
                     one_round(scanned, base / "c", media, wanted, redis.url, "on"))  # fmt: skip
            if n:
                alone.add(times[0])
                off.add(times[1])
                on.add(times[2])
            print(f"round {n}: alone {times[0]:.2f} s, off {times[1]:.2f} s, on {times[2]:.2f} s")
        bench.compare(f"{args.videos} thumbnails + sprites [local off]", alone, off,
                      headline=True)  # fmt: skip
        bench.compare(f"{args.videos} thumbnails + sprites [local on]", alone, on)
        bench.note("one 2-core machine: the workers share the server's cores, so the ratio is "
                   "the round trip's overhead, not a second machine's gain")  # fmt: skip
        bench.extra["cpus"] = os.cpu_count()
    finally:
        workers.stop_all()
        redis.stop()
        shutil.rmtree(base, ignore_errors=True)
    bench.finish()


if __name__ == "__main__":
    main()
