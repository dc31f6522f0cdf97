"""A worker's HTTP side (issue 18): the segments of its sessions, for the server only.

    GET  /node/health                         "ok" (unsigned: a liveness probe, says nothing)
    GET  /node/sessions/<id>/<n>.ts           segment n of a session (signed), Range-aware;
                                              with X-LVS-Share: 1, 204 + X-LVS-Shared once it is
                                              in the shared transcode folder (when there is one)
    POST /node/sessions/<id>/stop             end a session now (signed)
    GET  /node/previews/<hash>/<name>         a preview this worker made (signed)
    DELETE /node/previews/<hash>/<kind>       the server has it: forget it (signed)

A small Flask app of its own (not the server's: no pages, no database), served by `flask
worker` (cli/worker.py) with werkzeug's threaded server. Every request but the health probe
must be signed with the node secret (services/compute/signing.py): otherwise 403 and a log line.
"""

from __future__ import annotations

import json

from flask import Flask, Response, request, send_file

from services.errors import LVSError, NotFound, TranscodeFailed, Unavailable
from services.playback.worker import BadJob, WorkerSessions
from services.previews.batch_worker import BatchWorker

SID = "<regex('[0-9a-f]{16}'):sid>"
HASH = "<regex('[0-9a-f]{16}'):media_hash>"


def _error(status: int, text: str, retry_after: int = 0) -> Response:
    response = Response(json.dumps({"error": text}) + "\n", status, mimetype="application/json")
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def make_app(sessions: WorkerSessions, batch: BatchWorker | None = None) -> Flask:
    """Return the worker's WSGI app serving `sessions` (and the previews `batch` made)."""
    from werkzeug.routing import BaseConverter

    class Regex(BaseConverter):
        def __init__(self, url_map, pattern: str) -> None:  # type: ignore[no-untyped-def]
            super().__init__(url_map)
            self.regex = pattern

    app = Flask(__name__)
    app.url_map.converters["regex"] = Regex

    @app.before_request
    def signed() -> Response | None:
        if request.path == "/node/health":
            return None
        why = sessions.refused(request.method, request.path,
                               request.headers.get("X-LVS-Expires"),
                               request.headers.get("X-LVS-Signature"), request.remote_addr)  # fmt: skip
        return _error(403, f"forbidden: {why}") if why else None

    @app.get("/node/health")
    def health() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.get(f"/node/sessions/{SID}/<int:n>.ts")
    def segment(sid: str, n: int) -> Response:
        try:
            try:
                placed = float(request.headers.get("X-LVS-Placed", "0"))
            except ValueError:
                placed = 0.0
            path = sessions.segment(sid, n, placed)
        except BadJob as exc:
            return _error(409, f"cannot take this session: {exc}")
        except NotFound as exc:
            return _error(404, str(exc))
        except Unavailable as exc:  # busy, or not ready in time
            return _error(503, str(exc), exc.retry_after or 2)
        except TranscodeFailed as exc:
            return _error(502, str(exc))
        except (OSError, LVSError) as exc:
            return _error(409, f"cannot read: {exc}")
        if request.headers.get("X-LVS-Share") == "1" and sessions.share(sid, n, path):
            response = Response(status=204)
            response.headers["X-LVS-Shared"] = "1"
            response.headers["X-LVS-Worker"] = sessions.worker_id
            return response
        response = send_file(path, mimetype="video/mp2t", conditional=True, max_age=3600)
        response.headers["X-LVS-Worker"] = sessions.worker_id
        return response

    @app.post(f"/node/sessions/{SID}/stop")
    def stop(sid: str) -> Response:
        sessions.end(sid, "stopped by the server")
        return Response(status=204)

    @app.get(f"/node/previews/{HASH}/<name>")
    def preview(media_hash: str, name: str) -> Response:
        path = batch.file(media_hash, name) if batch is not None else None
        if path is None:
            return _error(404, "no such preview on this worker")
        return send_file(path, mimetype="application/octet-stream", max_age=0)

    @app.delete(f"/node/previews/{HASH}/<kind>")
    def forget_preview(media_hash: str, kind: str) -> Response:
        if batch is not None:
            batch.forget(media_hash, kind)
        return Response(status=204)

    return app
