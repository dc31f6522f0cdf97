"""Keeping the write-ahead log bounded: truncating checkpoints, and a warning when a reader pins it.

SQLite appends every commit to `library.db-wal`; a checkpoint copies those pages into the
database, and the log starts again from its beginning once no reader needs them any more. A
reader that keeps one read transaction open (a long export, a backup tool, a stuck client) needs
every page written since it began, so under steady writes the log grows for as long as it reads —
and SQLite never makes the file smaller by itself: it is reused at its largest size for good
(issue 20: 987 MiB, long after the reader had left).

Two bounds, once the reader is gone:

- `journal_size_limit` (services/db.py): whenever the log starts again, the file is cut back to
  that size (a busy server shrinks it with its own writes);
- this module's `WalKeeper`, run by the background owner: every LVS_WAL_CHECKPOINT_INTERVAL it
  tries `PRAGMA wal_checkpoint(TRUNCATE)`, which empties the file completely (an idle server
  shrinks it too). The attempt waits at most CHECKPOINT_WAIT for readers and writers, since the
  writers wait while it does; when a reader still needs the log it simply tries again next time.

The keeper records each attempt in `<data dir>/wal.json` (the dashboard and `/metrics` of any
worker read it, with the file's size now), and logs a WARNING when the log could not be emptied
for PIN_WARN_ATTEMPTS attempts in a row — a reader has been holding it for that long.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATE_NAME = "wal.json"
CHECKPOINT_WAIT_MS = 100  # how long one attempt waits for readers and writers (writers wait too)
PIN_WARN_ATTEMPTS = 5  # failed attempts in a row (5 minutes by default) before the WARNING


def wal_bytes(db_path: Path) -> int:
    """Return the size of the database's write-ahead log file now (0 when there is none)."""
    try:
        return os.stat(f"{db_path}-wal").st_size
    except OSError:
        return 0


def status(db_path: Path) -> dict[str, Any]:
    """Return the WAL's size now and what the keeper last recorded (for the dashboard, /metrics).

    Keys: wal_bytes, checked_at (last attempt), last_checkpoint_at (last time the log was emptied),
    pinned_since (since when a reader has kept it from being emptied; None when it was not).
    """
    out: dict[str, Any] = {"checked_at": None, "last_checkpoint_at": None, "pinned_since": None}
    try:
        saved = json.loads((db_path.parent / STATE_NAME).read_text(encoding="utf-8"))
        out |= {k: saved.get(k) for k in out}
    except (OSError, ValueError, AttributeError):
        pass
    out["wal_bytes"] = wal_bytes(db_path)
    return out


class WalKeeper:
    """Try a truncating checkpoint every `interval` seconds in a daemon thread, until stop()."""

    def __init__(self, db_path: Path, interval: float) -> None:
        self.db_path = db_path
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_checkpoint_at: float | None = None
        self.pinned_since: float | None = None
        self._failed = 0
        self._warned = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lvs-wal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        conn = None
        while not self._stop.wait(self.interval):
            try:
                if conn is None:
                    conn = sqlite3.connect(str(self.db_path), isolation_level=None, timeout=0)
                    conn.execute(f"PRAGMA busy_timeout = {CHECKPOINT_WAIT_MS}")
                self.attempt(conn)
            except sqlite3.Error as exc:
                log.info("write-ahead log checkpoint failed: %s", exc)
                if conn is not None:
                    conn.close()
                    conn = None
        if conn is not None:
            conn.close()

    def attempt(self, conn: sqlite3.Connection) -> bool:
        """Try to checkpoint and empty the log once; record the outcome; return whether it did."""
        now = time.time()
        before = wal_bytes(self.db_path)
        emptied = not conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if emptied:
            if self._warned and self.pinned_since is not None:
                log.info(
                    "the write-ahead log was emptied again (%s) after %.0f s held by a reader",
                    _mib(before),
                    now - self.pinned_since,
                )
            self.last_checkpoint_at, self.pinned_since = now, None
            self._failed, self._warned = 0, False
        else:
            self._failed += 1
            if self.pinned_since is None:
                self.pinned_since = now
            if self._failed >= PIN_WARN_ATTEMPTS and not self._warned:
                self._warned = True
                log.warning(
                    "a reader has kept the write-ahead log from being checkpointed for %.0f s; "
                    "it is %s and grows with every write until that reader ends "
                    "(a long export or backup, or a stuck client?)",
                    now - self.pinned_since,
                    _mib(wal_bytes(self.db_path)),
                )
        self._save(now)
        return emptied

    def _save(self, now: float) -> None:
        state = {
            "checked_at": now,
            "last_checkpoint_at": self.last_checkpoint_at,
            "pinned_since": self.pinned_since,
        }
        path = self.db_path.parent / STATE_NAME
        tmp = path.with_name(f".{STATE_NAME}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(state), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass  # a status file must never stop the checkpoints


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
