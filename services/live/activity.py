"""The job runners' activity (running scans, previews, transcodes; queues), for every process.

Each server process has a job runner: the background owner's does the library's work, the others
what their own requests ask (a thumbnail a page waits for, a scan an admin starts). A page's
change feed may be answered by any process, so each runner's Publisher thread looks at it every
INTERVAL and, when what it sees changed, replaces `<data dir>/live-activity/<pid>.json` (a few
hundred bytes) with it and a new version. Readers stat the files, parse only those that changed,
and add them up; the sum of the versions is part of an admin page's feed token, so the header
indicator hears of progress within one poll and nobody else pays for it. A process that stops
removes its file; one that died without doing so is skipped (its pid is gone).
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

FOLDER = "live-activity"
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
    """Write this process's activity to its file whenever it changes (a daemon thread)."""

    def __init__(self, data_dir: Path, look: Callable[[], dict[str, Any]]) -> None:
        self.path = data_dir / FOLDER / f"{os.getpid()}.json"
        self._look = look
        self._stop = threading.Event()
        self._last: dict[str, Any] | None = None
        self._version = time.time_ns() // 1000  # a restarted process never repeats a version
        self._thread = threading.Thread(target=self._run, name="live-activity", daemon=True)

    def start(self) -> Publisher:
        self.publish()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self.path.unlink(missing_ok=True)  # nothing runs here any more

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
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            self.path.parent.mkdir(exist_ok=True)
            tmp.write_text(json.dumps({"v": self._version, **now}))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc.strerror)
            return False
        return True

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            self.publish()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Reader:
    """Add up the processes' activity files, parsing each only when it changed."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / FOLDER
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}

    def read(self) -> dict[str, Any]:
        """Return {"v", "running", "queued"} of every live process; IDLE when none has any."""
        try:
            entries = [e for e in os.scandir(self.folder) if e.name.endswith(".json")]
        except OSError:
            return IDLE
        parts = []
        for entry in entries:
            pid = entry.name.removesuffix(".json")
            if not pid.isdigit() or not _alive(int(pid)):
                continue  # a process that died without removing its file
            try:
                st = entry.stat()
            except OSError:
                continue
            stamp = (st.st_mtime_ns, st.st_size)
            with self._lock:
                known = self._seen.get(pid)
            if known is None or known[0] != stamp:
                try:
                    value = json.loads(Path(entry.path).read_text())
                except (OSError, ValueError):
                    if known is None:
                        continue
                    value = known[1]  # being replaced: the last one read is as good
                known = (stamp, value)
                with self._lock:
                    self._seen[pid] = known
            parts.append(known[1])
        if not parts:
            return IDLE
        queued: dict[str, int] = {}
        for part in parts:
            for kind, n in part["queued"].items():
                queued[kind] = queued.get(kind, 0) + n
        return {
            "v": sum(part["v"] for part in parts),
            "running": [job for part in parts for job in part["running"]],
            "queued": queued,
        }
