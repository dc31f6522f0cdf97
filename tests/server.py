"""A real gunicorn for browser tests: the project's gunicorn.conf.py on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _gunicorn() -> str:
    """Return the project's gunicorn; in a worktree without .venv, the running interpreter's."""
    mine = ROOT / ".venv/bin/gunicorn"
    return str(mine if mine.exists() else Path(sys.executable).parent / "gunicorn")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """A gunicorn process started by a subclass once its library is ready; `stop()` ends it.

    LVS_HOST/LVS_PORT and LVS_WATCH=off are set here; the subclass gives the rest of the
    environment. A server that never gets ready is stopped before the error is raised, so no
    test leaves one behind.
    """

    port: int
    url: str
    log: Path
    proc: subprocess.Popen

    def start(
        self,
        env: dict[str, str],
        log: Path,
        *,
        url_host: str = "127.0.0.1",
        ready: str = "/readyz",
        timeout: float = 60,
        app: str | None = None,
    ) -> None:
        self.port = getattr(self, "port", 0) or free_port()
        self.url = f"http://{url_host}:{self.port}"
        self.log = log
        full = {**os.environ, "LVS_HOST": "127.0.0.1", "LVS_PORT": str(self.port)}
        full |= {"LVS_WATCH": "off", **env}
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [_gunicorn(), "-c", str(ROOT / "gunicorn.conf.py")]
                + ([app] if app else []),  # another WSGI app than gunicorn.conf.py's
                cwd=ROOT,
                env=full,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait(ready, timeout)
        except BaseException:
            self.stop()
            raise

    def _wait(self, ready: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{ready}", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "gunicorn did not get ready"
            time.sleep(0.1)

    def stop(self) -> None:
        """End the server (TERM, then KILL after 15 s)."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
