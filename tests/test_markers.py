"""Markers: add at a time with a label, listed by time on the watch page, delete, validation."""

from __future__ import annotations

import re


def test_markers(site, who):
    client = site.app.test_client()
    h = site.hash("long")
    hx = {**who.viewer, "HX-Request": "true", "HX-Target": "markers"}
    client.post(f"/watch/{h}/markers", data={"seconds": "125.5", "label": "Chorus"}, headers=hx)
    r = client.post(
        f"/watch/{h}/markers", data={"seconds": "3", "label": "<b>Intro</b>"}, headers=hx
    )
    html = r.get_data(as_text=True)
    assert re.match(r'\s*<section id="markers"', html)
    assert re.findall(r'data-seek="([\d.]+)">([^<]+)</button>', html) == [
        ("3.000", "0:03"),
        ("125.500", "2:05"),
    ]
    assert "&lt;b&gt;Intro&lt;/b&gt;" in html and "<b>Intro" not in html
    page = client.get(f"/watch/{h}", headers=who.viewer).get_data(as_text=True)
    assert "Chorus" in page
    assert "Chorus" not in client.get(f"/watch/{h}", headers=who.admin).get_data(as_text=True)
    for bad in ("", "abc", "-1", "nan", "inf", "1e99"):
        r = client.post(f"/watch/{h}/markers", data={"seconds": bad}, headers=hx)
        assert r.status_code == 400, bad
    mid = re.findall(r"/markers/(\d+)/delete", html)[0]
    assert client.post(f"/watch/{h}/markers/{mid}/delete", headers=who.admin).status_code == 404
    r = client.post(f"/watch/{h}/markers/{mid}/delete", headers=hx)
    assert "Intro" not in r.get_data(as_text=True) and "Chorus" in r.get_data(as_text=True)


def test_history_lists_what_was_played(site, who):
    client = site.app.test_client()
    assert "Nothing played yet" in client.get("/history", headers=who.viewer).get_data(as_text=True)
    h = site.hash("long")
    r = client.post(
        f"/watch/{h}/progress",
        data={"position": "60", "duration": "360", "viewing": "v1"},
        headers=who.viewer,
    )
    assert r.status_code == 204
    html = client.get("/history", headers=who.viewer).get_data(as_text=True)
    assert f'href="/watch/{h}"' in html and "1 play" in html
    assert "Nothing played yet" in client.get("/history", headers=who.admin).get_data(as_text=True)
