"""What the dashboard, Prometheus and `flask workers` show of the compute plane, in one call.

`snapshot(cfg)` never raises for Redis trouble: with LVS_REDIS_URL empty it says "single node"
(and imports nothing), with Redis unreachable it carries the notice line (and with
LVS_LOCAL_WORK=off and no worker announced, `NO_WORKER`), else the live
workers, those that went quiet within registry.FORGET (`stale`), how long ago each announced
itself, the session leases each holds, and every Dramatiq queue's waiting, delayed, running
and dead messages (read from the broker's own keys: `<namespace>:<queue>` lists, the
`.DQ`/`.XQ` sets and the per-worker `__acks__` sets). `ComputeStatus.rows()` gives each
worker's state: ok, busy (every encoder slot taken) or stale (heartbeat late or stopped).

`cached(cfg)` is what pages and scrapes call: a snapshot at most CACHE_FOR seconds old, taken
by one thread per process while the callers wait at most WAIT seconds — many dashboard tabs
polling every 3 s cost Redis one snapshot per process and CACHE_FOR, and a Redis that hangs
(its socket timeouts are 2 s) holds no page: the caller gets the last snapshot, marked late.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.compute import leases, registry
from services.compute.broker import BATCH_QUEUE, NAMESPACE
from services.compute.conn import redacted, redis_link
from services.compute.registry import WorkerInfo
from services.compute.settings import ComputeSettings

NO_WORKER = (
    "No worker is announced and LVS_LOCAL_WORK=off: transcodes run on this server until one answers"
)

log = logging.getLogger(__name__)

STALE_AFTER = 2.5 * registry.HEARTBEAT  # a heartbeat older than this is late: "stale"
CACHE_FOR = 1.5  # seconds a snapshot is reused
WAIT = 0.5  # seconds a caller waits for a fresh snapshot before taking the last one


@dataclass(frozen=True)
class QueueSize:
    waiting: int = 0
    delayed: int = 0
    running: int = 0  # taken by a worker, not yet acknowledged
    dead: int = 0  # failed for good, kept DEAD_MESSAGE_TTL


@dataclass(frozen=True)
class ComputeStatus:
    enabled: bool
    redis: str  # "single node", "ok", "unreachable"
    url: str = ""  # without its password
    notice: str | None = None
    workers: list[WorkerInfo] = field(default_factory=list)
    leases: dict[str, int] = field(default_factory=dict)  # worker id → live session leases
    queues: dict[str, QueueSize] = field(default_factory=dict)
    stale: list[WorkerInfo] = field(default_factory=list)  # quiet, not yet forgotten
    ages: dict[str, float] = field(default_factory=dict)  # worker id → seconds since it announced
    at: float = 0.0  # when this was read (Unix time)
    late: bool = False  # Redis did not answer in time: this is the last snapshot taken

    def rows(self) -> list[WorkerRow]:
        """Return every worker shown, live ones first, by id, with its state."""
        found = []
        for info in self.workers:
            age = self.ages.get(info.id, max(0.0, self.at - info.seen))
            state = "stale" if age > STALE_AFTER else "busy" if info.busy >= 1 else "ok"
            found.append(WorkerRow(info, state, age, self.leases.get(info.id, 0)))
        for info in self.stale:
            found.append(WorkerRow(info, "stale", self.ages.get(info.id, 0.0),
                                   self.leases.get(info.id, 0)))  # fmt: skip
        return found

    def as_dict(self) -> dict[str, Any]:
        """Return what the dashboard's JSON and `flask workers --json` show."""
        return {
            "enabled": self.enabled,
            "redis": self.redis,
            "url": self.url,
            "notice": self.notice,
            "at": self.at,
            "late": self.late,
            "workers": [row.as_dict() for row in self.rows()],
            "queues": {name: dataclasses.asdict(q) for name, q in self.queues.items()},
        }


@dataclass(frozen=True)
class WorkerRow:
    """One worker as shown: what it announced, its state, heartbeat age and leases."""

    info: WorkerInfo
    state: str  # "ok", "busy", "stale"
    age: float  # seconds since its last heartbeat
    leases: int  # sessions the server placed on it (live leases)

    def as_dict(self) -> dict[str, Any]:
        i = self.info
        return {"id": i.id, "host": i.host, "url": i.url, "state": self.state,
                "sessions": i.sessions, "capacity": i.capacity, "leases": self.leases,
                "load": i.load, "cpus": i.cpus, "encoders": list(i.encoders),
                "hardware": i.hardware, "heartbeat_age": round(self.age, 1),
                "started": i.started}  # fmt: skip


def snapshot(cfg: ComputeSettings) -> ComputeStatus:
    """Return the compute plane's state now (see the module docstring)."""
    if not cfg.enabled:
        return ComputeStatus(False, "single node")
    link = redis_link(cfg.redis_url)
    client = link.client()
    url = redacted(cfg.redis_url)
    now = time.time()
    if client is None:
        return ComputeStatus(True, "unreachable", url, link.notice(), at=now)
    try:
        live = registry.workers(client)
        notice = None if live or cfg.local_work else NO_WORKER
        seen = registry.last_seen(client)
        ids = {w.id for w in live}
        # an empty queue has no key: the batch queue and each live worker's are shown anyway
        queues = {name: QueueSize() for name in [BATCH_QUEUE, *map(registry.queue_of, sorted(ids))]}
        queues.update(queue_sizes(client))
        return ComputeStatus(
            True, "ok", url, notice, live, leases.count_by_worker(client), dict(sorted(queues.items())),
            stale=[info for wid, (info, _) in seen.items() if wid not in ids],
            ages={wid: age for wid, (_, age) in seen.items()}, at=now)  # fmt: skip
    except link.errors as exc:
        link.failed(exc)
        return ComputeStatus(True, "unreachable", url, link.notice(), at=now)


SKIPPED_LOG_EVERY = 60.0  # seconds between log lines about keys of the wrong type
_skipped_logged = -SKIPPED_LOG_EVERY
_cache: dict[str, ComputeStatus] = {}
_readers: dict[str, threading.Thread] = {}
_cache_lock = threading.Lock()


def cached(cfg: ComputeSettings, max_age: float = CACHE_FOR, wait: float = WAIT) -> ComputeStatus:
    """Return a snapshot at most `max_age` seconds old, waiting at most `wait` seconds for it
    (see the module docstring); late, the last one with `late` set (or, before any, a
    "no answer yet" status)."""
    if not cfg.enabled:
        return ComputeStatus(False, "single node")
    key = cfg.redis_url
    with _cache_lock:
        last = _cache.get(key)
        if last is not None and time.time() - last.at < max_age:
            return last
        reader = _readers.get(key)
        if reader is None or not reader.is_alive():
            reader = threading.Thread(target=_read, args=(cfg,), name="compute-status",
                                      daemon=True)  # fmt: skip
            _readers[key] = reader
            reader.start()
    reader.join(wait)
    with _cache_lock:
        fresh = _cache.get(key)
    if fresh is not None and fresh is not last:
        return fresh
    url = redacted(cfg.redis_url)
    if last is None:
        return ComputeStatus(True, "unreachable", url, f"Redis at {url} has not answered yet "
                             f"(waited {wait:g} s)", at=time.time(), late=True)  # fmt: skip
    return dataclasses.replace(last, late=True)


def _read(cfg: ComputeSettings) -> None:
    try:
        snap = snapshot(cfg)
    except Exception:  # a bug must not leave the callers waiting for ever: they get `late`
        log.exception("reading the workers' status failed")
        return
    with _cache_lock:
        _cache[cfg.redis_url] = snap


def queue_sizes(client: object, namespace: str = NAMESPACE) -> dict[str, QueueSize]:
    """Return every Dramatiq queue's sizes, by queue name."""
    r = client  # a redis.Redis (decode_responses=True)
    prefix = namespace + ":"
    names: set[str] = set()
    running: dict[str, int] = {}
    for key in r.scan_iter(match=prefix + "*", count=500):  # type: ignore[attr-defined]
        rest = key[len(prefix) :]
        if rest.startswith("__acks__."):
            queue = rest.split(".", 2)[-1] if rest.count(".") >= 2 else ""
            if queue:
                base = queue.removesuffix(".DQ")
                running[base] = running.get(base, 0) + _size(r.scard, key)  # type: ignore[attr-defined]
                names.add(base)
            continue
        if rest.startswith("__") or rest.endswith(".msgs"):
            continue
        names.add(rest.removesuffix(".DQ").removesuffix(".XQ"))
    sizes = {}
    for name in sorted(names):
        sizes[name] = QueueSize(
            waiting=_size(r.llen, prefix + name),  # type: ignore[attr-defined]
            delayed=_size(r.llen, prefix + name + ".DQ"),  # type: ignore[attr-defined]
            running=running.get(name, 0),
            dead=_size(r.zcard, prefix + name + ".XQ"),  # type: ignore[attr-defined]
        )
    return sizes


def _size(command: Callable[[str], Any], key: str) -> int:
    """Return command(key), 0 when the key is of another type (planted by hand: skipped)."""
    import redis

    try:
        return int(command(key))
    except redis.ResponseError as exc:
        global _skipped_logged
        if time.monotonic() - _skipped_logged >= SKIPPED_LOG_EVERY:
            _skipped_logged = time.monotonic()
            log.warning("Redis key %r is skipped in the queue sizes: %s", key[:200], exc)
        return 0
