"""`flask worker`: run a transcode/preview worker for a server on another machine (issue 18);
`flask workers`: what the workers and their queues are doing, as the dashboard shows it.

    LVS_REDIS_URL=redis://:PASSWORD@server:6379/0 LVS_NODE_SECRET=… LVS_MEDIA_DIRS=/media \\
        flask --app app worker --bind 0.0.0.0:8091 --url http://THIS-MACHINE:8091

The worker needs the same code, the media mounted read-only (at the same path as on the
server, or mapped with LVS_PATH_MAP), a scratch folder (LVS_WORKER_SCRATCH) and no database.
It announces itself in Redis, takes session jobs and batch work from the Dramatiq queues, and
serves its sessions' segments on --bind to the server (signed requests only). SIGTERM or
Ctrl-C stops it cleanly: its sessions end, the server places them elsewhere.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import socket
import threading

import click
from flask import Flask
from flask.cli import with_appcontext

from cli import node_http as node_app
from cli.fmt import app_settings, table
from cli.node_server import NodeServer
from services.compute import broker, registry, status
from services.compute.conn import redacted, redis_link
from services.compute.node import Node
from services.compute.settings import ComputeSettings
from services.library.probe_pool import ProbePool
from services.playback import encoders
from services.playback import worker as playback_worker
from services.previews import batch as preview_batch
from services.previews.batch_worker import BatchWorker


def _bind(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter("HOST:PORT, e.g. 0.0.0.0:8091")
    return host or "0.0.0.0", int(port)


@click.command("worker")
@click.option(
    "--bind",
    "bind",
    default="0.0.0.0:8091",
    show_default=True,
    help="HOST:PORT the worker's HTTP server (segments for the server) listens on.",
)
@click.option(
    "--url",
    default="",
    help="Base URL the server reaches this worker at (default: http://<this host's name>:<port>).",
)
@click.option("--id", "worker_id", default="", help="Worker id ([a-z0-9-]); default: host-port.")
@click.option(
    "--threads",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Dramatiq threads for session jobs; preview jobs get their own, as many as preview "
    "processes (at most this, and LVS_PROBE_WORKERS or one per CPU up to 4).",
)
def worker_command(bind: str, url: str, worker_id: str, threads: int) -> None:  # fmt: skip
    """Run a worker for a server on another machine (needs LVS_REDIS_URL and LVS_NODE_SECRET)."""
    faulthandler.enable(all_threads=True)  # a fatal signal (PyAV, ffmpeg's libraries): tracebacks
    settings = app_settings()
    if not settings.redis_url:
        raise click.ClickException("LVS_REDIS_URL is empty: a worker needs the server's Redis")
    host, port = _bind(bind)
    if port == 0:
        with socket.socket() as s:
            s.bind((host if host != "0.0.0.0" else "127.0.0.1", 0))
            port = s.getsockname()[1]
    worker_id = worker_id or registry.default_id(port)
    if not registry.ID_RE.fullmatch(worker_id):
        raise click.ClickException(f"--id {worker_id!r}: use lower-case letters, digits and -")
    url = (url or f"http://{socket.gethostname()}:{port}").rstrip("/")
    if problem := registry.origin_problem(url):
        raise click.ClickException(f"--url: {problem} (the server would ignore this worker)")
    choice = encoders.detect()
    scratch = settings.worker_scratch or playback_worker.default_scratch(worker_id)
    cpus = os.cpu_count() or 1
    capacity = settings.effective_transcode_max()
    tc = playback_worker.make_transcoder(
        scratch, max_encoders=capacity, cache_bytes=int(settings.transcode_cache_gb * 1e9),
        idle=settings.transcode_idle, encoder=choice.name, device=choice.device)  # fmt: skip
    link = redis_link(settings.redis_url)
    sessions = playback_worker.WorkerSessions(
        worker_id, tc, roots=settings.media_dirs, path_map=settings.path_map,
        secret=settings.node_secret, link=link, shared=settings.transcode_shared)  # fmt: skip
    broker.actor(playback_worker.OPEN_ACTOR, queue=registry.queue_of(worker_id),
                 max_retries=0)(sessions.open)  # fmt: skip
    pool = ProbePool(min(threads, settings.effective_probe_workers()), settings.probe_timeout)
    previews = BatchWorker(worker_id, scratch, settings, pool.run)
    deadline = max(settings.thumbnail_timeout, settings.sprite_timeout) + 120
    broker.actor(preview_batch.MAKE_ACTOR, queue=broker.BATCH_QUEUE, max_retries=5,
                 min_backoff=2000, max_backoff=30000,
                 time_limit=int(deadline * 1000))(previews.make)  # fmt: skip
    info = registry.WorkerInfo(
        id=worker_id, host=socket.gethostname(), url=url, cpus=cpus,
        encoders=tuple(dict.fromkeys((choice.name, encoders.SOFTWARE))),
        hardware=choice.hardware, capacity=capacity, started=registry.now())  # fmt: skip
    node = Node(settings.redis_url, info, sessions=sessions.count, threads=threads,
                batch_threads=pool.size)  # fmt: skip
    server = NodeServer(host, port, node_app.make_app(sessions, previews))
    threading.Thread(target=server.serve_forever, name="node-http", daemon=True).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    node.start()
    threading.Thread(target=sessions.watch_leases, name="leases", daemon=True).start()
    if settings.transcode_shared is not None:
        threading.Thread(target=sessions.watch_share, name="share", daemon=True).start()
    shared = f", shared folder {settings.transcode_shared}" if settings.transcode_shared else ""
    click.echo(f"worker {worker_id} serving {url} (scratch {scratch}{shared}, Redis "
               f"{redacted(settings.redis_url)}); Ctrl-C stops it", err=True)  # fmt: skip
    done.wait()
    click.echo(f"worker {worker_id} stopping", err=True)
    node.stop()
    sessions.close()
    pool.close(kill=True)
    server.shutdown()


def _ago(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s ago"
    return f"{int(seconds)} s ago" if seconds < 120 else f"{int(seconds // 60)} min ago"


@click.command("workers")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as the dashboard's JSON has).")
@with_appcontext
def workers_command(as_json: bool) -> None:
    """Show the workers on other machines and their queues (exit 1: Redis is not answering)."""
    cfg = ComputeSettings.of(app_settings())
    if not cfg.enabled:
        if as_json:
            click.echo(json.dumps({"enabled": False, "redis": "single node"}))
        else:
            click.echo("single node (LVS_REDIS_URL is empty)")
        return
    snap = status.snapshot(cfg)
    if as_json:
        click.echo(json.dumps({**snap.as_dict(), "local_work": cfg.local_work}, indent=1))
    else:
        click.echo(f"Redis {snap.url}: {snap.redis}")
        rows = snap.rows()
        if rows:
            click.echo(table(
                ["host", "worker", "state", "sessions", "leases", "load", "cpus", "encoders",
                 "heartbeat"],
                [[r.info.host, r.info.id, r.state, f"{r.info.sessions}/{r.info.capacity}",
                  str(r.leases), f"{r.info.load:.2f}", str(r.info.cpus),
                  ",".join(r.info.encoders), _ago(r.age)] for r in rows]))  # fmt: skip
        elif snap.redis == "ok":
            click.echo("no worker has announced itself: the server does all the work")
        if snap.queues:
            click.echo()
            click.echo(table(["queue", "waiting", "delayed", "running", "dead"],
                             [[name, str(q.waiting), str(q.delayed), str(q.running), str(q.dead)]
                              for name, q in snap.queues.items()]))  # fmt: skip
    if snap.redis != "ok":
        raise click.ClickException(snap.notice or f"Redis at {snap.url} is not answering")


def register(app: Flask) -> None:
    app.cli.add_command(worker_command)
    app.cli.add_command(workers_command)
