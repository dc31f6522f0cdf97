"""HLS sessions on workers on other machines (issue 18): the server's side.

`RemoteTranscoder` has the interface of `LocalTranscoder` (open, session, segment, stop,
sessions) and wraps one: the viewer's session record stays in the server's own session files
(so any server process answers, and the session survives Redis going away); which worker runs
it is a placement file beside it (`hls/remote/<id>.json`) and a lease in Redis
(services/compute/leases.py) that the worker watches.

- Placing: a session's first segment request (or one after its worker was lost) chooses among
  the live workers (`registry.choose`: hardware with room first, then the least busy; sessions
  counted from announcements and from leases just given). For a worker it writes the lease and
  sends the job (media_hash, the library root and the path inside it, Source facts, Output —
  services/playback/worker.py) to that worker's own Dramatiq queue.
- LVS_LOCAL_WORK=on (the default): this server is one more candidate, only while it has a free
  encoder slot (LVS_TRANSCODE_MAX), and at equal sessions per slot a worker goes first (the
  server also serves the pages); hardware with room before software as for any worker. A
  session placed here stays here.
- LVS_LOCAL_WORK=off: a session goes only to workers — a full one too (it answers 503 with
  Retry-After until a slot frees, as a single node does). It runs here only when Redis is
  unreachable (one WARNING from the link, its dashboard notice), when no worker is announced,
  or when every announced one failed this request (gone, refused, cannot read the file): one
  WARNING until a worker answers again, and `status.snapshot` carries a notice while none is
  announced. A session running here that way goes back to a worker as soon as one answers:
  every RECHECK seconds one of its segment requests not already made here asks a worker (not
  one that reported it cannot read the file) for it, and only once that worker has answered
  with the segment is the session moved there and the encoder here stopped.
- A worker lost and then restarted (a new announcement, `started`) is a fresh candidate at
  once: a failed worker is left for the request by (id, started), not by id alone.
- Serving: each segment request is proxied to the worker, signed (HMAC with expiry), the
  viewer's Range passed on, the body streamed through in CHUNK (256 KiB) pieces (never buffered
  whole). It renews the lease. The worker's answer is not trusted: the viewer gets
  video/mp2t whatever it says, only a segment's statuses (PASSED_STATUS; else a 502 and a log
  line), no X-LVS-Worker, at most MAX_SEGMENT bytes, its headers within HEAD_TIME and its body
  within BODY_TIME of reading from the worker (services/compute/bodies.py).
- Failing over: a worker whose heartbeat is gone, whose connection is refused or drops, or
  that answers it cannot take the session (cannot read the file: 409; does not know it: 404)
  is left, and the session is placed again — on another worker or here — at the segment asked
  for; the viewer's request waits for that, so the player stalls for about a segment's
  encoding time.

Segments come back over HTTP by default: the worker serves, the server proxies (signed,
streamed). The alternative is a shared transcode folder (LVS_TRANSCODE_SHARED, set on the
server and on every worker to where that machine mounts the same share): workers copy each
finished segment into `<share>/<media_hash>/<rendition>/<n>.ts` (temp + rename) as their
encoder makes it, and the server answers a segment found there from disk on its lean path, as
a cached one — no hop, no worker thread per request. A segment not there yet is asked of the
worker with X-LVS-Share: 1 (it answers 204 once the segment is in the share); the viewer's
requests served from the share renew the lease every TOUCH s (at most idle/3) and carry the
viewer's position, which the worker paces its encoder by. Leases, placing and failover are the
same. The share degrades to the proxy, with a log line: the server stops asking for it while
its folder is missing, and reads the bytes when the worker says "in the share" but the file is
not visible here; a worker whose share cannot take a segment (full, gone) sends the bytes.

Why the proxy stays the default: it works with nothing shared but the read-only media mount
(no writable network filesystem to set up, export and secure); a share's visibility is weaker
than it looks — NFS caches attributes and directory entries (acregmin/lookupcache: a file
renamed in on one host may stay invisible for seconds on another), SMB's oplocks and directory
caching do the same, and a stale handle after a remount fails reads that worked; permissions
must match across hosts (the worker's uid writes, the server's reads); a full or unmounted
share must be noticed; and it is one more thing to configure. Its cost is one more hop
(bench/b18_workers.py: the proxy's throughput and time to first segment).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from services import fsutil, metrics
from services.compute import broker, leases, registry, signing
from services.compute.bodies import cut_off_after, read_all, read_piece
from services.compute.conn import redis_link
from services.compute.settings import ComputeSettings
from services.errors import NotFound, Unavailable
from services.playback import encoders, hls
from services.playback.decision import Output
from services.playback.transcoder import Loader, LocalTranscoder, Session, SessionInfo
from services.playback.worker import OPEN_ACTOR, job_message

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 40.0  # a worker waits up to SEGMENT_WAIT (25 s) for its encoder
LOOK_EVERY = 1.0  # while waiting for a worker's answer, seconds between heartbeat checks
TRIES = 4  # placements tried for one segment request
TOUCH = 5.0  # seconds between updates of a remote session's record (its idle reaping is 60 s)
RECHECK = 5.0  # LVS_LOCAL_WORK=off: seconds between looks for a worker for a session run here
SHARE = "X-LVS-Share"  # the server reads the shared folder: put the segment there (204)
# What of a worker's answer reaches the viewer: never its Content-Type (the server says
# video/mp2t: a worker's text/html would run script on the server's origin), nor its
# X-LVS-Worker (which worker, on which host, is the server's business), nor any status but
# these (anything else is a 502 with a log line).
PASSED_ON = ("Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified",
             "Retry-After")  # fmt: skip
PASSED_STATUS = frozenset({200, 206, 304, 416, 503})
MAX_SEGMENT = 128 * 1024 * 1024  # bytes: a segment's Content-Length must not say more
BODY_TIME = 60.0  # seconds a body may spend coming from the worker, all its reads together
HEAD_TIME = 10.0  # seconds for the status line and headers once the worker's first byte came
LOCAL = "local"


class WorkerLost(Exception):
    """The worker of a session cannot serve it any more (gone, refused, cannot read)."""


@dataclass(frozen=True)
class Placement:
    worker: str  # a worker id, or LOCAL
    url: str = ""
    at: float = 0.0  # when it was placed (LOCAL with LVS_LOCAL_WORK=off: last looked again)
    started: float = 0.0  # the worker's announced start: a restarted one is another candidate


class Upstream:
    """A segment on its way from a worker: status and headers read, the body still to come."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
                 worker: str, sock: socket.socket | None = None) -> None:  # fmt: skip
        self.conn, self.resp, self.worker = conn, resp, worker
        self.sock = sock  # the connection's (http.client forgets it when the answer closes it)
        self.status = resp.status
        self.headers = {k: v for k in PASSED_ON if (v := resp.getheader(k)) is not None}
        self.shared = resp.getheader("X-LVS-Shared") == "1"  # in the shared folder, no body
        self.refused = None if self.shared else _refused(resp)  # not a segment: a 502
        if self.refused:
            log.warning("worker %s answered a segment request with %s: the viewer gets a 502",
                        worker, self.refused)  # fmt: skip

    def chunks(self) -> Iterator[bytes]:
        """Yield the body in pieces of at most CHUNK and close the connection at the end; cut
        off (TimeoutError) when it spent BODY_TIME coming or grew past MAX_SEGMENT."""
        spent, size = 0.0, 0
        try:
            while True:
                started = time.monotonic()
                data = read_piece(self.resp, self.sock, CHUNK, BODY_TIME - spent, READ_TIMEOUT)
                spent += time.monotonic() - started
                size += len(data)
                if not data:
                    return
                if size > MAX_SEGMENT:
                    raise http.client.HTTPException(f"more than {MAX_SEGMENT} bytes")
                yield data
        except (OSError, http.client.HTTPException) as exc:
            log.warning("segment from worker %s cut off: %s", self.worker, exc)
            raise
        finally:
            self.close()

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()


class RemoteTranscoder:
    """Sessions recorded here, run on workers (or here), their segments proxied."""

    def __init__(self, local: LocalTranscoder, cfg: ComputeSettings,
                 media_dirs: tuple[Path, ...]) -> None:  # fmt: skip
        self.local = local
        self.root = local.root
        self.cfg = cfg
        self.media_dirs = media_dirs
        self.link = redis_link(cfg.redis_url)
        self.placed_dir = local.root / "remote"
        self.placed_dir.mkdir(parents=True, exist_ok=True)
        self.failovers = 0
        self.alone = False  # LVS_LOCAL_WORK=off and no worker could: said once (WARNING)
        self.shared = cfg.shared  # LVS_TRANSCODE_SHARED, as this machine mounts it
        self.share_missing = False  # its folder is not there: said once (WARNING)
        self.touch = min(TOUCH, cfg.idle / 3)

    # ---- the interface ----

    def open(self, user_id: int, media_hash: str, output: Output, *, method: str, words: str,
             count: int, duration: float) -> str:  # fmt: skip
        return self.local.open(user_id, media_hash, output, method=method, words=words,
                               count=count, duration=duration)  # fmt: skip

    def session(self, session_id: str, user_id: int) -> Session:
        return self.local.session(session_id, user_id)

    def cached(self, session_id: str, user_id: int, n: int,
               media_hash: str) -> tuple[Session, Path | int | None]:  # fmt: skip
        """What is kept here (its path) or (LVS_TRANSCODE_SHARED) in the shared folder (an open
        descriptor: the caller closes it), for the lean path."""
        s, path = self.local.cached(session_id, user_id, n, media_hash)
        if path is None and self.shared is not None:
            path = self._in_share(s, n)
        return s, path

    @property
    def index_dir(self) -> Path:
        return self.local.index_dir

    def cache_dir(self, s: Session) -> Path:
        return self.local.cache_dir(s)

    def sessions(self) -> list[SessionInfo]:
        found = self.local.sessions()
        placed = {p.stem: self._placement(p.stem) for p in self.placed_dir.glob("*.json")}
        return [replace(si, encoder=f"worker {p.worker}") if (p := placed.get(si.id)) and
                p.worker != LOCAL and not si.encoder else si for si in found]  # fmt: skip

    def placements(self) -> dict[str, str]:
        """Return session id → worker id (LOCAL: this server) of the placed sessions."""
        found = {}
        for path in self.placed_dir.glob("*.json"):
            p = self._placement(path.stem)
            if p is not None:
                found[path.stem] = p.worker
        return found

    def stop(self, session_id: str, user_id: int) -> None:
        self.local.session(session_id, user_id)  # NotFound for another user's
        p = self._placement(session_id)
        if p is not None and p.worker != LOCAL:
            self._release(session_id, p)
        self._forget(session_id)
        self.local.stop(session_id, user_id)

    def close(self) -> None:
        self.local.close()

    def segment(self, session_id: str, user_id: int, n: int, loader: Loader,
                range_header: str | None = None) -> Path | int | Upstream:  # fmt: skip
        """Return segment n: a Path when it is (or is made) here, an open descriptor when it is
        in the shared folder (the caller closes it), else an Upstream from the worker running
        the session (placing or re-placing it first)."""
        s = self.local.session(session_id, user_id)
        if not 0 <= n < s.count:
            raise NotFound("no such segment")
        here = self.local.cache_dir(s) / f"{n}.{hls.SEGMENT_EXT}"
        if here.is_file():
            return self.local.segment(session_id, user_id, n, loader)
        if self.shared is not None and (found := self._in_share(s, n)) is not None:
            return found
        # The viewer is here: the session lives on (also while a worker answers "not yet",
        # 503). Written every TOUCH seconds only: a rename per segment cost more than the hop.
        self._touch(s, n)
        tried: dict[str, float] = {}  # worker id → its `started` when it failed this request
        for _ in range(TRIES):
            p = self._placement(session_id)
            if p is None or _left(p.worker, p.started, tried):
                p = self._place(s, n, loader, tried)
            elif p.worker == LOCAL and not self.cfg.local_work and time.time() - p.at > RECHECK:
                up = self._back_to_a_worker(s, n, loader, p, range_header)
                if up is not None:
                    return up
            if p.worker == LOCAL:
                return self.local.segment(session_id, user_id, n, loader)
            try:
                up = self._fetch(p, session_id, n, range_header, share=self._share_readable())
                if up.shared:
                    up.close()
                    if (found := self._in_share(s, n, seen=False)) is not None:
                        self._renew(session_id, p, n)
                        return found
                    log.warning("hls session %s: worker %s put segment %d into the shared folder "
                                "but this server does not see it there: its bytes are proxied",
                                session_id, p.worker, n)  # fmt: skip
                    up = self._fetch(p, session_id, n, range_header)
            except WorkerLost as exc:
                log.warning("hls session %s: worker %s lost (%s): placing it again at segment %d",
                            session_id, p.worker, exc, n)  # fmt: skip
                metrics.count("hls_worker_failovers")
                self.failovers += 1
                tried[p.worker] = p.started
                self._forget(session_id, p)
                continue
            self._renew(session_id, p, n)
            return up
        raise Unavailable("no worker could take this session", 5)

    # ---- placing ----

    def _place(self, s: Session, n: int, loader: Loader, tried: dict[str, float]) -> Placement:
        with self.local._lock():
            p = self._placement(s.id)
            if p is not None and not _left(p.worker, p.started, tried):
                return p  # placed by another request meanwhile
            p = self._choose(s, n, loader, tried)
            self._write(s.id, p)
        return p

    def _choose(self, s: Session, n: int, loader: Loader, tried: dict[str, float],
                quiet: bool = False) -> Placement:  # fmt: skip
        """Choose where the session runs from segment n (a worker: its lease written and its
        job sent), LOCAL as the module docstring says; `quiet`: a look again, no warning."""
        client = self.link.client()
        if client is None:
            return Placement(LOCAL, at=time.time())
        try:
            live = registry.workers(client)
            given = leases.count_by_worker(client)
        except self.link.errors as exc:
            self.link.failed(exc)
            return Placement(LOCAL, at=time.time())
        candidates = [replace(w, sessions=max(w.sessions, given.get(w.id, 0))) for w in live
                      if not _left(w.id, w.started, tried)]  # fmt: skip
        if self.cfg.local_work:
            me = self._local_info()
            if me.busy < 1:  # a free encoder slot here
                candidates.append(me)
        chosen = registry.choose(candidates)
        if chosen is None or chosen.id == LOCAL:
            if chosen is None and not self.cfg.local_work and not quiet:
                self._alone_now(s.id, len(live))
            return Placement(LOCAL, at=time.time())
        source, f = loader()
        try:
            where = self._location(f.fileno())
        finally:
            f.close()
        if where is None:
            log.warning("hls session %s: its file lies in no library folder: it runs here", s.id)
            return Placement(LOCAL, at=time.time())
        job = job_message(s.id, s.user_id, s.media_hash, where[0], where[1], s.method, s.words,
                          s.count, s.duration, source, s.out)  # fmt: skip
        try:
            leases.release(client, s.id)
            leases.renew(client, s.id, chosen.id, self.cfg.idle)
        except self.link.errors as exc:
            self.link.failed(exc)
            return Placement(LOCAL, at=time.time())
        if not broker.send_to(self.cfg.redis_url, registry.queue_of(chosen.id), OPEN_ACTOR, job):
            return Placement(LOCAL, at=time.time())
        log.info("hls session %s: placed on worker %s (%s) at segment %d", s.id, chosen.id,
                 chosen.url, n)  # fmt: skip
        metrics.count("hls_sessions_placed_remote")
        if self.alone:
            self.alone = False
            log.info("workers answer again: sessions go to them (LVS_LOCAL_WORK=off)")
        return Placement(chosen.id, chosen.url, time.time(), chosen.started)

    def _alone_now(self, sid: str, announced: int) -> None:
        """LVS_LOCAL_WORK=off and no worker can take a session: one WARNING until one can."""
        why = "every worker failed" if announced else "no worker is announced"
        if not self.alone:
            self.alone = True
            log.warning("hls session %s: %s: it runs on this server (local work is off: it "
                        "goes to a worker when one answers)", sid, why)  # fmt: skip
        else:
            log.info("hls session %s: %s: it runs on this server", sid, why)

    def _back_to_a_worker(self, s: Session, n: int, loader: Loader, p: Placement,
                          range_header: str | None) -> Upstream | None:  # fmt: skip
        """LVS_LOCAL_WORK=off, the session runs here for want of a worker: ask one for segment
        n; once it answered, the session is its and the encoder here stops. None: stays here."""
        with self.local._lock():
            if self._placement(s.id) != p:
                return None  # another request is at it
            self._write(s.id, replace(p, at=time.time()))  # the next look in RECHECK s
        client = self.link.client()
        if client is None:
            return None
        try:
            refused = leases.error_of(client, s.id)  # it said it cannot read the file
        except self.link.errors as exc:
            self.link.failed(exc)
            return None
        q = self._choose(s, n, loader, {refused[0]: 0.0} if refused else {}, quiet=True)
        if q.worker == LOCAL:
            return None
        try:
            up = self._fetch(q, s.id, n, range_header)
        except WorkerLost as exc:
            log.info("hls session %s: worker %s could not take it back (%s): it stays here",
                     s.id, q.worker, exc)  # fmt: skip
            with contextlib.suppress(*self.link.errors):
                leases.release(client, s.id)
            return None
        with self.local._lock():
            self._write(s.id, q)
        self.local.hand_over(s.id)
        self._renew(s.id, q, n)
        log.info("hls session %s: moved from this server to worker %s at segment %d", s.id,
                 q.worker, n)  # fmt: skip
        return up

    def _local_info(self) -> registry.WorkerInfo:
        running = sum(1 for si in self.local.sessions() if si.encoder)
        choice = encoders.detect()
        cpus = os.cpu_count() or 1
        try:
            load = os.getloadavg()[0] / cpus
        except OSError:
            load = 0.0
        return registry.WorkerInfo(id=LOCAL, host="", url="", cpus=cpus,
                                   hardware=choice.hardware, sessions=running,
                                   capacity=self.local.max_encoders, load=round(load, 2))  # fmt: skip

    def _location(self, fd: int) -> tuple[str, str] | None:
        """Return (library root as configured, path inside it) of the open file."""
        real = os.readlink(f"/proc/self/fd/{fd}")
        for root in self.media_dirs:
            resolved = os.path.realpath(root)
            if real.startswith(resolved.rstrip("/") + "/"):
                return str(root), os.path.relpath(real, resolved)
        return None

    # ---- serving ----

    def _touch(self, s: Session, n: int, renew: bool = False) -> None:
        """The viewer asked for segment n: every `touch` seconds, the session's record here (and
        with `renew` its lease, with the position: a segment from the share reached no worker)."""
        if time.time() - s.last_request <= self.touch:
            return
        self.local._seen(s, n)
        if renew:
            p = self._placement(s.id)
            if p is not None and p.worker != LOCAL:
                self._renew(s.id, p, n)

    def _in_share(self, s: Session, n: int, seen: bool = True) -> int | None:
        """Return an open descriptor of segment n in the shared folder when it is there (the
        viewer is recorded). Workers write that folder: only a regular file reached without a
        symbolic link below it is opened (a link planted there to a server file is not)."""
        fd = fsutil.open_beneath(self.shared, (s.media_hash, s.key, f"{n}.{hls.SEGMENT_EXT}"))
        if fd is None:
            return None
        if seen:
            self._touch(s, n, renew=True)
        return fd

    def _share_readable(self) -> bool:
        """True when segments may be put into the shared folder for this server to read: it
        is configured and its folder is there (one WARNING when it goes, one INFO back)."""
        if self.shared is None:
            return False
        there = os.path.isdir(self.shared)
        if there == self.share_missing:
            self.share_missing = not there
            if there:
                log.info("the shared transcode folder %s is back: segments come through it",
                         self.shared)  # fmt: skip
            else:
                log.warning("the shared transcode folder %s is not there (LVS_TRANSCODE_SHARED): "
                            "workers' segments come through the proxy", self.shared)  # fmt: skip
        return there

    def _fetch(self, p: Placement, sid: str, n: int, range_header: str | None,
               share: bool = False) -> Upstream:  # fmt: skip
        """Ask the worker for segment n (`share`: into the shared folder if it can); WorkerLost
        when it cannot answer for this session."""
        conn = _connection(p)
        path = f"/node/sessions/{sid}/{n}.{hls.SEGMENT_EXT}"
        headers = signing.headers(self.cfg.node_secret, "GET", path)
        headers["X-LVS-Placed"] = f"{p.at:.3f}"  # a worker started after it knows no job comes
        if range_header:
            headers["Range"] = range_header
        if share:
            headers[SHARE] = "1"
        try:
            conn.connect()
            conn.request("GET", path, headers=headers)
            self._await_answer(conn, p)
            assert conn.sock is not None
            conn.sock.settimeout(READ_TIMEOUT)
            sock = conn.sock
            with cut_off_after(sock, HEAD_TIME):  # a worker trickling its headers
                resp = conn.getresponse()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            conn.close()
            raise WorkerLost(f"{type(exc).__name__}: {exc}") from None
        if resp.status in (403, 404, 409):
            said = b""  # what it says why, read within HEAD_TIME
            with contextlib.suppress(OSError, http.client.HTTPException):
                said = read_all(resp, sock, 2000, time.monotonic() + HEAD_TIME, READ_TIMEOUT)
            body = said[:2000].decode("utf-8", "replace").strip()
            conn.close()
            if resp.status == 403:
                log.error("worker %s refused the server's signature (is LVS_NODE_SECRET the same "
                          "on both?): %s", p.worker, body)  # fmt: skip
            raise WorkerLost(f"{resp.status} {body[:300]}")
        return Upstream(conn, resp, p.worker, sock)

    def _await_answer(self, conn: http.client.HTTPConnection, p: Placement) -> None:
        """Wait for the worker's first bytes; WorkerLost when its heartbeat goes meanwhile (a
        machine that vanished sends no reset) or it takes longer than READ_TIMEOUT."""
        deadline = time.monotonic() + READ_TIMEOUT
        while True:
            assert conn.sock is not None
            ready, _, _ = select.select([conn.sock], [], [], LOOK_EVERY)
            if ready:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("no answer")
            if not self._alive(p.worker):
                raise WorkerLost("its heartbeat stopped")

    def _alive(self, worker_id: str) -> bool:
        client = self.link.client()
        if client is None:
            return True  # cannot tell: the connection decides
        try:
            return bool(client.exists(registry.PREFIX + worker_id))
        except self.link.errors as exc:
            self.link.failed(exc)
            return True

    def _renew(self, sid: str, p: Placement, n: int | None = None) -> None:
        client = self.link.client()
        if client is None:
            return  # the worker keeps the session while Redis is away (its own idle reaper)
        try:
            leases.renew(client, sid, p.worker, self.cfg.idle, n)
        except self.link.errors as exc:
            self.link.failed(exc)

    def _release(self, sid: str, p: Placement) -> None:
        client = self.link.client()
        if client is not None:
            try:
                leases.release(client, sid)
            except self.link.errors as exc:
                self.link.failed(exc)
        path = f"/node/sessions/{sid}/stop"
        try:
            conn = _connection(p)
        except WorkerLost as exc:
            log.info("worker %s not told to stop session %s: %s", p.worker, sid, exc)
            return
        try:
            conn.request("POST", path, headers=signing.headers(self.cfg.node_secret, "POST", path))
            conn.getresponse().read()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            log.info("worker %s not told to stop session %s: %s", p.worker, sid, exc)
        finally:
            conn.close()

    # ---- placement records ----

    def _placement(self, sid: str) -> Placement | None:
        try:
            data = json.loads((self.placed_dir / f"{sid}.json").read_text())
            return Placement(str(data["worker"]), str(data.get("url", "")),
                             float(data.get("at", 0)), float(data.get("started", 0)))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write(self, sid: str, p: Placement) -> None:
        path = self.placed_dir / f"{sid}.json"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(p)))
        os.replace(tmp, path)
        self._prune()

    def _forget(self, sid: str, p: Placement | None = None) -> None:
        """Drop the session's placement (only if it is still `p`, when given)."""
        path = self.placed_dir / f"{sid}.json"
        if p is not None and self._placement(sid) != p:
            return
        path.unlink(missing_ok=True)

    def _prune(self) -> None:
        """Remove the placements of sessions that ended here (reaped, stopped)."""
        for path in self.placed_dir.glob("*.json"):
            if not (self.local.root / "sessions" / path.name).exists():
                with contextlib.suppress(OSError):
                    if time.time() - path.stat().st_mtime > 5:
                        path.unlink()
        for tmp in self.placed_dir.glob("*.tmp"):
            with contextlib.suppress(OSError):
                if time.time() - tmp.stat().st_mtime > 60:
                    tmp.unlink()


def _refused(resp: http.client.HTTPResponse) -> str | None:
    """Why a worker's answer to a segment request is not passed on to the viewer, or None."""
    if resp.status not in PASSED_STATUS:
        return f"status {resp.status}"
    if resp.status in (200, 206) and (resp.length is None or resp.length > MAX_SEGMENT):
        return f"Content-Length {resp.getheader('Content-Length')!r} (at most {MAX_SEGMENT})"
    return None


def _left(worker: str, started: float, tried: dict[str, float]) -> bool:
    """Return True when this request already failed with that worker (the same run of it: a
    restarted worker, announced with another `started`, is tried again)."""
    if worker not in tried:
        return False
    return tried[worker] in (0.0, started)


def _connection(p: Placement) -> http.client.HTTPConnection:
    """Return an unopened connection to the worker's origin (scheme, host and port only);
    WorkerLost when its URL is not a bare http(s) origin."""
    problem = registry.origin_problem(p.url)
    if problem:
        raise WorkerLost(problem)
    url = urlsplit(p.url)
    cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    return cls(url.hostname or "", url.port, timeout=CONNECT_TIMEOUT)
