"""B2: probe throughput on 200 short mixed files and, separately, on two long MP4s.

Baseline: the bundled `ffmpeg -hide_banner -i FILE`, one process per file, one after another
(it exits 1, "no output file", after printing the stream info: that is the probe).
Ours, each timed in the same rounds as the baseline:
- pool×N warm: `services.library.probe_pool.ProbePool(N, timeout)` already started, files fed from N
  threads, as the scanner feeds it (N = the default worker count). Headline row.
- pool×N cold: the same, starting and closing the pool inside the timed region.
- pool×1 warm: one worker, the per-core comparison with the sequential baseline.
- probe_file: `services.library.probe.probe_file(path, kind)` in this process, sequentially.
An extra row compares pool×N with the baseline run N processes at a time, so that both sides
use the same number of cores. Targets: ≤ 0.25× short, ≤ 1.0× long (headline rows).

    python -m bench.b2_probe [--count 200] [--pairs 5] [--long-pairs 7]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.gen_videos import ensure_videos, kind_of
from bench.harness import Bench, ffmpeg_exe, run_cmd

log = logging.getLogger(__name__)

TARGET_SHORT = 0.25
TARGET_LONG = 1.0
FFMPEG_TIMEOUT = 60.0


def ffmpeg_sequential(exe: str, files: Sequence[Path]) -> Callable[[], None]:
    """Return the baseline: one `ffmpeg -i` process per file, one at a time."""

    def run() -> None:
        for path in files:
            run_cmd([exe, "-hide_banner", "-i", str(path)], timeout=FFMPEG_TIMEOUT, ok_codes=(1,))

    return run


def ffmpeg_parallel(exe: str, files: Sequence[Path], jobs: int) -> Callable[[], None]:
    """Return the baseline run `jobs` processes at a time (as `xargs -P` would)."""

    def one(path: Path) -> float:
        return run_cmd(
            [exe, "-hide_banner", "-i", str(path)], timeout=FFMPEG_TIMEOUT, ok_codes=(1,)
        )

    def run() -> None:
        with ThreadPoolExecutor(max_workers=jobs) as threads:
            list(threads.map(one, files))

    return run


def _check(result: Any, path: Path) -> None:
    # A probe that "succeeds" without a duration or size has not done the work being compared.
    ok = getattr(result, "width", None) or getattr(result, "duration", None)
    if not ok:
        raise AssertionError(f"probe of {path.name} returned no width or duration: {result!r}")


def feed_pool(pool: Any, files: Sequence[Path], threads: int) -> None:
    """Probe every file through the pool from `threads` threads, raising on any failure."""

    def one(path: Path) -> None:
        # Bytes, as the scanner passes them (paths come from the walker as bytes).
        _check(pool.probe(os.fsencode(path), kind_of(path)), path)

    with ThreadPoolExecutor(max_workers=threads) as executor:
        list(executor.map(one, files))


def run_group(
    bench: Bench,
    name: str,
    files: Sequence[Path],
    *,
    exe: str,
    workers: int,
    timeout: float,
    target: float,
    pairs: int,
) -> None:
    """Time the baseline and every variant of ours over `files`, interleaved, and add rows."""
    from services.library.probe import probe_file
    from services.library.probe_pool import ProbePool

    warm_n = ProbePool(workers, timeout)
    warm_1 = ProbePool(1, timeout)

    def cold() -> None:
        pool = ProbePool(workers, timeout)
        try:
            feed_pool(pool, files, workers)
        finally:
            pool.close()

    def in_process() -> None:
        for path in files:
            _check(probe_file(path, kind_of(path)), path)

    try:
        variants: dict[str, Callable[[], None]] = {
            f"pool×{workers} warm": lambda: feed_pool(warm_n, files, workers),
            f"pool×{workers} cold": cold,
            "pool×1 warm": lambda: feed_pool(warm_1, files, 1),
            "probe_file in-process": in_process,
        }
        bench.group(
            name,
            ffmpeg_sequential(exe, files),
            variants,
            pairs=pairs,
            warmup=1,
            targets={f"pool×{workers} warm": target},
            baseline_label="ffmpeg -i sequential",
            headline=f"pool×{workers} warm",
        )
        bench.pair(
            f"{name} [pool×{workers} warm vs ffmpeg ×{workers} parallel]",
            ffmpeg_parallel(exe, files, workers),
            lambda: feed_pool(warm_n, files, workers),
            pairs=pairs,
            warmup=1,
            baseline_label=f"ffmpeg -i ×{workers}",
            ours_label=f"pool×{workers} warm",
        )
    finally:
        warm_n.close()
        warm_1.close()


def main() -> int:
    """Run B2 and write bench/out/b2.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--long-pairs", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    corpus = ensure_videos(args.count)
    try:
        from config import load_settings
        from services.library.probe import probe_file  # noqa: F401 — fail early, before any timing
        from services.library.probe_pool import ProbePool  # noqa: F401
    except ImportError as exc:
        print(f"B2 cannot run yet: {exc}", file=sys.stderr)
        return 2
    settings = load_settings({})
    workers = settings.effective_probe_workers()
    timeout = settings.probe_timeout
    exe = ffmpeg_exe()
    bench = Bench(
        "b2",
        "probe throughput: short mixed files and long MP4s",
        params={
            "short_files": len(corpus.short),
            "long_files": [p.name for p in corpus.long],
            "workers": workers,
            "probe_timeout": timeout,
            "ffmpeg": exe,
        },
    )
    run_group(
        bench,
        f"{len(corpus.short)} short",
        corpus.short,
        exe=exe,
        workers=workers,
        timeout=timeout,
        target=TARGET_SHORT,
        pairs=args.pairs,
    )
    run_group(
        bench,
        f"{len(corpus.long)} long",
        corpus.long,
        exe=exe,
        workers=workers,
        timeout=timeout,
        target=TARGET_LONG,
        pairs=args.long_pairs,
    )
    bench.note(
        f"Headline rows: the pool with {workers} workers (the default on this machine), warm, "
        "against ffmpeg -i run sequentially, as SPEC §5 states the baseline. The pool uses up to "
        f"{workers} cores and the baseline about one: see the pool×1 rows and the rows against "
        f"ffmpeg ×{workers} parallel for the like-for-like comparisons."
    )
    bench.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
