"""`GET /live/feed` answered in front of Flask when the answer is 204 (nothing changed).

Every visible open page asks every couple of seconds, and nearly always nothing changed. Through
Flask each ask paid for the request context, the cookie session, the before/after hooks and the
exporter; here it costs what the direct media path costs (blueprints/media_direct.py, the same
pieces): the Host check, who is asking (access.identify_memo: the sign-in decision kept while
the database is unchanged), the change log's largest seq (kept the same way: no commit, no
change), and for admins the activity files' version. Anything else — a bad or missing token, no
valid credentials, a foreign Host, a change to report, transcodes to look at — goes to Flask
untouched, which answers it as blueprints/live.py says.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask

from blueprints import access, guards
from blueprints import metrics as request_metrics
from blueprints.common import thread_db
from blueprints.live import NO_STORE, TOKEN
from services import db as dbmod
from services import metrics
from services.live import feed
from services.operate import logs

log = logging.getLogger(__name__)

PATH = "/live/feed"
ENDPOINT = "live.changes"
HEADERS = [*NO_STORE.items(), *guards.EVERY_ANSWER]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class FeedDirect:
    """WSGI middleware: the change feed's 204 without Flask; everything else to `flask`."""

    def __init__(self, app: Flask, flask: WSGIApp) -> None:
        self.flask = flask
        self.settings = app.config["SETTINGS"]
        self.guards: guards.Guards = app.extensions["guards"]
        self.secret: bytes = app.extensions["media_secret"]
        self.reader = app.extensions["live_activity"]
        self.hls_sessions = self.settings.data_dir / "hls" / "sessions"

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ["REQUEST_METHOD"] != "GET":
            return self.flask(environ, start_response)
        started = time.perf_counter()
        metrics.take_queries()
        rid = logs.new_request_id(environ.get("HTTP_X_REQUEST_ID"))
        token = logs.REQUEST_ID.set(rid)
        db = None
        try:
            db = thread_db(self.settings.db_path)
            if self._unchanged(environ, db):
                start_response("204 NO CONTENT", [*HEADERS, ("X-Request-ID", rid)])
                request_metrics.record(ENDPOINT, 204, started)
                return []
        except Exception:  # Flask answers it as any failing request (logged, error page)
            log.exception("the direct feed path failed; Flask answers instead")
        finally:
            if db is not None and db.conn.in_transaction:
                db.conn.rollback()
            logs.REQUEST_ID.reset(token)
        environ["HTTP_X_REQUEST_ID"] = rid  # Flask's log lines carry the same id
        return self.flask(environ, start_response)

    def _unchanged(self, environ: dict[str, Any], db: Any) -> bool:
        """Return whether the asker is let in and nothing changed since its token."""
        query = environ.get("QUERY_STRING", "")
        since = dict(parse_qsl(query)).get("since", "") if query else ""
        found = TOKEN.fullmatch(since)
        if found is None or not self.guards.host_ok(environ.get("HTTP_HOST", "")):
            return False
        memo = dbmod.memo(db)  # emptied by any commit: a new change or a revoked session
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        user = access.identify_memo(
            memo,
            db,
            self.secret,
            authorization=authorization,
            cookie_header=environ.get("HTTP_COOKIE"),
            media_hash=None,
            args={},
        )
        if user is None and (authorization or not self.settings.guest):
            return False  # Flask: 401 or the sign-in redirect
        top = memo.get("live.latest")
        if top is None:
            top = memo["live.latest"] = feed.latest(db)
        if top != int(found[1]):
            return False
        if user is None or not user.is_admin:
            return True
        if self.hls_sessions.is_dir() and next(self.hls_sessions.glob("*.json"), None) is not None:
            return False  # transcodes: Flask looks at them
        return self.reader.read()["v"] == int(found[2])


def install(app: Flask) -> None:
    """Put the direct feed path in front of the app's WSGI callable."""
    app.wsgi_app = FeedDirect(app, app.wsgi_app)  # type: ignore[method-assign]
