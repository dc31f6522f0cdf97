"""Run ours against a baseline side by side and record medians, ratios and the machine (SPEC §5).

Every benchmark (B1..B10, M) uses this module:

    bench = Bench("b1", "unchanged re-scan, 100k files")
    bench.pair("rescan", baseline_fn, ours_fn, target=1.5, pairs=5, warmup=1)
    bench.finish()            # writes bench/out/b1.json, prints one line per row

`pair` interleaves baseline and ours (A B A B ...) so that a noisy neighbour slows both alike;
`group` does the same with several variants of ours against one baseline in each round.
Benchmarks that collect their own samples (latency under load, throughput) use `Samples` and
`Bench.compare`. Times are seconds from `time.perf_counter`.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import math
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
CORPUS_DIR = ROOT / "bench" / "corpus"


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0..100) with linear interpolation, as numpy's default does."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class Samples:
    """Collect measurements (seconds unless `unit` says otherwise) and summarise them."""

    def __init__(self, label: str, unit: str = "s") -> None:
        self.label = label
        self.unit = unit
        self.values: list[float] = []

    def add(self, value: float) -> None:
        """Record one measurement."""
        self.values.append(value)

    @contextmanager
    def time(self) -> Iterator[None]:
        """Time the body of a `with` block and record it."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.values.append(time.perf_counter() - start)

    @property
    def median(self) -> float:
        """Return the median, NaN when empty."""
        return statistics.median(self.values) if self.values else math.nan

    def p(self, q: float) -> float:
        """Return the q-th percentile."""
        return percentile(self.values, q)

    def stat(self, name: str) -> float:
        """Return a statistic by name: median, mean, min, max, or pNN (p95, p99)."""
        if name == "median":
            return self.median
        if name == "mean":
            return statistics.fmean(self.values) if self.values else math.nan
        if name == "min":
            return min(self.values, default=math.nan)
        if name == "max":
            return max(self.values, default=math.nan)
        if name.startswith("p") and name[1:].replace(".", "", 1).isdigit():
            return self.p(float(name[1:]))
        raise ValueError(f"unknown statistic {name!r}")

    def summary(self) -> dict[str, Any]:
        """Return the samples and their usual statistics as a JSON-ready dict."""
        return {
            "label": self.label,
            "unit": self.unit,
            "n": len(self.values),
            "median": self.median,
            "p95": self.p(95),
            "min": self.stat("min"),
            "max": self.stat("max"),
            "samples": list(self.values),
        }


class CommandFailed(RuntimeError):
    """A baseline or ours process exited with an unexpected code."""


def run_cmd(
    argv: Sequence[str],
    *,
    timeout: float,
    ok_codes: Sequence[int] = (0,),
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout: int | None = subprocess.DEVNULL,
    stderr: int | None = subprocess.DEVNULL,
) -> float:
    """Run one process to completion and return its wall time in seconds.

    Output goes to /dev/null by default, as `cmd > /dev/null` would, so the baseline pays for
    producing its output but not for a pipe reader.
    """
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        timeout=timeout,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        raise CommandFailed(f"{argv[0]} exited {proc.returncode}: {' '.join(map(str, argv))}")
    return elapsed


def cmd(
    argv: Sequence[str],
    *,
    timeout: float,
    ok_codes: Sequence[int] = (0,),
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Callable[[], float]:
    """Return a zero-argument callable that runs `argv` once (for `Bench.pair`)."""

    def run() -> float:
        return run_cmd(argv, timeout=timeout, ok_codes=ok_codes, cwd=cwd, env=env)

    return run


def _first_line(argv: Sequence[str]) -> str:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc.__class__.__name__})"
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else "unavailable"


def ffmpeg_exe() -> str:
    """Return the ffmpeg binary the project uses (services.ffmpeg when present, else imageio's)."""
    try:
        from services.ffmpeg import ffmpeg_path  # written in parallel, may be absent
    except ImportError:
        found = shutil.which("ffmpeg")
        if found:
            return found
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    return ffmpeg_path()


def git_commit() -> tuple[str, bool]:
    """Return (HEAD commit or "uncommitted", whether the work tree has changes)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        status = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "uncommitted", True
    commit = head.stdout.strip() if head.returncode == 0 and head.stdout.strip() else "uncommitted"
    dirty = commit == "uncommitted" or bool(status.stdout.strip())
    return commit, dirty


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict[str, Any]:
    """Return the versions and machine facts a result must carry to be comparable."""
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "cpu_model": cpu_model(),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "find": _first_line(["find", "--version"]),
    }
    try:
        import av

        env["av"] = av.__version__
        env["av_ffmpeg"] = getattr(av, "ffmpeg_version_info", "unknown")
        env["av_libavformat"] = ".".join(map(str, av.library_versions.get("libavformat", ())))
    except ImportError:
        env["av"] = "not installed"
    try:
        exe = ffmpeg_exe()
        env["ffmpeg_binary"] = exe
        env["ffmpeg"] = _first_line([exe, "-version"])
    except Exception as exc:  # a missing ffmpeg must not stop a bench needing none
        env["ffmpeg"] = f"unavailable ({exc})"
    return env


def _fmt(value: float, unit: str) -> str:
    if unit != "s":
        return f"{value:.4g} {unit}"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1.0:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


class Bench:
    """One benchmark run: rows of ours-vs-baseline comparisons, written to bench/out/<id>.json."""

    def __init__(self, bench_id: str, title: str, *, params: Mapping[str, Any] | None = None):
        self.id = bench_id
        self.title = title
        self.params = dict(params or {})
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.extra: dict[str, Any] = {}
        commit, dirty = git_commit()
        self.started = dt.datetime.now(dt.UTC)
        self.env = environment()
        self.env["git_commit"] = commit
        self.env["git_dirty"] = dirty
        self.env["load_start"] = os.getloadavg()

    def note(self, text: str) -> None:
        """Attach a sentence to the result (a trap met, a caveat on a row)."""
        self.notes.append(text)

    @staticmethod
    def _sample(fn: Callable[[], Any], self_timed: bool = False) -> float:
        gc.collect()  # collect the previous sample's garbage outside the timed region
        start = time.perf_counter()
        got = fn()
        took = time.perf_counter() - start
        return float(got) if self_timed else took

    def pair(
        self,
        name: str,
        baseline_fn: Callable[[], Any],
        ours_fn: Callable[[], Any],
        *,
        pairs: int = 5,
        warmup: int = 1,
        target: float | None = None,
        stat: str = "median",
        higher_is_better: bool = False,
        baseline_label: str = "baseline",
        ours_label: str = "ours",
        headline: bool = False,
        self_timed: bool = False,
    ) -> dict[str, Any]:
        """Time baseline and ours interleaved (A B A B ...) and add one comparison row.

        `warmup` rounds of both run first and are not recorded. The ratio is
        stat(ours) / stat(baseline) of wall times; lower is better. `self_timed`: each call
        returns its own time in seconds (its set-up and clean-up left out), which is the sample.
        """
        rows = self.group(
            name,
            baseline_fn,
            {ours_label: ours_fn},
            pairs=pairs,
            warmup=warmup,
            targets={ours_label: target},
            stat=stat,
            higher_is_better=higher_is_better,
            baseline_label=baseline_label,
            headline=ours_label if headline else None,
            self_timed=self_timed,
        )
        return rows[0]

    def group(
        self,
        name: str,
        baseline_fn: Callable[[], Any],
        variants: Mapping[str, Callable[[], Any]],
        *,
        pairs: int = 5,
        warmup: int = 1,
        targets: Mapping[str, float | None] | None = None,
        stat: str = "median",
        higher_is_better: bool = False,
        baseline_label: str = "baseline",
        headline: str | None = None,
        self_timed: bool = False,
    ) -> list[dict[str, Any]]:
        """Time baseline then each variant of ours in every round; add one row per variant.

        Each variant is compared with the same baseline samples, taken in the same rounds.
        """
        if pairs < 5:
            raise ValueError("SPEC §5 asks for at least 5 pairs")
        targets = dict(targets or {})
        base = Samples(baseline_label)
        ours = {label: Samples(label) for label in variants}
        for round_no in range(warmup + pairs):
            b = self._sample(baseline_fn, self_timed)
            o = {label: self._sample(fn, self_timed) for label, fn in variants.items()}
            if round_no >= warmup:
                base.add(b)
                for label, value in o.items():
                    ours[label].add(value)
        return [
            self.compare(
                f"{name} [{label}]" if len(variants) > 1 else name,
                base,
                ours[label],
                target=targets.get(label),
                stat=stat,
                higher_is_better=higher_is_better,
                headline=label == headline,
            )
            for label in variants
        ]

    def compare(
        self,
        name: str,
        baseline: Samples,
        ours: Samples,
        *,
        target: float | None = None,
        stat: str = "median",
        higher_is_better: bool = False,
        headline: bool = False,
    ) -> dict[str, Any]:
        """Add a row comparing two sample sets already collected; return it."""
        base_v = baseline.stat(stat)
        ours_v = ours.stat(stat)
        ratio = ours_v / base_v if base_v else math.nan
        passed: bool | None = None
        if target is not None:
            passed = ratio >= target if higher_is_better else ratio <= target
        paired = [o / b for o, b in zip(ours.values, baseline.values, strict=False) if b]
        row = {
            "name": name,
            "stat": stat,
            "baseline": baseline.summary(),
            "ours": ours.summary(),
            "ratio": ratio,
            "paired_ratio_min": min(paired, default=math.nan),
            "paired_ratio_max": max(paired, default=math.nan),
            "target": target,
            "higher_is_better": higher_is_better,
            "pass": passed,
            "headline": headline,
        }
        self.rows.append(row)
        return row

    def summary_line(self, row: Mapping[str, Any]) -> str:
        """Return the one-line human summary of a row."""
        unit = row["ours"]["unit"]
        stat = row["stat"]
        b = row["baseline"][stat] if stat in ("median", "p95") else row["baseline"]["median"]
        o = row["ours"][stat] if stat in ("median", "p95") else row["ours"]["median"]
        verdict = ""
        if row["target"] is not None:
            op = "≥" if row["higher_is_better"] else "≤"
            verdict = f" (target {op} {row['target']}×) {'PASS' if row['pass'] else 'FAIL'}"
        mark = "*" if row["headline"] else " "
        return (
            f"{mark}{self.id.upper()} {row['name']}: {row['ours']['label']} {_fmt(o, unit)} vs "
            f"{row['baseline']['label']} {_fmt(b, unit)} ({stat}, n={row['ours']['n']}) → "
            f"{row['ratio']:.3f}×{verdict}  [pairs {row['paired_ratio_min']:.2f}–"
            f"{row['paired_ratio_max']:.2f}×]"
        )

    def finish(self, out_dir: Path = OUT_DIR) -> Path:
        """Write bench/out/<id>.json, print the summary lines, and return the file's path."""
        self.env["load_end"] = os.getloadavg()
        cpus = self.env["cpus_usable"] or 1
        start_load, end_load = self.env["load_start"][0], self.env["load_end"][0]
        # A bench loads the machine itself (about one core for a sequential baseline, all of
        # them for pools), so the end figure gets more headroom than the start one.
        if start_load > 0.5 * cpus or end_load > 1.5 * cpus:
            self.notes.append(f"machine busy: 1-min load average {start_load:.2f}→{end_load:.2f}")
        targeted = [r["pass"] for r in self.rows if r["pass"] is not None]
        result = {
            "id": self.id,
            "title": self.title,
            "date": self.started.isoformat(timespec="seconds"),
            "duration_s": (dt.datetime.now(dt.UTC) - self.started).total_seconds(),
            "env": self.env,
            "params": self.params,
            "rows": self.rows,
            "pass": all(targeted) if targeted else None,
            "notes": self.notes,
            "extra": self.extra,
        }
        text = json.dumps(result, indent=2, default=str) + "\n"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.id}.json"
        path.write_text(text)
        # Keep every run: the latest file is overwritten, and a noisy run must not erase a clean one.
        history = out_dir / "history"
        history.mkdir(exist_ok=True)
        stamp = self.started.strftime("%Y%m%dT%H%M%SZ")
        (history / f"{self.id}-{stamp}.json").write_text(text)
        for row in self.rows:
            print(self.summary_line(row))
        load = f"{self.env['load_start'][0]:.2f}→{self.env['load_end'][0]:.2f}"
        print(f"  {self.id}: {len(self.rows)} rows, load {load}, written {path.relative_to(ROOT)}")
        for note in self.notes:
            print(f"  note: {note}")
        return path


def session_cookie(data_dir: Path) -> dict[str, str]:
    """Return a Cookie header signing requests in as a bench admin (every page needs a session).

    The account and its server-side session are written into the data dir's database, as a
    browser's sign-in would leave them; the server finds them whichever worker answers.
    """
    sys.path.insert(0, str(ROOT))
    from services import db as dbmod
    from services.people import sessions, users

    database = dbmod.open_db(data_dir)
    try:
        user = users.by_name(database, "bench") or users.create(
            database, "bench", "admin", "bench password", rounds=4
        )
        token = sessions.create(database, user.id, user_agent="bench")
    finally:
        database.close()
    return {"Cookie": f"lvs_session={token}"}


def process_cpu(pid: int) -> float:
    """Return the CPU seconds (user + system) process `pid` and its children used so far."""
    import psutil

    main = psutil.Process(pid)
    total = 0.0
    for proc in (main, *main.children(recursive=True)):
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


@contextmanager
def app_server(data_dir: Path, root: Path, tree: Path = ROOT,
               prefix: tuple[str, ...] = ()) -> Iterator[tuple[int, int]]:  # fmt: skip
    """Run the real server (gunicorn.conf.py, background work off) on a data dir.

    `tree`: the checkout whose code it runs (another one, to compare two versions side by side).
    `prefix`: a command it runs under, e.g. ("taskset", "-c", "0") (its workers and their
    ffmpeg children inherit the CPU affinity).

    Yields its port and master pid. Background services are off: benches synthesize libraries
    whose files are not really there, which a scan or thumbnail job would chase.
    """
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "LVS_MEDIA_DIRS": str(root),
        "LVS_DATA_DIR": str(data_dir),
        "LVS_HOST": "127.0.0.1",
        "LVS_PORT": str(port),
        "LVS_WATCH": "off",
        "LVS_BACKGROUND": "off",
        "LVS_LOG_LEVEL": os.environ.get("LVS_LOG_LEVEL", "WARNING"),
    }
    gunicorn = ROOT / ".venv/bin/gunicorn"
    if not gunicorn.exists():  # a worktree without its own .venv: the running interpreter's
        gunicorn = Path(sys.executable).parent / "gunicorn"
    argv = [*prefix, str(gunicorn), "-c", str(tree / "gunicorn.conf.py")]
    proc = subprocess.Popen(argv, cwd=tree, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)
