"""The Dramatiq broker on Redis, built only when Redis is configured.

Why Dramatiq (issue 18): its Redis broker acks a message only after the actor finished, and
the unacked messages of a worker whose heartbeat stopped are requeued — with
`heartbeat_timeout` set to HEARTBEAT_TIMEOUT_MS that is a quarter of a minute, not Celery's
one-hour Redis visibility timeout (whose `acks_late`/`reject_on_worker_lost` are off by default).

Actors are recorded with `@actor(name, queue=...)` when their module is imported, without
importing dramatiq; `get_broker(url)` builds the broker once per process and declares them.
Batch work is at-least-once: an actor may run twice, so it must be idempotent
(content-addressed outputs, temp + rename).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from services.compute.conn import redis_link

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

HEARTBEAT_TIMEOUT_MS = 15_000  # a dead worker's unacked messages come back after this
# Out of a million broker commands, how many also requeue dead workers' messages. Dramatiq's
# default (1,000) runs it about every 25 s with our 100 ms polls; 10,000 about every 2.5 s, so a
# killed worker's batch jobs come back soon after HEARTBEAT_TIMEOUT_MS (a cheap Lua step).
MAINTENANCE_CHANCE = 10_000
DEAD_MESSAGE_TTL_MS = 3_600_000  # failed messages kept for an hour
NAMESPACE = "lvs-dramatiq"
BATCH_QUEUE = "lvs-batch"

_recorded: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {}
_brokers: dict[str, Any] = {}
_lock = threading.Lock()


def actor(name: str, *, queue: str = BATCH_QUEUE, **options: Any) -> Callable[[F], F]:
    """Record `fn` as the Dramatiq actor `name` on `queue` (declared when a broker is built).

    `options` go to dramatiq.actor (max_retries, time_limit, priority, …). The function itself
    is returned unchanged: calling it runs the work here, in this process.
    """

    def record(fn: F) -> F:
        _recorded[name] = (fn, {"queue_name": queue, **options})
        with _lock:
            for broker in _brokers.values():
                _declare(broker, name)
        return fn

    return record


def _declare(broker: Any, name: str) -> None:
    import dramatiq

    if name in broker.actors:
        return
    fn, options = _recorded[name]
    dramatiq.actor(fn, actor_name=name, broker=broker, **options)


def get_broker(url: str) -> Any:
    """Return this process's RedisBroker for `url`, made (and set as Dramatiq's) on first use."""
    broker = _brokers.get(url)
    if broker is not None:
        return broker
    with _lock:
        broker = _brokers.get(url)
        if broker is None:
            import dramatiq
            import redis
            from dramatiq.brokers.redis import RedisBroker

            client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2,
                                          driver_info=None)  # fmt: skip
            broker = RedisBroker(
                client=client,
                namespace=NAMESPACE,
                heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
                dead_message_ttl=DEAD_MESSAGE_TTL_MS,
                maintenance_chance=MAINTENANCE_CHANCE,
            )
            for name in _recorded:
                _declare(broker, name)
            dramatiq.set_broker(broker)
            _brokers[url] = broker
    return broker


def send(url: str, name: str, *args: Any, queue: str | None = None, **kwargs: Any) -> bool:
    """Enqueue a call of actor `name` (on its own queue, or `queue`); False when Redis is down."""
    link = redis_link(url)
    if link.client() is None:
        return False
    broker = get_broker(url)
    message = broker.get_actor(name).message(*args, **kwargs)
    if queue is not None:
        message = message.copy(queue_name=queue)
    try:
        broker.enqueue(message)
    except link.errors as exc:
        link.failed(exc)
        return False
    return True


def send_to(url: str, queue: str, name: str, *args: Any, **kwargs: Any) -> bool:
    """Enqueue a call of actor `name` on `queue` without declaring the actor here (the worker
    that consumes `queue` declared it); False when Redis is down."""
    link = redis_link(url)
    if link.client() is None:
        return False
    import dramatiq

    broker = get_broker(url)
    message = dramatiq.Message(queue_name=queue, actor_name=name, args=args, kwargs=kwargs,
                               options={})  # fmt: skip
    try:
        broker.enqueue(message)
    except link.errors as exc:
        link.failed(exc)
        return False
    return True
