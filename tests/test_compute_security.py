"""The compute plane (issue 18) against a hostile LAN or a holder of the Redis password:
malformed announcements, headers and jobs are refused (logged), never a 500 or a request to
an address the attacker picked."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from services.compute import registry
from services.compute.registry import WorkerInfo
from services.playback.remote import Placement, RemoteTranscoder, WorkerLost

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
