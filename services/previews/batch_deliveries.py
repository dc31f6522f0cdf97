"""The server's side of finished preview work (issue 18): fetch it, check it, keep it.

Workers report each job on DONE_QUEUE (services/previews/batch.py). The server process that
feeds the job queue (services/background.py) consumes that queue with a small Dramatiq worker
of its own (`Deliveries.start`; only that queue); each report is handled by `Deliveries.done`:

- a report that fails its checks, or on a job whose sent marker (batch_server.sent_key) is
  gone (never sent by this server, or already handled), is refused with a log line;
- media no longer in the library: dropped with a log line;
- "failed" (the content cannot give one): recorded as the local runner records it, so it is
  not sent again for that content; "unavailable" (the worker cannot read it): a log line;
- "made": unless this server has the files already (a job done twice: nothing is written), it
  fetches each file from the worker that made it — the URL that worker announced in Redis,
  never one from the report — with a signed GET (the node secret, as segments), at most
  batch.MAX_BYTES, all of a report's files within FETCH_TIME (a worker trickling bytes is cut
  off: TimeoutError, Dramatiq tries again), and keeps it only when its SHA-256 is the
  reported one and it is what its name says (a JPEG, the sprite's WebVTT, an H.264 MP4). It
  is written under a temporary name and renamed into the content-addressed cache, under the
  generation lock the local runner takes, and recorded in the database as the local runner
  records it; the worker is then told to forget it. Anything refused is logged and nothing is written.

A worker that cannot be reached but is alive makes the handler raise (Dramatiq tries again,
at-least-once); a worker gone leaves the job to be sent again (its marker is removed).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sqlite_utils import Database

from config import Settings
from services import db as dbmod
from services.compute import broker, registry, signing
from services.compute.bodies import cut_off_after, read_all
from services.compute.conn import redis_link
from services.previews import batch, previews
from services.previews.batch import BadJob, Done
from services.previews.batch_server import sent_key
from services.previews.thumbnails import generation_lock, write_bytes

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds to connect to a worker and between its bytes
FETCH_TIME = 60.0  # seconds a report's files may take to come, all together (generation lock held)
POLL_MS = 100
MAX_PIXELS = 64_000_000
VTT_LINE = re.compile(
    r"WEBVTT|\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}|sprite\.jpg#xywh=\d+,\d+,\d+,\d+|"
)

_current: Deliveries | None = None


class Refused(Exception):
    """A delivered file that is not kept (wrong digest, wrong type, too big, not there)."""


def _done(message: Any) -> None:
    """The DONE_ACTOR: hand the report to this process's Deliveries."""
    if _current is not None:
        _current.done(message)


class Deliveries:
    """Handle the workers' reports on preview jobs; see the module docstring."""

    def __init__(self, settings: Settings, lost: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.lost = lost  # a job whose worker went away: look for missing work again (resend)
        self.link = redis_link(settings.redis_url)
        self._local = threading.local()
        self._worker: Any = None

    def start(self) -> Deliveries:
        """Consume DONE_QUEUE with a Dramatiq worker of two threads (this queue only)."""
        import dramatiq

        global _current
        _current = self
        broker.actor(batch.DONE_ACTOR, queue=batch.DONE_QUEUE, max_retries=5, min_backoff=1000,
                     max_backoff=15000)(_done)  # fmt: skip
        b = broker.get_broker(self.settings.redis_url)
        b.declare_queue(batch.DONE_QUEUE)
        self._worker = dramatiq.Worker(b, queues={batch.DONE_QUEUE}, worker_threads=2,
                                       worker_timeout=POLL_MS)  # fmt: skip
        self._worker.start()
        return self

    def stop(self) -> None:
        global _current
        if self._worker is not None:
            self._worker.stop(timeout=5000)
            # A stopped Dramatiq worker stays among its broker's middleware (it would be given
            # consumers for queues declared later): the next Deliveries in this process starts
            # a worker of its own.
            b = self._worker.broker
            b.middleware[:] = [
                m for m in b.middleware if getattr(m, "worker", None) is not self._worker
            ]
            self._worker = None
        if _current is self:
            _current = None

    def done(self, message: Any) -> None:
        """Handle one worker's report (the body of DONE_ACTOR)."""
        try:
            d = batch.parse_done(message)
        except BadJob as exc:
            log.warning("refused a preview report: %s", exc)
            return
        url = self._worker_url(d.worker)
        if not self._sent(d):
            log.warning("dropped a report from worker %s: the %s of %s is not out with the "
                        "workers (never sent, or handled already)", d.worker, d.kind,
                        d.media_hash)  # fmt: skip
            self._forget(d, url)
            return
        lost = self._handle(d, url)  # raises only to have Dramatiq try again
        self._finish(d, url)
        if lost:
            self.lost()

    def _sent(self, d: Done) -> bool:
        """True while the job's sent marker is there: only a job this server sent (and has not
        had a report on) is answered (anyone with the Redis password can put a report in the
        queue; a forged "failed" would stop the preview from being made)."""
        client = self.link.client()
        if client is None:
            raise ConnectionError("Redis is unreachable")  # Dramatiq tries again
        try:
            return bool(client.exists(sent_key(d.kind, d.media_hash)))
        except self.link.errors as exc:
            self.link.failed(exc)
            raise

    def _handle(self, d: Done, url: str | None) -> bool:
        """Act on a checked report; return True when its worker went away before the files
        were fetched (the job is to be sent again)."""
        what = f"{d.kind} of {d.media_hash} from worker {d.worker}"
        found = previews.target(self._db(), d.media_hash)
        if found is None:
            log.warning("%s dropped: no such media in the library any more", what)
            return False
        target = found[0]
        if d.kind in previews.VIDEO_ONLY and target.kind != "video":
            log.warning("refused the %s: not a video", what)
            return False
        if d.status == "unavailable":
            log.warning("%s: the worker cannot make it: %s", what, d.reason)
            return False
        if d.status == "failed":
            log.warning("%s failed: %s", what, d.reason)
            previews.record(self._db(), target, d.kind, "failed", d.reason or "failed", d.seconds)
            return False
        data_dir = self.settings.data_dir
        if previews.is_made(data_dir, d.kind, d.media_hash):
            return False  # made here or delivered before: nothing to write
        if url is None:
            log.warning("%s: the worker is gone before it was fetched; it will be sent again", what)
            return True
        with generation_lock(data_dir, d.kind, d.media_hash):
            if previews.is_made(data_dir, d.kind, d.media_hash):
                return False
            try:
                deadline = time.monotonic() + FETCH_TIME
                got = {name: self._fetch(url, d, name, deadline) for name in batch.FILES[d.kind]}
            except Refused as exc:
                log.warning("refused the %s: %s (nothing written)", what, exc)
                return False
            except (OSError, http.client.HTTPException) as exc:
                if self._worker_url(d.worker) is not None:
                    raise  # alive: Dramatiq tries again
                log.warning("%s: the worker went away (%s); it will be sent again", what, exc)
                return True
            for name, path in batch.paths(data_dir, d.kind, d.media_hash).items():
                write_bytes(got[name], path)  # the sprite's VTT last: is_made needs both
            previews.record(self._db(), target, d.kind, "made", None, d.seconds)
        log.info("%s kept (%.2f s on the worker)", what, d.seconds)
        return False

    def _fetch(self, url: str, d: Done, name: str, deadline: float) -> bytes:
        """Return a file the worker made, checked; Refused when it is not what was reported,
        OSError or HTTPException when it has not all come by `deadline` (time.monotonic())."""
        path = f"/node/previews/{d.media_hash}/{name}"
        parts = urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=TIMEOUT)
        try:
            conn.connect()
            sock = conn.sock  # http.client forgets it when the answer closes the connection
            assert sock is not None
            with cut_off_after(sock, deadline - time.monotonic()):  # headers trickled too
                conn.request("GET", parts.path.rstrip("/") + path,
                             headers=signing.headers(self.settings.node_secret, "GET", path))  # fmt: skip
                resp = conn.getresponse()
                if resp.status != 200:
                    raise Refused(f"the worker answered {resp.status} for {name}")
                cap = batch.MAX_BYTES[name]
                data = read_all(resp, sock, cap, deadline, TIMEOUT)
        finally:
            conn.close()
        if len(data) > cap:
            raise Refused(f"{name} is larger than {cap} bytes")
        if hashlib.sha256(data).hexdigest() != d.files[name]:
            raise Refused(f"{name} is not the file the report names (SHA-256 differs)")
        check(name, data)
        return data

    def _finish(self, d: Done, url: str | None) -> None:
        """Drop the job's sent marker and tell the worker to forget its copy."""
        client = self.link.client()
        if client is not None:
            try:
                client.delete(sent_key(d.kind, d.media_hash))
            except self.link.errors as exc:
                self.link.failed(exc)
        self._forget(d, url)

    def _forget(self, d: Done, url: str | None) -> None:
        """Tell the worker to forget its copy of the report's files."""
        if url is None:
            return
        path = f"/node/previews/{d.media_hash}/{d.kind}"
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
        try:
            conn.request("DELETE", parts.path.rstrip("/") + path,
                         headers=signing.headers(self.settings.node_secret, "DELETE", path))  # fmt: skip
            conn.getresponse().read()
        except (OSError, http.client.HTTPException) as exc:
            log.info("worker %s not told to forget the %s of %s: %s", d.worker, d.kind,
                     d.media_hash, exc)  # fmt: skip
        finally:
            conn.close()

    def _worker_url(self, worker_id: str) -> str | None:
        """Return the URL a live worker announced, None when it is not alive."""
        client = self.link.client()
        if client is None:
            return None
        try:
            text = client.get(registry.PREFIX + worker_id)
        except self.link.errors as exc:
            self.link.failed(exc)
            return None
        info = registry.WorkerInfo.from_json(text) if text else None
        return info.url if info is not None and info.id == worker_id else None

    def _db(self) -> Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = dbmod.connect(self.settings.db_path)
        return db


def check(name: str, data: bytes) -> None:
    """Raise Refused unless `data` is what a preview file of this name is."""
    if name.endswith(".jpg"):
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise Refused(f"{name} is too large a picture")
                im.verify()
        except Refused:
            raise
        except Exception as exc:
            raise Refused(f"{name} is not a JPEG ({type(exc).__name__})") from None
    elif name.endswith(".vtt"):
        try:
            lines = data.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            raise Refused(f"{name} is not UTF-8 text") from None
        if lines[0] != "WEBVTT" or not all(VTT_LINE.fullmatch(line) for line in lines):
            raise Refused(f"{name} is not a sprite's WebVTT")
    else:
        _check_mp4(name, data)


def _check_mp4(name: str, data: bytes) -> None:
    import av

    try:
        with av.open(io.BytesIO(data), format="mp4") as c:
            kinds = [(s.type, s.codec_context.name) for s in c.streams]
    except Exception as exc:
        raise Refused(f"{name} is not an MP4 ({type(exc).__name__})") from None
    if kinds != [("video", "h264")]:
        raise Refused(f"{name} is not a silent H.264 clip: {kinds}")
