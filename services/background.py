"""Start and stop the background services (job runner, watcher) from one place, in one process.

The server may run as several processes (gunicorn workers). The one that takes an exclusive
flock on data_dir/background.lock becomes the owner: it feeds the job queue from the library
(every missing thumbnail and preview), follows the disk with the watcher and scans at start.
The others get a runner that does only what their own requests ask (a thumbnail a page is
waiting for, a scan an admin starts); the per-media generation lock keeps the two from making
the same file twice. When the owner stops, its lock is released with its descriptor.

With LVS_REDIS_URL set, the owner also takes the reports of preview jobs done by workers on
other machines (services/previews/batch_deliveries.py), and every runner may leave thumbnail,
sprite and clip jobs to them (services/previews/batch_server.py).

LVS_BACKGROUND=inline runs every piece of work in the caller (tests); `off` starts nothing:
thumbnails are then made only by `flask thumbnails` and `flask scan`.

Whatever the mode, every server process holds a shared flock on data_dir/server.lock while it
runs, so `flask restore` can tell that a server is up (services/maintenance.server_running).
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from typing import Any

from config import Settings
from services.jobs import Jobs
from services.live import activity
from services.operate.wal import WalKeeper

log = logging.getLogger(__name__)

LOCK_NAME = "background.lock"
SERVER_LOCK = "server.lock"  # shared by every server process while it runs


@dataclass
class Background:
    """The running background services of this process."""

    jobs: Jobs | None  # None when LVS_BACKGROUND=off
    owner: bool  # this process feeds the queue and runs the watcher
    watcher: Any = None
    wal: Any = None  # the WAL keeper (services/operate/wal.py), run by the owner
    publisher: Any = None  # services/live/activity.Publisher: the jobs, for every process's pages
    deliveries: Any = None  # previews made by workers on other machines (LVS_REDIS_URL)
    _lock_fd: int | None = None
    _server_fd: int | None = None

    def stop(self) -> None:
        """Stop the watcher, then the jobs (queued work is dropped, a running scan cancelled)."""
        if self.publisher is not None:
            self.publisher.stop()
            self.publisher = None
        if self.deliveries is not None:
            self.deliveries.stop()
            self.deliveries = None
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.wal is not None:
            self.wal.stop()
            self.wal = None
        if self.jobs is not None:
            self.jobs.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock: another process may take over
            self._lock_fd = None
        if self._server_fd is not None:
            os.close(self._server_fd)
            self._server_fd = None


def start(settings: Settings) -> Background:
    """Start this process's background services; see the module docstring."""
    background = _start(settings)
    background._server_fd = _open_lock(settings, SERVER_LOCK)
    fcntl.flock(background._server_fd, fcntl.LOCK_SH)  # only an exclusive holder waits it out
    return background


def _start(settings: Settings) -> Background:
    if settings.background == "off":
        return Background(None, owner=False)
    if settings.background == "inline":
        return Background(Jobs(settings, inline=True), owner=True)
    fd = _take_lock(settings)
    if fd is None:
        log.info("background jobs run in another process; this one makes only what it is asked")
        jobs = Jobs(settings, feed=False, workers=1)
        return Background(jobs, owner=False, publisher=_publish(settings, jobs))
    jobs = Jobs(settings)
    background = Background(jobs, owner=True, _lock_fd=fd)
    background.wal = WalKeeper(settings.db_path, settings.wal_checkpoint_interval)
    background.wal.start()
    background.publisher = _publish(settings, jobs)
    if settings.redis_url:  # the workers' previews come back to the process that feeds them
        from services.previews.batch_deliveries import Deliveries

        background.deliveries = Deliveries(settings, jobs.backlog).start()
    if settings.watch != "off":
        try:
            from services.library.watcher import Watcher

            background.watcher = Watcher(settings, lambda folders: jobs.scan(folders))
            background.watcher.start()
        except Exception:
            background.stop()
            raise
        jobs.scan()  # what changed while the server was down
    log.info("background jobs started (%d workers, watch=%s)", jobs.workers, settings.watch)
    return background


def _publish(settings: Settings, jobs: Jobs) -> activity.Publisher:
    """Share what this process's job runner does with every process's pages (the header indicator)."""
    return activity.Publisher(
        settings.data_dir, lambda: activity.summarize(*jobs.activity())
    ).start()


def _open_lock(settings: Settings, name: str) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return os.open(settings.data_dir / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def _take_lock(settings: Settings) -> int | None:
    fd = _open_lock(settings, LOCK_NAME)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
