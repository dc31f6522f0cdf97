"""`GET|HEAD /media/<media_hash>/file` answered in front of Flask.

A playing video asks for its file range after range; a VR player seeking asks dozens of times a
second. Through Flask each of those paid for the request context, the cookie session, fourteen
before/after hooks and the Prometheus exporter — several times the cost of the sendfile itself
(bench B5). This WSGI middleware answers that one route directly, deciding exactly as the Flask
route would by calling the same functions:

- the Host check and the security headers: blueprints/guards.py;
- who is asking: access.identify (API token, session cookie, signed URL), or a guest when
  LVS_GUEST=on — as the guard allows them;
- the file: media.open_original (media_files.open_media: inside a library, checked once open);
- the answer: media.answer_file (services/playback/ranges.py; sendfile through wsgi.file_wrapper), with
  media.error_answer's 404 and 503 + Retry-After;
- metrics: the latency under `media.file`, its SQL statements, the active-stream count, and a
  request id (kept from a sane X-Request-ID) in the logs and the answer.

Whatever it does not answer itself goes to Flask untouched: every other route and method, a
refused Host, a request without valid credentials (the guard's 401, redirect or login page).
Flask's url_map still has the route (`media.file`), for url_for and for the guard.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, Response
from sqlite_utils import Database
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.sansio.http import parse_cookie

from blueprints import access, guards, media
from blueprints import metrics as request_metrics
from blueprints.common import thread_db
from services import metrics
from services.errors import NotFound, Unavailable
from services.operate import logs

log = logging.getLogger(__name__)

FILE_PATH = re.compile(r"/media/([0-9a-f]{16})/file")
ENDPOINT = "media.file"
# The status lines Werkzeug writes ("206 PARTIAL CONTENT"), for the answers sent without it.
STATUS_LINES = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 206)}
VARY = "Cookie"  # who is asking decides the answer (Flask's session says the same)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class MediaDirect:
    """WSGI middleware: the media file route, answered without Flask; the rest to `flask`."""

    def __init__(self, app: Flask, flask: WSGIApp) -> None:
        self.flask = flask
        self.settings = app.config["SETTINGS"]
        self.db_path = self.settings.db_path
        self.guards: guards.Guards = app.extensions["guards"]
        self.secret: bytes = app.extensions["media_secret"]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        found = FILE_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if found is None or environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return self.flask(environ, start_response)
        started = time.perf_counter()
        metrics.take_queries()  # statements before this request are not its own
        rid = logs.new_request_id(environ.get("HTTP_X_REQUEST_ID"))
        token = logs.REQUEST_ID.set(rid)
        db = None
        try:
            db = thread_db(self.db_path)
            return self._answer(environ, start_response, db, found[1], rid, started)
        except Exception:  # Flask answers it as any failing request (logged, error page)
            log.exception("the direct media path failed; Flask answers instead")
            return self._to_flask(environ, start_response, rid)
        finally:
            if db is not None and db.conn.in_transaction:  # nothing may stay open in one
                db.conn.rollback()
            logs.REQUEST_ID.reset(token)

    def _to_flask(
        self, environ: dict[str, Any], start_response: StartResponse, rid: str
    ) -> Iterable[bytes]:
        environ["HTTP_X_REQUEST_ID"] = rid  # Flask's log lines carry the same id
        return self.flask(environ, start_response)

    def _answer(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        db: Database,
        media_hash: str,
        rid: str,
        started: float,
    ) -> Iterable[bytes]:
        if not self.guards.host_ok(environ.get("HTTP_HOST", "")):
            return self._to_flask(environ, start_response, rid)  # refused there, logged
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        args = dict(reversed(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)))
        user = access.identify(
            lambda: db,
            self.secret,
            authorization=authorization,
            # The header as Flask's request.cookies reads it: werkzeug.http.parse_cookie(environ)
            # decodes it as UTF-8 first and raised on any other cookie of the browser's.
            cookie=parse_cookie(environ.get("HTTP_COOKIE")).get(access.COOKIE),
            media_hash=media_hash,
            args=args,
        )
        if user is None and (authorization or not self.settings.guest):
            return self._to_flask(environ, start_response, rid)  # 401, sign-in page
        try:
            found = media.open_original(
                db, media_hash, self.settings.media_dirs, args.get("download")
            )
        except (NotFound, Unavailable) as exc:
            return self._respond(environ, start_response, media.error_answer(exc), rid, started)
        return self._send(environ, start_response, found, rid, started)

    def _send(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        found: media.Original,
        rid: str,
        started: float,
    ) -> Iterable[bytes]:
        """Answer with the open file; close it if anything fails before the server has it
        (Flask answers then, and the file would stay open until the garbage collector ran)."""
        closer: Any = found.file  # what closes it: the file, then the body that holds it
        try:
            method = environ["REQUEST_METHOD"]
            answer, headers, start, length = media.prepare(
                method, media.RequestHeaders(environ), found.size, found.mtime, found.etag,
                media.FILE_CACHE, found.disposition,
            )  # fmt: skip
            if method == "HEAD" or answer.status not in STATUS_LINES or answer.multipart:
                closer = media.answer_file(
                    environ, found.file, found.size, found.mtime, found.etag, found.content_type,
                    media.FILE_CACHE, found.disposition,
                )  # fmt: skip
                return self._respond(environ, start_response, closer, rid, started)
            # A 200 or a 206 of one range, the answer to nearly every request: no Response.
            body = closer = media.passthrough(environ, found.file, start, length)
            headers["Content-Type"] = found.content_type
            for name, value in guards.EVERY_ANSWER:
                headers.setdefault(name, value)
            headers["Vary"] = VARY
            headers["X-Request-ID"] = rid
            request_metrics.record(ENDPOINT, answer.status, started, body)
            start_response(STATUS_LINES[answer.status], list(headers.items()))
            return body
        except BaseException:
            closer.close()
            raise

    def _respond(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        response: Response,
        rid: str,
        started: float,
    ) -> Iterable[bytes]:
        guards.security_headers(response)
        response.headers["Vary"] = VARY
        response.headers["X-Request-ID"] = rid
        body = response.response if response.direct_passthrough else None
        request_metrics.record(ENDPOINT, response.status_code, started, body)
        return response(environ, start_response)


def install(app: Flask) -> None:
    """Put the direct media path in front of the app's WSGI callable."""
    app.wsgi_app = MediaDirect(app, app.wsgi_app)  # type: ignore[method-assign]
