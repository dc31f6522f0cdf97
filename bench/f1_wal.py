"""F1: the write-ahead log under a long reader (issue 20, item 2).

Ratings are written at --rate per second (default 1,000) through
services.organize.ratings.rate, from one thread, while another connection holds one read
transaction open for --hold seconds (default 60); then the writes go on for --after seconds
(default 10) and stop for one checkpoint interval. The `-wal` file's size is sampled every 0.1 s.

- before: SQLite's defaults, as the server had them: no journal_size_limit, no checkpoint keeper;
- after: services.db.connect (journal_size_limit) and the background owner's
  services.operate.wal.WalKeeper every --interval seconds (the server's default is 60).

Rows, in MiB: the peak while the reader holds the log (the same either way: every page written
since the reader began must be kept), the size --after seconds after the reader left with the
writes going on, and the size one idle interval after the writes stopped.

    python -m bench.f1_wal [--hold 60] [--rate 1000] [--after 10] [--interval 10]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import threading
import time
from pathlib import Path

from bench.harness import CORPUS_DIR, Bench, Samples
from services import db as dbmod
from services.operate.wal import WalKeeper, wal_bytes
from services.organize import ratings
from services.organize.metacache import MetaCache
from services.people import users

MIB = 1 << 20
USERS = 50
HASH = "0123456789abcdef"


def _setup(data_dir: Path) -> list[int]:
    shutil.rmtree(data_dir, ignore_errors=True)
    db = dbmod.open_db(data_dir)
    with dbmod.write(db):
        db.execute(
            "INSERT INTO media (media_hash, kind, size, added_at) VALUES (?, 'video', 1, 0)",
            [HASH],
        )
    ids = [
        users.create(db, f"rater{i}", "viewer", "bench password", rounds=4).id for i in range(USERS)
    ]
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return ids


def run(mode: str, args: argparse.Namespace) -> dict[str, float]:
    """Run one mode ('before' or 'after'); return its sizes in MiB and the write rate reached."""
    data_dir = CORPUS_DIR / f"f1-{mode}"
    ids = _setup(data_dir)
    db_path = data_dir / "library.db"
    keeper = WalKeeper(db_path, args.interval) if mode == "after" else None
    stop = threading.Event()
    written = [0]

    def write() -> None:
        db = dbmod.connect(db_path)
        if mode == "before":
            db.execute("PRAGMA journal_size_limit = -1")  # SQLite's default
        cache = MetaCache()
        start = time.monotonic()
        while not stop.is_set():
            n = written[0]
            ratings.rate(db, cache, HASH, ids[n % USERS], 1 + n % 5)
            written[0] = n + 1
            ahead = start + (n + 1) / args.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        db.close()

    # The server keeps its connections open; the last one to close would checkpoint and delete
    # the log, which no running server does.
    server = dbmod.connect(db_path)
    if mode == "before":
        server.execute("PRAGMA journal_size_limit = -1")
    peak = 0
    writer = threading.Thread(target=write)
    if keeper is not None:
        keeper.start()
    writer.start()
    try:
        reader = sqlite3.connect(str(db_path), isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM ratings").fetchone()
        began, n0 = time.monotonic(), written[0]
        while time.monotonic() - began < args.hold:
            peak = max(peak, wal_bytes(db_path))
            time.sleep(0.1)
        held = written[0] - n0
        rate = held / (time.monotonic() - began)
        reader.execute("COMMIT")
        reader.close()
        time.sleep(args.after)
        busy_after = wal_bytes(db_path)
        stop.set()
        writer.join()
        time.sleep(args.interval + 1)
        idle_after = wal_bytes(db_path)
    finally:
        stop.set()
        writer.join()
        if keeper is not None:
            keeper.stop()
        server.close()
    return {
        "peak": peak / MIB,
        "busy_after": busy_after / MIB,
        "idle_after": idle_after / MIB,
        "rate": rate,
        "kib_per_write": peak / 1024 / max(held, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hold", type=float, default=60.0, help="seconds the reader holds")
    parser.add_argument("--rate", type=float, default=1000.0, help="rating writes per second")
    parser.add_argument("--after", type=float, default=10.0, help="seconds of writes after it")
    parser.add_argument("--interval", type=float, default=10.0, help="checkpoint interval (s)")
    args = parser.parse_args()
    bench = Bench("f1", "WAL size under a long reader", params=vars(args))
    results = {mode: run(mode, args) for mode in ("before", "after")}
    rows = (
        ("peak while the reader holds", "peak"),
        (f"{args.after:g} s after the reader left, writes going on", "busy_after"),
        (f"{args.interval + 1:g} s after the writes stopped", "idle_after"),
    )
    for label, key in rows:
        before, after = Samples("before", unit="MiB"), Samples("after", unit="MiB")
        before.add(results["before"][key])
        after.add(results["after"][key])
        bench.compare(label, before, after, headline=key == "busy_after")
    bench.extra["writes_per_second"] = {m: round(r["rate"]) for m, r in results.items()}
    # The peak grows with the writes made while the reader holds: compare it per write.
    bench.extra["peak_kib_per_write"] = {
        m: round(r["kib_per_write"], 1) for m, r in results.items()
    }
    bench.note("one run per mode: sizes, not timings; the peak is the same by design")
    bench.finish()


if __name__ == "__main__":
    main()
