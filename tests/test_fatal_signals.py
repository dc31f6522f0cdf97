"""A gunicorn worker killed by a fatal signal says where it was: every thread's Python
traceback in the error log (gunicorn.conf.py's post_fork turns on faulthandler), next to the
arbiter's "Worker (pid:N) was sent SIGBUS!". A real gunicorn; the signal is sent with os.kill,
which faulthandler reports as it would a bad memory access."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil

from tests.server import Gunicorn


def test_a_worker_killed_by_sigbus_leaves_its_threads_tracebacks_in_the_log(
    tmp_path: Path,
) -> None:
    (tmp_path / "lib").mkdir()
    server = Gunicorn()
    env = {
        "LVS_MEDIA_DIRS": str(tmp_path / "lib"),
        "LVS_DATA_DIR": str(tmp_path / "data"),
        "LVS_BACKGROUND": "off",
        "LVS_WORKERS": "1",
    }
    server.start(env, tmp_path / "gunicorn.log", ready="/livez")
    try:
        (worker,) = psutil.Process(server.proc.pid).children()
        os.kill(worker.pid, signal.SIGBUS)
        deadline = time.monotonic() + 20
        while f"Worker (pid:{worker.pid}) was sent SIGBUS!" not in server.log.read_text():
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.1)
    finally:
        server.stop()
    log = server.log.read_text()
    crash = log[log.index("Fatal Python error: Bus error") :]
    assert "Current thread" in crash and "most recent call first" in crash
    assert crash.count("Thread 0x") >= 1  # the other threads too: gthread's pool, at least
    assert "gunicorn" in crash  # where the main thread was: gunicorn's worker loop
