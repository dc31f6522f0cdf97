"""Helpers for the organize tests (issue 6): users with API tokens on a scanned Site."""

from __future__ import annotations

from dataclasses import dataclass

from tests.sample_library import Site


@dataclass
class Users:
    """Two signed-in identities (by API token): an admin and a viewer."""

    admin: dict[str, str]
    viewer: dict[str, str]
    admin_id: int
    viewer_id: int


def make_users(site: Site) -> Users:
    """Create an admin and a viewer with API tokens; return their Authorization headers."""
    from services import db as dbmod
    from services.people import apitokens, users

    db = dbmod.connect(site.settings.db_path)
    try:
        ann = users.create(db, "ann", "admin", "correct horse battery", rounds=4)
        bob = users.create(db, "bob", "viewer", "correct horse battery", rounds=4)
        a = apitokens.create(db, ann.id, "tests")
        b = apitokens.create(db, bob.id, "tests")
    finally:
        db.close()
    return Users({"Authorization": f"Bearer {a}"}, {"Authorization": f"Bearer {b}"}, ann.id, bob.id)
