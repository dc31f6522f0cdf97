"""gunicorn settings: `gunicorn -c gunicorn.conf.py` (scripts/run does this).

- gthread workers: a playing video holds a thread for as long as it streams; sync workers would
  be pinned by a few streams and pages would wait seconds (SPEC §5 traps). gunicorn_worker.py's
  class is gthread that keeps a kept-alive connection on its thread while the client sends its
  next request at once (a player's burst of ranges): one hand-off instead of three per request.
- Background services start in every worker through services/background.py, which makes one
  of them the owner (an exclusive flock on `<data dir>/background.lock`): it scans at start,
  watches the folders and works through missing thumbnails; the other workers only make what
  their own requests wait for. A replacement worker takes the lock when the owner dies.
- The address to open is printed once the server listens.
- A worker killed by a fatal signal (SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL) first writes
  every thread's Python traceback to the error log (faulthandler), next to the arbiter's
  "Worker (pid:N) was sent SIGBUS!".
"""

from __future__ import annotations

import faulthandler
import gc
import os
import socket
import sys
from typing import Any

from config import load_settings
from services.errors import LVSError
from services.people.tls import cert_files

try:
    _settings = load_settings()
    # HTTPS (passkeys need it on the LAN): LVS_TLS=on with a certificate, or self-signed.
    _tls = cert_files(_settings.tls, _settings.tls_cert, _settings.tls_key, _settings.data_dir)
except LVSError as exc:
    raise SystemExit(f"Error: {exc}") from None
if _tls:
    certfile, keyfile = str(_tls[0]), str(_tls[1])
_scheme = "https" if _tls else "http"

_host = f"[{_settings.host}]" if ":" in _settings.host else _settings.host
bind = [f"{_host}:{_settings.port}"]
wsgi_app = "app:create_app()"
worker_class = "gunicorn_worker.Worker"
workers = _settings.workers
threads = _settings.threads
keepalive = 5
timeout = 60
graceful_timeout = 10
# No proxy is configured: trust no X-Forwarded-* header (SPEC §5, Host and XFF).
forwarded_allow_ips = ""
loglevel = _settings.log_level.lower()
accesslog = "-" if _settings.log_level == "DEBUG" else None
# The request id the app logs with (and sends as X-Request-ID) ties an access line to app lines.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
errorlog = "-"
# gunicorn's control socket sits at one path per user: a second server would take it over.
control_socket_disable = True
proc_name = "lvs"
# The workers' heartbeat files on tmpfs: a slow disk must not make the arbiter kill a busy worker.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# No preload: each worker opens its own database connections, threads and worker pool.
preload_app = False


def _lan_address() -> str | None:
    """Return this machine's address on the LAN (the one a default route would use)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent by a UDP connect
            return s.getsockname()[0]
    except OSError:
        return None


def when_ready(server: Any) -> None:
    """Say where to point a browser, now that the server listens."""
    port = _settings.port
    if _settings.host in ("0.0.0.0", "::"):
        lan = _lan_address()
        where = f"{_scheme}://{lan}:{port}/ (this machine: {_scheme}://localhost:{port}/)"
        where = where if lan else f"{_scheme}://localhost:{port}/"
    else:
        where = f"{_scheme}://{_host}:{port}/"
    server.log.info("Local Video Server is ready. Open %s", where)


def post_fork(server: Any, worker: Any) -> None:
    """Say where a worker was when a fatal signal killed it: all threads, into the error log."""
    faulthandler.enable(file=sys.stderr, all_threads=True)


def post_worker_init(worker: Any) -> None:
    """Start this worker's background services (services/background.py picks the one owner)."""
    from services import background

    app = worker.wsgi
    app.extensions["background"] = background.start(app.config["SETTINGS"])
    if app.extensions["background"].owner:
        from blueprints import metrics
        from services.operate import dashboard

        dashboard.publish_owner(app.extensions["background"])  # for the other workers' dashboards
        metrics.serve_separately(app)  # LVS_METRICS_PORT, from one process only
    # Everything loaded so far lives as long as the worker: keep it out of the collector's
    # full passes, which otherwise walk it every few hundred requests (a 15 ms page at p99.9).
    gc.freeze()


def worker_exit(server: Any, worker: Any) -> None:
    """Stop the worker's background services cleanly (the owner's lock goes with them)."""
    app = getattr(worker, "wsgi", None)
    running = app.extensions.pop("background", None) if app is not None else None
    if running is not None:
        running.stop()
    from services import metrics

    metrics.REGISTRY.forget()  # the dashboard stops counting this worker at once
