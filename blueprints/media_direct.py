"""`GET|HEAD /media/<media_hash>/file` (and routes added with add_route) answered in front of Flask.

A playing video asks for its file range after range; a VR player seeking asks dozens of times a
second. Through Flask each of those paid for the request context, the cookie session, fourteen
before/after hooks and the Prometheus exporter — several times the cost of the sendfile itself
(bench B5). This WSGI middleware answers those routes directly, deciding exactly as the Flask
route would by calling the same functions:

- the Host check and the security headers: blueprints/guards.py;
- who is asking: access.identify_memo (API token, session cookie, signed URL — access.identify's
  decision, kept per thread while the database is unchanged), or a guest when LVS_GUEST=on — as
  the guard allows them;
- the file: media.open_original (media_files.open_media: inside a library, checked once open;
  where its copies are kept in the same memo);
- the answer: media.answer_file (services/playback/ranges.py; sendfile through wsgi.file_wrapper),
  with media.error_answer's 404 and 503 + Retry-After; the request nearly every one is — a plain
  GET or one range, no conditions — in one step (_simple), with the same answer;
- metrics: the latency under the route's endpoint, its SQL statements, the active-stream count,
  and a request id (kept from a sane X-Request-ID) in the logs and the answer.

Revocation stays immediate: the memo (services.db.memo) is emptied by any commit to the
database, by any process, seen through SQLite's own change counter (the wal-index header, read
from a mapping of the -shm file: no system call), so a session ended, an account disabled or
given another role, a token revoked or a file moved counts from the very next request on every
worker (tests/test_media_revocation.py).

Whatever it does not answer itself goes to Flask untouched: every other route and method, a
refused Host, a request without valid credentials (the guard's 401, redirect or login page), an
opener's None. Flask's url_map still has each route (`media.file`, …), for url_for and the guard.

More lean routes (a transcoder's HLS segments): add_route(app, pattern, endpoint, opener, fast)
— the opener gets a DirectRequest (the signed-in user, the thread's connection and memo, the
match) and returns the open file as a media.Original (with its Cache-Control), or None for
Flask; `fast`, if given, opens it as a bare descriptor (Opened) for the one-step answer.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, Response
from sqlite_utils import Database
from werkzeug.http import HTTP_STATUS_CODES

from blueprints import access, guards, media
from blueprints import metrics as request_metrics
from blueprints.common import thread_db
from config import Settings
from services import db as dbmod
from services import metrics
from services.errors import NotFound, Unavailable
from services.operate import logs
from services.playback import media_files, ranges

log = logging.getLogger(__name__)

PREFIX = "/media/"  # every direct route's path starts so
FILE_PATH = r"/media/(?P<media_hash>[0-9a-f]{16})/file"
ENDPOINT = "media.file"
ONE_RANGE = re.compile(r"bytes=([0-9]{1,18})-([0-9]{0,18})")  # what players send
# The headers every answer carries that media.prepare does not set (it sets nosniff).
EVERY_ANSWER_AFTER = tuple((n, v) for n, v in guards.EVERY_ANSWER if n != "X-Content-Type-Options")
ROUTES = "media_direct.routes"  # app.extensions: the direct routes (add_route)
# The status lines Werkzeug writes ("206 PARTIAL CONTENT"), for the answers sent without it.
STATUS_LINES = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 206)}
VARY = "Cookie"  # who is asking decides the answer (Flask's session says the same)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(slots=True)  # not frozen: a frozen dataclass costs ~2 µs to make, once a request
class DirectRequest:
    """A request a direct route answers, as the lean path has read it: for the route's opener."""

    environ: dict[str, Any]
    db: Database  # this thread's connection
    memo: dict[Any, Any]  # services.db.memo: values kept while the database is unchanged
    match: re.Match[str]  # the route's pattern on PATH_INFO
    media_hash: str
    args: dict[str, str]  # the query string, first value of each name (as request.args.get)
    user: access.Account | None  # None: a guest (LVS_GUEST=on)
    settings: Settings


# What a direct route does with a request: the open file and its answer's attributes, or None
# to let Flask answer it (something the lean path does not do); NotFound and Unavailable answer
# 404 and 503 as the media blueprint does.
Opener = Callable[[DirectRequest], "media.Original | None"]


# A file opened for the one-step answer (_simple): a bare descriptor, which the lean path closes,
# its stat, and the answer's ETag, Content-Type, Cache-Control and Content-Disposition (or None),
# as media.Original has them. A plain tuple: made once a request, where a NamedTuple costs more.
Opened = tuple[int, os.stat_result, str, str, str, str | None]

# The same as an Opener, for a plain GET or one range (the request a player sends many times a
# second), as cheaply as it can: an Opened, or None — nothing done, nothing open — whenever
# anything is unusual, and the Opener then decides (and raises, logs, or hands on to Flask).
# It gets what a DirectRequest holds, but no DirectRequest (not made for the one-step answer):
# the thread's connection, its memo, the route's match, the media hash, the query, the user.
FastOpener = Callable[
    [Database, dict[Any, Any], re.Match[str], str, dict[str, str], "access.Account | None"],
    Opened | None,
]


@dataclass(frozen=True)
class Route:
    """A GET|HEAD route answered with a file in front of Flask."""

    pattern: re.Pattern[str]  # on PATH_INFO, fullmatch; its group `media_hash` names the item
    endpoint: str  # the Flask endpoint of the same route (metrics, the guard's decisions)
    opener: Opener
    fast: FastOpener | None = None


def add_route(
    app: Flask, pattern: str, endpoint: str, opener: Opener, fast: FastOpener | None = None
) -> None:
    """Answer GET|HEAD of `pattern` (a regex with a `media_hash` group) on the lean path.

    For files a player asks for many times a second — the original's ranges, HLS segments. The
    request is signed in (cached sign-in decision, immediate revocation), Host-checked, counted
    and answered per RFC 9110 (Range, conditional requests, HEAD) exactly as the media route
    does; `opener` only finds and opens the file (see Opener), `fast` (see FastOpener) the same
    for the one-step answer. The same route must exist in Flask under `endpoint`: it answers
    whatever the lean path hands on (no or bad credentials, a foreign Host, an opener's None).
    A signed media URL is checked against `media_hash`.
    """
    routes: list[Route] = app.extensions.setdefault(ROUTES, [])
    routes.append(Route(re.compile(pattern), endpoint, opener, fast))


def _open_file(req: DirectRequest) -> media.Original:
    return media.open_original(
        req.db, req.media_hash, req.settings.media_dirs, req.args.get("download"), req.memo
    )


def _file_opener(configured: frozenset[str]) -> FastOpener:
    """The original file's FastOpener: where its copies are from the memo, media_files.open_fast
    (the same checks as open_media, in one frame)."""

    def fast(
        db: Database,
        memo: dict[Any, Any],
        found: re.Match[str],
        media_hash: str,
        args: dict[str, str],
        user: access.Account | None,
    ) -> Opened | None:
        opened = media_files.open_fast(
            media_files.remembered_copies(db, media_hash, configured, memo)
        )
        if opened is None:
            return None
        fd, st, copy = opened
        disposition = media_files.content_disposition(
            copy.name, attachment=args.get("download") == "1"
        )
        etag = ranges.make_etag(media_hash, st.st_size, st.st_mtime_ns)
        return fd, st, etag, copy.content_type, media.FILE_CACHE, disposition

    return fast


class MediaDirect:
    """WSGI middleware: the direct routes answered without Flask; the rest to `flask`."""

    def __init__(self, app: Flask, flask: WSGIApp) -> None:
        self.flask = flask
        self.settings: Settings = app.config["SETTINGS"]
        self.db_path = self.settings.db_path
        self.guards: guards.Guards = app.extensions["guards"]
        self.secret: bytes = app.extensions["media_secret"]
        self.routes: list[Route] = app.extensions.setdefault(ROUTES, [])

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX) or environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return self.flask(environ, start_response)
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found is not None:
                break
        else:
            return self.flask(environ, start_response)
        started = time.perf_counter()
        metrics.take_queries()  # statements before this request are not its own
        rid = logs.new_request_id(environ.get("HTTP_X_REQUEST_ID"))
        token = logs.REQUEST_ID.set(rid)
        db = None
        try:
            db = thread_db(self.db_path)
            return self._answer(environ, start_response, db, route, found, rid, started)
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
        route: Route,
        found: re.Match[str],
        rid: str,
        started: float,
    ) -> Iterable[bytes]:
        if not self.guards.host_ok(environ.get("HTTP_HOST", "")):
            return self._to_flask(environ, start_response, rid)  # refused there, logged
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        query = environ.get("QUERY_STRING", "")
        args = dict(reversed(parse_qsl(query, keep_blank_values=True))) if query else {}
        media_hash = found["media_hash"]
        memo = dbmod.memo(db)  # emptied by any commit: revocation counts at once
        user = access.identify_memo(
            memo,
            db,
            self.secret,
            authorization=authorization,
            cookie_header=environ.get("HTTP_COOKIE"),
            media_hash=media_hash,
            args=args,
        )
        if user is None and (authorization or not self.settings.guest):
            return self._to_flask(environ, start_response, rid)  # 401, sign-in page
        # The request a player sends many times a second: a GET, whole or one range
        # `bytes=A-B` / `bytes=A-`, without conditions — answered in one step (_simple).
        spec = environ.get("HTTP_RANGE")
        one = None if spec is None else ONE_RANGE.fullmatch(spec)
        if (
            route.fast is not None
            and environ["REQUEST_METHOD"] == "GET"
            and (spec is None or one is not None)
            and "HTTP_IF_MATCH" not in environ
            and "HTTP_IF_NONE_MATCH" not in environ
            and "HTTP_IF_MODIFIED_SINCE" not in environ
            and "HTTP_IF_UNMODIFIED_SINCE" not in environ
            and "HTTP_IF_RANGE" not in environ
        ):
            opened = route.fast(db, memo, found, media_hash, args, user)
            if opened is not None:
                sent = self._simple(environ, start_response, opened, one, route.endpoint, rid,
                                    started)  # fmt: skip
                if sent is not None:
                    return sent
        request = DirectRequest(environ, db, memo, found, media_hash, args, user, self.settings)
        try:
            opened = route.opener(request)
        except (NotFound, Unavailable) as exc:
            answer = media.error_answer(exc)
            return self._respond(environ, start_response, answer, route.endpoint, rid, started)
        if opened is None:
            return self._to_flask(environ, start_response, rid)
        return self._send(environ, start_response, opened, route.endpoint, rid, started)

    def _simple(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        opened: Opened,
        one: re.Match[str] | None,
        endpoint: str,
        rid: str,
        started: float,
    ) -> Iterable[bytes] | None:
        """Answer a GET without conditions for the whole file (`one` None) or one range (`one`:
        ONE_RANGE's match) with the file a FastOpener opened, in one frame — or close it and
        return None for the general way (a 416). The same answer as media.prepare and _send
        give (tests/test_media_direct.py and test_hls.py compare them with Flask's), in fewer
        steps: in a busy worker a request's Python costs several times what it does alone
        (bench B5, B9)."""
        fd, st, etag, content_type, cache_control, disposition = opened
        try:
            size = st.st_size
            if one is None:
                status, start, length = 200, 0, size
            else:
                first, last = int(one[1]), int(one[2]) if one[2] else size - 1
                if one[2] and last < first:  # an invalid range set is ignored: the whole file
                    status, start, length = 200, 0, size
                elif first >= size:
                    os.close(fd)  # 416: the general way
                    return None
                else:
                    last = min(last, size - 1)
                    status, start, length = 206, first, last - first + 1
            headers = [
                ("Accept-Ranges", "bytes"),
                ("ETag", etag),
                ("Last-Modified", ranges.http_date(int(st.st_mtime))),
                ("Cache-Control", cache_control),
                ("X-Content-Type-Options", "nosniff"),
            ]
            if disposition:
                headers.append(("Content-Disposition", disposition))
            if status == 206:
                headers.append(("Content-Range", f"bytes {start}-{last}/{size}"))
            headers.append(("Content-Length", str(length)))
            headers.append(("Content-Type", content_type))
            headers.extend(EVERY_ANSWER_AFTER)
            headers.append(("Vary", VARY))
            headers.append(("X-Request-ID", rid))
            if start:
                os.lseek(fd, start, os.SEEK_SET)
            raw = media.RawFile(fd)
        except BaseException:
            os.close(fd)
            raise
        body: Any = media.Bounded(raw, length, environ.get("gunicorn.socket"), start)
        try:
            wrapper = environ.get("wsgi.file_wrapper")
            if wrapper is not None:
                body = wrapper(body, media.CHUNK)
            request_metrics.record(endpoint, status, started, body)
            start_response(STATUS_LINES[status], headers)
        except BaseException:
            body.close()
            raise
        return body

    def _send(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        found: media.Original,
        endpoint: str,
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
                found.cache_control, found.disposition,
            )  # fmt: skip
            if method == "HEAD" or answer.status not in STATUS_LINES or answer.multipart:
                closer = media.answer_file(
                    environ, found.file, found.size, found.mtime, found.etag, found.content_type,
                    found.cache_control, found.disposition,
                )  # fmt: skip
                return self._respond(environ, start_response, closer, endpoint, rid, started)
            # A 200 or a 206 of one range, the answer to nearly every request: no Response.
            body = closer = media.passthrough(environ, found.file, start, length)
            headers["Content-Type"] = found.content_type
            for name, value in guards.EVERY_ANSWER:
                headers.setdefault(name, value)
            headers["Vary"] = VARY
            headers["X-Request-ID"] = rid
            request_metrics.record(endpoint, answer.status, started, body)
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
        endpoint: str,
        rid: str,
        started: float,
    ) -> Iterable[bytes]:
        guards.security_headers(response)
        response.headers["Vary"] = VARY
        response.headers["X-Request-ID"] = rid
        body = response.response if response.direct_passthrough else None
        request_metrics.record(endpoint, response.status_code, started, body)
        return response(environ, start_response)


def install(app: Flask) -> None:
    """Put the direct media path in front of the app's WSGI callable, answering the original
    file's route (and any route added with add_route, before or after)."""
    configured = frozenset(map(str, app.config["SETTINGS"].media_dirs))
    add_route(app, FILE_PATH, ENDPOINT, _open_file, _file_opener(configured))
    app.wsgi_app = MediaDirect(app, app.wsgi_app)  # type: ignore[method-assign]
