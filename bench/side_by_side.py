"""B5's random-ranges row for two versions of the app at once, beside the bare app.

On a shared machine two separate `bench/run b5` runs an hour apart compare two loads, not two
versions. This runs the bare ceiling (bench/bare_ranges_app.py), this checkout's app and another
checkout's app (an older commit: `git worktree add /tmp/old COMMIT`, or `git archive COMMIT |
tar -x -C /tmp/old`) in interleaved rounds with the same clients, and prints req/s and the
servers' CPU per request, medians and ratios to the bare app.

    .venv/bin/python -m bench.side_by_side /tmp/old [--rounds 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

from bench import b5_stream as b5
from bench.harness import CORPUS_DIR, ROOT, Samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, help="another checkout of the project")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    path = b5.ensure_file(600)
    size = path.stat().st_size
    data_dir = CORPUS_DIR / "b5" / "data"
    ours_url = f"/media/{b5.index(path.parent, data_dir)}/file"
    trees = {"this": ROOT, "other": args.other.resolve()}
    with ExitStack() as stack:
        ports = {"bare": stack.enter_context(b5.bare_gunicorn(path, 2, 8))}
        for name, tree in trees.items():
            ports[name] = stack.enter_context(b5.gunicorn(path.parent, data_dir, 2, 8, tree))
        rps = {name: Samples(name, "req/s") for name in ports}
        cpu = {name: Samples(name) for name in ports}
        for round_no in range(args.rounds + 1):  # round 0 warms up
            line = []
            for name, port in ports.items():
                url = f"/{path.name}" if name == "bare" else ours_url
                got = b5.random_ranges(port, url, size, round_no, cpu[name] if round_no else None)
                if round_no:
                    rps[name].add(got)
                line.append(f"{name} {got:,.0f} req/s")
            print(f"round {round_no}: " + ", ".join(line), flush=True)
    bare_rps, bare_cpu = rps["bare"].median, cpu["bare"].median
    for name in ports:
        rounds = [o / c for o, c in zip(rps[name].values, rps["bare"].values, strict=True)]
        print(
            f"{name}: {rps[name].median:,.0f} req/s = {rps[name].median / bare_rps:.3f}× the bare "
            f"app (per round {statistics.median(rounds):.3f}×); server CPU "
            f"{cpu[name].median * 1e6:.0f} µs per request = {cpu[name].median / bare_cpu:.2f}×"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
