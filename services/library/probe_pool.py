"""Run probes, thumbnails and sprites in long-lived worker processes, stoppable on a deadline.

A probe or a frame grab that hangs (a dead network share, a file that sends a demuxer or a
decoder into a loop) or crashes the process (a decoder bug) must cost one file, not a scanner
thread or the server. Each worker is a process with its own pipe; a caller takes a free worker,
sends it one request (a task name from TASKS and its arguments) and waits up to the deadline.
Past it the worker is SIGKILLed and replaced; if it died, it is replaced too. Workers come from
a 'forkserver' context (the parent has threads, so no plain fork) and start on first use, so an
idle pool costs nothing. One pool serves every kind of work, so the scan's probes and the
thumbnail jobs share the same few processes.

Each worker may also take only so much memory (RLIMIT_DATA: its heap and private mappings,
`memory_limit`, sized from the machine): a file that makes FFmpeg allocate without end (a
track claiming millions of samples, a giant picture) fails with "out of memory" as its reason,
and the worker that ran out is replaced, instead of one file taking gigabytes (issue 20).
"""

from __future__ import annotations

import errno
import importlib
import logging
import multiprocessing
import os
import queue
import resource
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


# A worker's memory limit: its share of the machine (see memory_limit), within these bounds. The
# floor still lets a worker grab frames of an 8K video; the ceiling keeps a bad file from
# taking more than any real one needs.
MIN_WORKER_MEMORY = 1 << 30
MAX_WORKER_MEMORY = 3 << 30
NEAR_LIMIT = 0.8  # a task whose peak resident memory reached this share of the limit ran out


def machine_memory() -> int:
    """Return the memory this process may use: the RAM, or its cgroup's limit when lower."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        total = 4 << 30
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                value = f.read().strip()
        except OSError:
            continue
        if value.isdigit():
            total = min(total, int(value))
    return total


def memory_limit(workers: int) -> int:
    """Return how many bytes one of `workers` worker processes may take: an equal share of the
    machine with room left for the server (workers + 2 shares), within MIN/MAX_WORKER_MEMORY."""
    share = machine_memory() // (workers + 2)
    return max(MIN_WORKER_MEMORY, min(MAX_WORKER_MEMORY, share))


def _out_of_memory(exc: BaseException | None) -> bool:
    """Return whether exc, or an error it was raised from, says memory ran out."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, MemoryError) or getattr(exc, "errno", None) == errno.ENOMEM:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def task_function(task: str) -> Callable[..., Any]:
    """Return the function behind a task name (importing its module on first use)."""
    module, name, _ = TASKS[task]
    return getattr(importlib.import_module(module), name)


def run_in_process(task: str, *args: Any, timeout: float | None = None) -> Any:
    """Run a task in this process, without a deadline (inline mode, tests, benchmarks)."""
    return task_function(task)(*args)


def _serve(conn: Connection, limit: int | None = None) -> None:
    """Answer task requests on conn until it closes or sends None (the worker's main loop).

    With `limit`, the process may take that many bytes of heap and private mappings. A task
    that fails having run out answers ("oom", limit) and the worker ends (its heap may be left
    in pieces); so does one that came close, after its answer. Running out is not always an
    error that says so (FFmpeg's decoders drop a frame they cannot allocate, a thread that
    cannot get its stack says EAGAIN), so a failure counts as running out when the error says
    so or when the task's peak resident memory reached NEAR_LIMIT of the limit. (Resident, not
    virtual: malloc reserves address space per thread that it never touches, and a many-core
    machine would look out of memory all the time.)
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    near = None
    if limit:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        near = NEAR_LIMIT * limit
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if request is None:
            return
        task, args = request
        _reset_peak()
        try:
            reply: tuple = ("ok", task_function(task)(*args))
        except Exception as exc:
            reply = ("oom", limit) if limit and _out_of_memory(exc) else _error_reply(exc)
        close = near is not None and _status_kib("VmHWM") * 1024 >= near
        if close and reply[0] != "ok":
            reply = ("oom", limit)
        retire = close or reply[0] == "oom"
        # Answered after the handler: the error's frames (and what filled the memory) are gone.
        conn.send((reply, retire))
        if retire:
            return


def _reset_peak() -> None:
    """Start this process's peak resident memory (VmHWM) afresh (Linux 4.0+), for one task."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # the peak then covers the worker's life: at worst it is replaced early


def _status_kib(field: str) -> int:
    """Return a field of /proc/self/status in KiB (0 when it cannot be read)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _error_reply(exc: Exception) -> tuple:
    """Return the reply for a task that raised exc."""
    if isinstance(exc, LVSError):
        return ("lvs", type(exc).__name__, str(exc))
    if isinstance(exc, OSError):
        return ("os", exc.errno, exc.strerror, exc.filename)
    # A library bug is this file's failure, not the worker's.
    return ("bug", f"{type(exc).__name__}: {exc}")


class _Worker:
    """One worker process and the parent's end of its pipe; started on demand."""

    def __init__(self, memory: int | None) -> None:
        self.memory = memory
        self.process: BaseProcess | None = None
        self.conn: Connection | None = None

    def ensure_started(self) -> None:
        if self.process is not None and self.process.is_alive():
            return
        self.stop()
        parent_end, child_end = _context.Pipe(duplex=True)
        process = _context.Process(
            target=_serve, args=(child_end, self.memory), name="lvs-worker", daemon=True
        )
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

    `timeout` is the default deadline in seconds (probes use it); `memory` the bytes each worker
    may take (default: memory_limit(workers), its share of the machine). Thread-safe: each call
    takes a free worker, waiting for one if all are busy.
    """

    def __init__(self, workers: int, timeout: float, memory: int | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self.memory = memory or memory_limit(workers)
        self._workers = [_Worker(self.memory) for _ in range(workers)]
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
            reply, retire = worker.conn.recv() if ready else (None, False)
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
        if retire:
            worker.kill()  # it ends after this answer (see _serve): the next call gets a new one
        status = reply[0]
        if status == "ok":
            return reply[1]
        if status == "oom":
            limit = f"{reply[1] >> 20:,} MiB"
            log.warning("%s of %r ran out of its worker's %s; worker replaced", task, what, limit)
            raise error(f"{task} ran out of memory (a worker may take {limit})")
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
