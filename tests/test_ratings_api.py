"""The ratings API: GET/POST JSON, validation (400 with a JSON error), per-user ratings and the
average, CORS for exact origins only (foreign, null, look-alikes), preflight, auth, latency."""

from __future__ import annotations

from pathlib import Path

import pytest

from services import metrics
from tests.sample_library import Site

ALLOWED = "http://allowed.com"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, media: dict[str, Path]) -> Site:
    return Site(
        tmp_path_factory.mktemp("ratings"), media, cors_origins=[ALLOWED, "https://vr.lan:8443"]
    )


def url(site: Site, key: str = "h264") -> str:
    return f"/api/ratings/{site.hash(key)}"


def test_get_post_and_average(client, who, site):
    h = site.hash("hevc")
    r = client.get(url(site, "hevc"), headers=who.viewer)
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.get_json() == {"media_hash": h, "your_rating": None, "average": None, "count": 0}
    assert client.post(url(site, "hevc"), json={"rating": 5}, headers=who.viewer).get_json() == {
        "media_hash": h,
        "your_rating": 5,
        "average": 5.0,
        "count": 1,
    }
    body = client.post(url(site, "hevc"), json={"rating": 2}, headers=who.admin).get_json()
    assert body == {"media_hash": h, "your_rating": 2, "average": 3.5, "count": 2}
    assert client.get(url(site, "hevc"), headers=who.viewer).get_json()["your_rating"] == 5
    body = client.post(url(site, "hevc"), json={"rating": 3}, headers=who.viewer).get_json()
    assert body == {"media_hash": h, "your_rating": 3, "average": 2.5, "count": 2}
    assert client.post(url(site, "hevc"), json={"rating": None}, headers=who.viewer).get_json() == {
        "media_hash": h,
        "your_rating": None,
        "average": 2.0,
        "count": 1,
    }
    body = client.post(url(site, "hevc"), json={"rating": "remove"}, headers=who.admin).get_json()
    assert body["count"] == 0 and body["average"] is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"rating": 0}',
        b'{"rating": 6}',
        b'{"rating": 3.5}',
        b'{"rating": "3"}',
        b'{"rating": true}',
        b'{"rating": [3]}',
        b'{"stars": 3}',
        b"[3]",
        b"3",
        b"",
        b"{",
        b'{"rating": 1e400}',
        b'{"rating": -1}',
        b"\xff\xfe",
        b'{"rating": "REMOVE"}',
    ],
)
def test_bad_bodies_are_400_json(client, who, site, body):
    r = client.post(
        url(site), data=body, headers={**who.viewer, "Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.mimetype == "application/json"
    assert "error" in r.get_json()


def test_unknown_media_404_json(client, who):
    r = client.get("/api/ratings/0123456789abcdef", headers=who.viewer)
    assert r.status_code == 404 and r.get_json()["error"]
    r = client.post("/api/ratings/..%2f..", json={"rating": 3}, headers=who.viewer)
    assert r.status_code == 404


def test_needs_sign_in(client, site):
    assert client.get(url(site)).status_code == 401
    r = client.get(url(site), headers={"Authorization": "Bearer lvs_wrong"})
    assert r.status_code == 401


def test_cors_allowed_origin(client, who, site):
    r = client.get(url(site), headers={**who.viewer, "Origin": ALLOWED})
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in r.headers["Vary"]
    r = client.post(url(site), json={"rating": 4}, headers={**who.viewer, "Origin": ALLOWED})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == ALLOWED


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.com",
        "null",
        "http://evil-allowed.com",
        "http://allowed.com.evil.com",
        "https://allowed.com",
        "http://allowed.com:8080",
        "http://ALLOWED.com.",
        "http://allowed.com/",
    ],
)
def test_cors_refuses_other_origins(client, who, site, origin):
    r = client.get(url(site), headers={**who.viewer, "Origin": origin})
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers and "Origin" in r.headers["Vary"]
    r = client.options(
        url(site), headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in r.headers
    r = client.post(url(site), json={"rating": 1}, headers={**who.viewer, "Origin": origin})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_preflight(client, site):
    r = client.options(
        url(site),
        headers={
            "Origin": "https://vr.lan:8443",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "https://vr.lan:8443"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()
    assert "Origin" in r.headers["Vary"]


def test_post_latency_is_recorded(client, who, site):
    before = metrics.REGISTRY.snapshot().get("ratings_post").total
    client.post(url(site, "vp9"), json={"rating": 3}, headers=who.viewer)
    assert metrics.REGISTRY.snapshot().get("ratings_post").total == before + 1
