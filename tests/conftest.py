"""Shared pytest fixtures."""

from __future__ import annotations

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
