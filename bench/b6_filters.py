"""B6 filters: filtered gallery pages and searches, this checkout beside another, at 100k rows.

The resolution filter (`?resolution=sd|720p|1080p|4k`) buckets a VR video by one eye's size,
which needs its projection row (services/browse/browse.py, CLASS_SIDE_SQL); this measures what
that costs against another checkout (an older commit: `git worktree add /tmp/old COMMIT`). B6's
synthesized library (one folder of 100k files) with 1% of its media made VR (an admin's
override: half 180° 3D at 5760×2880, half 360° 3D at 4096×4096). Two real gunicorn servers,
one per checkout, on the same database; one client asks them in turn (other, this, other, …)
the same URLs: a folder's first filtered page (which also counts the matches, up to 10,000),
a deep filtered page (`after=` a random file, sorts in turn), and a filtered search.
Each row: medians and p95 of this checkout / the other's (≤ 1.1 expected: not slower).

`--sql` (no other checkout): the filtered queries alone, in-process, in CPU time (which the
machine's load inflates far less than wall time): a folder's match count (up to 10,000) and a
deep page, per class, with the filter as it is against the filter before issue 14's one-eye
rule (the frame's short side read from the media row: OLD_FILTER).

    python -m bench.b6_filters OTHER_CHECKOUT [--rows 100000] [--requests 200]
    python -m bench.b6_filters --sql [--rows 100000] [--requests 200]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from bench.b6_gallery import SORTS, WORDS, Client, synthesize
from bench.harness import CORPUS_DIR, ROOT, Bench, Samples, app_server, session_cookie

RESOLUTIONS = ("sd", "720p", "1080p", "4k")
VR_SHARE = 100  # one media in this many is VR


def make_vr(data_dir: Path, rows: int) -> None:
    """Give every VR_SHARE-th media a VR frame and an admin's override (once)."""
    marker = data_dir / f".vr-{rows}"
    if marker.exists():
        return
    from services import db as dbmod

    db = dbmod.open_db(data_dir)
    try:
        with dbmod.write(db):
            for n, media in enumerate(range(VR_SHARE, rows + 1, VR_SHARE)):
                w, h, kind, stereo = (
                    (5760, 2880, "180", "sbs") if n % 2 else (4096, 4096, "360", "tb")
                )
                db.execute(
                    "UPDATE media SET kind = 'video', width = ?, height = ? WHERE id = ?",
                    [w, h, media],
                )
                db.execute(
                    "INSERT OR REPLACE INTO projection_overrides (media_id, type, stereo, "
                    "eye_swap, set_at) VALUES (?, ?, ?, 0, 0)",
                    [media, kind, stereo],
                )
        db.execute("ANALYZE")
    finally:
        db.close()
    marker.touch()


OLD_FILTER = " AND min(m.width, m.height) >= :res_lo AND min(m.width, m.height) < :res_hi"
NEW_FILTER = " AND f.class_side >= :res_lo AND f.class_side < :res_hi"


def sql_rows(data_dir: Path, rows: int, requests: int) -> int:
    """Time the filtered count and deep-page queries in-process (CPU), old filter vs new."""
    import time

    from services import db as dbmod
    from services.browse import browse

    bench = Bench(
        "b6f-sql",
        f"filtered count and page queries at {rows:,} rows, in-process CPU: one-eye filter vs old",
        params={"rows": rows, "requests": requests},
    )
    db = dbmod.open_db(data_dir)
    rng = random.Random(62)
    kinds = ("count", "deep page")
    samples = {(k, t): Samples(f"{k} ({t})") for k in kinds for t in ("old", "new")}
    for k in range(-4, requests):
        res = RESOLUTIONS[k % len(RESOLUTIONS)]
        sort = SORTS[(k // len(RESOLUTIONS)) % len(SORTS)]
        query = browse.Query(sort=sort, order=browse.SORTS[sort][2], resolution=res)
        after = rng.randrange(1, rows)
        params = {"folder": 2, "user": 1, "cap": browse.MATCH_COUNT_CAP, "limit": 61}
        count = (
            "SELECT count(*) FROM (SELECT 1 FROM files f "
            f"{browse._FILTER_JOINS} WHERE {browse._LISTED}{browse._filters(query, params)} "
            "LIMIT :cap)"
        )
        params["k"] = browse._cursor_key(db, query, 1, after)
        params["after"] = after
        page = browse.page_sql(query, params, after=True)
        assert NEW_FILTER in count and NEW_FILTER in page
        for kind, sql in (("count", count), ("deep page", page)):
            for name, text in (("old", sql.replace(NEW_FILTER, OLD_FILTER)), ("new", sql)):
                start = time.process_time()
                db.execute(text, params).fetchall()
                if k >= 0:
                    samples[(kind, name)].add(time.process_time() - start)
    db.close()
    for kind in kinds:
        bench.compare(
            f"{kind} CPU median: one-eye / old",
            samples[(kind, "old")],
            samples[(kind, "new")],
            target=1.1,
            headline=kind == "count",
        )
    bench.finish()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other", type=Path, nargs="?", help="another checkout of the project")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="per row and checkout")
    parser.add_argument("--sql", action="store_true", help="the queries in-process (sql_rows)")
    args = parser.parse_args()
    data_dir = CORPUS_DIR / f"b6f-data-{args.rows}"
    root = synthesize(data_dir, args.rows)
    make_vr(data_dir, args.rows)
    if args.sql:
        return sql_rows(data_dir, args.rows, args.requests)
    if args.other is None:
        parser.error("give another checkout to compare with, or --sql")
    bench = Bench(
        "b6f",
        f"filtered gallery pages and searches at {args.rows:,} rows, this checkout vs another",
        params={"rows": args.rows, "requests": args.requests, "other": str(args.other)},
    )
    rng = random.Random(61)
    kinds = ("first page", "deep page", "search")
    samples = {(k, t): Samples(f"{k} ({t})") for k in kinds for t in ("other", "this")}
    with (
        app_server(data_dir, root, args.other.resolve()) as (p_other, _),
        app_server(data_dir, root, ROOT) as (p_this, _),
    ):
        cookie = session_cookie(data_dir)
        clients = {"other": Client(p_other), "this": Client(p_this)}
        for c in clients.values():
            c.auth = cookie
        with open(data_dir / "library.db", "rb") as f:
            while f.read(1 << 24):
                pass

        def urls(k: int) -> dict[str, str]:
            res = RESOLUTIONS[k % len(RESOLUTIONS)]
            sort = SORTS[(k // len(RESOLUTIONS)) % len(SORTS)]
            return {
                "first page": f"/browse/lib/big?resolution={res}&sort={sort}",
                "deep page": f"/browse/lib/big?resolution={res}&sort={sort}"
                f"&after={rng.randrange(1, args.rows)}",
                "search": f"/search?q={rng.choice(WORDS)}&resolution={res}",
            }

        for k in range(-8, args.requests):  # the first rounds warm up (templates compiled)
            for kind, path in urls(k).items():
                for name in ("other", "this"):
                    took = clients[name].get(path)
                    if k >= 0:
                        samples[(kind, name)].add(took)
                    print(f"  {k} {kind} {name} {took * 1000:.1f} ms", end="\r", file=sys.stderr)
    for kind in kinds:
        for stat in ("median", "p95"):
            bench.compare(
                f"{kind} {stat}: this / other",
                samples[(kind, "other")],
                samples[(kind, "this")],
                target=1.1,
                stat=stat,
                headline=kind == "first page" and stat == "median",
            )
    bench.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
