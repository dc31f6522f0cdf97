"""Run the ffmpeg binary: the one place that starts ffmpeg processes.

Every run gets an argument list (never a shell), its own process group and a deadline; past the
deadline the whole group is killed, so an ffmpeg stuck on a bad file or a dead network share
never outlives the request or job that started it.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
from functools import cache
from typing import Any

from services.errors import FFmpegError

log = logging.getLogger(__name__)

STDERR_TAIL_CHARS = 2000
# Encoders run below the server's priority: a transcode takes the CPU the pages leave (B9), and
# on an idle machine it still gets all of it.
ENCODER_NICE = 10


@cache
def ffmpeg_path() -> str:
    """Return the ffmpeg to run: the system one on PATH if any, else imageio-ffmpeg's."""
    system = shutil.which("ffmpeg")
    if system:
        return system
    import imageio_ffmpeg  # imported late: it is only needed when there is no system ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def file_arg(path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str:
    """Return path as an ffmpeg input/output argument that can only mean that local file.

    The absolute path gets a `file:` prefix, so `-vf.mp4` is not an option, `concat:a|b.mp4` is
    not a protocol and `x%d.png` is not a pattern. Undecodable bytes survive as surrogate
    escapes, which subprocess turns back into the same bytes.
    """
    return "file:" + os.fsdecode(os.path.abspath(os.fspath(path)))


def _tail(data: bytes | None) -> str:
    if not data:
        return ""
    return data[-STDERR_TAIL_CHARS * 4 :].decode("utf-8", "replace")[-STDERR_TAIL_CHARS:].strip()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone, with all its children


def run_ffmpeg(
    args: list[str], *, timeout: float, check: bool = True, nice: int = 0
) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg with args and return the finished process with its stdout and stderr bytes.

    Raise FFmpegError with the tail of stderr when it runs past `timeout` seconds (the whole
    process group is killed first) or, when `check` is set, when it exits non-zero. `nice`
    (ENCODER_NICE for background work) lowers its CPU priority below the pages'.
    """
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", *args]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group, so killpg also takes any helper it started
    )
    if nice:
        _lower_priority(proc.pid, nice)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        stdout, stderr = proc.communicate()
        tail = _tail(stderr)
        last = tail.splitlines()[-1] if tail else ""
        log.warning("ffmpeg killed after %g s: %s", timeout, last)
        raise FFmpegError(f"ffmpeg timed out after {timeout:g} s", tail) from None
    finally:
        if proc.returncode is None:  # interrupted (KeyboardInterrupt, ...): leave nothing behind
            _kill_group(proc)
            proc.wait()
    result = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        tail = _tail(stderr)
        last = tail.splitlines()[-1] if tail else f"exit status {proc.returncode}"
        raise FFmpegError(f"ffmpeg failed: {last}", tail)
    return result


class Encoder:
    """A long-running ffmpeg (an HLS encoder) in its own process group, with a deadline.

    `start_encoder` makes one; a thread waits for it (no zombie is left), kills the whole group
    when it outlives `max_seconds`, and calls `on_exit(returncode, stderr_tail)`. stderr goes to
    `log_path`, so a chatty encoder never blocks on a full pipe. pause()/resume() stop and
    continue the group (SIGSTOP/SIGCONT: upstream ffmpeg has no pause key); stop() kills it.
    """

    def __init__(self, proc: subprocess.Popen[bytes], log_path: str, max_seconds: float) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.log_path = log_path
        self.max_seconds = max_seconds

    def signal(self, signum: int) -> None:
        """Send signum to the encoder's whole process group (nothing if it is gone)."""
        signal_group(self.pid, signum)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill the group (a stopped process dies of SIGKILL too) and wait for it."""
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def running(self) -> bool:
        return self.proc.poll() is None


def _lower_priority(pid: int, nice: int) -> None:
    try:
        # Set at once, before ffmpeg starts its codec threads (they inherit it); Linux applies
        # PRIO_PROCESS to the one thread, so later threads must inherit rather than be set.
        os.setpriority(os.PRIO_PROCESS, pid, nice)
    except OSError as exc:
        log.debug("ffmpeg %d keeps its priority: %s", pid, exc)


def signal_group(pgid: int, signum: int) -> bool:
    """Signal a process group; return False when it no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        log.warning("not allowed to signal process group %d", pgid)
        return False
    return True


def start_encoder(
    args: list[str],
    *,
    log_path: str,
    max_seconds: float,
    pass_fds: tuple[int, ...] = (),
    on_exit: Any = None,
) -> Encoder:
    """Start a long-running ffmpeg with args (stdin closed, stderr to log_path) and return it.

    `pass_fds` are open files the child inherits (an input given as /proc/self/fd/N, so a path
    from the library never appears in the argv). Past `max_seconds` its process group is killed.
    """
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", *args]
    with open(log_path, "ab") as err:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            pass_fds=pass_fds,
            start_new_session=True,  # its own group: killpg takes every helper it started
        )
    _lower_priority(proc.pid, ENCODER_NICE)
    encoder = Encoder(proc, log_path, max_seconds)

    def wait() -> None:
        try:
            code = proc.wait(timeout=max_seconds)
        except subprocess.TimeoutExpired:
            log.warning("encoder %d killed after %g s", proc.pid, max_seconds)
            _kill_group(proc)
            code = proc.wait()
        if on_exit is not None:
            try:
                on_exit(code, _log_tail(log_path))
            except Exception:
                log.exception("encoder exit handler failed")

    threading.Thread(target=wait, name=f"ffmpeg-{proc.pid}", daemon=True).start()
    return encoder


def _log_tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - STDERR_TAIL_CHARS * 4))
            return _tail(f.read())
    except OSError:
        return ""
