"""A gunicorn worker or a `flask worker` killed by a fatal signal says where it was: every
thread's Python traceback in its log (faulthandler, turned on by gunicorn.conf.py's post_fork
and by the worker command), for a gunicorn worker next to the arbiter's "Worker (pid:N) was
sent SIGBUS!". A real gunicorn, a real `flask worker` with a real redis-server; the signal is
sent with os.kill, which faulthandler reports as it would a bad memory access."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import psutil

from tests.redis_server import redis_server  # noqa: F401
from tests.server import Gunicorn
from tests.test_compute import start_worker, wait_announced, worker_env


def _wait_for(log: Path, text: str) -> str:
    deadline = time.monotonic() + 20
    while text not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return log.read_text()


def _tracebacks(log: str) -> str:
    crash = log[log.index("Fatal Python error: Bus error") :]
    assert "Current thread" in crash and "most recent call first" in crash
    assert crash.count("Thread 0x") >= 1  # the other threads too
    return crash


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
        _wait_for(server.log, f"Worker (pid:{worker.pid}) was sent SIGBUS!")
    finally:
        server.stop()
    assert "gunicorn" in _tracebacks(server.log.read_text())  # its main thread's worker loop


def test_a_flask_worker_killed_by_sigbus_leaves_its_threads_tracebacks_in_its_log(
    redis_server,  # noqa: F811
    tmp_path: Path,
) -> None:
    (tmp_path / "media").mkdir()
    env = worker_env(redis_server.url, tmp_path / "media", tmp_path / "scratch", tmp_path / "data")
    log = tmp_path / "worker.log"
    proc, _ = start_worker(env, "w-crash", log)
    try:
        wait_announced(redis_server.url, "w-crash")
        os.kill(proc.pid, signal.SIGBUS)
        # faulthandler re-raises the signal once every thread is written out; its walk over the
        # other threads' frames while they run is best effort (not async-signal-safe) and, once
        # in a CI run, faulted itself: SIGSEGV then, with the threads written before it.
        died = proc.wait(20)
        assert died in (-signal.SIGBUS, -signal.SIGSEGV)
    finally:
        with contextlib.suppress(ProcessLookupError):  # what it started, left behind by the crash
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    written = _wait_for(log, "Fatal Python error: Bus error")
    assert "most recent call first" in written  # at least one thread's traceback
    if died == -signal.SIGBUS:  # the whole dump: the main thread waiting in the worker command
        assert "worker_command" in _tracebacks(written)
