"""Run probes in long-lived worker processes, so a probe can be stopped on a deadline.

A probe that hangs (a dead network share, a file that sends a demuxer into a loop) or crashes
the process (a decoder bug) must cost one file, not a scanner thread or the server. Each worker
is a process with its own pipe; a caller takes a free worker, sends it one request and waits up
to the deadline. Past it the worker is SIGKILLed and replaced; if it died, it is replaced too.
Workers come from a 'forkserver' context (the parent has threads, so no plain fork) and start
on first use, so an idle pool costs nothing.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType

from services.errors import ProbeError
from services.probe import ProbeResult, probe_file

log = logging.getLogger(__name__)

_context = multiprocessing.get_context("forkserver")
# Workers are forked from a server that has already imported PyAV, so a fresh worker (after a
# timeout) is ready in milliseconds. This only takes effect if the forkserver is not running yet.
_context.set_forkserver_preload(["services.probe"])


def _serve(conn: Connection) -> None:
    """Answer probe requests on conn until it closes or sends None (the worker's main loop)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if request is None:
            return
        path, kind = request
        try:
            reply: tuple = ("ok", probe_file(path, kind))
        except ProbeError as exc:
            reply = ("probe", str(exc))
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
        process = _context.Process(target=_serve, args=(child_end,), name="probe", daemon=True)
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
    """Probe files in `workers` processes, each probe bounded by `timeout` seconds.

    Thread-safe: each probe() takes a free worker, waiting for one if all are busy.
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
        worker = self._free.get()
        try:
            if self._closed:
                raise RuntimeError("probe pool is closed")
            return self._ask(worker, os.fspath(path), kind)
        finally:
            self._free.put(worker)

    def _ask(self, worker: _Worker, path: str | bytes, kind: str) -> ProbeResult:
        worker.ensure_started()
        assert worker.conn is not None
        try:
            worker.conn.send((path, kind))
            ready = worker.conn.poll(self.timeout)
            reply = worker.conn.recv() if ready else None
        except (EOFError, OSError):
            exitcode = worker.process.exitcode if worker.process else None
            worker.kill()
            log.error("probe of %r crashed its worker (exit code %s)", path, exitcode)
            raise ProbeError("probe crashed") from None
        except BaseException:
            worker.kill()  # its reply may still come: the next caller must never read it
            raise
        if reply is None:
            pid = worker.process.pid if worker.process else None
            worker.kill()
            log.warning(
                "probe of %r timed out after %g s; killed worker %s", path, self.timeout, pid
            )
            raise ProbeError(f"probe timed out after {self.timeout:g} s")
        status = reply[0]
        if status == "ok":
            return reply[1]
        if status == "probe":
            raise ProbeError(reply[1])
        if status == "os":
            raise OSError(reply[1], reply[2], reply[3])
        log.error("probe of %r failed: %s", path, reply[1])
        raise ProbeError(f"probe failed: {reply[1]}")

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

    def close(self) -> None:
        """Stop every worker, waiting for probes in flight; later probe() calls fail."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
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
