"""Run probes, thumbnails and sprites in long-lived worker processes, stoppable on a deadline.

A probe or a frame grab that hangs (a dead network share, a file that sends a demuxer or a
decoder into a loop) or crashes the process (a decoder bug) must cost one file, not a scanner
thread or the server. Each worker is a process with its own pipe; a caller takes a free worker,
sends it one request (a task name from TASKS and its arguments) and waits up to the deadline.
Past it the worker is SIGKILLed and replaced; if it died, it is replaced too. Workers come from
a 'forkserver' context (the parent has threads, so no plain fork) and start on first use, so an
idle pool costs nothing. One pool serves every kind of work, so the scan's probes and the
thumbnail jobs share the same few processes.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from services import errors
from services.errors import LVSError, ProbeError, ThumbnailError
from services.library.probe import ProbeResult

log = logging.getLogger(__name__)

_context = multiprocessing.get_context("forkserver")
# Workers are forked from a server that has already imported PyAV, so a fresh worker (after a
# timeout) is ready in milliseconds. This only takes effect if the forkserver is not running yet.
_context.set_forkserver_preload(
    ["services.library.probe", "services.previews.thumbnails", "services.previews.sprites"]
)

# What a worker can run: task name -> (module, function, error raised on a timeout or crash).
# Functions take and return picklable values; they raise LVSError subclasses for bad content
# and OSError for I/O, and both cross the process boundary as themselves.
TASKS: dict[str, tuple[str, str, type[LVSError]]] = {
    "probe": ("services.library.probe", "probe_file", ProbeError),
    "thumbnail": ("services.previews.thumbnails", "render_thumbnail", ThumbnailError),
    "sprite": ("services.previews.sprites", "render_sprite", ThumbnailError),
}


def task_function(task: str) -> Callable[..., Any]:
    """Return the function behind a task name (importing its module on first use)."""
    module, name, _ = TASKS[task]
    return getattr(importlib.import_module(module), name)


def run_in_process(task: str, *args: Any, timeout: float | None = None) -> Any:
    """Run a task in this process, without a deadline (inline mode, tests, benchmarks)."""
    return task_function(task)(*args)


def _serve(conn: Connection) -> None:
    """Answer task requests on conn until it closes or sends None (the worker's main loop)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if request is None:
            return
        task, args = request
        try:
            reply: tuple = ("ok", task_function(task)(*args))
        except LVSError as exc:
            reply = ("lvs", type(exc).__name__, str(exc))
        except OSError as exc:
            reply = ("os", exc.errno, exc.strerror, exc.filename)
        except Exception as exc:  # a library bug is this file's failure, not the worker's
            reply = ("bug", f"{type(exc).__name__}: {exc}")
        conn.send(reply)


class _Worker:
    """One worker process and the parent's end of its pipe; started on demand."""

    def __init__(self) -> None:
        self.process: BaseProcess | None = None
        self.conn: Connection | None = None

    def ensure_started(self) -> None:
        if self.process is not None and self.process.is_alive():
            return
        self.stop()
        parent_end, child_end = _context.Pipe(duplex=True)
        process = _context.Process(target=_serve, args=(child_end,), name="lvs-worker", daemon=True)
        process.start()
        child_end.close()  # so the parent sees EOF when the worker dies
        self.process, self.conn = process, parent_end

    def kill(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
        self.stop()

    def stop(self) -> None:
        if self.conn is not None:
            if self.process is not None and self.process.is_alive():
                try:
                    self.conn.send(None)
                except OSError:
                    pass
            self.conn.close()
        if self.process is not None:
            self.process.join(timeout=2)
            if self.process.is_alive():
                self.process.kill()
                self.process.join(timeout=2)
            self.process.close()
        self.process, self.conn = None, None


class ProbePool:
    """Run tasks (probes, thumbnails, sprites) in `workers` processes, each bounded by a deadline.

    `timeout` is the default deadline in seconds (probes use it). Thread-safe: each call takes a
    free worker, waiting for one if all are busy.
    """

    def __init__(self, workers: int, timeout: float) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self._workers = [_Worker() for _ in range(workers)]
        # Last in, first out: a lightly used pool keeps reusing one warm worker, and the
        # others are never started.
        self._free: queue.LifoQueue[_Worker] = queue.LifoQueue()
        for worker in self._workers:
            self._free.put(worker)
        self._closed = False
        self._close_lock = threading.Lock()

    def probe(self, path: str | bytes | os.PathLike[str], kind: str) -> ProbeResult:
        """Probe path as probe_file does, in a worker; raise ProbeError on timeout or crash."""
        return self.run("probe", os.fspath(path), kind)

    def run(self, task: str, *args: Any, timeout: float | None = None) -> Any:
        """Run a task from TASKS in a worker and return its result or raise its error.

        Past `timeout` seconds (default: the pool's) the worker is killed and the task's error
        class is raised with "<task> timed out after N s"; a worker that dies raises
        "<task> crashed". Either way the next call gets a fresh worker.
        """
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}")
        worker = self._free.get()
        try:
            if self._closed:
                raise RuntimeError("probe pool is closed")
            return self._ask(worker, task, args, self.timeout if timeout is None else timeout)
        finally:
            self._free.put(worker)

    def _ask(self, worker: _Worker, task: str, args: tuple, timeout: float) -> Any:
        worker.ensure_started()
        assert worker.conn is not None
        error = TASKS[task][2]
        what = args[0] if args else ""
        try:
            worker.conn.send((task, args))
            ready = worker.conn.poll(timeout)
            reply = worker.conn.recv() if ready else None
        except (EOFError, OSError):
            exitcode = worker.process.exitcode if worker.process else None
            worker.kill()
            if self._closed:  # killed by close(kill=True): not this file's fault
                raise RuntimeError("probe pool is closed") from None
            log.error("%s of %r crashed its worker (exit code %s)", task, what, exitcode)
            raise error(f"{task} crashed") from None
        except BaseException:
            worker.kill()  # its reply may still come: the next caller must never read it
            raise
        if reply is None:
            pid = worker.process.pid if worker.process else None
            worker.kill()
            log.warning("%s of %r timed out after %g s; killed worker %s", task, what, timeout, pid)
            raise error(f"{task} timed out after {timeout:g} s")
        status = reply[0]
        if status == "ok":
            return reply[1]
        if status == "lvs":
            cls = getattr(errors, reply[1], None)
            raise (cls if isinstance(cls, type) and issubclass(cls, LVSError) else error)(reply[2])
        if status == "os":
            raise OSError(reply[1], reply[2], reply[3])
        log.error("%s of %r failed: %s", task, what, reply[1])
        raise error(f"{task} failed: {reply[1]}")

    @property
    def size(self) -> int:
        """Return how many worker processes the pool runs at most."""
        return len(self._workers)

    def worker_pids(self) -> list[int]:
        """Return the process ids of the workers running now (for metrics and tests)."""
        return [
            w.process.pid
            for w in self._workers
            if w.process is not None and w.process.pid is not None and w.process.is_alive()
        ]

    def close(self, *, kill: bool = False) -> None:
        """Stop every worker, waiting for tasks in flight; later calls fail.

        With kill=True, tasks in flight are not waited for: their workers are killed and their
        callers get RuntimeError (shutting down is not the file's fault, so not its failure).
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if kill:
            for worker in self._workers:
                process = worker.process
                try:
                    if process is not None and process.is_alive():
                        process.kill()
                except ValueError:
                    pass  # closed meanwhile by the thread that used it
        # Take every worker (a busy one comes back within the deadline), stop it, and put it
        # back so that threads still waiting for one wake up and see the pool is closed.
        taken = [self._free.get() for _ in self._workers]
        for worker in taken:
            worker.stop()
        for worker in taken:
            self._free.put(worker)

    def __enter__(self) -> ProbePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
