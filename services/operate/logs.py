"""Structured logging: a request id on every line, text or JSON lines, recent errors kept in memory.

The request id lives in a context variable the request hooks set (a sane `X-Request-ID` from a
proxy is kept, otherwise a fresh one); lines logged outside a request carry "-". Warnings and
errors also go to a ring buffer the admin dashboard shows.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
RECENT = 50


def new_request_id(offered: str | None = None) -> str:
    """Return the id for a request: the one offered when it is sane, else 12 random hex digits."""
    if offered and _SANE_ID.fullmatch(offered):
        return offered
    # Not a secret, only unlikely to repeat: Python's generator (reseeded in each forked
    # worker) costs no system call, where secrets' does one per request.
    return f"{random.getrandbits(48):012x}"


class RequestIdFilter(logging.Filter):
    """Put the current request id on every record as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, logger, request id, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", REQUEST_ID.get()),
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


@dataclass(frozen=True)
class LoggedError:
    """A warning or error as the dashboard lists it."""

    at: float
    level: str
    logger: str
    request_id: str
    message: str


class RecentErrors(logging.Handler):
    """Keep the last warnings and errors in memory."""

    def __init__(self, size: int = RECENT) -> None:
        super().__init__(logging.WARNING)
        self.items: deque[LoggedError] = deque(maxlen=size)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = str(record.msg)
        item = LoggedError(
            record.created,
            record.levelname,
            record.name,
            getattr(record, "request_id", REQUEST_ID.get()),
            message[:500],
        )
        with self._guard:
            self.items.append(item)

    def recent(self) -> list[LoggedError]:
        """Return the kept records, newest first."""
        with self._guard:
            return list(reversed(self.items))


RECENT_ERRORS = RecentErrors()


def setup(level: str, fmt: str = "text") -> None:
    """Configure the root logger once: format, request ids, the recent-errors buffer."""
    root = logging.getLogger()
    root.setLevel(level)
    ours = [h for h in root.handlers if getattr(h, "_lvs", False)]
    if not ours:
        handler = logging.StreamHandler()
        handler._lvs = True  # type: ignore[attr-defined]
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
        ours = [handler]
    for handler in ours:
        handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    if RECENT_ERRORS not in root.handlers:
        RECENT_ERRORS.addFilter(RequestIdFilter())
        root.addHandler(RECENT_ERRORS)
