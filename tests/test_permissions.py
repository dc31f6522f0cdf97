"""Editing shared metadata (tags, markers, projections) is a permission (issue 16): admins have
it, viewers only once an admin gives it, and an admin can take it back."""

from __future__ import annotations

from services import db as dbmod
from services.people import users


def tag_names(client, h: str, headers: dict) -> list[str]:
    return client.get(f"/watch/{h}/tags.json", headers=headers).get_json()["tags"]


def test_a_viewer_cannot_remove_an_admins_tag_until_allowed(site, who) -> None:
    client = site.app.test_client()
    h = site.hash("h264")
    assert (
        client.post(f"/watch/{h}/tags", data={"tag": "Keep"}, headers=who.admin).status_code == 200
    )
    plain = who.plain
    r = client.post(f"/watch/{h}/tags/remove", data={"tag": "Keep"}, headers=plain)
    assert r.status_code == 403 and "may not change shared tags" in r.get_data(as_text=True)
    assert "Keep" in tag_names(client, h, plain)
    assert client.post(f"/watch/{h}/tags", data={"tag": "Mine"}, headers=plain).status_code == 403
    r = client.post(f"/watch/{h}/markers", data={"seconds": "1", "label": "x"}, headers=plain)
    assert r.status_code == 403
    r = client.post("/tags/bulk", data={"action": "add", "tag": "x", "media": h}, headers=plain)
    assert r.status_code == 403
    page = client.get(f"/watch/{h}", headers=plain).get_data(as_text=True)
    assert "Remove tag Keep" not in page and 'class="tag-add"' not in page
    assert 'class="marker-add"' not in page and "data-tags-paste" not in page
    assert "Copy tags" in page  # reading and copying stay open

    # The admin gives the permission on the people page; it holds from the next request.
    admin_page = client.get("/admin/users", headers=who.admin).get_data(as_text=True)
    assert "cannot edit shared tags" in admin_page and "Allow editing tags" in admin_page
    r = client.post(
        f"/admin/users/{who.plain_id}/metadata", data={"allowed": "1"}, headers=who.admin
    )
    assert r.status_code in (200, 303)
    r = client.post(f"/watch/{h}/tags/remove", data={"tag": "Keep"}, headers=plain)
    assert r.status_code == 200 and "Keep" not in tag_names(client, h, plain)
    client.post(f"/watch/{h}/tags", data={"tag": "Mine"}, headers=plain)
    assert "Mine" in client.get(f"/watch/{h}", headers=plain).get_data(as_text=True)
    assert 'class="tag-add"' in client.get(f"/watch/{h}", headers=plain).get_data(as_text=True)

    # ... and takes it back.
    client.post(f"/admin/users/{who.plain_id}/metadata", data={"allowed": "0"}, headers=who.admin)
    r = client.post(f"/watch/{h}/tags/remove", data={"tag": "Mine"}, headers=plain)
    assert r.status_code == 403


def test_only_an_admin_gives_the_permission(site, who) -> None:
    client = site.app.test_client()
    r = client.post(
        f"/admin/users/{who.plain_id}/metadata", data={"allowed": "1"}, headers=who.viewer
    )
    assert r.status_code == 403
    db = dbmod.open_db(site.data)
    try:
        assert users.get(db, who.plain_id).can_edit_metadata is False
        fresh = users.create(db, "newcomer", "viewer", "correct horse battery", rounds=4)
        assert fresh.can_edit_metadata is False and fresh.may_edit_metadata is False
        admin = users.get(db, who.admin_id)
        assert admin.may_edit_metadata is True  # admins always may
    finally:
        db.close()
