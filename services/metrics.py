"""In-process metrics: counters and rolling-window timings with p50/p95/p99, mergeable across workers.

A timing goes into a histogram of log-spaced buckets (10 % wide) per 10-second slice; the window
is the last 30 slices (5 minutes). Percentiles read from the buckets are within 10 % of the true
value, and histograms add up: that is what lets the dashboard merge the gunicorn workers.

Each worker is a separate process with its own numbers. `Metrics.dump()` writes this process's
state to `<data dir>/metrics/<pid>.json` (by a timer thread, within a second of a change), and
`merged()` adds up every live worker's file with this process's live state. Cumulative counters
(requests since start, cache hits) add up the same way.

Names in use: `request:<endpoint>` (seconds), `db_queries` (statements per request, a count
observed as a value), `ratings_post` (seconds), counters `cache_hit`, `cache_miss`, `errors`.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

SLICE = 10.0  # seconds per histogram slice
SLICES = 30  # slices in the rolling window
RATIO = 1.1  # bucket growth: percentiles are good to 10 %
FLOOR = 1e-5  # values below go to bucket 0
DUMP_EVERY = 1.0  # seconds from a change to the worker's state file
STALE_AFTER = SLICE * SLICES  # a worker file older than the window is ignored (and removed)


def bucket_of(value: float) -> int:
    """Return the histogram bucket of a non-negative value."""
    if value <= FLOOR:
        return 0
    return 1 + int(math.log(value / FLOOR, RATIO))


def bucket_top(index: int) -> float:
    """Return the upper bound of a bucket."""
    return FLOOR * RATIO**index


@dataclass(frozen=True)
class Series:
    """One name's numbers over the window: count, sum, percentiles; `total` counts since start."""

    name: str
    count: int
    sum: float
    avg: float
    p50: float
    p95: float
    p99: float
    max: float
    total: int

    def as_dict(self) -> dict[str, Any]:
        """Return the series as plain JSON-able values."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class _Slice:
    __slots__ = ("count", "sum", "max", "buckets")

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0.0
        self.max = 0.0
        self.buckets: Counter[int] = Counter()


class Metrics:
    """Counters and rolling timings of one process; thread-safe."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._series: dict[str, dict[int, _Slice]] = {}
        self._totals: Counter[str] = Counter()
        self._counters: Counter[str] = Counter()
        self.started = clock()
        self.data_dir: Path | None = None
        self._timer: threading.Timer | None = None
        self._extras: dict[str, Callable[[], Any]] = {}

    def configure(self, data_dir: Path | None) -> None:
        """Set where this process writes its state for the other workers' dashboards."""
        self.data_dir = data_dir

    def observe(self, name: str, value: float) -> None:
        """Record one timing (seconds) or per-event value under `name`."""
        key = int(self._clock() // SLICE)
        with self._lock:
            self._add(name, value, key)

    def observe_many(self, values: tuple[tuple[str, float], ...], counter: str = "") -> None:
        """Record several values at once (and add 1 to `counter` when given): one lock for what a
        request records, which the media routes do thousands of times a second."""
        key = int(self._clock() // SLICE)
        with self._lock:
            for name, value in values:
                self._add(name, value, key)
            if counter:
                self._counters[counter] += 1

    def _add(self, name: str, value: float, key: int) -> None:
        slices = self._series.get(name)
        if slices is None:
            slices = self._series[name] = {}
        s = slices.get(key)
        if s is None:
            s = slices[key] = _Slice()
            for old in [k for k in slices if k <= key - SLICES]:
                del slices[old]
        s.count += 1
        s.sum += value
        if value > s.max:
            s.max = value
        s.buckets[bucket_of(value)] += 1
        self._totals[name] += 1

    def count(self, name: str, n: int = 1) -> None:
        """Add `n` to the counter `name` (cumulative since start)."""
        with self._lock:
            self._counters[name] += n

    def publish(self, name: str, provider: Callable[[], Any]) -> None:
        """Share `provider()` (JSON-able) with the other workers, refreshed every second.

        The background owner publishes its job queues and watcher this way, so a dashboard
        answered by any worker shows them.
        """
        self._extras[name] = provider
        self.dump()

    def state(self) -> dict[str, Any]:
        """Return this process's raw state (histograms per slice, totals, counters)."""
        with self._lock:
            series = {
                name: {
                    str(k): [s.count, s.sum, s.max, {str(b): n for b, n in s.buckets.items()}]
                    for k, s in slices.items()
                }
                for name, slices in self._series.items()
            }
            extras = dict(self._extras)
            state = {
                "pid": os.getpid(),
                "started": self.started,
                "at": self._clock(),
                "series": series,
                "totals": dict(self._totals),
                "counters": dict(self._counters),
            }
        shared = {}
        for name, provider in extras.items():
            try:
                shared[name] = provider()
            except Exception:  # a status that fails is left out, never the whole state
                continue
        state["extras"] = shared
        return state

    def dump(self, force: bool = False) -> None:
        """Write this process's state to the data dir within a second (now, if forced).

        A timer thread does the writing: a request never waits for it, and the last requests of
        a burst still reach the other workers' dashboards.
        """
        if self.data_dir is None:
            return
        if not force:
            if self._timer is None:  # read without the lock: at worst one timer too many
                with self._lock:
                    if self._timer is None:
                        self._timer = threading.Timer(DUMP_EVERY, self._flush)
                        self._timer.daemon = True
                        self._timer.start()
            return
        folder = self.data_dir / "metrics"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{os.getpid()}.tmp"
            tmp.write_text(json.dumps(self.state()), encoding="utf-8")
            os.replace(tmp, folder / f"{os.getpid()}.json")
        except OSError:
            pass  # metrics must never fail anything

    def forget(self) -> None:
        """Remove this process's state file (a worker that exits)."""
        if self.data_dir is not None:
            (self.data_dir / "metrics" / f"{os.getpid()}.json").unlink(missing_ok=True)

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
        self.dump(force=True)
        if self._extras:
            self.dump()  # published state stays fresh without requests

    def merged(self) -> Snapshot:
        """Return the numbers of every live worker (their files) plus this process, added up."""
        states = [self.state()]
        own = os.getpid()
        now = self._clock()
        if self.data_dir is not None:
            for path in (self.data_dir / "metrics").glob("*.json"):
                try:
                    pid = int(path.stem)
                    if pid == own:
                        continue
                    data = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if now - data.get("at", 0) > STALE_AFTER or not psutil.pid_exists(pid):
                    path.unlink(missing_ok=True)
                    continue
                states.append(data)
        return Snapshot.of(states, now)

    def snapshot(self) -> Snapshot:
        """Return this process's numbers only."""
        return Snapshot.of([self.state()], self._clock())


@dataclass(frozen=True)
class Snapshot:
    """Numbers over the window, merged over processes."""

    started: float
    workers: int
    series: dict[str, Series]
    counters: dict[str, int]
    # per slice start time: requests per second over every `request:` series, for the chart
    rate: list[tuple[float, float]]
    # per slice start time: p95 over every `request:` series
    p95: list[tuple[float, float]]
    extras: dict[str, Any]  # what workers published; this process's first

    @classmethod
    def of(cls, states: list[dict[str, Any]], now: float) -> Snapshot:
        """Add up raw states into one snapshot."""
        lowest = int(now // SLICE) - SLICES + 1
        hist: dict[str, Counter[int]] = {}
        sums: Counter[str] = Counter()
        counts: Counter[str] = Counter()
        maxes: dict[str, float] = {}
        totals: Counter[str] = Counter()
        counters: Counter[str] = Counter()
        extras: dict[str, Any] = {}
        per_slice: dict[int, Counter[int]] = {}
        per_slice_n: Counter[int] = Counter()
        for st in states:
            totals.update(st["totals"])
            counters.update(st["counters"])
            for name, value in st.get("extras", {}).items():
                extras.setdefault(name, value)
            for name, slices in st["series"].items():
                h = hist.setdefault(name, Counter())
                for key, (n, total, top, buckets) in slices.items():
                    k = int(key)
                    if k < lowest:
                        continue
                    counts[name] += n
                    sums[name] += total
                    maxes[name] = max(maxes.get(name, 0.0), top)
                    b = Counter({int(i): c for i, c in buckets.items()})
                    h.update(b)
                    if name.startswith("request:"):
                        per_slice.setdefault(k, Counter()).update(b)
                        per_slice_n[k] += n
        series = {}
        for name, h in hist.items():
            n = counts[name]
            top = maxes.get(name, 0.0)
            series[name] = Series(
                name,
                n,
                sums[name],
                sums[name] / n if n else 0.0,
                _quantile(h, 0.50, top),
                _quantile(h, 0.95, top),
                _quantile(h, 0.99, top),
                top,
                totals[name],
            )
        keys = range(lowest, int(now // SLICE) + 1)
        rate = [(k * SLICE, per_slice_n[k] / SLICE) for k in keys]
        p95 = [(k * SLICE, _quantile(per_slice.get(k, Counter()), 0.95, math.inf)) for k in keys]
        return cls(
            started=min((st["started"] for st in states), default=now),
            workers=len(states),
            series=series,
            counters=dict(counters),
            rate=rate,
            p95=p95,
            extras=extras,
        )

    def get(self, name: str) -> Series:
        """Return one series, empty if nothing was observed."""
        return self.series.get(name) or Series(name, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)

    def endpoints(self) -> list[Series]:
        """Return the request series, busiest first."""
        found = [s for n, s in self.series.items() if n.startswith("request:") and s.count]
        return sorted(found, key=lambda s: (-s.count, s.name))

    def active_streams(self) -> int:
        """Return how many media answers are still sending, over every worker."""
        return self.counters.get("streams_started", 0) - self.counters.get("streams_ended", 0)

    def cache_hit_rate(self) -> float | None:
        """Return hits / (hits + misses), None before any lookup."""
        hits, misses = self.counters.get("cache_hit", 0), self.counters.get("cache_miss", 0)
        return hits / (hits + misses) if hits + misses else None


def _quantile(h: Counter[int], q: float, top: float) -> float:
    n = sum(h.values())
    if not n:
        return 0.0
    rank = q * n
    seen = 0
    for index in sorted(h):
        seen += h[index]
        if seen >= rank:
            return min(bucket_top(index), top)
    return top


# The process's metrics: one app per worker process.
REGISTRY = Metrics()


def observe(name: str, seconds: float) -> None:
    """Record one timing under `name` in the process's metrics."""
    REGISTRY.observe(name, seconds)


def count(name: str, n: int = 1) -> None:
    """Add to a counter in the process's metrics."""
    REGISTRY.count(name, n)


def snapshot() -> Snapshot:
    """Return every worker's numbers merged (see the module docstring)."""
    return REGISTRY.merged()


# Statements run on this thread's connection during the current request (sqlite3 trace hook).
_queries = threading.local()


def count_query(_sql: str) -> None:
    """Count one SQL statement (a `set_trace_callback` hook)."""
    _queries.n = getattr(_queries, "n", 0) + 1


def take_queries() -> int:
    """Return and reset this thread's statement count."""
    n = getattr(_queries, "n", 0)
    _queries.n = 0
    return n
