"""What the dashboard, Prometheus and `flask workers` show of the compute plane, in one call.

`snapshot(cfg)` never raises for Redis trouble: with LVS_REDIS_URL empty it says "single node"
(and imports nothing), with Redis unreachable it carries the notice line (and with
LVS_LOCAL_WORK=off and no worker announced, `NO_WORKER`), else the live
workers, the session leases each holds, and every Dramatiq queue's waiting, delayed, running
and dead messages (read from the broker's own keys: `<namespace>:<queue>` lists, the
`.DQ`/`.XQ` sets and the per-worker `__acks__` sets).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.compute import leases, registry
from services.compute.broker import NAMESPACE
from services.compute.conn import redacted, redis_link
from services.compute.registry import WorkerInfo
from services.compute.settings import ComputeSettings

NO_WORKER = (
    "No worker is announced and LVS_LOCAL_WORK=off: transcodes run on this server until one answers"
)


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


def snapshot(cfg: ComputeSettings) -> ComputeStatus:
    """Return the compute plane's state now (see the module docstring)."""
    if not cfg.enabled:
        return ComputeStatus(False, "single node")
    link = redis_link(cfg.redis_url)
    client = link.client()
    url = redacted(cfg.redis_url)
    if client is None:
        return ComputeStatus(True, "unreachable", url, link.notice())
    try:
        live = registry.workers(client)
        notice = None if live or cfg.local_work else NO_WORKER
        return ComputeStatus(True, "ok", url, notice, live, leases.count_by_worker(client),
                             queue_sizes(client))  # fmt: skip
    except link.errors as exc:
        link.failed(exc)
        return ComputeStatus(True, "unreachable", url, link.notice())


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
                running[base] = running.get(base, 0) + int(r.scard(key))  # type: ignore[attr-defined]
                names.add(base)
            continue
        if rest.startswith("__") or rest.endswith(".msgs"):
            continue
        names.add(rest.removesuffix(".DQ").removesuffix(".XQ"))
    sizes = {}
    for name in sorted(names):
        sizes[name] = QueueSize(
            waiting=int(r.llen(prefix + name)),  # type: ignore[attr-defined]
            delayed=int(r.llen(prefix + name + ".DQ")),  # type: ignore[attr-defined]
            running=running.get(name, 0),
            dead=int(r.zcard(prefix + name + ".XQ")),  # type: ignore[attr-defined]
        )
    return sizes
