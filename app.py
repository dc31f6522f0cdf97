"""The application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

import cli
from config import load_settings
from services import db as dbmod
from services.errors import LVSError


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings, logging, database schema, commands.

    A wrong setting or an unusable data dir stops start-up with one line naming the problem.
    """
    try:
        settings = load_settings(test_config)
        dbmod.open_db(settings.data_dir).close()  # create the data dir and migrate, once
    except LVSError as exc:
        raise SystemExit(f"Error: {exc}") from None
    _logging(settings.log_level)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    cli.register(app)
    return app


def _logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root.setLevel(level)
