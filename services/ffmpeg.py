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
from functools import cache

from services.errors import FFmpegError

log = logging.getLogger(__name__)

STDERR_TAIL_CHARS = 2000


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
    args: list[str], *, timeout: float, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg with args and return the finished process with its stdout and stderr bytes.

    Raise FFmpegError with the tail of stderr when it runs past `timeout` seconds (the whole
    process group is killed first) or, when `check` is set, when it exits non-zero.
    """
    cmd = [ffmpeg_path(), "-hide_banner", "-nostdin", *args]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group, so killpg also takes any helper it started
    )
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
