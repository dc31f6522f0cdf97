"""Session leases: `lvs:lease:<session id>` = the id of the worker that holds it, with a TTL.

The server writes a lease when it places a session on a worker and renews it on each segment
request; the worker checks its leases every second and ends (ffmpeg stopped, scratch removed)
a session whose lease lapsed or went to another worker. A worker that cannot open a session's
file says so in `lvs:session-error:<session id>` (read by the server, which then tries another).
With each renewal the server may say where the viewer is, `lvs:position:<session id>` (same
TTL): a worker whose segments the server serves from a shared folder sees no segment request,
and paces its encoder and keeps its session alive by that instead.
"""

from __future__ import annotations

from typing import Any

LEASE = "lvs:lease:"
ERROR = "lvs:session-error:"
POSITION = "lvs:position:"
ERROR_TTL = 120  # seconds


def renew(client: Any, session_id: str, worker_id: str, ttl: float,
          position: int | None = None) -> None:  # fmt: skip
    """Give (or keep) the session to `worker_id` for `ttl` seconds from now; `position`: the
    segment the viewer asked for last (one round trip for both)."""
    px = max(1, int(ttl * 1000))
    if position is None:
        client.set(LEASE + session_id, worker_id, px=px)
        return
    pipe = client.pipeline(transaction=False)
    pipe.set(LEASE + session_id, worker_id, px=px)
    pipe.set(POSITION + session_id, int(position), px=px)
    pipe.execute()


def positions(client: Any, session_ids: list[str]) -> dict[str, int]:
    """Return the viewer's last segment of each session the server said one of."""
    if not session_ids:
        return {}
    found = client.mget([POSITION + s for s in session_ids])
    pairs = zip(session_ids, found, strict=True)
    return {s: int(v) for s, v in pairs if v and v.isascii() and v.isdigit()}  # not '²'


def holder(client: Any, session_id: str) -> str | None:
    """Return the id of the worker holding the session's lease, None when it lapsed."""
    return client.get(LEASE + session_id)


def holders(client: Any, session_ids: list[str]) -> dict[str, str | None]:
    """Return the holder of each session's lease (one round trip)."""
    if not session_ids:
        return {}
    return dict(zip(session_ids, client.mget([LEASE + s for s in session_ids]), strict=True))


def release(client: Any, session_id: str) -> None:
    client.delete(LEASE + session_id, ERROR + session_id, POSITION + session_id)


def count_by_worker(client: Any) -> dict[str, int]:
    """Return how many live leases each worker holds (what the server placed, not yet announced)."""
    keys = list(client.scan_iter(match=LEASE + "*", count=1000))
    counts: dict[str, int] = {}
    for worker_id in client.mget(keys) if keys else []:
        if worker_id:
            counts[worker_id] = counts.get(worker_id, 0) + 1
    return counts


def report_error(client: Any, session_id: str, worker_id: str, reason: str) -> None:
    client.set(ERROR + session_id, f"{worker_id}\n{reason[:500]}", ex=ERROR_TTL)


def error_of(client: Any, session_id: str) -> tuple[str, str] | None:
    """Return (worker id, reason) when a worker reported it cannot take the session."""
    text = client.get(ERROR + session_id)
    if not text:
        return None
    worker_id, _, reason = text.partition("\n")
    return worker_id, reason
