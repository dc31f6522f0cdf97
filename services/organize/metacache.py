"""A cache of per-media user metadata (tags, ratings, favourites, plays) in front of SQLite.

Write-through and safe across threads and processes: every change to that metadata bumps
`organize_generation.n` (triggers, migration m0005), in whatever process or connection made it.
Each lookup reads that one-row counter (a few microseconds) and drops everything when it moved,
so a gunicorn worker never serves what another worker changed. A writer that knows the new
values of every key its change touched puts them back under the new generation (write-through);
anything else just lets the next lookup start afresh.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database

from services import metrics

V = TypeVar("V")
MAX_ENTRIES = 50_000  # a full cache is dropped, not trimmed: lookups are cheap to redo


@dataclass(frozen=True)
class CacheStats:
    """Lookups answered from memory and from the database, since start."""

    hits: int
    misses: int
    entries: int
    generation: int

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None


def generation(db: Database) -> int:
    """Return the metadata change counter as this connection sees it."""
    return db.execute("SELECT n FROM organize_generation WHERE id = 1").fetchone()[0]


class MetaCache:
    """Values by key, valid for one generation of the metadata."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = -1
        self._data: dict[Hashable, Any] = {}
        self.hits = 0
        self.misses = 0

    def get(self, db: Database, key: Hashable, load: Callable[[], V]) -> V:
        """Return the value of `key`, loading it with `load()` on a miss."""
        gen = generation(db)
        with self._lock:
            if gen != self._generation:
                self._data.clear()
                self._generation = gen
            if key in self._data:
                self.hits += 1
                metrics.count("cache_hit")
                return self._data[key]
            self.misses += 1
        metrics.count("cache_miss")
        # Loaded after reading the generation, so the value is at least that new.
        value = load()
        with self._lock:
            if self._generation == gen:
                if len(self._data) >= MAX_ENTRIES:
                    self._data.clear()
                self._data[key] = value
        return value

    def put(self, before: int, after: int, values: Mapping[Hashable, Any]) -> None:
        """Write through: `values` are every key a change took from generation before to after.

        Only when the cache was current at `before` do the other entries stay valid.
        """
        with self._lock:
            if self._generation != before:
                self._data.clear()
            self._generation = after
            self._data.update(values)

    def stats(self) -> CacheStats:
        """Return hit and miss counts."""
        with self._lock:
            return CacheStats(self.hits, self.misses, len(self._data), self._generation)


_caches: dict[Path, MetaCache] = {}
_caches_lock = threading.Lock()


def cache_for(db_path: Path) -> MetaCache:
    """Return the process's cache of one database."""
    with _caches_lock:
        cache = _caches.get(db_path)
        if cache is None:
            cache = _caches[db_path] = MetaCache()
        return cache


def stats() -> CacheStats:
    """Return the hit and miss counts of every cache in this process, added up."""
    with _caches_lock:
        every = [c.stats() for c in _caches.values()]
    return CacheStats(
        sum(s.hits for s in every),
        sum(s.misses for s in every),
        sum(s.entries for s in every),
        max((s.generation for s in every), default=-1),
    )
