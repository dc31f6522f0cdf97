"""A real redis-server for tests: Debian's /usr/bin/redis-server on a free localhost port.

    from tests.redis_server import redis_server  # noqa: F401  (the fixture)

    def test_x(redis_server): redis_server.url  # redis://:PASSWORD@127.0.0.1:PORT/0

Each server gets its own temp dir, a password (`requirepass`), no persistence, and is stopped
after the test. `stop()` and `start()` take it down and bring it back on the same port (the
"Redis went away" tests). `RedisServer(folder, acl=text)` loads an ACL file instead of
`requirepass` (deploy/redis-users.acl: the URL then signs in as its user "lvs").
scripts/test installs the package when it is missing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One redis-server process in `folder`."""

    def __init__(self, folder: Path, acl: str = "") -> None:
        self.folder = folder
        self.port = free_port()
        self.password = secrets.token_hex(12)
        self.proc: subprocess.Popen[bytes] | None = None
        # An ACL file's text (deploy/redis-users.acl) instead of requirepass: its user "lvs"
        # gets the password, and a user "admin" (password admin_password) may do anything.
        self.acl = acl
        self.admin_password = secrets.token_hex(12)

    @property
    def user(self) -> str:
        return "lvs" if self.acl else ""

    @property
    def url(self) -> str:
        return f"redis://{self.user}:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        conf = self.folder / "redis.conf"
        auth = f"requirepass {self.password}"
        if self.acl:
            users = self.folder / "users.acl"
            users.write_text(self.acl.replace("@PASSWORD@", self.password)
                             + f"\nuser admin on >{self.admin_password} ~* &* +@all\n")  # fmt: skip
            auth = f"aclfile {users}"
        conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\n{auth}\n"
            f'dir {self.folder}\nsave ""\nappendonly no\ndaemonize no\n'
            f"logfile {self.folder / 'redis.log'}\n"
        )
        self.proc = subprocess.Popen([REDIS_SERVER, str(conf)], start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(f"AUTH {self.user} {self.password}\r\nPING\r\n".encode())
                    if b"PONG" in s.recv(100):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start: " + self.log())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def log(self) -> str:
        try:
            return (self.folder / "redis.log").read_text()[-2000:]
        except OSError:
            return ""


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    """Start a password-protected redis-server on a free port; stop it after the test."""
    if not os.path.exists(REDIS_SERVER) or shutil.which(REDIS_SERVER) is None:
        pytest.fail("needs Debian's redis-server: apt-get install -y redis-server (scripts/test)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
