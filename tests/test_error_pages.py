"""Every error status gets the styled page (issue 16), with the header of whoever is signed in."""

from __future__ import annotations

from tests.conftest import signed_in


def test_error_pages_are_styled_for_every_status(app) -> None:
    admin, viewer = signed_in(app, "admin"), signed_in(app, "viewer")
    html = {"Accept": "text/html"}
    cases = [
        (admin.get("/no/such/page", headers=html), 404, "Not Found"),
        (viewer.get("/admin/users", headers=html), 403, "Not for this account"),
        (admin.get("/browse/no-such-library", headers=html), 404, None),
        (admin.get("/search?sort=nonsense", headers=html), 400, None),
        (admin.get("/playlists/99999999", headers=html), 404, None),
        (admin.delete("/", headers=html), 405, "Method Not Allowed"),
    ]
    for response, status, title in cases:
        page = response.get_data(as_text=True)
        assert response.status_code == status, (status, page[:200])
        assert '<section class="error-page"' in page and f">{status}<" in page, status
        assert "Back to the library" in page and "css/page.css" in page
        if title:
            assert f"<h1>{title}</h1>" in page
    missing = admin.get("/no/such/page", headers=html).get_data(as_text=True)
    assert "Signed in as" in missing and ">Sign in<" not in missing  # the 404 knows who you are


def test_a_stranger_on_a_404_gets_no_library_header(app) -> None:
    page = app.test_client().get("/no/such/page", headers={"Accept": "text/html"})
    html = page.get_data(as_text=True)
    assert page.status_code == 404 and 'role="search"' not in html and "Sign in" in html
