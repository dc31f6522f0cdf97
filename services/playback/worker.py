"""A worker's side of remote HLS sessions (issue 18): take jobs, check them, serve segments.

The server (services/playback/remote.py) places a session on this worker by writing its lease
and sending OPEN_ACTOR to this worker's own Dramatiq queue. The job carries only the session
id, the user id, the media_hash, the server's library root and the path inside it, the Source
facts and the Output (enums and bounded numbers) — never argv, never a path from a user. Here
every field is checked against allow-lists (`parse_job`): the root, mapped through
LVS_PATH_MAP, must be one of this worker's own library folders, the path must stay inside it
(symlinks resolved on the open descriptor, as the server opens media), and the opened file's
media_hash must be the job's. A job that fails a check is refused with a log line; a file this
worker cannot open or whose hash differs is reported (`leases.report_error`) and the session's
segment requests answer 409, so the server places it elsewhere.

The session then runs in this worker's own LocalTranscoder on its scratch folder — the very
code the server runs alone — and its segments are served over HTTP: each request signed by
the server (`services/compute/signing.py`; 403 with a log line otherwise), Range-aware, by
cli/node_http.py. `watch_leases` ends every session whose lease lapsed or went to another
worker: its ffmpeg is killed and its scratch removed.

With a shared transcode folder (LVS_TRANSCODE_SHARED, `shared`): `watch_share` copies every
finished segment of its sessions into `<shared>/<media_hash>/<rendition>/<n>.ts` (temp file,
then rename: the server never sees a partial one), and a segment request that says the server
reads the share (X-LVS-Share: 1) is answered 204 once the segment is there. A share that
cannot take a segment (full, gone, read-only) is logged once per session and that session's
segments go back over HTTP (the proxy) for SHARE_RETRY seconds. The viewer's position comes
with the lease (`leases.positions`): the encoder is paced and the session kept alive by it,
since segment requests no longer reach this worker.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, Any

from services.compute import leases, signing
from services.compute.conn import RedisLink
from services.compute.pathmap import location
from services.errors import LVSError, NotFound
from services.playback import hls, media_files
from services.playback.decision import Output
from services.playback.source import Source, Track
from services.playback.transcoder import LocalTranscoder

log = logging.getLogger(__name__)

OPEN_ACTOR = "lvs.session.open"
OPEN_WAIT = 5.0  # seconds a segment request waits for its session's job to arrive
HEX16 = re.compile(r"[0-9a-f]{16}")
CODEC = re.compile(r"[a-z0-9_]{0,40}")
METHODS = frozenset({"remux", "transcode"})
VIDEO = frozenset({"copy", "h264"})
LEASE_CHECK = 1.0  # seconds between looks at this worker's leases
SHARE_EVERY = 0.25  # seconds between copies of finished segments into the shared folder
SHARE_RETRY = 30.0  # seconds a session's segments go over HTTP after the share refused one


class BadJob(LVSError):
    """A job that fails this worker's checks (refused, never run)."""


@dataclass(frozen=True)
class Job:
    """One session this worker runs for the server."""

    session_id: str
    user_id: int
    media_hash: str
    root: str  # the library folder on this machine (mapped, checked)
    rel: str  # the file's path inside it
    method: str
    words: str
    count: int
    duration: float
    source: Source
    output: Output


def job_message(session_id: str, user_id: int, media_hash: str, root: str, rel: str,
                method: str, words: str, count: int, duration: float, source: Source,
                output: Output) -> dict[str, Any]:  # fmt: skip
    """Return the job as the server sends it (JSON-safe)."""
    return {"session_id": session_id, "user_id": user_id, "media_hash": media_hash,
            "root": root, "rel": rel, "method": method, "words": words[:300], "count": count,
            "duration": duration, "source": asdict(source), "output": asdict(output)}  # fmt: skip


def _int(value: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadJob(f"{what} is not a whole number in {lo}..{hi}")
    return value


def _float(value: Any, lo: float, hi: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadJob(f"{what} is not a number")
    number = float(value)
    if not math.isfinite(number) or not lo <= number <= hi:
        raise BadJob(f"{what} is outside {lo:g}..{hi:g}")
    return number


def _text(value: Any, limit: int, what: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit or "\0" in value:
        raise BadJob(f"{what} is not a short text")
    return value


def _track(data: Any) -> Track:
    if not isinstance(data, dict) or set(data) != {f.name for f in fields(Track)}:
        raise BadJob("a track has unexpected fields")
    codec = _text(data["codec"], 40, "track codec")
    if not CODEC.fullmatch(codec or ""):
        raise BadJob("a track codec is not a codec name")
    if data["type"] not in ("audio", "subtitle"):
        raise BadJob("a track type is not audio or subtitle")
    return Track(
        index=_int(data["index"], 0, 999, "track index"),
        type=data["type"],
        codec=codec or "",
        channels=None if data["channels"] is None else _int(data["channels"], 0, 64, "channels"),
        language=_text(data["language"], 40, "language", optional=True),
        title=_text(data["title"], 400, "title", optional=True),
        is_default=bool(data["is_default"]),
    )


def _source(data: Any, media_hash: str) -> Source:
    if not isinstance(data, dict) or set(data) != {f.name for f in fields(Source)}:
        raise BadJob("the source has unexpected fields")
    if data["media_hash"] != media_hash:
        raise BadJob("the source is of another file")
    for name in ("container", "video_codec", "profile"):
        _text(data[name], 80, name)
    if not CODEC.fullmatch(data["video_codec"]):
        raise BadJob("video_codec is not a codec name")
    tracks = [_track(t) for t in (data["audio"] or []) + (data["subtitles"] or [])]
    return Source(
        media_hash=media_hash,
        container=data["container"],
        duration=_float(data["duration"], 0.001, 1e6, "duration"),
        video_index=_int(data["video_index"], 0, 999, "video_index"),
        video_codec=data["video_codec"],
        profile=data["profile"],
        bit_depth=_int(data["bit_depth"], 1, 16, "bit_depth"),
        level=_int(data["level"], 0, 999, "level"),
        width=_int(data["width"], 2, 16384, "width"),
        height=_int(data["height"], 2, 16384, "height"),
        fps=_float(data["fps"], 0.01, 1000, "fps"),
        rotation=_int(data["rotation"], 0, 359, "rotation"),
        interlaced=bool(data["interlaced"]),
        hdr=bool(data["hdr"]),
        audio=tuple(t for t in tracks if t.type == "audio"),
        subtitles=tuple(t for t in tracks if t.type == "subtitle"),
        version=_version(data["version"]),
    )


def _version(value: Any) -> tuple[int, int]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise BadJob("version is not (size, mtime_ns)")
    return _int(value[0], 0, 2**63 - 1, "size"), _int(value[1], -(2**63), 2**63 - 1, "mtime")


def _output(data: Any, source: Source) -> Output:
    if not isinstance(data, dict) or set(data) != {f.name for f in fields(Output)}:
        raise BadJob("the output has unexpected fields")
    if not isinstance(data["video"], str) or data["video"] not in VIDEO:
        raise BadJob("output video is not copy or h264")
    height = _int(data["height"], 0, 8640, "height")
    if height % 2:
        raise BadJob("height is odd")
    audio = data["audio"]
    if audio is not None and source.audio_track(_int(audio, 0, 999, "audio")) is None:
        raise BadJob("audio names no audio track of the source")
    burn = data["burn"]
    if burn is not None and source.subtitle_track(_int(burn, 0, 999, "burn")) is None:
        raise BadJob("burn names no subtitle track of the source")
    return Output(video=data["video"], height=height, audio=audio,
                  audio_copy=bool(data["audio_copy"]), burn=burn,
                  segment=_float(data["segment"], 0.5, 30, "segment"))  # fmt: skip


def parse_job(data: Any, roots: tuple[Path, ...], path_map: tuple[tuple[str, str], ...]) -> Job:
    """Return the checked job, or raise BadJob saying which check failed."""
    if not isinstance(data, dict):
        raise BadJob("a job is an object")
    expected = {"session_id", "user_id", "media_hash", "root", "rel", "method", "words", "count",
                "duration", "source", "output"}  # fmt: skip
    if set(data) != expected:
        raise BadJob("the job has unexpected fields")
    sid, media_hash = data["session_id"], data["media_hash"]
    if not isinstance(sid, str) or not HEX16.fullmatch(sid):
        raise BadJob("session_id is not 16 hex characters")
    if not isinstance(media_hash, str) or not HEX16.fullmatch(media_hash):
        raise BadJob("media_hash is not 16 hex characters")
    if not isinstance(data["method"], str) or data["method"] not in METHODS:
        raise BadJob("method is not remux or transcode")
    server_root = _text(data["root"], 4096, "root") or ""
    rel = _text(data["rel"], 4096, "rel") or ""
    try:
        mapped = location(server_root, rel, roots, path_map)
    except ValueError as exc:
        raise BadJob(str(exc)) from None
    source = _source(data["source"], media_hash)
    output = _output(data["output"], source)
    count = _int(data["count"], 1, hls.MAX_SEGMENTS, "count")
    return Job(sid, _int(data["user_id"], 0, 2**63 - 1, "user_id"), media_hash, mapped, rel,
               data["method"], _text(data["words"], 300, "words") or "", count,
               _float(data["duration"], 0.001, 1e6, "duration"), source, output)  # fmt: skip


class WorkerSessions:
    """The sessions this worker runs, in its own LocalTranscoder on its scratch folder."""

    def __init__(self, worker_id: str, transcoder: LocalTranscoder, *, roots: tuple[Path, ...],
                 path_map: tuple[tuple[str, str], ...], secret: str,
                 link: RedisLink | None, shared: Path | None = None) -> None:  # fmt: skip
        self.worker_id = worker_id
        self.shared = shared
        self._pushed: dict[str, set[int]] = {}  # session → segments copied into the share
        self._share_off: dict[str, float] = {}  # session → until when its share is not tried
        self.tc = transcoder
        self.roots = roots
        self.path_map = path_map
        self.secret = secret
        self.link = link
        self.jobs: dict[str, Job] = {}
        self.errors: dict[str, str] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.started = time.time()

    # ---- jobs ----

    def open(self, message: Any) -> None:
        """Take a session job (the body of OPEN_ACTOR): check it, check the file, make it."""
        sid = message.get("session_id") if isinstance(message, dict) else None
        sid = sid if isinstance(sid, str) and HEX16.fullmatch(sid) else None
        try:
            job = parse_job(message, self.roots, self.path_map)
        except BadJob as exc:
            log.warning("worker %s: refused a session job: %s", self.worker_id, exc)
            if sid:
                self._fail(sid, f"refused: {exc}")
            return
        try:
            f = self._open_file(job)
            f.close()
        except (OSError, LVSError) as exc:
            reason = f"cannot read {job.media_hash}: {exc}"
            log.warning("worker %s: session %s: %s", self.worker_id, job.session_id, reason)
            self._fail(job.session_id, reason)
            return
        self.tc.open(job.user_id, job.media_hash, job.output, method=job.method,
                     words=job.words, count=job.count, duration=job.duration,
                     session_id=job.session_id)  # fmt: skip
        with self._cond:
            self.jobs[job.session_id] = job
            self.errors.pop(job.session_id, None)
            self._cond.notify_all()
        log.info("worker %s: session %s taken (%s %s)", self.worker_id, job.session_id,
                 job.media_hash, job.output.key)  # fmt: skip

    def _fail(self, sid: str, reason: str) -> None:
        with self._cond:
            self.errors[sid] = reason
            self._cond.notify_all()
        client = self.link.client() if self.link else None
        if client is not None:
            with contextlib.suppress(*self.link.errors):  # type: ignore[union-attr]
                leases.report_error(client, sid, self.worker_id, reason)

    def _open_file(self, job: Job) -> IO[bytes]:
        """Open the job's file inside its library folder and check it is the job's media."""
        return media_files.open_checked(job.root, job.rel, job.media_hash)

    def job(self, sid: str, wait: float = OPEN_WAIT) -> Job:
        """Return the session's job, waiting for it to arrive; NotFound or BadJob (failed)."""
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                if sid in self.jobs:
                    return self.jobs[sid]
                if sid in self.errors:
                    raise BadJob(self.errors[sid])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NotFound("no such session on this worker")
                self._cond.wait(left)

    def segment(self, sid: str, n: int, placed: float = 0.0) -> Path:
        """Return segment n of a session; `placed`: when the server placed it here (a job sent
        before this worker started will not come: no wait)."""
        job = self.job(sid, wait=OPEN_WAIT if placed >= self.started - 1 else 0.0)
        return self.tc.segment(sid, job.user_id, n, lambda: (job.source, self._open_file(job)))

    def end(self, sid: str, why: str, moved: bool = False) -> None:
        """End a session: its ffmpeg is stopped, its run folder and its segments removed (in
        the shared folder too, unless `moved`: another worker goes on with them)."""
        with self._cond:
            job = self.jobs.pop(sid, None)
        if job is None:
            return
        with contextlib.suppress(NotFound):
            self.tc.stop(sid, job.user_id)
        self._pushed.pop(sid, None)
        self._share_off.pop(sid, None)
        folders = [self.tc.root / "cache"] + ([self.shared] if self.shared and not moved else [])
        if not any(j.media_hash == job.media_hash and j.output.key == job.output.key
                   for j in list(self.jobs.values())):  # fmt: skip
            for folder in folders:
                shutil.rmtree(folder / job.media_hash / job.output.key, ignore_errors=True)
                with contextlib.suppress(OSError):
                    (folder / job.media_hash).rmdir()
        log.info("worker %s: session %s ended (%s), scratch removed", self.worker_id, sid, why)

    def count(self) -> int:
        return len(self.jobs)

    # ---- leases ----

    def check_leases(self) -> None:
        """End the sessions whose lease lapsed or went to another worker, and those the local
        reaper ended; while Redis is unreachable leases are not judged (the reaper still is)."""
        sids = list(self.jobs)
        gone = [s for s in sids if self.tc._read(s) is None]
        for sid in gone:
            self.end(sid, "idle")
        sids = [s for s in sids if s not in gone]
        client = self.link.client() if self.link else None
        if client is None or not sids:
            return
        try:
            held = leases.holders(client, sids)
        except self.link.errors as exc:  # type: ignore[union-attr]
            self.link.failed(exc)  # type: ignore[union-attr]
            return
        mine = [sid for sid, holder in held.items() if holder == self.worker_id]
        for sid, holder in held.items():
            if holder != self.worker_id:
                self.end(sid, "lease lapsed" if holder is None else f"lease went to {holder}",
                         moved=holder is not None)  # fmt: skip
        try:
            where = leases.positions(client, mine)
        except self.link.errors as exc:  # type: ignore[union-attr]
            self.link.failed(exc)  # type: ignore[union-attr]
            return
        for sid, n in where.items():  # the viewer, as the server saw it: pace, keep alive
            s = self.tc._read(sid)
            if s is not None and (n != s.last_segment or time.time() - s.last_request > 5):
                self.tc._seen(s, n)

    def watch_leases(self) -> None:
        while not self._stop.wait(LEASE_CHECK):
            try:
                self.check_leases()
            except Exception:
                log.exception("worker lease check failed")

    # ---- the shared transcode folder ----

    def share(self, sid: str, n: int, path: Path) -> bool:
        """Put complete segment n of the session (at `path`) into the shared folder; False when
        there is none or it cannot take it now (then the server gets the bytes)."""
        job = self.jobs.get(sid)
        if self.shared is None or job is None or self._share_off.get(sid, 0) > time.monotonic():
            return False
        try:
            self._copy(job, n, path)
        except OSError as exc:
            self._share_failed(sid, exc)
            return False
        self._share_back(sid)
        return True

    def push(self) -> None:
        """Copy the finished segments of every session not copied yet into the shared folder."""
        if self.shared is None:
            return
        for sid, job in list(self.jobs.items()):
            if self._share_off.get(sid, 0) > time.monotonic():
                continue
            with self.tc._lock():
                s = self.tc._read(sid)
                if s is None:
                    continue
                self.tc._publish(s)
            cache = self.tc.cache_dir(s)
            done = self._pushed.setdefault(sid, set())
            if done and not (self.shared / job.media_hash / job.output.key).is_dir():
                done.clear()  # removed meanwhile (another session of it ended): again
            try:
                names = os.listdir(cache)
            except OSError:
                continue
            for name in names:
                stem, _, ext = name.partition(".")
                if ext != hls.SEGMENT_EXT or not stem.isdigit() or int(stem) in done:
                    continue
                try:
                    self._copy(job, int(stem), cache / name)
                except OSError as exc:
                    if (cache / name).is_file():  # the share's fault, not an evicted segment
                        self._share_failed(sid, exc)
                        break
                    continue
                done.add(int(stem))
                self._share_back(sid)

    def watch_share(self) -> None:
        while not self._stop.wait(SHARE_EVERY):
            try:
                self.push()
            except Exception:
                log.exception("worker copy into the shared transcode folder failed")

    def _copy(self, job: Job, n: int, src: Path) -> None:
        """Copy a complete segment into the share: a temp file, then a rename. The share's own
        folder must exist (a share not mounted is not written under its mount point)."""
        assert self.shared is not None
        folder = self.shared / job.media_hash / job.output.key
        name = f"{n}.{hls.SEGMENT_EXT}"
        if os.path.isfile(folder / name):
            return
        (self.shared / job.media_hash).mkdir(mode=0o755, exist_ok=True)
        folder.mkdir(mode=0o755, exist_ok=True)
        tmp = folder / f".{name}.{self.worker_id}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o644)  # the server may read as another user
            os.replace(tmp, folder / name)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def _share_failed(self, sid: str, exc: OSError) -> None:
        if sid not in self._share_off:
            log.warning("worker %s: session %s: the shared transcode folder %s cannot take its "
                        "segments (%s): they go through the server's proxy, tried again every "
                        "%g s", self.worker_id, sid, self.shared, exc, SHARE_RETRY)  # fmt: skip
        self._share_off[sid] = time.monotonic() + SHARE_RETRY

    def _share_back(self, sid: str) -> None:
        if self._share_off.pop(sid, None) is not None:
            log.info("worker %s: session %s: the shared transcode folder takes its segments "
                     "again", self.worker_id, sid)  # fmt: skip

    def close(self) -> None:
        self._stop.set()
        for sid in list(self.jobs):
            self.end(sid, "the worker stops")
        self.tc.close()

    def refused(self, method: str, path: str, expires: str | None, signature: str | None,
                remote: str | None) -> str | None:  # fmt: skip
        """Return why a request from the server is refused (logged), None when it is signed."""
        why = signing.verify(self.secret, method, path, expires, signature)
        if why is not None:
            # the path is URL-decoded and the LAN's: quoted and cut (no CR/LF, no 64 KiB lines)
            log.warning("worker %s: refused %s %r from %s: %s", self.worker_id, method[:10],
                        path[:200], remote, why)  # fmt: skip
        return why


def default_scratch(worker_id: str) -> Path:
    """Return the scratch folder of a worker without LVS_WORKER_SCRATCH: under the temp dir."""
    import tempfile

    return Path(tempfile.gettempdir()) / f"lvs-worker-{worker_id}"


def make_transcoder(scratch: Path, *, max_encoders: int, cache_bytes: int, idle: float,
                    encoder: str, device: str = "") -> LocalTranscoder:  # fmt: skip
    """Return the worker's LocalTranscoder on `scratch`/hls, with what a killed worker left
    there ended: its encoders killed (by pid, checked against their run), folders removed."""
    scratch.mkdir(parents=True, exist_ok=True)
    os.chmod(scratch, 0o700)
    tc = LocalTranscoder(scratch / "hls", max_encoders=max_encoders, cache_bytes=cache_bytes,
                         idle=idle, encoder=encoder, device=device)  # fmt: skip
    with tc._lock():
        for s in tc._all():
            tc._end(s, "left by a stopped worker")
    shutil.rmtree(scratch / "hls" / "cache", ignore_errors=True)
    (scratch / "hls" / "cache").mkdir(exist_ok=True)
    return tc
