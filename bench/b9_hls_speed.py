"""B9: sustained transcode speed through the server, and what a running transcode costs pages.

- Speed: a client pulls every segment of a 1080p clip (HEVC → H.264 720p, `q=720`) from the
  real server, one after the other as fast as they come; speed = clip seconds / wall time.
  Baseline: the server's own argument list with the segment muxer replaced by `-f null -`
  (ffmpeg's own speed with the same decode, filters and encode). Target: ours / baseline ≥ 0.95
  (higher is better: the row's ratio is baseline time / our time).
- Pages: p95 of a folder page (the clips' folder) while nothing runs, then while one transcode
  runs (a second client pulls segments in a thread). Target: p95 during ≤ 3× idle.
- Cached segment: a segment of the remux clip, already in the rendition's cache, fetched whole
  `--gets` times on one keep-alive connection (API token) through its HLS URL, against the very
  same bytes indexed as a library file (a copy in the library folder) fetched whole through the
  media file route (`/media/<hash>/file`, bench B5's path). Target: ≤ 1.1× the time. The same
  as 64 KiB ranges (the per-request cost), with the server's CPU per request beside it (psutil).

    python -m bench.b9_hls_speed [--pairs 5] [--pages 150] [--gets 50] [--only cached]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.b8_hls_start import CLIPS, QUERY, Client, make_clips, prepare, raw_args, segment_of
from bench.harness import ROOT, Bench, Samples, app_server, process_cpu

sys.path.insert(0, str(ROOT))

KEY = "hevc"


def ours(port: int, token: str, data: Path, h: str, seconds: float):
    """Return a callable pulling every segment through the server; it returns the wall time."""

    def run() -> float:
        client = Client(port, token)
        sid, _ = segment_of(client, h, QUERY[KEY], 0.0)
        status, body = client.get(f"/media/{h}/hls/{sid}/stream.m3u8")
        names = [x for x in body.decode().splitlines() if x and not x.startswith("#")]
        started = time.perf_counter()
        for name in names:
            status, _ = client.get(f"/media/{h}/hls/{sid}/{name}")
            assert status == 200, status
        took = time.perf_counter() - started
        client.post(f"/media/{h}/hls/{sid}/stop")
        shutil.rmtree(data / "hls" / "cache" / h, ignore_errors=True)
        return took

    return run


def null_args(args: list[str]) -> list[str]:
    """Replace the segment muxer and its options by `-f null -`."""
    out, skip = [], False
    drop = {"-f", "-segment_format", "-segment_start_number", "-segment_list_type",
            "-segment_list", "-segment_time", "-segment_times", "-muxdelay", "-muxpreload"}  # fmt: skip
    for a in args[:-4]:  # the output pattern, then -loglevel warning -nostats, come last
        if skip:
            skip = False
            continue
        if a in drop:
            skip = True
            continue
        out.append(a)
    return [*out, "-f", "null", "-", "-loglevel", "error"]


def baseline(args: list[str]):
    from services.ffmpeg import ENCODER_NICE, ffmpeg_path

    def run() -> float:
        started = time.perf_counter()
        # At the server's encoder priority (services/ffmpeg.py): the row compares the server's
        # overhead, not two priorities on a machine other work keeps busy.
        nice = ["nice", "-n", str(ENCODER_NICE)] if shutil.which("nice") else []
        subprocess.run([*nice, ffmpeg_path(), "-hide_banner", "-nostdin", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)  # fmt: skip
        return time.perf_counter() - started

    return run


def cached_segment(port: int, token: str, data: Path, root: Path, h: str) -> tuple[str, str]:
    """Make every segment of the remux clip, copy segment 1 into the library and index it;
    return the segment's URL and the copy's media file URL."""
    from config import load_settings
    from services import db as dbmod
    from services.library.scanner import scan

    client = Client(port, token)
    sid, _ = segment_of(client, h, QUERY["remux"], 0.0)
    status, body = client.get(f"/media/{h}/hls/{sid}/1.ts")
    assert status == 200, status
    copy = root / "b9-segment.ts"
    if not copy.exists() or copy.read_bytes() != body:
        copy.write_bytes(body)
    settings = load_settings({"media_dirs": [str(root)], "data_dir": str(data),
                              "probe_workers": 1}, environ={}, dotenv_path=data / "no.env")  # fmt: skip
    db = dbmod.open_db(data)
    try:
        scan(db, settings)
        row = db.execute(
            "SELECT m.media_hash FROM files f JOIN media m ON m.id = f.media_id WHERE f.name = ?",
            [copy.name],
        ).fetchone()
    finally:
        db.close()
    return f"/media/{h}/hls/{sid}/1.ts", f"/media/{row[0]}/file"


def fetch_whole(port: int, token: str, url: str, gets: int, size: int, part: int = 0,
                cpu: tuple[int, Samples] | None = None):  # fmt: skip
    """Return a callable fetching `url` whole `gets` times on one keep-alive connection (or,
    with `part`, its first `part` bytes by a Range request: the per-request cost). `cpu`: (the
    server's pid, samples) — each call adds the server's CPU seconds per request (psutil: its
    processes, user + system), steadier than wall time on a shared machine."""
    import http.client

    def run() -> float:
        if cpu is None:
            return timed()
        before = process_cpu(cpu[0])
        took = timed()
        cpu[1].add((process_cpu(cpu[0]) - before) / gets)
        return took

    def timed() -> float:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Authorization": f"Bearer {token}"}
        if part:
            headers["Range"] = f"bytes=0-{part - 1}"
        want = (206, part) if part else (200, size)
        started = time.perf_counter()
        for _ in range(gets):
            conn.request("GET", url, headers=headers)
            r = conn.getresponse()
            got = (r.status, len(r.read()))
            assert got == want, got
        took = time.perf_counter() - started
        conn.close()
        return took

    return run


def page_p95(port: int, token: str, n: int) -> Samples:
    client = Client(port, token)
    samples = Samples("folder page")
    for _ in range(n):
        with samples.time():
            status, _ = client.get("/browse/library")
        assert status == 200, status
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--pages", type=int, default=150)
    parser.add_argument("--gets", type=int, default=50)
    parser.add_argument("--only", choices=["speed", "cached"], help="run only these rows")
    opts = parser.parse_args()
    root = make_clips()
    data, hashes, token = prepare(root)
    h = hashes[KEY]
    bench = Bench("b9", "sustained HLS transcode speed, and page p95 while one runs",
                  params={"pairs": opts.pairs, "pages": opts.pages, "clip": CLIPS[KEY][0],
                          "to": "H.264 720p", "gets": opts.gets})  # fmt: skip
    with app_server(data, root) as (port, pid), tempfile.TemporaryDirectory() as tmp:
        if opts.only != "speed":
            segment, original = cached_segment(port, token, data, root, hashes["remux"])
            size = (root / "b9-segment.ts").stat().st_size
            bench.extra["cached segment bytes"] = size
            bench.pair(f"cached segment ({size / 1e6:.1f} MB) × {opts.gets}, whole: HLS route vs "
                       "the same bytes through the media file route",
                       fetch_whole(port, token, original, opts.gets, size),
                       fetch_whole(port, token, segment, opts.gets, size), pairs=opts.pairs,
                       warmup=1, target=1.1)  # fmt: skip
            cpu_file, cpu_hls = Samples("media file route", "s"), Samples("HLS route", "s")
            bench.pair(f"cached segment, 64 KiB range × {opts.gets * 10}: HLS route vs the same "
                       "bytes through the media file route",
                       fetch_whole(port, token, original, opts.gets * 10, size, 65536,
                                   (pid, cpu_file)),
                       fetch_whole(port, token, segment, opts.gets * 10, size, 65536,
                                   (pid, cpu_hls)),
                       pairs=opts.pairs, warmup=1, target=1.1)  # fmt: skip
            del cpu_file.values[0], cpu_hls.values[0]  # the warm-up round's
            bench.compare("cached segment, 64 KiB range: server CPU per request, HLS route vs "
                          "the media file route", cpu_file, cpu_hls)  # fmt: skip
        if opts.only == "cached":
            bench.finish()
            return
        args, _ = raw_args(data, root / CLIPS[KEY][0], h, QUERY[KEY], 0.0, Path(tmp))
        base = baseline(null_args(args))
        bench.pair("HEVC 1080p → H.264 720p, every segment: time (ratio = speed⁻¹)", base,
                   ours(port, token, data, h, 0), pairs=opts.pairs, warmup=1,
                   target=1 / 0.95, headline=True)  # fmt: skip
        idle = page_p95(port, token, opts.pages)
        stop = threading.Event()

        def transcode() -> None:
            while not stop.is_set():
                ours(port, token, data, h, 0)()

        worker = threading.Thread(target=transcode, daemon=True)
        worker.start()
        time.sleep(1.0)  # the encoder is running
        busy = page_p95(port, token, opts.pages)
        stop.set()
        worker.join(timeout=120)
        bench.compare("folder page p95 while one transcode runs", idle, busy, target=3,
                      stat="p95")  # fmt: skip
    bench.note("speed row: ours = pulling every segment through gunicorn; baseline = the same "
               "argv with -f null -, at the encoders' nice level; target ours/baseline ≤ 1/0.95 "
               "(speed ≥ 0.95×)")  # fmt: skip
    bench.finish()


if __name__ == "__main__":
    os.environ.setdefault("LVS_LOG_LEVEL", "WARNING")
    main()
