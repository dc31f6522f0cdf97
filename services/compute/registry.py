"""Which workers live, what they can do and how busy they are; which one takes a session.

A worker announces itself every HEARTBEAT seconds by writing `lvs:worker:<id>` (JSON of
`WorkerInfo`) with a TTL of `ttl` seconds: a worker that stops announcing (killed, power cut,
network gone) disappears from `workers()` within the TTL. The same JSON goes to
`lvs:worker-seen:<id>`, living FORGET seconds: `last_seen()` tells how long ago each worker
announced itself, by Redis's clock (the key's remaining TTL), so the dashboard can show a worker
that went quiet as stale for a while instead of dropping it; a clean stop removes both.
`choose()` prefers a worker with a working hardware encoder and room for another session, then
the least busy one.
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

PREFIX = "lvs:worker:"
SEEN = "lvs:worker-seen:"
HEARTBEAT = 1.0  # seconds between announcements
TTL = 4.0  # seconds an announcement lives: a dead worker is gone from the list after this
FORGET = 600.0  # seconds a worker that went quiet is still shown (as stale)
ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
REFUSED_LOG_EVERY = 60.0  # seconds between log lines about refused announcements
_refused_logged = 0.0


@dataclass(frozen=True)
class WorkerInfo:
    """One worker as it announces itself (or the server itself, `id` "local")."""

    id: str  # [a-z0-9-], also names its Dramatiq queue
    host: str
    url: str  # HTTP base URL its segments are fetched from, e.g. http://10.0.0.5:8091
    cpus: int
    encoders: tuple[str, ...] = ("libx264",)  # working H.264 encoders, best first
    hardware: str = "none"  # "none", "vaapi", "qsv", "nvenc"
    sessions: int = 0  # transcode sessions it holds now
    capacity: int = 1  # encoders it runs at once
    load: float = 0.0  # 1-minute load average / cpus
    started: float = 0.0
    seen: float = 0.0  # when it last announced (its clock)
    version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)  # room for other helpers' facts

    @property
    def busy(self) -> float:
        """Sessions per encoder slot (0 idle, ≥ 1 full)."""
        return self.sessions / max(1, self.capacity)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerInfo | None:
        """Return the announcement, or None (logged, at most every REFUSED_LOG_EVERY s) when a
        field has the wrong type or range or the URL is not a bare http(s) origin: anyone with
        the Redis password can write one, and the server sends signed requests to its URL."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            if isinstance(data.get("encoders"), list):
                data["encoders"] = tuple(data["encoders"])
            info = cls(**data)
            why = info.invalid()
        except (ValueError, TypeError, RecursionError) as exc:
            why = str(exc)
        if why:
            _log_refused(text, why)
            return None
        return info

    def invalid(self) -> str | None:
        """Return why this announcement is not to be used, else None."""
        for f in fields(self):
            value = getattr(self, f.name)
            kind = _KINDS[f.name]
            if not isinstance(value, kind) or isinstance(value, bool):
                return f"{f.name} is {type(value).__name__}, not {kind}"
            if isinstance(value, float) and not math.isfinite(value):
                return f"{f.name} is not finite"
        if not ID_RE.fullmatch(self.id):
            return "bad id"
        if len(self.host) > 255 or len(self.hardware) > 32:
            return "host or hardware too long"
        if not all(isinstance(e, str) and len(e) <= 64 for e in self.encoders):
            return "encoders are not names"
        if not (1 <= self.cpus <= 100_000 and 0 <= self.sessions <= 100_000):
            return "cpus or sessions out of range"
        if not (0 <= self.capacity <= 100_000 and 0 <= self.load <= 100_000):
            return "capacity or load out of range"
        return origin_problem(self.url)


_KINDS: dict[str, Any] = {"id": str, "host": str, "url": str, "cpus": int, "encoders": tuple,
                          "hardware": str, "sessions": int, "capacity": int,
                          "load": (int, float), "started": (int, float), "seen": (int, float),
                          "version": int, "extra": dict}  # fmt: skip


def origin_problem(url: str) -> str | None:
    """Return why `url` is not a bare http(s) origin (scheme://host[:port][/]), else None."""
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when out of range or not a number
    except ValueError as exc:
        return f"url {url[:100]!r}: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"url {url[:100]!r} is not http(s)://host"
    if "@" in parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment:
        return f"url {url[:100]!r} has more than scheme, host and port"
    if port == 0 or "?" in url or "#" in url:
        return f"url {url[:100]!r} has more than scheme, host and port"
    return None


def _log_refused(text: str, why: str) -> None:
    global _refused_logged
    now = time.monotonic()
    if now - _refused_logged >= REFUSED_LOG_EVERY:
        _refused_logged = now
        log.warning("a worker announcement in Redis is ignored (%s): %r", why[:200], text[:200])


def default_id(port: int) -> str:
    """Return a worker id from this machine's name and the HTTP port: stable across restarts."""
    host = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-") or "worker"
    return f"{host[:50]}-{port}"


def queue_of(worker_id: str) -> str:
    """Return the Dramatiq queue only this worker consumes (session requests for it)."""
    return f"lvs-node-{worker_id}"


def announce(client: Any, info: WorkerInfo, ttl: float = TTL) -> None:
    """Write the worker's announcement, living `ttl` seconds (and its last-seen record)."""
    text = info.to_json()
    pipe = client.pipeline(transaction=False)
    pipe.set(PREFIX + info.id, text, px=int(ttl * 1000))
    pipe.set(SEEN + info.id, text, px=int(FORGET * 1000))
    pipe.execute()


def withdraw(client: Any, worker_id: str) -> None:
    """Remove the worker's announcement at once (a clean stop)."""
    client.delete(PREFIX + worker_id, SEEN + worker_id)


def last_seen(client: Any) -> dict[str, tuple[WorkerInfo, float]]:
    """Return every worker that announced itself within FORGET seconds, by id: what it last
    said and how many seconds ago (by Redis's clock: the record's TTL left)."""
    keys = sorted(client.scan_iter(match=SEEN + "*", count=500))
    if not keys:
        return {}
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
        pipe.pttl(key)
    answers = pipe.execute(raise_on_error=False)  # a key of another type: its error, skipped
    found = {}
    for text, left in zip(answers[::2], answers[1::2], strict=True):
        info = WorkerInfo.from_json(text) if isinstance(text, str) and text else None
        if info is not None and left is not None and left >= 0:
            found[info.id] = (info, max(0.0, FORGET - left / 1000))
    return found


def workers(client: Any) -> list[WorkerInfo]:
    """Return the live workers (announced within their TTL), by id."""
    keys = sorted(client.scan_iter(match=PREFIX + "*", count=500))
    if not keys:
        return []
    found = []
    for text in client.mget(keys):
        info = WorkerInfo.from_json(text) if text else None
        if info is not None:
            found.append(info)
    return found


def choose(candidates: Iterable[WorkerInfo], exclude: Iterable[str] = ()) -> WorkerInfo | None:
    """Return the worker a new session goes to: hardware with room first, then the least busy
    (sessions per slot); at equal sessions per slot a worker before the server itself ("local",
    which also serves pages), then the lower load."""
    skip = set(exclude)
    pool = [w for w in candidates if w.id not in skip]
    if not pool:
        return None

    def key(w: WorkerInfo) -> tuple[bool, float, float, bool, str]:
        hardware_room = w.hardware != "none" and w.busy < 1
        return (not hardware_room, round(w.busy, 3), w.id == "local", round(w.load, 2), w.id)

    return min(pool, key=key)


def now() -> float:
    return time.time()
