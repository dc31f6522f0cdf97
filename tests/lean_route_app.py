"""The app with one more route on the lean path, as a transcoder's segments would add one: the
original file, for admins only — so a test can see a role change on a direct route.

    gunicorn -c gunicorn.conf.py 'tests.lean_route_app:create()'
"""

from __future__ import annotations

from flask import Flask

from app import create_app
from blueprints import media, media_direct
from services.errors import NotFound

ADMIN_COPY = r"/media/(?P<media_hash>[0-9a-f]{16})/admin-copy"


def admin_copy(req: media_direct.DirectRequest) -> media.Original | None:
    """The original file for an admin; 404 for anyone else."""
    if req.user is None or not req.user.is_admin:
        raise NotFound("admins only")
    return media.open_original(req.db, req.media_hash, req.settings.media_dirs, None, req.memo)


def create() -> Flask:
    app = create_app()
    media_direct.add_route(app, ADMIN_COPY, "media.file", admin_copy)
    return app
