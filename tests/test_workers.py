"""Transcode sessions on workers on other machines (issue 18), end to end.

A real redis-server and two real `flask worker` processes, each with its own scratch folder,
stand in for two machines; the server is the real app (test client) with LVS_REDIS_URL set.
Sessions spread over both workers; a worker killed with its encoders (kill -9 of everything it
ran: a power cut) loses its session to the other one at the position asked for; a lapsed lease
stops the worker's ffmpeg and removes its scratch; with Redis stopped the server works alone
and goes back to the workers when Redis returns; a worker that cannot read the file reports it
and the session fails over; jobs with anything outside the allow-lists are refused.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import av
import pytest

from services.compute import conn, leases, registry
from services.ffmpeg import file_arg
from services.playback import hls
from services.playback import worker as pw
from tests.conftest import mount_tmpfs, signed_in
from tests.mediagen import X265, ffmpeg, make_video
from tests.redis_server import RedisServer
from tests.sample_library import media_hash, scan_library
from tests.test_compute import SECRET, start_worker, wait_announced, worker_env
from tests.test_hls import CHROMIUM

SECONDS = 45  # 15 transcode segments of 3 s


def first_pts(data: bytes) -> float:
    with av.open(io.BytesIO(data), format="mpegts") as c:
        for packet in c.demux(video=0):
            if packet.pts is not None:
                return float(packet.pts * packet.time_base)
    raise AssertionError("no video in the segment")


def processes_under(folder: Path) -> list[int]:
    """Return the pids whose command line names `folder` (a worker's encoders)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if str(folder).encode() in cmd and state != b"Z":
            found.append(int(entry))
    return found


class Workers:
    """Worker processes by name, each its own process group and scratch folder."""

    def __init__(self, base: Path, redis_url: str, media: Path, **env: str) -> None:
        self.base, self.redis_url, self.media, self.env = base, redis_url, media, env
        self.procs: dict[str, subprocess.Popen] = {}
        self.urls: dict[str, str] = {}

    def scratch(self, name: str) -> Path:
        return self.base / f"scratch-{name}"

    def log(self, name: str) -> Path:
        return self.base / f"{name}.log"

    def start(self, name: str, **env: str) -> None:
        full = worker_env(self.redis_url, self.media, self.scratch(name), self.base / f"data-{name}",
                          **{**self.env, **env})  # fmt: skip
        self.procs[name], self.urls[name] = start_worker(full, name, self.log(name))
        wait_announced(self.redis_url, name)

    def kill(self, name: str) -> None:
        """A power cut: kill -9 the worker's process group and every encoder it started."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in processes_under(self.scratch(name)):
            os.kill(pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class Cluster:
    """A scanned library, Redis, two workers, and the server app."""

    def __init__(self, base: Path, acl: str = "", config: dict | None = None,
                 **worker_env: str) -> None:  # fmt: skip
        from app import create_app
        from config import load_settings

        self.base = base
        self.root = base / "library"
        self.root.mkdir(parents=True)
        self.files = {}
        for i in range(3):
            self.files[i] = make_video(self.root / f"clip{i}.mkv", vcodec=[*X265, "-pix_fmt", "yuv420p"],
                                       acodec=["aac", "-b:a", "48k"], seconds=SECONDS,
                                       size="426x240")  # fmt: skip
        self.redis = RedisServer(base / "redis", acl)  # acl: Redis users (tests/redis_server.py)
        (base / "redis").mkdir()
        self.redis.start()
        self.config = {"media_dirs": [str(self.root)], "data_dir": str(base / "data"),
                       "probe_workers": 1, "redis_url": self.redis.url, "node_secret": SECRET,
                       "local_work": "off", **(config or {})}  # fmt: skip
        self.settings = load_settings(self.config, environ={}, dotenv_path=base / "no.env")
        scan_library(self.settings)
        self.app = create_app(self.config)
        self.workers = Workers(base, self.redis.url, self.root, **worker_env)
        self.workers.start("w-a")
        self.workers.start("w-b")

    def hash(self, i: int) -> str:
        return media_hash(self.settings, self.files[i])

    def client(self, name: str = "viewer"):
        return signed_in(self.app, "viewer", name)

    @staticmethod
    def open(client, h: str) -> str:
        r = client.get(f"/media/{h}/hls/master.m3u8", query_string={"caps": CHROMIUM})
        assert r.status_code == 200, r.data
        variant = r.data.decode().strip().splitlines()[-1]
        assert client.get(f"/media/{h}/hls/{variant}").status_code == 200
        return variant.split("/")[0]

    def segment(self, client, h: str, sid: str, n: int, **headers: str):
        return client.get(f"/media/{h}/hls/{sid}/{n}.ts", headers=headers)

    def close(self) -> None:
        tc = self.app.extensions.get("transcoder")
        if tc is not None:
            tc.close()
        self.workers.stop_all()
        self.redis.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    c = Cluster(tmp_path_factory.mktemp("workers"))
    yield c
    c.close()


def served_by(app, sid: str) -> str:
    """Where the session's segments come from now: a worker's id, or "local" (the viewer's
    answers do not say: a worker's id names its host)."""
    return app.extensions["transcoder"].placements().get(sid, "local")


def _stop_sessions(cluster: Cluster) -> None:
    tc = cluster.app.extensions.get("transcoder")
    if tc is None:
        return
    for sid, _ in tc.placements().items():
        s = tc.local._read(sid)
        if s is not None:
            tc.stop(sid, s.user_id)


def test_sessions_spread_over_both_workers_and_segments_are_proxied(cluster: Cluster) -> None:
    a, b = cluster.client("viewer-a"), cluster.client("viewer-b")
    ha, hb = cluster.hash(0), cluster.hash(1)
    sa, sb = cluster.open(a, ha), cluster.open(b, hb)
    ra, rb = cluster.segment(a, ha, sa, 0), cluster.segment(b, hb, sb, 0)
    assert ra.status_code == 200 and rb.status_code == 200, (ra.data[:200], rb.data[:200])
    worker = served_by(cluster.app, sa)
    assert {worker, served_by(cluster.app, sb)} == {"w-a", "w-b"}
    assert ra.headers["Content-Type"] == "video/mp2t" and "X-LVS-Worker" not in ra.headers
    assert abs(first_pts(ra.data)) < 0.5
    # the next segment continues where the first ended; a Range is passed on (206)
    r1 = cluster.segment(a, ha, sa, 1)
    assert r1.status_code == 200 and 2.5 < first_pts(r1.data) < 3.5
    part = cluster.segment(a, ha, sa, 1, Range="bytes=188-1127")
    assert part.status_code == 206 and part.data == r1.data[188:1128]
    assert part.headers["Content-Range"] == f"bytes 188-1127/{len(r1.data)}"
    # nothing of these sessions ran on the server
    tc = cluster.app.extensions["transcoder"]
    assert not any((tc.root / "cache" / ha).rglob("*.ts"))
    client = conn.redis_link(cluster.redis.url).client()
    assert leases.holder(client, sa) == worker
    # the workers count them in their announcements
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        counts = {w.id: w.sessions for w in registry.workers(client)}
        if counts == {"w-a": 1, "w-b": 1}:
            break
        time.sleep(0.2)
    assert counts == {"w-a": 1, "w-b": 1}
    # the player leaves: the worker ends the session and removes its scratch
    assert a.post(f"/media/{ha}/hls/{sa}/stop").status_code == 204
    deadline = time.monotonic() + 5
    while any(cluster.workers.scratch(worker).rglob("*.ts")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(cluster.workers.scratch(worker).rglob("*.ts"))
    assert leases.holder(client, sa) is None
    _stop_sessions(cluster)


def test_a_killed_worker_loses_its_session_to_the_other_at_the_same_position(cluster: Cluster):
    c = cluster.client("viewer-kill")
    h = cluster.hash(2)
    sid = cluster.open(c, h)
    for n in range(3):
        r = cluster.segment(c, h, sid, n)
        assert r.status_code == 200
    first = served_by(cluster.app, sid)
    other = ({"w-a", "w-b"} - {first}).pop()
    cluster.workers.kill(first)
    started = time.monotonic()
    r = cluster.segment(c, h, sid, 3)
    stall = time.monotonic() - started
    assert r.status_code == 200, r.data[:300]
    assert served_by(cluster.app, sid) == other
    assert 8.5 < first_pts(r.data) < 9.5  # segment 3 starts at 9 s: the same position
    assert stall <= 10, stall
    r = cluster.segment(c, h, sid, 4)
    assert r.status_code == 200 and served_by(cluster.app, sid) == other
    client = conn.redis_link(cluster.redis.url).client()
    assert leases.holder(client, sid) == other
    _stop_sessions(cluster)
    cluster.workers.start(first)  # back for the next tests


def test_a_frozen_worker_is_left_when_its_heartbeat_stops(cluster: Cluster) -> None:
    """A machine that hangs (or loses its network) sends no reset: the server's request waits
    on a connection the kernel accepted, and the heartbeat's TTL decides."""
    c = cluster.client("viewer-frozen")
    h = cluster.hash(1)
    sid = cluster.open(c, h)
    for n in range(2):
        r = cluster.segment(c, h, sid, n)
        assert r.status_code == 200
    first = served_by(cluster.app, sid)
    proc = cluster.workers.procs[first]
    frozen = [*processes_under(cluster.workers.scratch(first))]
    os.killpg(proc.pid, signal.SIGSTOP)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        r = cluster.segment(c, h, sid, 5)
        took = time.monotonic() - started
        assert r.status_code == 200, r.data[:300]
        assert served_by(cluster.app, sid) not in (first, "local")
        assert 14.5 < first_pts(r.data) < 15.5
        assert took <= 10, took
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    # back, it finds its lease gone to the other worker and ends its copy of the session
    log = cluster.workers.log(first)
    deadline = time.monotonic() + 10
    while f"session {sid} ended (lease went to" not in log.read_text():
        assert time.monotonic() < deadline, "the thawed worker kept the session"
        time.sleep(0.2)
    _stop_sessions(cluster)


def test_a_lapsed_lease_stops_the_workers_ffmpeg_and_removes_its_scratch(cluster, tmp_path):
    from app import create_app

    short = create_app({**cluster.config, "data_dir": str(tmp_path / "data2"),
                        "transcode_idle": 3})  # fmt: skip
    shutil.copyfile(cluster.settings.db_path, tmp_path / "data2" / "library.db")
    c = signed_in(short, "viewer", "viewer-lease")
    h = cluster.hash(0)
    r = c.get(f"/media/{h}/hls/master.m3u8", query_string={"caps": CHROMIUM})
    assert r.status_code == 200
    sid = r.data.decode().strip().splitlines()[-1].split("/")[0]
    r = c.get(f"/media/{h}/hls/{sid}/0.ts")
    assert r.status_code == 200
    worker = served_by(short, sid)
    scratch = cluster.workers.scratch(worker)
    assert processes_under(scratch), "the worker's encoder runs"
    deadline = time.monotonic() + 12
    while (processes_under(scratch) or any(scratch.rglob("*.ts"))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes_under(scratch), "ffmpeg still runs after the lease lapsed"
    assert not any(scratch.rglob("*.ts")), "segments left in the scratch"
    assert f"session {sid} ended (lease lapsed)" in cluster.workers.log(worker).read_text()
    short.extensions["transcoder"].close()


def test_redis_stopped_then_back(cluster: Cluster, caplog) -> None:
    caplog.set_level(logging.WARNING)
    link = conn.redis_link(cluster.redis.url)
    cluster.redis.stop()
    link.failed(ConnectionError("stopped by the test"))
    c = cluster.client("viewer-redis")
    h = cluster.hash(1)
    sid = cluster.open(c, h)
    r = cluster.segment(c, h, sid, 0)
    assert r.status_code == 200 and served_by(cluster.app, sid) == "local"  # made here
    tc = cluster.app.extensions["transcoder"]
    assert any((tc.root / "cache" / h).rglob("0.ts"))
    assert "unreachable" in (link.notice() or "")
    assert any("unreachable" in rec.getMessage() for rec in caplog.records)
    _stop_sessions(cluster)
    cluster.redis.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        client = link.client()
        if client is not None and {w.id for w in registry.workers(client)} == {"w-a", "w-b"}:
            break
        time.sleep(0.2)
    assert link.notice() is None
    c2 = cluster.client("viewer-redis-2")
    h = cluster.hash(2)  # (clip 1's first segment is in this server's cache now)
    sid = cluster.open(c2, h)
    r = cluster.segment(c2, h, sid, 0)
    assert r.status_code == 200 and served_by(cluster.app, sid) in ("w-a", "w-b")
    _stop_sessions(cluster)


def _where(app, sid: str, response) -> str:
    assert response.status_code == 200, response.data[:300]
    return served_by(app, sid)


def test_local_work_on_counts_the_server_as_one_more_candidate(cluster: Cluster, tmp_path):
    """LVS_LOCAL_WORK=on: at equal sessions per slot a worker goes first; the server takes a
    session only with a free encoder slot while no worker is less busy."""
    from app import create_app

    on = create_app({**cluster.config, "data_dir": str(tmp_path / "data-on"),
                     "local_work": "on", "transcode_max": 1})  # fmt: skip
    shutil.copyfile(cluster.settings.db_path, tmp_path / "data-on" / "library.db")
    client = conn.redis_link(cluster.redis.url).client()
    deadline = time.monotonic() + 10
    while any(w.sessions for w in registry.workers(client)) or leases.count_by_worker(client):
        assert time.monotonic() < deadline, "sessions of earlier tests linger on the workers"
        time.sleep(0.2)
    viewer = signed_in(on, "viewer", "viewer-on")
    where, sids = [], []
    for i in range(3):
        h = cluster.hash(i)
        sids.append(cluster.open(viewer, h))
        where.append(_where(on, sids[-1], cluster.segment(viewer, h, sids[-1], 0)))
    assert sorted(where[:2]) == ["w-a", "w-b"]  # a tie with the idle server: workers first
    assert where[2] == "local"  # each worker's one slot is taken, the server has a free one
    tc = on.extensions["transcoder"]
    assert tc.placements() == dict(zip(sids, where, strict=True))
    for sid in sids:
        tc.stop(sid, viewer.user.id)
    tc.close()


def test_local_work_off_runs_here_only_while_no_worker_answers(tmp_path, caplog) -> None:
    """LVS_LOCAL_WORK=off with no worker: sessions run here with one WARNING and a notice; a
    worker that starts takes them over at the next segment not made here (the encoder here
    stops); a worker killed and restarted is asked again at once, not this server."""
    from app import create_app
    from config import load_settings
    from services.compute import status
    from services.compute.settings import ComputeSettings
    from services.playback import remote
    from services.playback.transcoder import _is_our_ffmpeg

    caplog.set_level(logging.INFO)
    root = tmp_path / "library"
    root.mkdir()
    # 300 segments (60 s ten times over, copied); the encoder here is frozen after the first
    # (SIGSTOP), the segments asked of a worker are beyond what it made by then
    make_video(tmp_path / "short.mkv", vcodec=[*X265, "-pix_fmt", "yuv420p"], seconds=60,
               size="160x120")  # fmt: skip
    ffmpeg("-stream_loop", "14", "-i", file_arg(tmp_path / "short.mkv"), "-c", "copy",
           file_arg(root / "long.mkv"))  # fmt: skip
    with (root / "other.mkv").open("wb") as f:  # another media_hash: its own encoder
        f.write((root / "long.mkv").read_bytes() + b"\0")
    redis = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    redis.start()
    workers = Workers(tmp_path, redis.url, root)
    config = {"media_dirs": [str(root)], "data_dir": str(tmp_path / "data"), "probe_workers": 1,
              "redis_url": redis.url, "node_secret": SECRET, "local_work": "off",
              "transcode_max": 2}  # fmt: skip
    settings = load_settings(config, environ={}, dotenv_path=tmp_path / "no.env")
    scan_library(settings)
    app = create_app(config)
    try:
        a, b = signed_in(app, "viewer", "viewer-a"), signed_in(app, "viewer", "viewer-b")
        h, h2 = media_hash(settings, root / "long.mkv"), media_hash(settings, root / "other.mkv")
        sa, sb = Cluster.open(a, h), Cluster.open(b, h2)
        assert _where(app, sa, a.get(f"/media/{h}/hls/{sa}/0.ts")) == "local"
        assert _where(app, sb, b.get(f"/media/{h2}/hls/{sb}/0.ts")) == "local"
        alone = [r for r in caplog.records if "no worker is announced" in r.getMessage()]
        assert [r.levelno for r in alone] == [logging.WARNING, logging.INFO]  # said once
        assert status.snapshot(ComputeSettings.of(settings)).notice == status.NO_WORKER
        tc = app.extensions["transcoder"]
        run = tc.local._read(sa).run
        assert run is not None and _is_our_ffmpeg(run.pid, run.id)
        os.killpg(run.pid, signal.SIGSTOP)  # a slow machine: nothing more is made here
        time.sleep(0.2)
        made = hls.finished_segments(tc.local.run_dir(run.id))
        n = max(made, default=0) + 10
        assert n + 2 < tc.local._read(sa).count, "the encoder here made nearly all before it froze"
        workers.start("w-late")
        assert status.snapshot(ComputeSettings.of(settings)).notice is None
        time.sleep(remote.RECHECK)
        r = a.get(f"/media/{h}/hls/{sa}/{n}.ts")
        assert _where(app, sa, r) == "w-late" and abs(first_pts(r.data) - 3 * n) < 0.5
        assert tc.placements()[sa] == "w-late"
        assert tc.local._read(sa).run is None and not _is_our_ffmpeg(run.pid, run.id)
        assert any("workers answer again" in r.getMessage() for r in caplog.records)
        # killed and restarted (another port, another start): asked again, not this server
        client = conn.redis_link(redis.url).client()
        before = wait_announced(redis.url, "w-late").started
        workers.kill("w-late")
        workers.start("w-late")
        deadline = time.monotonic() + 10
        while wait_announced(redis.url, "w-late").started == before:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        r = a.get(f"/media/{h}/hls/{sa}/{n + 2}.ts")
        assert _where(app, sa, r) == "w-late" and abs(first_pts(r.data) - 3 * (n + 2)) < 0.5
        assert leases.holder(client, sa) == "w-late"
        assert a.post(f"/media/{h}/hls/{sa}/stop").status_code == 204
        assert b.post(f"/media/{h2}/hls/{sb}/stop").status_code == 204
    finally:
        app.extensions["transcoder"].close()
        workers.stop_all()
        redis.stop()


def test_a_shared_transcode_folder_serves_workers_segments_from_disk(tmp_path, caplog) -> None:
    """LVS_TRANSCODE_SHARED on the server and both workers (one tmp folder stands in for the
    share): the workers copy finished segments there and the server answers them from disk —
    no request to the worker (its request log); the viewer's requests keep the lease (a short
    idle here); a killed worker's session goes on on the other into the same folder; a share
    gone degrades to the proxy with a log line on the server and on the worker."""
    caplog.set_level(logging.INFO)
    share = tmp_path / "share"
    share.mkdir()
    c = Cluster(tmp_path / "c", config={"transcode_shared": str(share), "transcode_idle": 3},
                LVS_TRANSCODE_SHARED=str(share))  # fmt: skip
    try:
        viewer = c.client("viewer-share")
        h = c.hash(0)
        sid = c.open(viewer, h)
        r = c.segment(viewer, h, sid, 0)
        assert r.status_code == 200, r.data[:300]
        tc = c.app.extensions["transcoder"]
        first = tc.placements()[sid]
        assert first in ("w-a", "w-b")
        rendition = share / h / tc.local._read(sid).key
        assert r.data == (rendition / "0.ts").read_bytes() and abs(first_pts(r.data)) < 0.5
        # the worker copies ahead; the viewer's requests (every 0.3 s, idle 3 s) keep it alive
        client = conn.redis_link(c.redis.url).client()
        until = time.monotonic() + 7
        while time.monotonic() < until or not (rendition / "5.ts").is_file():
            assert time.monotonic() < until + 10, "segment 5 never reached the shared folder"
            assert c.segment(viewer, h, sid, 0).status_code == 200
            time.sleep(0.3)
        assert leases.holder(client, sid) == first
        assert f"session {sid} ended" not in c.workers.log(first).read_text()
        asked = c.workers.log(first).read_text().count(f"/node/sessions/{sid}/")
        assert asked >= 1  # the first segment was asked of it (its request log)
        r5 = c.segment(viewer, h, sid, 5)
        assert r5.status_code == 200
        assert r5.data == (rendition / "5.ts").read_bytes() and 14.5 < first_pts(r5.data) < 15.5
        part = c.segment(viewer, h, sid, 5, Range="bytes=188-1127")
        assert part.status_code == 206 and part.data == r5.data[188:1128]
        assert c.workers.log(first).read_text().count(f"/node/sessions/{sid}/") == asked
        assert leases.positions(client, [sid]).get(sid) is not None  # the worker paces by it
        # the worker dies before making 8..: the other one makes them, into the same folder
        other = ({"w-a", "w-b"} - {first}).pop()
        c.workers.kill(first)
        for n in range(8, 15):
            (rendition / f"{n}.ts").unlink(missing_ok=True)
        started = time.monotonic()
        r8 = c.segment(viewer, h, sid, 8)
        assert r8.status_code == 200 and time.monotonic() - started <= 10, r8.data[:300]
        assert tc.placements()[sid] == other and 23.5 < first_pts(r8.data) < 24.5
        assert r8.data == (rendition / "8.ts").read_bytes()
        # the share is gone: the proxy, with a line on the server and on the worker
        shutil.rmtree(share)
        r9 = c.segment(viewer, h, sid, 9)
        assert r9.status_code == 200 and served_by(c.app, sid) == other
        assert 26.5 < first_pts(r9.data) < 27.5
        assert any("shared transcode folder" in x.getMessage() and "not there" in x.getMessage()
                   and x.levelno == logging.WARNING for x in caplog.records)  # fmt: skip
        deadline = time.monotonic() + 10
        while "cannot take its segments" not in c.workers.log(other).read_text():
            assert time.monotonic() < deadline, "the worker did not say the share failed"
            time.sleep(0.2)
        assert viewer.post(f"/media/{h}/hls/{sid}/stop").status_code == 204
    finally:
        c.close()


def test_a_worker_that_cannot_read_the_file_reports_it_and_the_session_fails_over(tmp_path):
    """Its own Redis and one worker whose media folder is empty (mapped there): the session
    fails over to the server (LVS_LOCAL_WORK=off still runs it here when no worker can)."""
    from app import create_app
    from config import load_settings

    root = tmp_path / "library"
    root.mkdir()
    make_video(root / "x.mkv", vcodec=[*X265, "-pix_fmt", "yuv420p"], acodec=["aac"],
               seconds=9, size="320x240")  # fmt: skip
    blind = tmp_path / "empty"
    blind.mkdir()
    redis = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    redis.start()
    workers = Workers(tmp_path, redis.url, blind, LVS_PATH_MAP=f"{root}={blind}")
    try:
        config = {"media_dirs": [str(root)], "data_dir": str(tmp_path / "data"),
                  "probe_workers": 1, "redis_url": redis.url, "node_secret": SECRET,
                  "local_work": "off"}  # fmt: skip
        settings = load_settings(config, environ={}, dotenv_path=tmp_path / "no.env")
        scan_library(settings)
        app = create_app(config)
        workers.start("w-blind")
        c = signed_in(app, "viewer", "viewer-blind")
        h = media_hash(settings, root / "x.mkv")
        r = c.get(f"/media/{h}/hls/master.m3u8", query_string={"caps": CHROMIUM})
        sid = r.data.decode().strip().splitlines()[-1].split("/")[0]
        r = c.get(f"/media/{h}/hls/{sid}/0.ts")
        assert r.status_code == 200
        text = workers.log("w-blind").read_text()
        assert f"session {sid}: cannot read {h}" in text
        assert app.extensions["transcoder"].placements()[sid] == "local"
        app.extensions["transcoder"].close()
    finally:
        workers.stop_all()
        redis.stop()


# ---- the worker's allow-lists ----


def _job(folder: Path, **change) -> dict:
    source = {"media_hash": "0123456789abcdef", "container": "matroska,webm", "duration": 9.0,
              "video_index": 0, "video_codec": "hevc", "profile": "Main", "bit_depth": 8,
              "level": 90, "width": 320, "height": 240, "fps": 25.0, "rotation": 0,
              "interlaced": False, "hdr": False,
              "audio": [{"index": 1, "type": "audio", "codec": "aac", "channels": 2,
                         "language": None, "title": None, "is_default": True}],
              "subtitles": [], "version": [1000, 5]}  # fmt: skip
    output = {"video": "h264", "height": 240, "audio": 1, "audio_copy": False, "burn": None,
              "segment": 3.0}  # fmt: skip
    job = {"session_id": "00112233445566ff", "user_id": 1, "media_hash": "0123456789abcdef",
           "root": str(folder), "rel": "a/x.mkv", "method": "transcode", "words": "w",
           "count": 3, "duration": 9.0, "source": source, "output": output}  # fmt: skip
    for key, value in change.items():
        part, _, field = key.partition("__")
        (job[part] if field else job)[field or part] = value
    return job


@pytest.mark.parametrize(
    "change",
    [
        {"rel": "../etc/passwd"},
        {"rel": "/etc/passwd"},
        {"rel": "a/../../x.mkv"},
        {"root": "/etc"},
        {"root": "relative/path"},
        {"media_hash": "../../x"},
        {"session_id": "ZZ"},
        {"method": "-i /etc/passwd"},
        {"output__video": "libx264 -vf"},
        {"output__height": 241},
        {"output__audio": 7},
        {"output__burn": 2},
        {"output__segment": 0.0},
        {"source__video_codec": "hevc -f"},
        {"source__width": "320"},
        {"source__media_hash": "fedcba9876543210"},
        {"count": 10**9},
        {"argv": ["-i", "/etc/passwd"]},
    ],
)
def test_jobs_outside_the_allow_lists_are_refused(tmp_path: Path, change: dict) -> None:
    assert pw.parse_job(_job(tmp_path), (tmp_path,), ()).rel == "a/x.mkv"
    with pytest.raises(pw.BadJob):
        pw.parse_job(_job(tmp_path, **change), (tmp_path,), ())


def test_a_job_root_is_mapped_and_must_be_a_worker_library_folder(tmp_path: Path) -> None:
    here = tmp_path / "mnt"
    here.mkdir()
    job = _job(Path("/srv/media"))
    assert pw.parse_job(job, (here,), (("/srv/media", str(here)),)).root == str(here)
    with pytest.raises(pw.BadJob, match="library folders"):
        pw.parse_job(job, (tmp_path / "other",), (("/srv/media", str(here)),))


def test_a_full_shared_folder_is_left_for_the_proxy_without_a_partial_file(tmp_path, caplog):
    """A share that fills up (a 64 KiB tmpfs): the segment that does not fit is not left half
    written, the worker says so once, and the session's segments go over HTTP for a while."""
    tiny = tmp_path / "share"
    tiny.mkdir()
    mount_tmpfs(tiny, "64k")
    tc = pw.make_transcoder(tmp_path / "scratch", max_encoders=1, cache_bytes=10**9, idle=60,
                            encoder="libx264")  # fmt: skip
    try:
        ws = pw.WorkerSessions("w-full", tc, roots=(tmp_path,), path_map=(), secret=SECRET,
                               link=None, shared=tiny)  # fmt: skip
        job = pw.parse_job(_job(tmp_path), (tmp_path,), ())
        ws.jobs[job.session_id] = job  # taken (its file is not needed to copy segments)
        small, big = tmp_path / "small.ts", tmp_path / "big.ts"
        small.write_bytes(b"\x47" + bytes(187) * 100)
        big.write_bytes((b"\x47" + bytes(187)) * 1000)  # 188 KB: more than the share holds
        assert ws.share(job.session_id, 0, small)
        rendition = tiny / job.media_hash / job.output.key
        assert (rendition / "0.ts").read_bytes() == small.read_bytes()
        caplog.set_level(logging.INFO)
        assert not ws.share(job.session_id, 1, big)
        assert not ws.share(job.session_id, 2, small)  # left alone for SHARE_RETRY s: HTTP
        said = [r for r in caplog.records if "cannot take its segments" in r.getMessage()]
        assert len(said) == 1 and said[0].levelno == logging.WARNING
        assert "No space left" in said[0].getMessage()
        assert [p.name for p in rendition.iterdir()] == ["0.ts"]  # nothing half written
        ws.end(job.session_id, "the test ends")
        assert not rendition.exists()  # the session's segments leave the share with it
    finally:
        tc.close()
        subprocess.run(["umount", "-l", str(tiny)], check=False)
