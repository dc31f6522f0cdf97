"""The Redis user of deploy/redis-users.acl is enough for the product and no more (issue 18):
a real redis-server loads that very file; the server and two real `flask worker` processes
sign in as "lvs" and place, run and serve a transcode session, fail it over, and show it on
the dashboard and in `flask workers` — and Redis refuses nothing of it (its ACL LOG stays
empty), while the user can read no other key and run no admin command."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import redis

from services.compute import status
from tests.conftest import signed_in
from tests.test_workers import Cluster, _stop_sessions, first_pts, served_by

ROOT = Path(__file__).resolve().parent.parent
ACL = ROOT / "deploy" / "redis-users.acl"
DISPATCH = Path(__import__("dramatiq").__file__).parent / "brokers" / "redis" / "dispatch.lua"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    c = Cluster(tmp_path_factory.mktemp("workers-acl"), acl=ACL.read_text())
    yield c
    c.close()


def admin(cluster: Cluster) -> redis.Redis:
    return redis.Redis(port=cluster.redis.port, username="admin",
                       password=cluster.redis.admin_password, decode_responses=True)  # fmt: skip


def test_the_product_works_as_the_acl_user_and_redis_refuses_nothing(cluster: Cluster) -> None:
    assert cluster.redis.url.startswith("redis://lvs:")
    root = admin(cluster)
    root.acl_log_reset()
    viewer = cluster.client("viewer-acl")
    h = cluster.hash(0)
    sid = cluster.open(viewer, h)
    r = cluster.segment(viewer, h, sid, 0)
    first = served_by(cluster.app, sid)
    assert r.status_code == 200 and first in ("w-a", "w-b"), r.data[:300]
    other = ({"w-a", "w-b"} - {first}).pop()
    # a worker dies: the session goes to the other one (leases, queues, heartbeats as "lvs")
    cluster.workers.kill(first)
    r = cluster.segment(viewer, h, sid, 2)
    assert r.status_code == 200 and served_by(cluster.app, sid) == other, r.data[:300]
    assert 5.5 < first_pts(r.data) < 6.5
    cluster.workers.start(first)
    dash = signed_in(cluster.app, "admin", "acl-admin")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        html = dash.get("/admin/performance").get_data(as_text=True)
        if set(re.findall(r'data-worker="([^"]+)" data-state="(?:ok|busy)"', html)) == {
            "w-a",
            "w-b",
        }:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the dashboard never listed both workers")
    out = cluster.app.test_cli_runner().invoke(args=["workers"])
    assert out.exit_code == 0, out.output
    snap = status.snapshot(status.ComputeSettings.of(cluster.settings))
    assert snap.redis == "ok" and {w.id for w in snap.workers} == {"w-a", "w-b"}
    _stop_sessions(cluster)
    time.sleep(2)  # the workers' heartbeats and Dramatiq's polls go on meanwhile
    refused = root.acl_log()
    assert refused == [], refused
    used = {k.removeprefix("cmdstat_") for k in root.info("commandstats")}
    print("commands used:", sorted(used))


def test_the_acl_user_reaches_nothing_else(cluster: Cluster) -> None:
    root = admin(cluster)
    root.set("someone-else:key", "secret")
    lvs = redis.Redis.from_url(cluster.redis.url, decode_responses=True, driver_info=None)
    for refused in (lambda: lvs.get("someone-else:key"), lambda: lvs.flushall(),
                    lambda: lvs.config_get("*"), lambda: lvs.acl_list(),
                    lambda: lvs.publish("lvs:x", "y"), lambda: lvs.info()):  # fmt: skip
        with pytest.raises(redis.exceptions.NoPermissionError):
            refused()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=cluster.redis.port, password=cluster.redis.password).ping()  # default off


def test_every_command_of_dramatiqs_script_is_allowed(cluster: Cluster) -> None:
    """Dramatiq's Lua script runs commands inside Redis, where the ACL checks them too: some
    (maintenance after a worker's death) run only now and then, so each is checked here."""
    root = admin(cluster)
    names = sorted(set(re.findall(r'redis\.call\("([a-z]+)"', DISPATCH.read_text())))
    assert "zadd" in names and "keys" in names
    key = "lvs-dramatiq:lvs-batch.msgs"
    for name in names:
        args = {"keys": ["lvs-dramatiq:*"], "zadd": [key, "1", "m"], "hset": [key, "f", "v"],
                "zrangebyscore": [key, "0", "1"], "hmget": [key, "f"], "hget": [key, "f"],
                "hexists": [key, "f"], "hdel": [key, "f"], "rpush": [key, "v"],
                "sadd": [key, "m"], "srem": [key, "m"], "zrem": [key, "m"]}.get(name, [key])  # fmt: skip
        answer = root.execute_command("ACL", "DRYRUN", "lvs", name, *args)
        assert answer == "OK", (name, answer)
    other = root.execute_command("ACL", "DRYRUN", "lvs", "get", "elsewhere")
    assert other != "OK"
