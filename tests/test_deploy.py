"""deploy/: the Compose file, its Dockerfile and the systemd units agree with the code.

No image can be pulled or built here, and there is no `docker compose`: the Compose file is
parsed (PyYAML, merge keys as Compose reads them) and checked against config.py's settings,
`flask worker`'s options and the ACL file; its Redis command runs for real (the password put
into deploy/redis-users.acl by its own `sed`, then its own health check signs in as "lvs");
the units pass `systemd-analyze verify`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cli.worker import worker_command
from config import SETTINGS
from tests.redis_server import REDIS_SERVER, free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
ENV_NAMES = {f"LVS_{s.name.upper()}" for s in SETTINGS}
COMPOSE_VARS = re.compile(r"\$\{([A-Z_]+)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _worker_args(service: dict) -> list[str]:
    cmd = service["command"]
    assert cmd[:4] == ["flask", "--app", "app", "worker"], cmd
    return cmd[4:]


def test_compose_runs_redis_the_server_and_two_workers(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"redis", "server", "worker-a", "worker-b"}
    workers = {name: s for name, s in services.items() if name.startswith("worker-")}
    urls = {s["environment"]["LVS_REDIS_URL"] for s in (services["server"], *workers.values())}
    secrets = {s["environment"]["LVS_NODE_SECRET"] for s in (services["server"], *workers.values())}
    assert len(urls) == 1 and len(secrets) == 1  # one Redis, one secret for every node
    url = urls.pop()
    assert re.fullmatch(r"redis://lvs:\$\{LVS_REDIS_PASSWORD:\?[^}]+\}@redis:6379/0", url), url
    assert services["server"]["command"] == ["gunicorn", "-c", "gunicorn.conf.py"]
    for name, s in (("server", services["server"]), *workers.items()):
        env = s["environment"]
        assert set(env) <= ENV_NAMES, set(env) - ENV_NAMES  # only real settings
        media = env["LVS_MEDIA_DIRS"]
        mounts = [v for v in s["volumes"] if isinstance(v, str) and v.split(":")[-2] == media]
        assert len(mounts) == 1 and mounts[0].endswith(":ro"), (name, s["volumes"])
        assert s["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "ALL" in s["cap_drop"] and s["build"]["dockerfile"] == "deploy/Dockerfile"
    # each worker: its own id, scratch volume, and the URL the server reaches it at
    ids, scratch = set(), set()
    for name, s in workers.items():
        args = _worker_args(s)
        ctx = worker_command.make_context("worker", list(args))  # flask worker takes them
        port = ctx.params["bind"].rsplit(":", 1)[1]
        assert ctx.params["url"] == f"http://{name}:{port}" and ctx.params["worker_id"] == name
        ids.add(ctx.params["worker_id"])
        env = s["environment"]
        volume = next(v for v in s["volumes"] if not v.endswith(":ro"))
        assert env["LVS_WORKER_SCRATCH"].startswith(volume.split(":")[1])
        scratch.add(volume.split(":")[0])
        assert "ports" not in s  # reached on the project's network only
    assert len(ids) == 2 and len(scratch) == 2
    assert "ports" not in services["redis"]
    assert services["server"]["ports"] == ["${LVS_PORT_PUBLISHED:-8080}:8080"]
    assert services["server"]["environment"]["LVS_PORT"] == "8080"
    assert set(compose["volumes"]) == {"lvs-data", *scratch}


def test_every_variable_of_compose_is_in_the_example_env(compose: dict) -> None:
    used = set(COMPOSE_VARS.findall((DEPLOY / "compose.yaml").read_text()))
    example = (DEPLOY / "compose.env.example").read_text()
    given = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert used == given, (used, given)


def test_dockerfile_installs_the_requirements_on_debian() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    assert base.startswith("python:3.") and "bookworm" in base
    assert "pip install --no-cache-dir -r requirements.txt" in text
    assert "USER lvs" in text and "EXPOSE 8080 8091" in text
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data", "media", "tests"} <= set(ignored)
    assert "imageio-ffmpeg" in (ROOT / "requirements.txt").read_text()  # ffmpeg comes with it


def test_the_redis_service_command_and_health_check_work(compose: dict, tmp_path: Path) -> None:
    """Compose's Redis command and health check, run as written (the /tmp file and the port
    moved into the test's folder), with deploy/redis-users.acl."""
    redis = compose["services"]["redis"]
    assert redis["volumes"] == ["./redis-users.acl:/etc/lvs/redis-users.acl:ro"]
    assert redis["user"] == "redis" and redis["tmpfs"] == ["/tmp"]
    sh, flag, script = redis["command"]
    assert (sh, flag) == ("sh", "-c")
    # /tmp first: the project itself may live under /tmp (a CI clone), and its ACL path with it.
    script = script.replace("$$", "$").replace("/tmp/", f"{tmp_path}/")
    script = script.replace("/etc/lvs/redis-users.acl", str(DEPLOY / "redis-users.acl"))
    script = script.replace("redis-server", REDIS_SERVER)
    port = free_port()
    script += f" --port {port} --bind 127.0.0.1 --dir {tmp_path}"
    password = "0123456789abcdef0123456789abcdef"
    env = {**os.environ, "LVS_REDIS_PASSWORD": password}
    proc = subprocess.Popen(["sh", "-c", script], env=env, start_new_session=True)
    try:
        kind, check = redis["healthcheck"]["test"]
        assert kind == "CMD-SHELL"
        check = check.replace("$$", "$").replace(
            "redis-cli", f"{shutil.which('redis-cli')} -p {port}"
        )
        deadline = time.monotonic() + 10
        while subprocess.run(["sh", "-c", check], env=env).returncode != 0:
            assert time.monotonic() < deadline, "the health check never passed"
            assert proc.poll() is None, "redis-server stopped"
            time.sleep(0.2)
        assert password in (tmp_path / "users.acl").read_text()
        wrong = check.replace(password, "x").replace('"$LVS_REDIS_PASSWORD"', "wrong")
        assert subprocess.run(["sh", "-c", wrong], env=env).returncode != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.wait(5)


def test_the_redis_password_is_in_no_command_line(compose: dict, tmp_path: Path) -> None:
    """ps shows every process's arguments: the ACL file is written by shell builtins alone (no
    PATH: a sed or any other program fails) and the health check passes it in REDISCLI_AUTH."""
    redis = compose["services"]["redis"]
    script = redis["command"][2].replace("$$", "$").replace("/tmp/", f"{tmp_path}/")
    script = script.replace("/etc/lvs/redis-users.acl", str(DEPLOY / "redis-users.acl"))
    write_acl = script.split("&& unset LVS_REDIS_PASSWORD")[0]
    password = "a/b&c\\d 0123456789abcdef"  # what would break a sed expression, too
    env = {"LVS_REDIS_PASSWORD": password, "PATH": str(tmp_path / "no-programs")}
    subprocess.run([shutil.which("sh") or "/bin/sh", "-c", write_acl], env=env, check=True)
    acl = (tmp_path / "users.acl").read_text()
    assert acl == (DEPLOY / "redis-users.acl").read_text().replace("@PASSWORD@", password)
    check = redis["healthcheck"]["test"][1]
    assert "--pass" not in check and " -a " not in check and "REDISCLI_AUTH=" in check


@pytest.mark.parametrize("unit", ["lvs.service", "lvs-worker.service"])
def test_systemd_units_verify(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze")
    text = (DEPLOY / unit).read_text()
    # /opt/lvs as this checkout: the executables must exist for verify
    text = text.replace("/opt/lvs/.venv/bin/", str(Path(sys.executable).parent) + "/")
    text = text.replace("/opt/lvs", str(ROOT))
    (tmp_path / unit).write_text(text)
    done = subprocess.run([analyze, "verify", str(tmp_path / unit)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if unit in line]
    assert complaints == [], complaints


def test_the_worker_unit_is_hardened_with_scratch_in_its_cache_directory() -> None:
    text = (DEPLOY / "lvs-worker.service").read_text()
    options = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
    assert options["ProtectSystem"] == "strict" and options["NoNewPrivileges"] == "yes"
    assert options["CacheDirectory"] == "lvs-worker" and options["StateDirectory"] == "lvs-worker"
    env = dict(re.findall(r"^Environment=(\w+)=(.*)$", text, re.M))
    assert env["LVS_WORKER_SCRATCH"] == "/var/cache/lvs-worker"
    assert env["LVS_DATA_DIR"] == "/var/lib/lvs-worker"
    argv = shlex.split(options["ExecStart"])
    assert argv[0] == "/opt/lvs/.venv/bin/flask" and argv[1:4] == ["--app", "app", "worker"]
    ctx = worker_command.make_context("worker", argv[4:])
    assert ctx.params["bind"] == "0.0.0.0:8091" and ctx.params["url"] == "http://%H:8091"
    assert "ReadWritePaths" not in options  # the media stay read-only
