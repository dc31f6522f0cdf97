"""B1: unchanged re-scan of a 100k-file tree, including the database diff, warm cache.

Ours: `services.library.scanner.scan(database, settings)` in-process, after a first (untimed) index of the
tree; every timed run must report nothing new, changed, moved or missing. Second row: the whole
`flask scan` CLI process. Baseline: `find ROOT -type f -printf '%s %T@ %p\\n' > /dev/null` as a
process. Target: ours ≤ 1.5× the baseline (SPEC §5).

    python -m bench.b1_rescan [--files 100000] [--folders 1000] [--pairs 5] [--no-cli]
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import sys
import time
from typing import Any

from bench.gen_tree import ensure_tree
from bench.harness import CORPUS_DIR, ROOT, Bench, CommandFailed, cmd

log = logging.getLogger(__name__)

TARGET = 1.5


def _count(value: Any) -> int:
    # Report fields may be counts or lists of paths, depending on the scanner's taste.
    return value if isinstance(value, int) else len(value)


def _open_db(dbmod: Any, settings: Any) -> Any:
    # open_db's first parameter has been both the settings and the data dir while issue 2 was
    # written; accept either.
    first = next(iter(inspect.signature(dbmod.open_db).parameters), "")
    return dbmod.open_db(settings.data_dir if "dir" in first or "path" in first else settings)


def check_unchanged(report: Any) -> None:
    """Raise when a re-scan found any change: the benchmark would not measure a no-op re-scan."""
    changes = {k: _count(getattr(report, k)) for k in ("new", "changed", "moved", "missing")}
    if any(changes.values()):
        raise AssertionError(f"re-scan of an unchanged tree reported changes: {changes}")


def main() -> int:
    """Run B1 and write bench/out/b1.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=1_000)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--no-cli", action="store_true", help="skip the `flask scan` row")
    parser.add_argument(
        "--scan-workers", type=int, default=None, help="LVS_SCAN_WORKERS for ours (default: unset)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("services").setLevel(logging.ERROR)  # a line per failed probe is noise

    root = ensure_tree(args.files, args.folders)
    data_dir = CORPUS_DIR / f"b1-data-{args.files}x{args.folders}"
    try:
        from config import load_settings
        from services import db as dbmod
        from services.library.scanner import scan
    except ImportError as exc:
        print(f"B1 cannot run yet: {exc}", file=sys.stderr)
        return 2

    overrides: dict[str, Any] = {"media_dirs": [str(root)], "data_dir": str(data_dir)}
    if args.scan_workers is not None:
        overrides["scan_workers"] = args.scan_workers
    settings = load_settings(overrides)
    database = _open_db(dbmod, settings)
    bench = Bench(
        "b1",
        f"unchanged re-scan, {args.files} files in {args.folders} folders, warm",
        params={
            "files": args.files,
            "folders": args.folders,
            "root": str(root),
            "scan_workers": settings.scan_workers,
        },
    )

    # The first scan indexes the tree (or, when the data dir is kept from an earlier run,
    # is already a re-scan); it is not timed by the harness but is worth knowing.
    start = time.perf_counter()
    first = scan(database, settings)
    bench.extra["first_scan"] = {
        "seconds": time.perf_counter() - start,
        **{k: _count(getattr(first, k)) for k in ("new", "changed", "moved", "missing", "failed")},
        "unchanged": _count(first.unchanged),
    }
    log.info("first scan: %s", bench.extra["first_scan"])

    reports: list[Any] = []

    def ours() -> None:
        report = scan(database, settings)
        check_unchanged(report)
        reports.append(report)

    find_argv = ["find", str(root), "-type", "f", "-printf", "%s %T@ %p\\n"]
    baseline = cmd(find_argv, timeout=300)
    bench.pair(
        "rescan in-process scan()",
        baseline,
        ours,
        pairs=args.pairs,
        warmup=1,
        target=TARGET,
        baseline_label="find",
        ours_label="scan()",
        headline=True,
    )
    last = reports[-1]
    bench.extra["rescan_report"] = {
        "unchanged": _count(last.unchanged),
        "failed": _count(last.failed),
        "duration": getattr(last, "duration", None),
    }

    flask = ROOT / ".venv" / "bin" / "flask"
    if args.no_cli:
        pass
    elif not (flask.exists() and (ROOT / "app.py").exists()):
        bench.note("`flask scan` row skipped: no app.py or .venv/bin/flask yet.")
    else:
        env = dict(os.environ)
        env.update(
            FLASK_APP="app",
            LVS_MEDIA_DIRS=str(root),
            LVS_DATA_DIR=str(data_dir),
            LVS_LOG_LEVEL="WARNING",
        )
        if args.scan_workers is not None:
            env["LVS_SCAN_WORKERS"] = str(args.scan_workers)
        try:
            bench.pair(
                "rescan `flask scan` process",
                baseline,
                cmd([str(flask), "scan"], timeout=300, cwd=ROOT, env=env),
                pairs=args.pairs,
                warmup=1,
                baseline_label="find",
                ours_label="flask scan",
            )
        except CommandFailed as exc:
            # Keep the in-process result; a broken CLI is reported, not hidden.
            bench.note(f"`flask scan` row failed: {exc}")
            print(f"B1: flask scan failed: {exc}", file=sys.stderr)
        bench.note(
            "`flask scan` row: whole process (interpreter start, imports, settings, DB open, "
            "scan); informational, the target applies to the in-process row."
        )
    database.conn.close()
    bench.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
