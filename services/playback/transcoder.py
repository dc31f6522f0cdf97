"""HLS sessions and their encoders: start, seek (restart), throttle, reap, stop — on this machine.

The interface (`Transcoder`): `open` a session for a viewer and a rendition, `segment` (where
segment N is, once it is complete: starting or restarting the encoder as needed), `cached`
(where it is if already complete, starting nothing: for the lean path), `session`, `stop`, and
`sessions` (what runs, for the dashboard). `LocalTranscoder` keeps all its
state in files under `<data dir>/hls/`, guarded by one flock, so every gunicorn worker sees the
same sessions and any of them may answer a segment request; a later issue can keep the same
records in Redis and run the encoders on other machines.

    hls/sessions/<id>.json          a viewer's session: owner, media, rendition, last request
    hls/runs/<run id>/              one encoder run: N.ts, list.csv (finished ones), ffmpeg.log
    hls/cache/<media_hash>/<key>/   finished segments, shared by every viewer of that rendition
    hls/index/<media_hash>.json     the play index: a remux's cut points, the extra facts

Rules (after Jellyfin's DynamicHlsController and Stash's stream_segmented, see
/work/shared/reference): a request for a segment not yet made starts an encoder at it when
none runs, the segment is behind the encoder, or it is more than `restart_ahead` seconds ahead
of it; the encoder is paused (SIGSTOP) when it is `throttle_ahead` seconds ahead of the
viewer and continued when the viewer comes within `resume_ahead`; a session nobody asked
anything of for `idle` seconds is reaped (its encoder killed with its process group); at most
`max_encoders` encoders run at once, beyond that `TranscodeBusy` (503 with Retry-After). The
cache is kept under `cache_bytes` by evicting the least recently used renditions, never one
a live session uses.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import logging
import os
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Protocol

from services import ffmpeg as runner
from services import metrics
from services.errors import NotFound, TranscodeBusy, TranscodeFailed, Unavailable
from services.playback import hls, playindex
from services.playback.decision import Output
from services.playback.folderwatch import FolderWatch
from services.playback.source import Source

log = logging.getLogger(__name__)

SESSION_ID_LEN = 16
SEGMENT_WAIT = 25.0  # seconds a segment request waits for the encoder before a 503
# Without inotify: seconds between looks at the encoder's list of finished segments, and the
# same in a request's first second (a remux's segment takes ~30-50 ms: B8).
POLL = 0.01
POLL_FIRST = 0.002
WATCH_TICK = 0.05  # with inotify: seconds between looks when nothing in the run's folder changed
WATCHED = ("list.csv", "exit")  # a run's files whose change wakes its waiters
LOW_DISK = 8 * 1024 * 1024  # bytes free under which a failed encoder is blamed on a full disk
SOFTWARE = "libx264"
HARDWARE_TRIES = 3  # hardware encoder failures in a row after which a process uses software
TOUCH_EVERY = 1.0  # seconds between session-file updates from segment requests
KNOWN_SESSIONS = 256  # sessions a process keeps for cached segments (LocalTranscoder.cached)

# The trusted input of a new run: the open media file and its Source.
Loader = Callable[[], tuple[Source, IO[bytes]]]


@dataclass
class Run:
    """One encoder process of a session."""

    id: str
    pid: int
    start: int  # first segment it writes
    started: float
    encoder: str
    paused: bool = False


@dataclass
class Session:
    """A viewer watching one rendition of one video."""

    id: str
    user_id: int
    media_hash: str
    key: str  # Output.key
    output: dict  # Output fields
    method: str
    words: str
    count: int  # segments in the playlist
    duration: float
    created: float
    last_request: float
    last_segment: int = -1
    run: Run | None = None
    software: bool = False  # its hardware encoder failed: the rest of this job runs libx264

    @property
    def out(self) -> Output:
        return Output(**self.output)


@dataclass(frozen=True)
class SessionInfo:
    """A session as the dashboard shows it."""

    id: str
    user_id: int
    media_hash: str
    method: str
    words: str
    encoder: str
    speed: float  # × real time of the running encoder, 0 when none runs
    ahead: int  # segments made beyond the last one asked for
    paused: bool
    idle: float  # seconds since the last request


class Transcoder(Protocol):
    """Start, seek and stop HLS sessions, and say where their segments are."""

    def open(self, user_id: int, media_hash: str, output: Output, *, method: str, words: str,
             count: int, duration: float) -> str: ...  # fmt: skip

    def segment(self, session_id: str, user_id: int, n: int, loader: Loader) -> Path: ...

    # An int: an open descriptor, the caller's to close (remote.py: a segment in a shared folder).
    def cached(self, session_id: str, user_id: int, n: int,
               media_hash: str) -> tuple[Session, Path | int | None]: ...  # fmt: skip

    def session(self, session_id: str, user_id: int) -> Session: ...

    def stop(self, session_id: str, user_id: int) -> None: ...

    def sessions(self) -> list[SessionInfo]: ...


class LocalTranscoder:
    """Sessions in files under `root`, encoders as child processes of whichever worker asks."""

    def __init__(
        self,
        root: Path,
        *,
        max_encoders: int,
        cache_bytes: int,
        idle: float = 60.0,
        throttle_ahead: float = 120.0,
        resume_ahead: float = 60.0,
        restart_ahead: float = 24.0,
        encoder: str = "libx264",
        device: str = "",
        reaper: bool = True,
    ) -> None:
        self.root = root
        self._sessions = f"{root}/sessions/"  # as strings: asked on every cached segment's request
        self._cache = f"{root}/cache/"
        self.max_encoders = max_encoders
        self.cache_bytes = cache_bytes
        self.idle = idle
        self.throttle_ahead = throttle_ahead
        self.resume_ahead = resume_ahead
        self.restart_ahead = restart_ahead
        self.encoder = encoder
        self.device = device  # the hardware encoder's render node (services/playback/encoders.py)
        self.hardware_failures = 0  # in a row, in this process
        self.encoders: dict[str, runner.Encoder] = {}  # runs started by this process
        # Sessions as `cached` last read them, by id: (the file's identity, the session).
        self._known: dict[str, tuple[tuple[int, int, int], Session]] = {}
        self.started = 0  # runs started by this process (metrics)
        self.restarts = 0
        self.reaped = 0
        for sub in ("sessions", "runs", "cache", "index"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.clean_stale()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        if reaper:
            self._reaper = threading.Thread(target=self._reap_loop, name="hls-reaper", daemon=True)
            self._reaper.start()

    # ---- the interface ----

    def open(self, user_id: int, media_hash: str, output: Output, *, method: str, words: str,
             count: int, duration: float, session_id: str | None = None) -> str:  # fmt: skip
        """Return the viewer's session for this rendition, made now or joined; the viewer's
        session of another rendition of the same video ends (one per viewer and item).
        `session_id`: make (or join) the session with this id (a worker taking a server's)."""
        now = time.time()
        with self._lock():
            for s in self._all():
                if session_id is not None and s.id == session_id:
                    s.last_request = now
                    self._write(s)
                    return s.id
                if s.user_id == user_id and s.media_hash == media_hash:
                    if s.key == output.key and session_id is None:
                        s.last_request = now
                        self._write(s)
                        return s.id
                    self._end(s, "another quality was chosen")
            sid = session_id or secrets.token_hex(SESSION_ID_LEN // 2)
            s = Session(sid, user_id, media_hash, output.key,
                        asdict(output), method, words, count, duration, now, now)  # fmt: skip
            self._write(s)
            metrics.count(f"hls_sessions_{method}")
            self.cache_dir(s).mkdir(parents=True, exist_ok=True)
            _touch(self.cache_dir(s) / ".used")
        log.info("hls session %s: user %d, %s %s (%s)", s.id, user_id, media_hash, s.key, method)
        return s.id

    def session(self, session_id: str, user_id: int) -> Session:
        """Return the user's session; NotFound for another user's, an ended or a malformed one."""
        if not _is_session_id(session_id):
            raise NotFound("no such playback session")
        s = self._read(session_id)
        if s is None or s.user_id != user_id:
            raise NotFound("no such playback session (it may have ended: reload the page)")
        return s

    def segment(self, session_id: str, user_id: int, n: int, loader: Loader) -> Path:
        """Return the path of complete segment n, waiting for (and starting) its encoder."""
        s = self.session(session_id, user_id)
        path, there = self._cached(s, n)
        if there:
            return path
        with self._lock():
            s = self.session(session_id, user_id)
            if s.run is not None:
                self._publish(s)
            if path.is_file():
                self._seen(s, n, locked=True)
                return path
            # Recorded first: a request turned away by the cap (TranscodeBusy, 503) still keeps
            # its session alive, or the reaper would end it while the player retries.
            s.last_request, s.last_segment = time.time(), n
            if self._needs_start(s, n):
                self._start(s, n, loader)
            elif s.run is not None and s.run.paused:
                self._continue(s)
            self._write(s)
        return self._wait(s, n, path, loader)

    def cached(self, session_id: str, user_id: int, n: int,
               media_hash: str) -> tuple[Session, Path | None]:  # fmt: skip
        """Return the session and the path of segment n if the rendition's cache holds it
        complete, else None (nothing started); NotFound as `segment` says, and for a session
        of another item than `media_hash`. The session is read again only when its file
        changed (one stat, against a file read and parsed: B9's cached-segment row); an ended
        session's file is gone, so it counts at once. Do not change the Session returned."""
        s = self._remembered(session_id) if _is_session_id(session_id) else None
        if s is None or s.user_id != user_id:
            self.session(session_id, user_id)  # says why (NotFound)
            raise NotFound("no such playback session")
        if s.media_hash != media_hash:
            raise NotFound("no such playback session")
        path, there = self._cached(s, n)
        return s, path if there else None

    def _remembered(self, session_id: str) -> Session | None:
        """`_read`, kept while the session's file is the same one (inode, mtime, size: every
        write replaces the file). A session written twice within one timestamp tick onto a
        reused inode at the same size could be seen a moment late: only its last request and
        segment (when the next one is recorded) depend on that; who owns it, what it plays and
        its segment count never change under its id."""
        try:
            st = os.stat(f"{self._sessions}{session_id}.json")
        except OSError:  # gone: ended, reaped
            self._known.pop(session_id, None)
            return None
        ident = (st.st_ino, st.st_mtime_ns, st.st_size)
        known = self._known.get(session_id)
        if known is not None and known[0] == ident:
            return known[1]
        s = self._read(session_id)
        if s is not None:
            if len(self._known) >= KNOWN_SESSIONS:
                self._known.clear()
            self._known[session_id] = (ident, s)
        return s

    def _cached(self, s: Session, n: int) -> tuple[Path, bool]:
        """Return where segment n is kept and whether it is there; if it is, record the
        request (served now). Plain strings and one stat: a cached segment's request on the
        lean path costs little more than an original's range (bench B9)."""
        if not 0 <= n < s.count:
            raise NotFound("no such segment")
        name = f"{self._cache}{s.media_hash}/{s.key}/{n}.{hls.SEGMENT_EXT}"
        there = os.path.isfile(name)
        if there:
            self._seen(s, n)
        return _path(name), there

    def stop(self, session_id: str, user_id: int) -> None:
        """End the user's session now (the player left)."""
        with self._lock():
            s = self.session(session_id, user_id)
            self._end(s, "stopped by the player")

    def hand_over(self, session_id: str) -> None:
        """Stop the session's encoder here, keeping the session and its finished segments: it
        goes on elsewhere (on a worker: services/playback/remote.py)."""
        with self._lock():
            s = self._read(session_id)
            if s is not None and s.run is not None:
                self._kill(s)
                self._write(s)

    def sessions(self) -> list[SessionInfo]:
        """Return the live sessions, newest first."""
        return list_sessions(self.root)

    # ---- paths ----

    def cache_dir(self, s: Session) -> Path:
        return self.root / "cache" / s.media_hash / s.key

    @property
    def index_dir(self) -> Path:
        """Return the play index's folder (services/playback/playindex.py)."""
        return self.root / "index"

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    # ---- encoder runs ----

    def _needs_start(self, s: Session, n: int) -> bool:
        run = s.run
        if run is None or not self._alive(run):
            return True
        if n < run.start:
            return True  # a seek back, behind where this run began
        done = hls.finished_segments(self.run_dir(run.id))
        at = (max(done) + 1) if done else run.start  # the segment it is making now
        if n < at:
            return True  # made by this run but evicted meanwhile: make it again
        return (n - at) * s.out.segment > self.restart_ahead

    def _start(self, s: Session, n: int, loader: Loader, encoder: str | None = None) -> None:
        """(Re)start the session's encoder at segment n (under the lock)."""
        restart = s.run is not None
        if s.run is not None:
            self._kill(s)
        busy = sum(1 for x in self._all() if x.id != s.id and x.run and self._alive(x.run))
        if busy >= self.max_encoders:
            self._write(s)
            raise TranscodeBusy(f"all {self.max_encoders} transcoders are busy", 10)
        source, media = loader()
        try:
            out = s.out
            bounds = hls.boundaries(source, out, media.fileno(), self.index_dir)
            run_id = secrets.token_hex(8)
            run_dir = self.run_dir(run_id)
            run_dir.mkdir(parents=True)
            encoder = (
                "copy"
                if out.video == "copy"
                else (encoder or (SOFTWARE if s.software else self.encoder))
            )
            # The child inherits the trusted open file at the same number: /proc/self/fd/N.
            args = hls.encoder_args(source, out, bounds, n, run_dir, media.fileno(), encoder,
                                    self.device)  # fmt: skip
            proc = runner.start_encoder(
                args,
                log_path=str(run_dir / "ffmpeg.log"),
                max_seconds=max(600.0, s.duration * 4),
                pass_fds=(media.fileno(),),
                on_exit=lambda code, tail, d=run_dir: _record_exit(d, code, tail),
            )
        finally:
            media.close()
        (run_dir / "pid").write_text(str(proc.pid))
        self.encoders[run_id] = proc
        s.run = Run(run_id, proc.pid, n, time.time(), encoder)
        self.started += 1
        self.restarts += restart
        metrics.count("hls_encoder_restarts" if restart else "hls_encoder_starts")
        what = "restarted" if restart else "started"
        log.info("hls session %s: encoder %s at segment %d (%s, pid %d)", s.id, what, n,
                 encoder, proc.pid)  # fmt: skip
        self._write(s)

    def _wait(self, s: Session, n: int, path: Path, loader: Loader) -> Path:
        """Return segment n's path once complete: woken when the run lists a segment or ends
        (services/playback/folderwatch.py: no polling, no CPU taken from the encoder), and
        looking at least every WATCH_TICK (a restart by another process, a vanished encoder)."""
        began = time.monotonic()
        deadline = began + SEGMENT_WAIT
        gone_since = 0.0
        retried = False
        watch: FolderWatch | None = None
        watch_id = ""
        try:
            while True:
                if path.is_file():
                    return path
                run = s.run
                if run is None:
                    raise TranscodeFailed("the encoder of this session is gone")
                run_dir = self.run_dir(run.id)
                if watch is None or watch_id != run.id:  # watched before looking: nothing missed
                    if watch is not None:
                        watch.close()
                    watch, watch_id = FolderWatch(run_dir, WATCHED), run.id
                if n in hls.finished_segments(run_dir):
                    if run.encoder not in (SOFTWARE, "copy"):
                        self.hardware_failures = 0  # it works (again)
                    with self._lock():
                        self._publish(s)
                    if path.is_file():
                        return path
                code, tail = _exit_of(run_dir)
                if code is None and not self._alive(run):
                    # Exited, but its waiter (maybe in another process) has not written the exit
                    # file yet, or that process is gone: give it a moment before judging.
                    gone_since = gone_since or time.monotonic()
                    if time.monotonic() - gone_since > 1.0:
                        code, tail = -1, "the encoder vanished"
                if code is not None:
                    self._publish(s)
                    if path.is_file():
                        return path
                    if (code == 0 or tail == "the encoder vanished") and not retried:
                        # It ended without this segment (killed by another request's restart, or
                        # done before the segment was asked again after an eviction): start anew.
                        retried = True
                        with self._lock():
                            fresh = self.session(s.id, s.user_id)
                            if fresh.run is None or fresh.run.id == run.id:
                                self._start(fresh, n, loader)
                        s = self.session(s.id, s.user_id)
                        gone_since = 0.0
                        continue
                    self._failed(s, run, code, tail, n, loader)
                    s = self.session(s.id, s.user_id)  # restarted in software
                if time.monotonic() > deadline:
                    raise Unavailable("the segment is not ready yet", 2)
                if watch.watching:
                    watch.wait(min(WATCH_TICK, max(0.0, deadline - time.monotonic())))
                else:
                    time.sleep(POLL_FIRST if time.monotonic() - began < 1.0 else POLL)
        finally:
            if watch is not None:
                watch.close()

    def _failed(self, s: Session, run: Run, code: int, tail: str, n: int, loader: Loader) -> None:
        last = tail.strip().splitlines()[-1] if tail.strip() else f"exit status {code}"
        if "No space left on device" in tail or _disk_low(self.root):
            log.warning("hls session %s: encoder %s ended (%s): %s", s.id, run.encoder, code, last)
            with self._lock():
                self._kill(s)
                self._write(s)
            raise Unavailable("the transcode cache's disk is full", 30)
        if run.encoder not in (SOFTWARE, "copy") and code != 0:
            # This job goes on in software from the same segment; the next job tries the
            # hardware encoder again (a GPU may refuse one more session and take the next),
            # unless it failed HARDWARE_TRIES jobs in a row here.
            self.hardware_failures += 1
            give_up = self.hardware_failures >= HARDWARE_TRIES
            log.warning("hls session %s: %s failed at segment %d (exit %s: %s); this job falls "
                        "back to libx264%s", s.id, run.encoder, n, code, last,
                        f", and so will every later one ({self.hardware_failures} failures in a "
                        "row)" if give_up else "")  # fmt: skip
            if give_up:
                self.encoder = SOFTWARE
            with self._lock():
                fresh = self.session(s.id, s.user_id)
                fresh.software = True
                self._start(fresh, n, loader, SOFTWARE)
            return
        log.warning("hls session %s: encoder %s ended (%s): %s", s.id, run.encoder, code, last)
        with self._lock():
            fresh = self.session(s.id, s.user_id)
            self._kill(fresh)
            self._write(fresh)
        raise TranscodeFailed(f"this video could not be converted: {last}")

    def _publish(self, s: Session) -> None:
        """Link the run's finished segments into the rendition's cache (first one wins)."""
        if s.run is None:
            return
        run_dir, cache = self.run_dir(s.run.id), self.cache_dir(s)
        cache.mkdir(parents=True, exist_ok=True)
        for n in hls.finished_segments(run_dir):
            target = cache / f"{n}.{hls.SEGMENT_EXT}"
            if target.exists():
                continue
            with contextlib.suppress(FileNotFoundError, FileExistsError):
                os.link(run_dir / f"{n}.{hls.SEGMENT_EXT}", target)

    def _alive(self, run: Run) -> bool:
        if (self.run_dir(run.id) / "exit").exists():
            return False
        return _is_our_ffmpeg(run.pid, run.id)

    def _kill(self, s: Session) -> None:
        """Stop the session's encoder (its whole process group) and remove its run folder."""
        run = s.run
        if run is None:
            return
        self._publish(s)
        if _is_our_ffmpeg(run.pid, run.id):
            runner.signal_group(run.pid, signal.SIGKILL)
        encoder = self.encoders.pop(run.id, None)
        if encoder is not None:
            encoder.proc.wait()
        shutil.rmtree(self.run_dir(run.id), ignore_errors=True)
        s.run = None

    def _pause(self, s: Session) -> None:
        if s.run is not None and not s.run.paused and _is_our_ffmpeg(s.run.pid, s.run.id):
            runner.signal_group(s.run.pid, signal.SIGSTOP)
            s.run.paused = True
            log.info("hls session %s: encoder paused, far enough ahead", s.id)

    def _continue(self, s: Session) -> None:
        if s.run is not None and s.run.paused:
            runner.signal_group(s.run.pid, signal.SIGCONT)
            s.run.paused = False
            log.info("hls session %s: encoder continued", s.id)

    def _throttle(self, s: Session) -> bool:
        """Pause or continue the encoder by how far ahead of the viewer it is; True if changed."""
        run = s.run
        if run is None or not self._alive(run):
            return False
        done = hls.finished_segments(self.run_dir(run.id))
        if not done:
            return False
        ahead = (max(done) - max(s.last_segment, run.start)) * s.out.segment
        if not run.paused and ahead > self.throttle_ahead:
            self._pause(s)
            return True
        if run.paused and ahead <= self.resume_ahead:
            self._continue(s)
            return True
        return False

    def _seen(self, s: Session, n: int, locked: bool = False) -> None:
        """Record a served segment: the session lives on, the encoder may continue or pause."""
        now = time.time()
        if n == s.last_segment and now - s.last_request < TOUCH_EVERY:
            return
        with contextlib.nullcontext() if locked else self._lock():
            fresh = self._read(s.id)
            if fresh is None:
                return
            fresh.last_request, fresh.last_segment = now, max(n, 0)
            self._throttle(fresh)
            self._write(fresh)
        used = self.cache_dir(s) / ".used"
        with contextlib.suppress(OSError):
            if now - used.stat().st_mtime > 5:
                _touch(used)

    def _end(self, s: Session, why: str) -> None:
        self._kill(s)
        with contextlib.suppress(FileNotFoundError):
            (self.root / "sessions" / f"{s.id}.json").unlink()
        log.info("hls session %s ended: %s", s.id, why)

    # ---- housekeeping ----

    def reap(self) -> None:
        """End idle sessions, throttle the rest, drop dead runs, keep the cache in its size."""
        now = time.time()
        with self._lock():
            for s in self._all():
                if now - s.last_request > self.idle:
                    self._end(s, f"reaped after {self.idle:g} s without a request")
                    self.reaped += 1
                    metrics.count("hls_sessions_reaped")
                    continue
                if s.run is not None and not self._alive(s.run):
                    self._kill(s)  # finished or failed: keep its segments, drop the folder
                    self._write(s)
                elif self._throttle(s):
                    self._write(s)
            self._drop_orphan_runs()
            self.enforce_cache()

    def clean_stale(self) -> None:
        """Remove what a stopped server left: dead runs, idle sessions, half-written files."""
        with self._lock():
            for s in self._all():
                if s.run is not None and not self._alive(s.run):
                    shutil.rmtree(self.run_dir(s.run.id), ignore_errors=True)
                    s.run = None
                    self._write(s)
                if time.time() - s.last_request > self.idle:
                    self._end(s, "stale at start-up")
            self._drop_orphan_runs()
            for tmp in (self.root / "cache").glob("*/*/*.tmp"):
                tmp.unlink(missing_ok=True)

    def _drop_orphan_runs(self) -> None:
        live = {s.run.id for s in self._all() if s.run is not None}
        for run_dir in (self.root / "runs").iterdir():
            if run_dir.name in live:
                continue
            pid = _read_int(run_dir / "pid")
            if pid and _is_our_ffmpeg(pid, run_dir.name):
                runner.signal_group(pid, signal.SIGKILL)
            shutil.rmtree(run_dir, ignore_errors=True)
            log.info("hls: removed stale run folder %s", run_dir.name)

    def cache_size(self) -> int:
        """Return the bytes of finished segments kept in the cache."""
        return sum(size for _, size in _files(self.root / "cache"))

    def enforce_cache(self) -> int:
        """Evict least recently used renditions (then old segments of ones in use) until the
        cache fits `cache_bytes`; return the bytes freed. Call with the lock held."""
        cache = self.root / "cache"
        total = self.cache_size()
        if total <= self.cache_bytes:
            return 0
        now = time.time()
        live = {}
        for s in self._all():
            if now - s.last_request <= self.idle:
                key = (s.media_hash, s.key)
                live[key] = min(live.get(key, s.last_segment), s.last_segment)
        freed = 0
        dirs = [d for d in cache.glob("*/*") if d.is_dir()]
        dirs.sort(key=lambda d: _mtime(d / ".used"))
        for d in dirs:
            if total - freed <= self.cache_bytes:
                break
            if (d.parent.name, d.name) in live:
                continue
            size = sum(sz for _, sz in _files(d))
            shutil.rmtree(d, ignore_errors=True)
            with contextlib.suppress(OSError):
                d.parent.rmdir()
            freed += size
            log.info("hls cache: evicted %s/%s (%d bytes)", d.parent.name, d.name, size)
        for (media_hash, key), position in live.items():
            if total - freed <= self.cache_bytes:
                break
            d = cache / media_hash / key
            for path, size in sorted(_files(d), key=lambda p: _segment_number(p[0])):
                number = _segment_number(path)
                if number < 0 or number >= position - 1 or total - freed <= self.cache_bytes:
                    continue  # the segment on screen and the ones after it stay
                path.unlink(missing_ok=True)
                freed += size
        return freed

    def close(self) -> None:
        """Stop the reaper and every encoder this process started."""
        self._stop.set()
        with self._lock():
            for s in self._all():
                if s.run is not None and s.run.id in self.encoders:
                    self._kill(s)
                    self._write(s)

    def _reap_loop(self) -> None:
        tick = max(0.2, min(5.0, self.idle / 3))
        while not self._stop.wait(tick):
            try:
                self.reap()
            except Exception:
                log.exception("hls reaper failed")

    # ---- session records ----

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self, session_id: str) -> Session | None:
        try:
            with open(f"{self._sessions}{session_id}.json", "rb") as f:
                data = json.loads(f.read())
            run = data.pop("run", None)
            return Session(**data, run=Run(**run) if run else None)
        except (OSError, ValueError, TypeError, AttributeError):  # gone, or of another version
            return None

    def _write(self, s: Session) -> None:
        path = self.root / "sessions" / f"{s.id}.json"
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            tmp.write_text(json.dumps(asdict(s)))
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno == errno.ENOSPC:
                raise Unavailable("the transcode cache's disk is full", 30) from None
            raise

    def _all(self) -> list[Session]:
        found = []
        for path in (self.root / "sessions").glob("*.json"):
            s = self._read(path.stem)
            if s is not None:
                found.append(s)
        return found


def list_sessions(root: Path) -> list[SessionInfo]:
    """Return the sessions recorded under `root` (any process's), newest first; no side effect."""
    now = time.time()
    infos = []
    sessions = []
    for path in (root / "sessions").glob("*.json"):
        try:
            data = json.loads(path.read_text())
            run = data.pop("run", None)
            sessions.append(Session(**data, run=Run(**run) if run else None))
        except (OSError, ValueError, TypeError):
            continue
    for s in sorted(sessions, key=lambda x: -x.created):
        run = s.run
        if run is not None and ((root / "runs" / run.id / "exit").exists()
                                or not _is_our_ffmpeg(run.pid, run.id)):  # fmt: skip
            run = None
        done = hls.finished_segments(root / "runs" / run.id) if run else []
        made = (max(done) + 1 - run.start) if run and done else 0
        speed = made * s.out.segment / max(0.001, now - run.started) if run else 0.0
        ahead = (max(done) - s.last_segment) if done else 0
        infos.append(SessionInfo(s.id, s.user_id, s.media_hash, s.method, s.words,
                                 run.encoder if run else "", round(speed, 2), max(0, ahead),
                                 bool(run and run.paused), round(now - s.last_request, 1)))  # fmt: skip
    return infos


def prunable(root: Path, known: set[str]) -> list[Path]:
    """Return transcode files `flask cache prune` may delete: the cached renditions and play
    index records of media the library no longer has, and what encoders of a stopped server
    left in runs/."""
    found: list[Path] = playindex.prunable(root / "index", known)
    cache = root / "cache"
    if cache.is_dir():
        for media_dir in cache.iterdir():
            if media_dir.is_dir() and media_dir.name not in known:
                found += [p for p in media_dir.rglob("*") if p.is_file()]
    runs = root / "runs"
    if runs.is_dir():
        for run_dir in runs.iterdir():
            pid = _read_int(run_dir / "pid")
            if not (pid and _is_our_ffmpeg(pid, run_dir.name)):
                found += [p for p in run_dir.rglob("*") if p.is_file()]
    return found


def remove_empty_folders(root: Path) -> None:
    """Remove rendition, media and run folders that hold no file any more."""
    for pattern in ("cache/*/*", "cache/*", "runs/*"):
        for folder in sorted(root.glob(pattern), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                with contextlib.suppress(OSError):
                    folder.rmdir()


def cache_usage(root: Path) -> tuple[int, int]:
    """Return the bytes and number of finished segments in the transcode cache under `root`."""
    found = _files(root / "cache")
    return sum(size for _, size in found), len(found)


def _disk_low(root: Path) -> bool:
    """Return True when the transcode folder's disk is (nearly) full: ffmpeg's own words about
    it may not have reached its log, which lives on that disk too."""
    try:
        return shutil.disk_usage(root).free < LOW_DISK
    except OSError:
        return False


def _record_exit(run_dir: Path, code: int, tail: str) -> None:
    if run_dir.is_dir():
        with contextlib.suppress(OSError):
            (run_dir / "exit").write_text(f"{code}\n{tail}")


def _exit_of(run_dir: Path) -> tuple[int | None, str]:
    try:
        text = (run_dir / "exit").read_text()
    except OSError:
        return None, ""
    first, _, tail = text.partition("\n")
    try:
        return int(first), tail
    except ValueError:
        return -1, tail


def _is_our_ffmpeg(pid: int, run_id: str) -> bool:
    """Return True when pid is alive and is an encoder of this run (no pid reuse accident)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z" and run_id.encode() in cmdline


@functools.lru_cache(maxsize=4096)  # a cached segment's path, made once (~1.5 µs a Path)
def _path(name: str) -> Path:
    return Path(name)


def _is_session_id(session_id: str) -> bool:
    return len(session_id) == SESSION_ID_LEN and not session_id.strip("0123456789abcdef")


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def _touch(path: Path) -> None:
    path.touch()
    os.utime(path)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _files(root: Path) -> list[tuple[Path, int]]:
    found = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            if name.endswith(f".{hls.SEGMENT_EXT}"):
                path = Path(dirpath) / name
                with contextlib.suppress(OSError):
                    found.append((path, path.stat().st_size))
    return found


def _segment_number(path: Path) -> int:
    stem = path.name.partition(".")[0]
    return int(stem) if stem.isdigit() else -1
