"""B1 with sidecars (issue 17): the unchanged re-scan of a tree that also holds .nfo files and
posters, including what runs after a scan (reading pending sidecars, regrouping shows/movies).

The B1 tree layout (bench/gen_tree.py), plus a `<name>.nfo` beside every video and a poster.jpg
and fanart.jpg (real, small JPEGs) in every folder. The first scan indexes the tree, reads every
.nfo and picture and groups everything (untimed; its time is in `extra`). Timed: `scan()` +
`ingest.after_scan()` in-process on the unchanged tree against `find` over the same tree.
Target: ≤ 1.5× (B1's). Every timed run must report nothing new, changed, moved or missing.

    python -m bench.b1_sidecars [--files 100000] [--folders 1000] [--pairs 5]
    python -m bench.b1_sidecars --cpu      # CPU seconds instead of wall time (see cpu_rows)
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import time

from bench.b1_rescan import check_unchanged
from bench.gen_tree import ensure_tree
from bench.harness import CORPUS_DIR, Bench, Samples, cmd

NFO = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<movie><title>Film {i}</title><year>{year}</year>'
    "<plot>A plot of a few words for film {i}.</plot><genre>Drama</genre>"
    "<actor><name>Someone {i}</name><role>Lead</role></actor></movie>\n"
)


def _jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (60, 90), (40, 60, 120)).save(out, "JPEG", quality=70)
    return out.getvalue()


def ensure_sidecars(files: int, folders: int) -> tuple[object, int]:
    """Return the tree's root (made once) and how many files it holds in all."""
    root = ensure_tree(files, folders, CORPUS_DIR / f"tree-sidecars-{files}x{folders}")
    marker = root.with_name(root.name + ".sidecars")
    total = files
    jpeg = _jpeg()
    if not marker.exists():
        for dirpath, _dirs, names in os.walk(root):
            if not names:
                continue
            for name in names:
                stem, ext = os.path.splitext(name)
                if ext in (".mp4", ".mkv", ".webm"):
                    with open(os.path.join(dirpath, stem + ".nfo"), "w") as f:
                        f.write(NFO.format(i=stem, year=1950 + int(stem) % 70))
            for art in ("poster.jpg", "fanart.jpg"):
                with open(os.path.join(dirpath, art), "wb") as f:
                    f.write(jpeg)
        marker.touch()
    total = sum(len(n) for _, _, n in os.walk(root))
    return root, total


def _cpu_of_find(root: str) -> float:
    """Return the CPU seconds (user + system) one `find` over root costs."""
    import resource
    import subprocess

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        ["find", root, "-type", "f", "-printf", "%s %T@ %p\\n"],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_rows(bench: Bench, trees: dict[str, tuple[str, str]], pairs: int) -> None:
    """Compare CPU seconds, not wall time: on a machine shared by many jobs (load 20-30 on two
    cores) wall time measures the neighbours. The walk runs in this process (scan_workers=1),
    so its CPU is this process's; find's is its own (RUSAGE_CHILDREN). Per tree: ours / find.
    """
    import resource

    from config import load_settings
    from services import db as dbmod
    from services.library.scanner import scan
    from services.shows import ingest

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    for label, (root, data) in trees.items():
        settings = load_settings({"media_dirs": [root], "data_dir": data, "scan_workers": 1})
        database = dbmod.open_db(settings.data_dir)
        ingest.after_scan(database, settings.data_dir, scan(database, settings))
        base, ours = Samples(f"find CPU, {label}"), Samples(f"scan CPU, {label}")
        for _ in range(pairs):
            base.add(_cpu_of_find(root))
            start = cpu()
            report = scan(database, settings)
            check_unchanged(report)
            ingest.after_scan(database, settings.data_dir, report)
            ours.add(cpu() - start)
        database.conn.close()
        bench.compare(f"rescan CPU, {label}: scan()+after_scan() vs find", base, ours, target=1.5)


def main() -> int:
    """Run B1 with sidecars and write bench/out/b1s.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=1_000)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--cpu", action="store_true", help="compare CPU seconds (cpu_rows)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("services").setLevel(logging.ERROR)
    root, total = ensure_sidecars(args.files, args.folders)
    data_dir = CORPUS_DIR / f"b1s-data-{args.files}x{args.folders}"

    from config import load_settings
    from services import db as dbmod
    from services.library.scanner import scan
    from services.shows import ingest

    if args.cpu:
        plain = ensure_tree(args.files, args.folders)
        bench = Bench(
            "b1s-cpu",
            f"unchanged re-scan CPU seconds, {args.files} media in {args.folders} folders, "
            f"without and with sidecars ({total} files)",
            params={"files": args.files, "folders": args.folders, "total_files": total},
        )
        cpu_rows(
            bench,
            {
                "plain tree": (str(plain), str(CORPUS_DIR / "b1s-cpu-plain")),
                "tree with .nfo and posters": (str(root), str(data_dir)),
            },
            args.pairs,
        )
        bench.finish()
        return 0
    settings = load_settings({"media_dirs": [str(root)], "data_dir": str(data_dir)})
    database = dbmod.open_db(settings.data_dir)
    bench = Bench(
        "b1s",
        f"unchanged re-scan with sidecars, {args.files} media + .nfo + posters "
        f"({total} files) in {args.folders} folders, warm",
        params={"files": args.files, "folders": args.folders, "total_files": total},
    )
    start = time.perf_counter()
    first = scan(database, settings)
    ingest.after_scan(database, settings.data_dir, first)
    sidecars = database.execute("SELECT status, count(*) FROM sidecars GROUP BY status").fetchall()
    bench.extra["first_scan"] = {
        "seconds": time.perf_counter() - start,
        "new": first.new,
        "sidecars": dict(sidecars),
        "movies": database.execute("SELECT count(*) FROM movies").fetchone()[0],
    }
    logging.info("first scan: %s", bench.extra["first_scan"])

    def ours() -> None:
        report = scan(database, settings)
        check_unchanged(report)
        ingest.after_scan(database, settings.data_dir, report)

    baseline = cmd(["find", str(root), "-type", "f", "-printf", "%s %T@ %p\\n"], timeout=300)
    bench.pair(
        "rescan with sidecars: scan() + after_scan()",
        baseline,
        ours,
        pairs=args.pairs,
        warmup=1,
        target=1.5,
        baseline_label="find",
        ours_label="scan+sidecars",
        headline=True,
    )
    database.conn.close()
    bench.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
