"""M: memory of the server with a 100k library (SPEC §5: RSS < 250 MB).

The real server (gunicorn.conf.py: its workers and threads) on B6's synthesized 100k-row
database, background services off (the synthesized files are not on disk: the job runner would
only fail to make 100k thumbnails). Before measuring, several clients at once browse as people
do, so every worker thread has its connection, its memory map and its templates: home pages,
folder pages deep in the 100k folder in every sort and filter, htmx fragments, watch pages, health.
Then the resident memory of the master and every worker is summed (RSS; also USS, the memory
no other process shares, and PSS, shared pages divided among their users).

    python -m bench.m_memory [--rows 100000] [--requests 3000] [--clients 8]
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time

import psutil

from bench.b6_gallery import SORTS, Client, server, synthesize
from bench.harness import CORPUS_DIR, Bench, Samples

BUDGET_MB = 250.0
MB = 1024 * 1024


FRAGMENT = {"HX-Request": "true", "HX-Target": "more"}


def requests(rows: int, n: int, rng: random.Random) -> list[tuple[str, dict[str, str]]]:
    """Return a mix of what browsers ask for: (path, headers)."""
    filters = ["", "&kind=video", "&kind=picture", "&resolution=1080p", "&codec=hevc", "&view=list"]
    out: list[tuple[str, dict[str, str]]] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.05:
            out.append(("/", {}))
        elif r < 0.15:
            out.append((f"/watch/{rng.randrange(1, rows):016x}", {}))
        elif r < 0.2:
            out.append(("/health", {}))
        else:
            query = f"sort={rng.choice(SORTS)}{rng.choice(filters)}"
            deep = rng.random() < 0.9  # most pages come from scrolling: fragments
            after = f"&after={rng.randrange(1, rows)}" if deep else ""
            out.append((f"/browse/lib/big?{query}{after}", FRAGMENT if deep else {}))
    return out


def memory(pid: int) -> dict[str, float]:
    """Return RSS, USS and PSS in MB summed over the server process and its children."""
    master = psutil.Process(pid)
    total = {"rss": 0.0, "uss": 0.0, "pss": 0.0, "processes": 0}
    for proc in [master, *master.children(recursive=True)]:
        info = proc.memory_full_info()
        total["rss"] += info.rss / MB
        total["uss"] += info.uss / MB
        total["pss"] += info.pss / MB
        total["processes"] += 1
    return total


def main() -> int:
    """Run M and write bench/out/m.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    data_dir = CORPUS_DIR / f"b6-data-{args.rows}"
    root = synthesize(data_dir, args.rows)
    bench = Bench("m", f"server memory with a {args.rows:,}-item library", params=vars(args))
    rng = random.Random(7)
    work = requests(args.rows, args.requests, rng)
    with server(data_dir, root) as (port, pid):
        before = memory(pid)
        errors: list[str] = []

        def browse(share: list[tuple[str, dict[str, str]]]) -> None:
            client = Client(port)
            for path, headers in share:
                try:
                    client.get(path, headers)
                except RuntimeError as exc:
                    errors.append(str(exc))

        threads = [
            threading.Thread(target=browse, args=(work[i :: args.clients],))
            for i in range(args.clients)
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - started
        after = memory(pid)
    if errors:
        print(f"M: {len(errors)} requests failed, first: {errors[0]}", file=sys.stderr)
        return 1
    rss, budget = Samples("server RSS", unit="MB"), Samples("budget", unit="MB")
    rss.add(after["rss"])
    budget.add(BUDGET_MB)
    bench.compare("RSS after browsing (sum of processes)", budget, rss, target=1.0, headline=True)
    bench.extra.update(
        before=before, after=after, requests=len(work), seconds=took, clients=args.clients
    )
    bench.note(
        f"after {len(work)} requests from {args.clients} clients in {took:.1f} s: "
        f"RSS {after['rss']:.0f} MB, USS {after['uss']:.0f} MB, PSS {after['pss']:.0f} MB "
        f"over {after['processes']} processes (at start: RSS {before['rss']:.0f} MB)"
    )
    bench.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
