"""One Redis connection per URL and process, that degrades to "unavailable" and comes back.

`client()` returns the client while Redis answers and None while it does not: the caller then
works alone (single node). The first failure logs one WARNING naming what was lost; while down,
a PING is tried at most every `RETRY` seconds; the first success after that logs one INFO.
Commands that raise `redis.RedisError` elsewhere report it with `failed()`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

RETRY = 2.0  # seconds between reconnection attempts while Redis is down
TIMEOUT = 2.0  # socket timeouts: a dead Redis host must not hang a page
ERROR_LOG_EVERY = 60.0  # seconds between log lines about Redis's error answers

QUERY_PASSWORD = re.compile(r"([?&][^=&#]*pass[^=&#]*=)[^&#]*", re.IGNORECASE)
_links: dict[str, RedisLink] = {}
_links_lock = threading.Lock()


def redacted(url: str) -> str:
    """Return the URL without its password (in the netloc or a `password=` in the query, which
    redis-py reads too), for logs and pages."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(an unreadable URL)"
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{port}" if port else "")
        url = urlunsplit(parts._replace(netloc=netloc))
    return QUERY_PASSWORD.sub(r"\1***", url)


class RedisLink:
    """A Redis client that says when Redis is gone instead of raising everywhere."""

    def __init__(self, url: str) -> None:
        import redis  # only when Redis is configured

        self.url = url
        self._redis = redis
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
            health_check_interval=10,
            decode_responses=True,
            driver_info=None,  # no CLIENT SETINFO: deploy/redis-users.acl need not allow it
        )
        self._lock = threading.Lock()
        self._up: bool | None = None  # None: not tried yet
        self._next_try = 0.0
        self.down_since = 0.0
        self.reason = ""
        self._error_logged = -ERROR_LOG_EVERY

    @property
    def raw(self) -> Any:
        """The redis.Redis client, whether or not Redis answers now."""
        return self._client

    def client(self) -> Any | None:
        """Return the client when Redis answers, else None (checking again every RETRY s)."""
        if self._up:
            return self._client
        now = time.monotonic()
        with self._lock:
            if self._up:
                return self._client
            if self._up is False and now < self._next_try:
                return None
            try:
                self._client.ping()
            except self._redis.RedisError as exc:
                self._down(exc)
                return None
            if self._up is False:
                log.info("Redis at %s answers again: workers are used again", redacted(self.url))
            self._up, self.reason, self.down_since = True, "", 0.0
            return self._client

    def available(self) -> bool:
        return self.client() is not None

    def failed(self, exc: BaseException) -> None:
        """Record that a command failed: a lost connection (or a timeout) makes Redis count as
        down until a PING; an error answer (a key of the wrong type anyone with the password
        can plant, a command the ACL refuses) is only logged (every ERROR_LOG_EVERY s)."""
        if not self.lost(exc):
            now = time.monotonic()
            if now - self._error_logged >= ERROR_LOG_EVERY:
                self._error_logged = now
                log.warning("Redis at %s answered an error (%s): that part is skipped",
                            redacted(self.url), str(exc)[:200])  # fmt: skip
            return
        with self._lock:
            self._down(exc)

    def lost(self, exc: BaseException) -> bool:
        """True when `exc` says the connection is gone or timed out, not that Redis answered."""
        r = self._redis
        return isinstance(exc, r.ConnectionError | r.TimeoutError | OSError)

    def _down(self, exc: BaseException) -> None:
        self._next_try = time.monotonic() + RETRY
        if self._up is not False:
            self.down_since = time.time()
            self.reason = str(exc)[:200]
            log.warning("Redis at %s is unreachable (%s): working on this machine alone",
                        redacted(self.url), self.reason)  # fmt: skip
        self._up = False

    def notice(self) -> str | None:
        """Return the dashboard's line while Redis is unreachable, else None."""
        if self._up is False:
            since = time.strftime("%H:%M:%S", time.localtime(self.down_since))
            return (f"Redis at {redacted(self.url)} is unreachable since {since} ({self.reason}): "
                    "this server is doing all the work itself until it answers again")  # fmt: skip
        return None

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """The exceptions a command raises when Redis is unreachable or misbehaves."""
        return (self._redis.RedisError, OSError)


def redis_link(url: str) -> RedisLink:
    """Return this process's link to the Redis at `url` (made on first use)."""
    link = _links.get(url)
    if link is None:
        with _links_lock:
            link = _links.get(url)
            if link is None:
                link = _links[url] = RedisLink(url)
    return link
