"""Shared pytest fixtures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.mediagen import make_corpus


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Return the real media corpus (see tests/mediagen.py), made once per test session."""
    return make_corpus(tmp_path_factory.mktemp("media"))


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    """Return an empty library folder for one test."""
    root = tmp_path / "library"
    root.mkdir()
    return root


@pytest.fixture
def settings(library_dir: Path, tmp_path: Path):
    """Return settings for one library in tmp_path, data dir beside it."""
    from config import load_settings

    return load_settings(
        {"media_dirs": [str(library_dir)], "data_dir": str(tmp_path / "data"), "probe_workers": 2},
        environ={},
        dotenv_path=tmp_path / "no.env",
    )


@pytest.fixture
def db(settings):
    """Return the test's database, schema applied."""
    from services import db as dbmod

    database = dbmod.open_db(settings.data_dir)
    yield database
    database.close()


@pytest.fixture
def app(library_dir: Path, tmp_path: Path):
    """Return the app for one library in tmp_path."""
    from app import create_app

    return create_app(
        {"media_dirs": [str(library_dir)], "data_dir": str(tmp_path / "data"), "probe_workers": 2}
    )


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# ---- accounts (issue 5): signed-in clients for the default-deny app ----

TEST_PASSWORD = "correct horse battery"


def make_user(data_dir: Path, role: str = "admin", name: str | None = None):
    """Create (or find) an account in the data dir's database; cheap bcrypt rounds for speed."""
    from services import db as dbmod
    from services.people import users

    database = dbmod.open_db(data_dir)
    try:
        name = name or f"test-{role}"
        user = users.by_name(database, name)
        if user is None or user.role != role:
            user = users.create(database, name, role, TEST_PASSWORD, rounds=4)
        return user
    finally:
        database.close()


def session_token(data_dir: Path, user_id: int) -> str:
    """Start a server-side session for the user and return its cookie value."""
    from services import db as dbmod
    from services.people import sessions

    database = dbmod.open_db(data_dir)
    try:
        return sessions.create(database, user_id, user_agent="pytest", ip="127.0.0.1")
    finally:
        database.close()


def api_token(data_dir: Path, role: str = "admin", name: str | None = None) -> str:
    """Return an API token (for `Authorization: Bearer`) of a test account."""
    from services import db as dbmod
    from services.people import apitokens

    user = make_user(data_dir, role, name)
    database = dbmod.open_db(data_dir)
    try:
        return apitokens.create(database, user.id, "tests")
    finally:
        database.close()


def signed_in(app, role: str = "admin", name: str | None = None):
    """Return a test client signed in as a `role` account, sending the CSRF token as htmx does."""
    from itsdangerous import URLSafeTimedSerializer

    from blueprints.access import COOKIE

    data_dir = app.config["SETTINGS"].data_dir
    user = make_user(data_dir, role, name)
    client = app.test_client()
    client.set_cookie(COOKIE, session_token(data_dir, user.id))
    raw = "pytest-csrf-" + str(user.id)
    with client.session_transaction() as flask_session:
        flask_session["csrf_token"] = raw
    signer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token")
    client.environ_base["HTTP_X_CSRFTOKEN"] = signer.dumps(raw)
    client.user = user
    return client


@pytest.fixture
def admin_client(app):
    """Return a test client signed in as an admin (the first admin: it owns user 1's history)."""
    return signed_in(app, "admin")


@pytest.fixture
def viewer_client(app):
    """Return a test client signed in as a viewer."""
    return signed_in(app, "viewer")


def browser_sign_in(context, base_url: str, data_dir: Path, role: str = "admin") -> None:
    """Sign a Playwright browser context in to a running server by giving it a session cookie."""
    from blueprints.access import COOKIE

    user = make_user(data_dir, role)
    token = session_token(data_dir, user.id)
    context.add_cookies([{"name": COOKIE, "value": token, "url": base_url}])


@pytest.fixture(scope="module")
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, media):
    """Return a scanned sample library and its app, one per test module (tests/sample_library.py)."""
    from tests.sample_library import Site

    return Site(tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]), media)


@pytest.fixture(scope="module")
def who(site):
    """Return an admin's and a viewer's Authorization headers for the module's site."""
    from tests.organize_util import make_users

    return make_users(site)


@pytest.fixture
def client(site):
    """Return a test client of the module's site (sign in per request with `who`'s headers)."""
    return site.app.test_client()


def mount_tmpfs(path: Path, size: str) -> None:
    """Mount a tmpfs of `size` (e.g. "64k": a disk that fills up) at `path`, or skip the test
    where that is not allowed; the caller unmounts it (umount -l)."""
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"a small tmpfs cannot be mounted here: {done.stderr.strip()}")
