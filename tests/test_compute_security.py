"""The compute plane (issue 18) against a hostile LAN or a holder of the Redis password:
malformed announcements, headers and jobs are refused (logged), never a 500 or a request to
an address the attacker picked."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from types import SimpleNamespace

import pytest

from services.compute import registry, signing
from services.compute.registry import WorkerInfo
from services.playback import worker as pw
from services.playback.remote import Placement, RemoteTranscoder, WorkerLost
from services.previews import batch
from tests.redis_server import redis_server  # noqa: F401

SECRET = "0123456789abcdef-review-secret"


# ---- F3: what a worker announces in Redis is checked before the server uses it ----


@pytest.mark.parametrize(
    "bad",
    [{"sessions": "9"}, {"capacity": "x"}, {"load": "hi"}, {"seen": "now"}, {"cpus": True},
     {"load": float("nan")}, {"encoders": [1]}, {"extra": []}, {"sessions": -1}],
)  # fmt: skip
def test_announcement_with_wrong_types_is_ignored(bad: dict) -> None:
    info = WorkerInfo(id="evil", host="h", url="http://10.0.0.9:8091", cpus=4)
    data = json.loads(info.to_json()) | bad
    assert WorkerInfo.from_json(json.dumps(data)) is None
    assert WorkerInfo.from_json(info.to_json()) == info


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/prefix",
        "http://u:p@10.0.0.9:8091",
        "ftp://10.0.0.9:21",
        "http://10.0.0.9:99999",
        "http://10.0.0.9:8091/?x=",
        "http://10.0.0.9:8091#x",
        "http://[::1",
        "http://:8091",
        "",
    ],
)
def test_announced_url_must_be_a_bare_http_origin(url: str) -> None:
    info = WorkerInfo(id="evil", host="h", url=url, cpus=4)
    assert WorkerInfo.from_json(info.to_json()) is None


@pytest.mark.parametrize("url", ["http://10.0.0.9:8091", "https://w.lan", "http://[::1]:80/"])
def test_a_bare_origin_is_accepted(url: str) -> None:
    info = WorkerInfo(id="good", host="h", url=url, cpus=4)
    assert WorkerInfo.from_json(info.to_json()) == info


def test_a_bad_worker_url_is_a_lost_worker_not_a_500() -> None:
    fake = SimpleNamespace(
        cfg=SimpleNamespace(node_secret=SECRET),
        _alive=lambda w: True,
        link=SimpleNamespace(client=lambda: None),
    )
    for url in ("http://10.0.0.9:99999", "http://[::1", "http://127.0.0.1:6379/x"):
        p = Placement("evil", url, time.time(), 0.0)
        with pytest.raises(WorkerLost):
            RemoteTranscoder._fetch(fake, p, "0123456789abcdef", 3, None)  # type: ignore[arg-type]
        RemoteTranscoder._release(fake, "0123456789abcdef", p)  # type: ignore[arg-type]


def test_refused_announcements_are_logged_once_a_while(caplog, monkeypatch) -> None:
    monkeypatch.setattr(registry, "_refused_logged", 0.0)
    text = WorkerInfo(id="evil", host="h", url="ftp://x", cpus=4).to_json()
    with caplog.at_level("WARNING", logger=registry.__name__):
        for _ in range(5):
            assert WorkerInfo.from_json(text) is None
    assert len([r for r in caplog.records if "ignored" in r.getMessage()]) == 1


# ---- F7: malformed signing headers from the LAN are refused, not a 500 ----

PATH = "/node/sessions/0123456789abcdef/3.ts"


def test_verify_non_ascii_signature_is_refused() -> None:
    e = str(int(time.time()) + 10)
    assert signing.verify(SECRET, "GET", PATH, e, "\xe9" * 64)  # TypeError in compare_digest
    assert signing.verify(SECRET, "GET", PATH, e, "zz" * 32) == "malformed signature"


def test_verify_superscript_expiry_is_refused() -> None:
    assert signing.verify(SECRET, "GET", PATH, "\xb2", "ab")  # '²'.isdigit() but int() fails


def test_verify_still_accepts_a_right_signature() -> None:
    h = signing.headers(SECRET, "GET", PATH)
    assert signing.verify(SECRET, "GET", PATH, h[signing.EXPIRES], h[signing.SIGNATURE]) is None
    upper = h[signing.SIGNATURE].upper()
    assert signing.verify(SECRET, "GET", PATH, h[signing.EXPIRES], upper) is None


def _node_client():  # type: ignore[no-untyped-def]
    from cli import node_http

    stub = SimpleNamespace(secret=SECRET, worker_id="w")
    stub.refused = lambda *a: pw.WorkerSessions.refused(stub, *a)
    return node_http.make_app(stub).test_client()  # type: ignore[arg-type]


def test_worker_http_answers_403_not_500_to_bad_headers() -> None:
    client = _node_client()
    for headers in (
        {"X-LVS-Expires": "\xb2", "X-LVS-Signature": "ab"},
        {"X-LVS-Expires": str(int(time.time()) + 10), "X-LVS-Signature": "\xe9"},
    ):
        assert client.get(PATH, headers=headers).status_code == 403


# ---- F8: a refused request's path is logged quoted and cut, not raw ----


def test_a_refused_path_cannot_forge_log_lines(caplog) -> None:
    client = _node_client()
    path = "/node/sessions/x%0d%0aINFO forged line" + "a" * 70000
    with caplog.at_level("WARNING", logger=pw.__name__):
        assert client.get(path).status_code in (403, 404)
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert lines and all("\n" not in m and "\r" not in m and len(m) < 1000 for m in lines)


# ---- F6: a key of the wrong type in Redis (any holder of the password) is not "Redis down" ----


def test_a_wrong_type_key_does_not_mark_redis_down(redis_server, caplog) -> None:  # noqa: F811
    from services.compute import status
    from services.compute.conn import redis_link
    from services.compute.settings import ComputeSettings

    cfg = ComputeSettings(redis_server.url, True, (), SECRET, None)
    link = redis_link(cfg.redis_url)
    client = link.client()
    assert client is not None
    client.set("lvs-dramatiq:zz-planted", "not a list")
    client.rpush(registry.SEEN + "zz-planted", "not a string")
    try:
        snap = status.snapshot(cfg)
        assert snap.redis == "ok", snap.notice  # before: "unreachable", the server works alone
        assert link.notice() is None
        with caplog.at_level("WARNING", logger="services.compute.conn"):
            try:
                client.get(registry.SEEN + "zz-planted")  # WRONGTYPE
            except link.errors as exc:
                link.failed(exc)
        assert link.notice() is None and link.client() is not None
        assert any("answered an error" in r.getMessage() for r in caplog.records)
    finally:
        client.delete("lvs-dramatiq:zz-planted", registry.SEEN + "zz-planted")


# ---- F9: Redis-borne jobs with a wrong type are a BadJob (logged, refused), not a TypeError ----


def _session_job(**change: object) -> dict:
    job = {"session_id": "0123456789abcdef", "user_id": 1, "media_hash": "0123456789abcdef",
           "root": "/m", "rel": "a.mkv", "method": "remux", "words": "", "count": 1,
           "duration": 1.0, "source": {}, "output": {}}  # fmt: skip
    return job | change


def test_session_job_with_unhashable_method_is_a_badjob() -> None:
    with pytest.raises(pw.BadJob):
        pw.parse_job(_session_job(method=["remux"]), (), ())
    with pytest.raises(pw.BadJob):
        pw.parse_job(_session_job(method={"a": 1}), (), ())


def test_session_output_with_unhashable_video_is_a_badjob() -> None:
    source = SimpleNamespace(audio_track=lambda i: None, subtitle_track=lambda i: None)
    output = {"video": ["h264"], "height": 720, "audio": None, "audio_copy": False,
              "burn": None, "segment": 4.0}  # fmt: skip
    with pytest.raises(pw.BadJob):
        pw._output(output, source)  # type: ignore[arg-type]


def _report(**change: object) -> dict:
    done = {"worker": "w", "media_hash": "0123456789abcdef", "kind": "thumbnail",
            "status": "made", "reason": "", "seconds": 1, "files": {}}  # fmt: skip
    return done | change


@pytest.mark.parametrize("change", [{"status": ["made"]}, {"kind": ["thumbnail"]}])
def test_preview_report_with_unhashable_status_is_a_badjob(change: dict) -> None:
    with pytest.raises(batch.BadJob):
        batch.parse_done(_report(**change))


def test_preview_job_with_unhashable_media_is_a_badjob() -> None:
    job = {"media_hash": "0123456789abcdef", "kind": "thumbnail", "media": ["video"],
           "vr": False, "width": 320, "tiles": 1, "root": "/m", "rel": "a.mkv"}  # fmt: skip
    with pytest.raises(batch.BadJob):
        batch.parse_job(job, (), ())


def test_a_superscript_position_is_skipped(redis_server) -> None:  # noqa: F811
    from services.compute import leases
    from services.compute.conn import redis_link

    client = redis_link(redis_server.url).client()
    client.set(leases.POSITION + "0123456789abcdef", "\xb2")
    client.set(leases.POSITION + "fedcba9876543210", "7")
    try:
        got = leases.positions(client, ["0123456789abcdef", "fedcba9876543210"])
        assert got == {"fedcba9876543210": 7}
    finally:
        client.delete(leases.POSITION + "0123456789abcdef", leases.POSITION + "fedcba9876543210")


# ---- F11: the Redis password in the URL's query (redis-py reads it) stays out of logs and pages ----


@pytest.mark.parametrize(
    "url",
    ["redis://redis:6379/0?password=hunter2", "unix:///run/redis.sock?password=hunter2&db=1",
     "redis://u:hunter2@redis:6379/0?Password=hunter2", "redis://redis:99999/0?password=hunter2"],
)  # fmt: skip
def test_redacted_hides_a_password_in_the_query(url: str) -> None:
    from services.compute.conn import redacted

    assert "hunter2" not in redacted(url)
    assert redacted("redis://redis:6379/0?db=1") == "redis://redis:6379/0?db=1"


# ---- F5: a worker's HTTP server times out half-sent requests and caps its threads ----


def test_half_open_connections_are_dropped_and_capped(monkeypatch) -> None:
    import socket
    import urllib.request

    from cli import node_server

    monkeypatch.setattr(node_server, "TIMEOUT", 1.0)
    monkeypatch.setattr(node_server, "MAX_CONNECTIONS", 3)

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = node_server.NodeServer("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/"
    try:
        held = []
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", server.server_port), timeout=10)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
            held.append(s)
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", server.server_port), timeout=10)
        t0 = time.monotonic()
        assert extra.recv(100) == b"" and time.monotonic() - t0 < 0.9  # closed: no slot
        extra.close()
        for s in held:  # dropped after TIMEOUT, not held for ever
            t0 = time.monotonic()
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(100) == b""
            assert time.monotonic() - t0 < 5
            s.close()
        time.sleep(0.2)
        with urllib.request.urlopen(url, timeout=5) as r:  # the slots are free again
            assert r.read() == b"ok"
    finally:
        server.shutdown()
        server.server_close()


# ---- F14: the clocks may differ by SKEW either way, and no more ----


def test_clock_skew_is_symmetric() -> None:
    def check(expires: int, now: float) -> str | None:
        signature = signing.sign(SECRET, "GET", PATH, expires)
        return signing.verify(SECRET, "GET", PATH, str(expires), signature, now)

    signed_at = 1_800_000_000
    expires = signed_at + signing.VALID
    assert check(expires, signed_at + 20) is None  # in time
    assert check(expires, signed_at - 25) is None  # the worker's clock 25 s behind
    assert check(expires, expires + 25) is None  # 25 s ahead
    assert check(expires, expires + 35)  # past the skew
    assert check(expires, signed_at - 35) == "expiry too far ahead"  # before: 300 s allowed
