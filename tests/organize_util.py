"""Helpers for the organize tests (issue 6): users with API tokens on a scanned Site."""

from __future__ import annotations

from dataclasses import dataclass

from tests.sample_library import Site


@dataclass
class Users:
    """Signed-in identities (by API token): an admin, a viewer the admin allowed to edit shared
    metadata (tags, markers, projections: issue 16), and a plain viewer who may not."""

    admin: dict[str, str]
    viewer: dict[str, str]
    admin_id: int
    viewer_id: int
    plain: dict[str, str] | None = None
    plain_id: int = 0


def make_users(site: Site) -> Users:
    """Create an admin and a viewer with API tokens; return their Authorization headers."""
    from services import db as dbmod
    from services.people import apitokens, users

    db = dbmod.connect(site.settings.db_path)
    try:
        ann = users.create(db, "ann", "admin", "correct horse battery", rounds=4)
        bob = users.create(db, "bob", "viewer", "correct horse battery", rounds=4)
        users.set_metadata_permission(db, bob.id, True, by=ann.id)
        cy = users.create(db, "cy", "viewer", "correct horse battery", rounds=4)
        a = apitokens.create(db, ann.id, "tests")
        b = apitokens.create(db, bob.id, "tests")
        c = apitokens.create(db, cy.id, "tests")
    finally:
        db.close()
    return Users(
        {"Authorization": f"Bearer {a}"},
        {"Authorization": f"Bearer {b}"},
        ann.id,
        bob.id,
        {"Authorization": f"Bearer {c}"},
        cy.id,
    )
