"""Work on other machines, the foundation (issue 18): settings, Redis link, broker, registry,
signing, path map, and a real `flask worker` process — all with a real redis-server."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from config import load_settings
from services.compute import broker, conn, leases, pathmap, registry, signing
from services.compute.registry import WorkerInfo
from services.errors import ConfigError
from tests.redis_server import free_port, redis_server  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-node-secret-0123456789"


def _settings(tmp_path: Path, **env: str):
    return load_settings(environ={f"LVS_{k.upper()}": v for k, v in env.items()},
                         dotenv_path=tmp_path / "no.env",
                         overrides={"data_dir": str(tmp_path / "data")})  # fmt: skip


def test_settings_single_node_by_default(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert s.redis_url == "" and s.local_work is True and s.path_map == ()


def test_settings_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LVS_NODE_SECRET"):
        _settings(tmp_path, redis_url="redis://localhost:6379/0")
    with pytest.raises(ConfigError, match="LVS_REDIS_URL"):
        _settings(tmp_path, redis_url="http://localhost:6379", node_secret=SECRET)
    with pytest.raises(ConfigError, match="LVS_PATH_MAP"):
        _settings(tmp_path, path_map="media=/mnt/media")
    with pytest.raises(ConfigError, match="LVS_NODE_SECRET"):
        _settings(tmp_path, node_secret="short")
    s = _settings(tmp_path, redis_url="redis://:pw@h:6379/0", node_secret=SECRET,
                  path_map="/srv/media/=/mnt/media,/srv/tv=/mnt/tv", local_work="off")  # fmt: skip
    assert s.path_map == (("/srv/media", "/mnt/media"), ("/srv/tv", "/mnt/tv"))
    assert s.local_work is False


def test_path_map() -> None:
    pm = (("/srv/media", "/mnt/m"), ("/srv/media/tv", "/mnt/tv"))
    assert pathmap.to_worker("/srv/media/a/b.mkv", pm) == "/mnt/m/a/b.mkv"
    assert pathmap.to_worker("/srv/media/tv/x.mkv", pm) == "/mnt/tv/x.mkv"  # longest first
    assert pathmap.to_worker("/srv/mediax/y.mkv", pm) == "/srv/mediax/y.mkv"  # not a prefix
    assert pathmap.to_worker("/other/z", ()) == "/other/z"


def test_signing() -> None:
    h = signing.headers(SECRET, "GET", "/node/sessions/0123456789abcdef/3.ts")
    e, s = h[signing.EXPIRES], h[signing.SIGNATURE]
    assert signing.verify(SECRET, "GET", "/node/sessions/0123456789abcdef/3.ts", e, s) is None
    assert signing.verify(SECRET, "GET", "/node/sessions/0123456789abcdef/4.ts", e, s)
    assert signing.verify(SECRET, "POST", "/node/sessions/0123456789abcdef/3.ts", e, s)
    assert signing.verify("another-secret-0123456", "GET", "/node/x", e, s)
    assert "expired" in signing.verify(
        SECRET, "GET", "/p", "1000", signing.sign(SECRET, "GET", "/p", 1000)
    )
    far = int(time.time()) + 10_000
    assert signing.verify(SECRET, "GET", "/p", str(far), signing.sign(SECRET, "GET", "/p", far))
    assert signing.verify(SECRET, "GET", "/p", None, None) == "unsigned"
    assert signing.verify(SECRET, "GET", "/p", "12x", "ab") == "malformed expiry"
    assert signing.verify("", "GET", "/p", e, s)


def test_redis_link_degrades_and_recovers(redis_server, caplog) -> None:  # noqa: F811
    link = conn.RedisLink(redis_server.url)
    assert link.client() is not None and link.notice() is None
    redis_server.stop()
    caplog.set_level(logging.INFO, logger="services.compute.conn")
    link.failed(ConnectionError("gone"))
    for _ in range(3):
        assert link.client() is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
    assert redis_server.password not in warnings[0].getMessage()
    assert "unreachable" in (link.notice() or "")
    redis_server.start()
    deadline = time.monotonic() + conn.RETRY + 3
    while link.client() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert link.client() is not None and link.notice() is None
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_wrong_password_is_unavailable(redis_server) -> None:  # noqa: F811
    link = conn.RedisLink(f"redis://:wrong@127.0.0.1:{redis_server.port}/0")
    assert link.client() is None


def test_registry_announce_expire_choose(redis_server) -> None:  # noqa: F811
    client = conn.RedisLink(redis_server.url).client()
    a = WorkerInfo(id="a-1", host="a", url="http://a:1", cpus=4, capacity=2, sessions=1)
    b = WorkerInfo(id="b-1", host="b", url="http://b:1", cpus=2, capacity=1, sessions=0)
    registry.announce(client, a)
    registry.announce(client, b, ttl=0.3)
    assert [w.id for w in registry.workers(client)] == ["a-1", "b-1"]
    assert registry.choose(registry.workers(client)).id == "b-1"  # least busy
    time.sleep(0.5)
    assert [w.id for w in registry.workers(client)] == ["a-1"]  # b's heartbeat lapsed
    gpu = WorkerInfo(id="g-1", host="g", url="http://g:1", cpus=2, capacity=2, sessions=1,
                     hardware="vaapi", encoders=("h264_vaapi", "libx264"))  # fmt: skip
    idle = WorkerInfo(id="i-1", host="i", url="http://i:1", cpus=8, capacity=4)
    local = WorkerInfo(id="local", host="s", url="", cpus=8, capacity=4)
    assert registry.choose([idle, gpu, local]).id == "g-1"  # hardware first while it has room
    assert registry.choose([idle, local]).id == "i-1"  # a tie: a worker before the server
    busier = WorkerInfo(id="i-2", host="i", url="http://i:2", cpus=8, capacity=4, load=0.9)
    assert registry.choose([busier, local]).id == "i-2"  # even a more loaded one
    assert registry.choose([replace(busier, sessions=1), local]).id == "local"  # less busy
    assert registry.choose([idle, gpu], exclude={"g-1"}).id == "i-1"
    assert registry.choose([], exclude=()) is None
    client.set(registry.PREFIX + "bad", "{not json")
    assert "bad" not in [w.id for w in registry.workers(client)]


def test_leases(redis_server) -> None:  # noqa: F811
    client = conn.RedisLink(redis_server.url).client()
    leases.renew(client, "s1", "w1", 0.3)
    leases.renew(client, "s2", "w1", 10)
    leases.renew(client, "s3", "w2", 10)
    assert leases.holder(client, "s1") == "w1"
    assert leases.count_by_worker(client) == {"w1": 2, "w2": 1}
    time.sleep(0.45)
    assert leases.holders(client, ["s1", "s2"]) == {"s1": None, "s2": "w1"}
    leases.report_error(client, "s3", "w2", "cannot read x")
    assert leases.error_of(client, "s3") == ("w2", "cannot read x")
    leases.release(client, "s3")
    assert leases.holder(client, "s3") is None and leases.error_of(client, "s3") is None


def _ran(key: str, value: str) -> None:
    client = conn.redis_link(os.environ["LVS_TEST_REDIS"]).client()
    client.rpush(key, value)


def test_broker_runs_an_actor_on_a_worker_queue(redis_server, monkeypatch) -> None:  # noqa: F811
    import dramatiq

    monkeypatch.setenv("LVS_TEST_REDIS", redis_server.url)
    broker.actor("lvs.test.ran", max_retries=0)(_ran)
    b = broker.get_broker(redis_server.url)
    assert b.heartbeat_timeout == broker.HEARTBEAT_TIMEOUT_MS
    queue = registry.queue_of("w-test")
    b.declare_queue(queue)
    assert broker.send(redis_server.url, "lvs.test.ran", "out", "batch")
    assert broker.send(redis_server.url, "lvs.test.ran", "out", "node", queue=queue)
    worker = dramatiq.Worker(b, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        client = conn.redis_link(redis_server.url).client()
        deadline = time.monotonic() + 10
        while client.llen("out") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(client.lrange("out", 0, -1)) == ["batch", "node"]
    finally:
        worker.stop(timeout=2000)


def worker_env(redis_url: str, media: Path, scratch: Path, data: Path, **more: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LVS_")}
    env.update(LVS_REDIS_URL=redis_url, LVS_NODE_SECRET=SECRET, LVS_MEDIA_DIRS=str(media),
               LVS_WORKER_SCRATCH=str(scratch), LVS_DATA_DIR=str(data), LVS_LOG_LEVEL="INFO",
               PYTHONUNBUFFERED="1", **more)  # fmt: skip
    return env


def start_worker(env: dict, worker_id: str, log: Path) -> tuple[subprocess.Popen, str]:
    """Start `flask worker` as its own process group; return it and its base URL."""
    port = free_port()
    flask = str(Path(sys.executable).parent / "flask")
    proc = subprocess.Popen(
        [flask, "--app", "app", "worker", "--bind", f"127.0.0.1:{port}", "--id", worker_id,
         "--url", f"http://127.0.0.1:{port}", "--threads", "2"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


def wait_announced(redis_url: str, worker_id: str, timeout: float = 20) -> WorkerInfo:
    client = conn.redis_link(redis_url).client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [w for w in registry.workers(client) if w.id == worker_id]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"worker {worker_id} never announced itself")


def test_flask_worker_process(redis_server, tmp_path: Path) -> None:  # noqa: F811
    media = tmp_path / "media"
    media.mkdir()
    env = worker_env(redis_server.url, media, tmp_path / "scratch", tmp_path / "data")
    proc, url = start_worker(env, "w-one", tmp_path / "worker.log")
    try:
        info = wait_announced(redis_server.url, "w-one")
        assert info.url == url and info.cpus == os.cpu_count() and "libx264" in info.encoders
        assert info.sessions == 0 and info.capacity >= 1
        with urllib.request.urlopen(url + "/node/health", timeout=5) as r:
            assert r.read() == b"ok\n"
        path = "/node/sessions/0123456789abcdef/0.ts"
        with pytest.raises(urllib.error.HTTPError) as unsigned:
            urllib.request.urlopen(url + path, timeout=5)
        assert unsigned.value.code == 403
        bad = {signing.EXPIRES: str(int(time.time()) + 20), signing.SIGNATURE: "0" * 64}
        with pytest.raises(urllib.error.HTTPError) as wrong:
            urllib.request.urlopen(urllib.request.Request(url + path, headers=bad), timeout=5)
        assert wrong.value.code == 403
        expired = {
            signing.EXPIRES: "1000",
            signing.SIGNATURE: signing.sign(SECRET, "GET", path, 1000),
        }
        with pytest.raises(urllib.error.HTTPError) as old:
            urllib.request.urlopen(urllib.request.Request(url + path, headers=expired), timeout=5)
        assert old.value.code == 403
        signed = signing.headers(SECRET, "GET", path)
        start = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as unknown:
            urllib.request.urlopen(urllib.request.Request(url + path, headers=signed), timeout=20)
        assert unknown.value.code == 404  # signed, but no such session here
        assert time.monotonic() - start < 15
        assert not (tmp_path / "data" / "library.db").exists()  # no database of its own
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    text = (tmp_path / "worker.log").read_text()
    assert "wrong signature" in text and "expired" in text and "unsigned" in text
    client = conn.redis_link(redis_server.url).client()
    assert "w-one" not in [w.id for w in registry.workers(client)]  # withdrawn on stop


def test_single_node_imports_no_redis_or_dramatiq(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from app import create_app\n"
        f"app = create_app({{'media_dirs': [{str(tmp_path)!r}], 'data_dir': {str(tmp_path / 'd')!r}}})\n"
        "c = app.test_client()\n"
        "assert c.get('/livez').status_code == 200\n"
        "from blueprints import hls\n"
        "with app.app_context():\n"
        "    tc = hls.transcoder()\n"
        "assert type(tc).__name__ == 'LocalTranscoder', type(tc)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('redis', 'dramatiq')]\n"
        "assert not bad, bad\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LVS_")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def test_status_snapshot(redis_server, monkeypatch) -> None:  # noqa: F811
    from services.compute import status
    from services.compute.settings import ComputeSettings

    single = ComputeSettings("", True, (), "", None)
    assert status.snapshot(single) == status.ComputeStatus(False, "single node")
    cfg = ComputeSettings(redis_server.url, True, (), SECRET, None)
    monkeypatch.setenv("LVS_TEST_REDIS", redis_server.url)
    broker.actor("lvs.test.ran", max_retries=0)(_ran)
    for _ in range(2):
        assert broker.send(redis_server.url, "lvs.test.ran", "out", "x")
    client = conn.redis_link(redis_server.url).client()
    registry.announce(client, WorkerInfo(id="w-s", host="h", url="http://h:1", cpus=2))
    leases.renew(client, "sess", "w-s", 30)
    snap = status.snapshot(cfg)
    assert snap.redis == "ok" and redis_server.password not in snap.url
    assert [w.id for w in snap.workers] == ["w-s"] and snap.leases == {"w-s": 1}
    assert snap.queues[broker.BATCH_QUEUE] == status.QueueSize(waiting=2)
    redis_server.stop()
    conn.redis_link(redis_server.url).failed(ConnectionError("stopped"))
    down = status.snapshot(cfg)
    assert down.redis == "unreachable" and "unreachable" in (down.notice or "")
