"""The background owner's activity (running scans, previews, transcodes; queues), for every process.

The job runner lives in one server process; a page's change feed may be answered by any. The
owner's Publisher thread looks at the runner every INTERVAL and, when what it sees changed,
replaces `<data dir>/live-activity.json` (a few hundred bytes) with it and a new version. Readers
stat the file and parse it only when it changed. The version is part of a page's feed token, so
an admin's open page hears of progress within one poll and nobody else pays for it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FILE = "live-activity.json"
INTERVAL = 0.5  # seconds between looks at the job runner
IDLE: dict[str, Any] = {"v": 0, "running": [], "queued": {}}


def summarize(running: list[Any], queued: dict[str, int]) -> dict[str, Any]:
    """Return the indicator's view of running jobs (JobInfo-like objects) and queue counts."""
    out = []
    for job in running:
        total = job.total or 0
        out.append(
            {
                "kind": job.kind,
                "phase": job.phase or "",
                "target": (job.target or "")[-80:],
                "done": job.done,
                "total": total or None,
                "percent": round(100.0 * job.done / total, 1) if total else None,
            }
        )
    return {"running": out, "queued": {k: n for k, n in sorted(queued.items()) if n}}


class Publisher:
    """Write the owner's activity to the shared file whenever it changes (a daemon thread)."""

    def __init__(self, data_dir: Path, look: Callable[[], dict[str, Any]]) -> None:
        self.path = data_dir / FILE
        self._look = look
        self._stop = threading.Event()
        self._last: dict[str, Any] | None = None
        self._version = time.time_ns() // 1000  # a restarted owner never repeats a version
        self._thread = threading.Thread(target=self._run, name="live-activity", daemon=True)

    def start(self) -> Publisher:
        self.publish()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self.path.unlink(missing_ok=True)  # nothing runs here any more; a new owner writes anew

    def publish(self) -> bool:
        """Look once; write the file if the activity changed. Return whether it was written."""
        try:
            now = self._look()
        except Exception:  # a status look must never stop the publisher
            log.exception("looking at the job runner failed")
            return False
        if now == self._last:
            return False
        self._last = now
        self._version += 1
        tmp = self.path.with_name(f".{FILE}.{os.getpid()}")
        try:
            tmp.write_text(json.dumps({"v": self._version, **now}))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc.strerror)
            return False
        return True

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            self.publish()


class Reader:
    """Read the shared activity file, parsing it only when it changed (one per process)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILE
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] = (-1, -1)
        self._value: dict[str, Any] = IDLE

    def read(self) -> dict[str, Any]:
        """Return the latest activity: {"v", "running", "queued"}; IDLE when there is none."""
        try:
            st = os.stat(self.path)
        except OSError:
            return IDLE
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp == self._stamp:
                return self._value
        try:
            value = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return self._value  # being replaced: the last one read is as good
        with self._lock:
            self._stamp, self._value = stamp, value
        return value
