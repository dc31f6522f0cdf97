"""Preview work on workers on other machines (issue 18), end to end.

A real redis-server and two real `flask worker` processes with their own scratch folders stand
in for two machines; the server is the real app with its real background runner
(services.background.start: the job runner and the reports' consumer), LVS_LOCAL_WORK=off.
Thumbnails, sprites and clips of the library are made by the workers, fetched by the server
and served by its routes; hostile jobs are refused by the workers; forged deliveries are
refused by the server and write nothing; a worker killed mid-batch loses its jobs to the
other; with no worker, or Redis down, the server makes them itself with one WARNING.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
from PIL import Image
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from services import db as dbmod
from services.compute import broker, conn, registry, signing
from services.previews import batch
from services.previews.batch_server import sent_key
from services.previews.thumbnails import thumb_path
from tests.conftest import signed_in
from tests.mediagen import X264, make_video
from tests.redis_server import RedisServer, free_port, redis_server  # noqa: F401
from tests.sample_library import media_hash
from tests.test_compute import SECRET
from tests.test_workers import Workers

KINDS = ("thumbnail", "sprite", "clip")
ACL = Path(__file__).resolve().parent.parent / "deploy" / "redis-users.acl"


def records(settings, status: str = "ok") -> dict[tuple[str, str], str]:
    """Return (kind, media_hash) → status of the `thumbs` rows of the current content."""
    db = dbmod.connect(settings.db_path)
    try:
        rows = db.execute(
            "SELECT t.kind, m.media_hash, t.status FROM thumbs t JOIN media m ON m.id = t.media_id "
            "AND m.media_hash = t.media_hash"
        ).fetchall()
    finally:
        db.close()
    return {(k, h): s for k, h, s in rows if status is None or s == status}


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class BatchCluster:
    """A library, Redis, two workers and the server app with its background runner."""

    def __init__(self, base: Path) -> None:
        from app import create_app
        from config import load_settings
        from services import background

        self.base = base
        self.root = base / "library"
        self.root.mkdir(parents=True)
        self.count = 0
        self.files = [self.add() for _ in range(4)]
        self.picture = self.root / "p.png"
        Image.effect_mandelbrot((640, 480), (-2, -1.2, 1, 1.2), 100).convert("RGB").save(
            self.picture
        )
        (base / "redis").mkdir()
        # As the Redis user of deploy/redis-users.acl: batch work needs nothing it forbids.
        self.redis = RedisServer(base / "redis", acl=ACL.read_text())
        self.redis.start()
        self.config = {"media_dirs": [str(self.root)], "data_dir": str(base / "data"),
                       "probe_workers": 1, "redis_url": self.redis.url, "node_secret": SECRET,
                       "local_work": "off", "watch": "off"}  # fmt: skip
        self.settings = load_settings(self.config, environ={}, dotenv_path=base / "no.env")
        self.workers = Workers(base, self.redis.url, self.root)
        self.workers.start("w-a")
        self.workers.start("w-b")
        self.app = create_app(self.config)
        self.background = background.start(self.settings)
        self.app.extensions["background"] = self.background
        self.jobs = self.background.jobs
        self.scan()  # the first scan; its new media go to the workers

    def add(self, seconds: float = 6, size: str = "320x240") -> Path:
        self.count += 1  # a length of its own: every file is other content (media_hash)
        return make_video(self.root / f"v{self.count}.mp4", vcodec=X264,
                          seconds=seconds + self.count / 5, size=size)  # fmt: skip

    def scan(self) -> None:
        job = self.jobs.scan()
        assert job.wait(60) and job.state == "done", job.error

    def hash(self, path: Path) -> str:
        return media_hash(self.settings, path)

    def all_made(self, files: list[Path]) -> bool:
        made = records(self.settings)
        return all((k, self.hash(f)) in made for f in files for k in KINDS)

    def log(self, name: str) -> str:
        return self.workers.log(name).read_text()

    def close(self) -> None:
        self.background.stop()
        self.workers.stop_all()
        self.redis.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    c = BatchCluster(tmp_path_factory.mktemp("batch"))
    yield c
    c.close()


def test_previews_of_new_media_are_made_by_the_workers_and_served_here(cluster) -> None:
    picture = cluster.hash(cluster.picture)
    wait_for(lambda: cluster.all_made(cluster.files) and ("thumbnail", picture) in
             records(cluster.settings), 180, "the workers' previews")  # fmt: skip
    status = cluster.jobs.status()
    assert not any(status.done.get(k) for k in KINDS), status.done  # nothing made here
    assert all(status.sent.get(k, 0) >= len(cluster.files) for k in KINDS), status.sent
    logs = cluster.log("w-a") + cluster.log("w-b")
    client = signed_in(cluster.app, "viewer", "batch-viewer")
    for f in cluster.files:
        h = cluster.hash(f)
        for kind in KINDS:
            assert f"making {kind} of {h}" in logs
        r = client.get(f"/media/{h}/thumb")
        made = thumb_path(cluster.settings.data_dir, h).read_bytes()
        assert r.status_code == 200 and r.mimetype == "image/jpeg" and r.data == made
        vtt = client.get(f"/media/{h}/sprite.vtt")
        assert vtt.status_code == 200 and vtt.data.startswith(b"WEBVTT")
        assert client.get(f"/media/{h}/sprite.jpg").status_code == 200
        clip = client.get(f"/media/{h}/clip.mp4")
        assert clip.status_code == 200 and clip.data[4:8] == b"ftyp"
    page = signed_in(cluster.app, "admin", "batch-admin").get("/admin/performance")
    assert page.status_code == 200
    assert f"Left to workers since start: thumbnail {status.sent['thumbnail']}" in page.text
    admin = redis.Redis(port=cluster.redis.port, username="admin",
                        password=cluster.redis.admin_password, decode_responses=True)  # fmt: skip
    assert admin.acl_log() == []  # Redis refused the "lvs" user nothing
    r = client.get(f"/media/{picture}/thumb")  # a picture's thumbnail, made by a worker too
    assert (
        r.status_code == 200
        and r.data == thumb_path(cluster.settings.data_dir, picture).read_bytes()
    )
    assert f"making thumbnail of {picture}" in logs
    # both workers took some; the server fetched them, so the workers' scratch is empty again
    assert "making" in cluster.log("w-a") and "making" in cluster.log("w-b")
    for name in ("w-a", "w-b"):
        out = cluster.workers.scratch(name) / "previews"
        wait_for(lambda out=out: not [p for p in out.rglob("*") if p.is_file() and
                                      not p.name.startswith(".")], 10, "the scratch emptied")  # fmt: skip


def _refused_by(cluster, text: str, count: int) -> bool:
    return (cluster.log("w-a") + cluster.log("w-b")).count(text) >= count


def test_hostile_jobs_are_refused_by_the_workers(cluster) -> None:
    h = cluster.hash(cluster.files[0])
    good = {"media_hash": h, "kind": "thumbnail", "media": "video", "vr": False, "width": 320,
            "tiles": 81, "root": str(cluster.root), "rel": cluster.files[0].name}  # fmt: skip
    hostile = [{**good, "root": "/etc", "rel": "passwd"}, {**good, "rel": "../../etc/passwd"},
               {**good, "kind": "-vf movie=/etc/passwd"}, {**good, "media_hash": "../../x"},
               {**good, "argv": ["-i", "/etc/passwd"]}, {**good, "width": 10**9}]  # fmt: skip
    before = (cluster.log("w-a") + cluster.log("w-b")).count("refused a preview job")
    for job in hostile:
        assert broker.send_to(cluster.redis.url, broker.BATCH_QUEUE, batch.MAKE_ACTOR, job)
    wait_for(lambda: _refused_by(cluster, "refused a preview job", before + len(hostile)), 30,
             "the workers to refuse the jobs")  # fmt: skip
    logs = cluster.log("w-a") + cluster.log("w-b")
    assert "is not one of this worker's library folders" in logs
    assert "not a plain path inside its library folder" in logs
    assert "kind is not thumbnail, sprite or clip" in logs


@pytest.mark.parametrize(
    "change",
    [{"root": "/etc"}, {"root": "rel/ative"}, {"rel": "/etc/passwd"}, {"rel": "a/../../x"},
     {"kind": "scan"}, {"media_hash": "ABCDEF0123456789"}, {"media": "shell"},
     {"kind": "sprite", "media": "picture"}, {"vr": "yes"}, {"width": 0}, {"tiles": 401},
     {"argv": "-i x"}],
)  # fmt: skip
def test_batch_job_allow_lists(tmp_path: Path, change: dict) -> None:
    good = {"media_hash": "0123456789abcdef", "kind": "sprite", "media": "video", "vr": False,
            "width": 160, "tiles": 81, "root": "/srv/media", "rel": "a/x.mkv"}  # fmt: skip
    pm = (("/srv/media", str(tmp_path)),)
    assert batch.parse_job(good, (tmp_path,), pm).root == str(tmp_path)
    with pytest.raises(batch.BadJob):
        batch.parse_job({**good, **change}, (tmp_path,), pm)


def test_unsigned_forged_or_expired_fetches_are_refused_by_a_worker(cluster) -> None:
    h = cluster.hash(cluster.files[0])
    path = f"/node/previews/{h}/thumb.jpg"
    url = cluster.workers.urls["w-a"] + path
    bad = [
        {},
        {signing.EXPIRES: str(int(time.time()) + 20), signing.SIGNATURE: "0" * 64},
        {signing.EXPIRES: "1000", signing.SIGNATURE: signing.sign(SECRET, "GET", path, 1000)},
    ]
    for headers in bad:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5)
        assert refused.value.code == 403
    assert f"refused GET {path!r}" in cluster.log("w-a")
    signed = signing.headers(SECRET, "GET", path)
    with pytest.raises(urllib.error.HTTPError) as gone:  # fetched and forgotten already
        urllib.request.urlopen(urllib.request.Request(url, headers=signed), timeout=5)
    assert gone.value.code == 404


class FakeWorker:
    """An HTTP server announced as a worker that serves whatever bytes it is given."""

    def __init__(self, redis_url: str) -> None:
        self.body = b""
        port = free_port()
        self.server = make_server("127.0.0.1", port, self.app)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        client = conn.redis_link(redis_url).client()
        info = registry.WorkerInfo(id="w-fake", host="x", url=f"http://127.0.0.1:{port}", cpus=1)
        registry.announce(client, info, ttl=120)

    @Request.application
    def app(self, request: Request) -> Response:
        return Response(self.body)


def test_forged_deliveries_are_refused_and_write_nothing(cluster, caplog) -> None:
    caplog.set_level(logging.WARNING)
    cluster.jobs.pause()  # the runner leaves the thumbnail removed below alone
    h = cluster.hash(cluster.files[0])
    path = _forget_thumbnail(cluster, h)
    fake = FakeWorker(cluster.redis.url)
    deliveries = cluster.background.deliveries

    def report(body: bytes, digest: str | None = None, **change) -> None:
        fake.body = body
        sha = digest or hashlib.sha256(body).hexdigest()
        message = {"worker": "w-fake", "media_hash": h, "kind": "thumbnail", "status": "made",
                   "reason": "", "seconds": 0.1, "files": {"thumb.jpg": sha}, **change}  # fmt: skip
        _mark_sent(cluster, h)
        deliveries.done(message)

    try:
        report(b"<?php system($_GET['c']); ?>")  # not a JPEG
        report(b"\xff\xd8\xff" + b"0" * 100, digest="0" * 64)  # not the bytes reported
        report(b"x", worker="../../etc")
        report(b"x", kind="thumbnail; rm -rf /")
        report(b"x", files={"../../../app.py": "0" * 64})
        report(b"x", worker="w-nobody")  # no such worker alive: nothing fetched
        warned = [r.getMessage() for r in caplog.records]
        assert sum("is not a JPEG" in m for m in warned) == 1
        assert sum("SHA-256 differs" in m for m in warned) == 1
        assert sum("refused a preview report" in m for m in warned) == 3
        assert not path.exists() and ("thumbnail", h) not in records(cluster.settings, None)
        assert not list(path.parent.glob(".*.tmp"))
    finally:
        fake.server.shutdown()
        registry.withdraw(conn.redis_link(cluster.redis.url).client(), "w-fake")
        cluster.jobs.resume()
    cluster.jobs.backlog()  # and the real workers make it again
    wait_for(lambda: cluster.all_made([cluster.files[0]]), 60, "the thumbnail made again")
    assert path.exists()


def test_a_report_on_a_job_never_sent_is_dropped(cluster, caplog) -> None:
    caplog.set_level(logging.WARNING)
    h = cluster.hash(cluster.files[2])
    client = conn.redis_link(cluster.redis.url).client()
    client.delete(sent_key("sprite", h))
    forged = {"worker": "w-a", "media_hash": h, "kind": "sprite", "status": "failed",
              "reason": "forged", "seconds": 0.1, "files": {}}  # fmt: skip
    before = records(cluster.settings, None).get(("sprite", h))
    cluster.background.deliveries.done(forged)  # before: recorded "failed", never made again
    assert any("dropped a report from worker w-a" in r.getMessage() for r in caplog.records)
    assert records(cluster.settings, None).get(("sprite", h)) == before != "failed"


def _no_job_out(cluster, h: str, kind: str = "thumbnail") -> None:
    """Wait until none of the server's own jobs of this kind for this media is out (call with
    the runner paused): a report is answered only while its job's sent marker is there, so the
    report of a job the server sent earlier would take away the marker a test puts."""
    client = conn.redis_link(cluster.redis.url).client()
    wait_for(lambda: not client.exists(sent_key(kind, h)), 60, "the server's own job")


def _mark_sent(cluster, h: str, kind: str = "thumbnail") -> None:
    """Put the job's sent marker as the server does when it sends one (reports need it)."""
    client = conn.redis_link(cluster.redis.url).client()
    client.set(sent_key(kind, h), str(time.time()), ex=600)


def _forget_thumbnail(cluster, h: str) -> Path:
    """Remove a thumbnail from the server (file and record), as if it was never made."""
    path = thumb_path(cluster.settings.data_dir, h)
    path.unlink()
    db = dbmod.connect(cluster.settings.db_path)
    with dbmod.write(db):
        db.execute("DELETE FROM thumbs WHERE kind = 'thumbnail' AND media_hash = ?", [h])
    db.close()
    return path


def _job(cluster, f: Path, **change) -> dict:
    return {"media_hash": cluster.hash(f), "kind": "thumbnail", "media": "video", "vr": False,
            "width": 320, "tiles": 81, "root": str(cluster.root), "rel": f.name,
            **change}  # fmt: skip


def test_a_job_done_twice_writes_its_file_once(cluster, caplog) -> None:
    caplog.set_level(logging.INFO)
    cluster.jobs.pause()
    try:
        f = cluster.files[1]
        h = cluster.hash(f)
        path = _forget_thumbnail(cluster, h)
        forgets = (cluster.log("w-a") + cluster.log("w-b")).count(
            f"DELETE /node/previews/{h}/thumbnail"
        )
        _mark_sent(cluster, h)
        for _ in range(2):  # at-least-once: the same job delivered twice
            assert broker.send_to(cluster.redis.url, broker.BATCH_QUEUE, batch.MAKE_ACTOR,
                                  _job(cluster, f))  # fmt: skip
        wait_for(lambda: (cluster.log("w-a") + cluster.log("w-b")).count(
            f"DELETE /node/previews/{h}/thumbnail") >= forgets + 2, 60, "both reports handled")  # fmt: skip
        first = path.stat()
        kept = [r for r in caplog.records if f"thumbnail of {h} from worker" in r.getMessage()
                and "kept" in r.getMessage()]  # fmt: skip
        assert len(kept) == 1  # the second report found the file in place: nothing written
        assert records(cluster.settings)[("thumbnail", h)] == "ok"
        time.sleep(0.5)
        assert path.stat().st_ino == first.st_ino and path.stat().st_mtime_ns == first.st_mtime_ns
    finally:
        cluster.jobs.resume()


def test_a_job_for_media_gone_or_changed_is_dropped_with_a_log_line(cluster, caplog) -> None:
    caplog.set_level(logging.WARNING)
    changed = _job(cluster, cluster.files[1], rel=cluster.files[2].name)  # another file now
    gone = _job(cluster, cluster.files[1], rel="gone.mp4")
    cluster.jobs.pause()  # the server sends nothing of its own meanwhile
    try:
        # Both jobs are the same media and kind: one goes at a time.
        _no_job_out(cluster, changed["media_hash"])
        for n, job in enumerate((changed, gone), 1):
            _mark_sent(cluster, job["media_hash"])
            assert broker.send_to(cluster.redis.url, broker.BATCH_QUEUE, batch.MAKE_ACTOR, job)
            wait_for(lambda n=n: _refused_by(cluster, "dropped: ", n), 30, "a worker to drop it")
            wait_for(lambda n=n: sum("the worker cannot make it" in r.getMessage()
                                     for r in caplog.records) >= n, 30, "the server's log line")  # fmt: skip
    finally:
        cluster.jobs.resume()
    logs = cluster.log("w-a") + cluster.log("w-b")
    assert "the file here is another one" in logs and "No such file or directory" in logs
    unknown = {"worker": "w-a", "media_hash": "f" * 16, "kind": "thumbnail", "status": "made",
               "reason": "", "seconds": 0.1, "files": {"thumb.jpg": "0" * 64}}  # fmt: skip
    _mark_sent(cluster, "f" * 16)
    cluster.background.deliveries.done(unknown)
    assert any("no such media in the library any more" in r.getMessage() for r in caplog.records)
    assert not thumb_path(cluster.settings.data_dir, "f" * 16).exists()


def test_a_worker_killed_mid_batch_loses_its_jobs_to_the_other(cluster) -> None:
    new = [cluster.add(seconds=30, size="640x360") for _ in range(4)]
    hashes_before = cluster.log("w-a").count("making")
    cluster.scan()
    hashes = [cluster.hash(f) for f in new]
    taken: list[str] = []

    def a_is_making() -> bool:
        lines = cluster.log("w-a").splitlines()
        making = [ln for ln in lines if "making" in ln]
        if len(making) <= hashes_before:
            return False
        last = making[-1].split("making ", 1)[1].strip()  # "<kind> of <hash>"
        kind, _, h = last.partition(" of ")
        done = f"{kind} of {h} made" in cluster.log("w-a")
        if kind == "clip" and h in hashes and not done:  # a clip takes seconds: mid-job
            taken.append(last)
            return True
        return False

    wait_for(a_is_making, 60, "worker w-a to take a new job")
    cluster.workers.kill("w-a")  # mid-job: Dramatiq gives its unacknowledged jobs to w-b
    wait_for(lambda: cluster.all_made(new), 180, "the batch to finish on w-b")
    assert f"making {taken[0]}" in cluster.log("w-b")
    assert not any(cluster.jobs.status().done.get(k) for k in KINDS)  # still nothing here


def test_no_worker_alive_means_previews_are_made_here_with_one_warning(cluster, caplog) -> None:
    caplog.set_level(logging.INFO)
    cluster.workers.stop_all()
    wait_for(lambda: not registry.workers(conn.redis_link(cluster.redis.url).client()), 10,
             "no worker announced")  # fmt: skip
    new = [cluster.add(), cluster.add()]
    cluster.scan()
    wait_for(lambda: cluster.all_made(new), 120, "the previews made here")
    assert cluster.jobs.status().done.get("thumbnail", 0) >= 2
    warned = [r for r in caplog.records if "no worker answers" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING


def test_redis_down_means_previews_are_made_here_with_one_warning(cluster, caplog) -> None:
    caplog.set_level(logging.WARNING)
    cluster.redis.stop()
    done = dict(cluster.jobs.status().done)
    new = [cluster.add(), cluster.add()]
    cluster.scan()
    wait_for(lambda: cluster.all_made(new), 120, "the previews made here")
    assert cluster.jobs.status().done["thumbnail"] >= done.get("thumbnail", 0) + 2
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("services")]
    assert sum("unreachable" in m for m in ours) == 1, ours
    assert not any("no worker answers" in m for m in ours)


def test_local_work_on_shares_the_batch_and_no_job_is_made_twice(tmp_path: Path, caplog) -> None:
    """LVS_LOCAL_WORK=on: the server makes previews too; what it sent it skips, what it makes
    it does not send, so every preview is made once, some here and some by the worker."""
    from app import create_app  # noqa: F401  (the app's logging, as the server has it)
    from config import load_settings
    from services import background

    caplog.set_level(logging.INFO)
    root = tmp_path / "library"
    root.mkdir()
    files = [make_video(root / f"s{i}.mp4", vcodec=X264, seconds=5 + i / 5, size="320x240")
             for i in range(6)]  # fmt: skip
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    workers = Workers(tmp_path, redis.url, root)
    config = {"media_dirs": [str(root)], "data_dir": str(tmp_path / "data"), "probe_workers": 1,
              "redis_url": redis.url, "node_secret": SECRET, "local_work": "on", "watch": "off"}  # fmt: skip
    settings = load_settings(config, environ={}, dotenv_path=tmp_path / "no.env")
    bg = None
    try:
        workers.start("w-on")
        create_app(config)
        bg = background.start(settings)
        assert bg.jobs.scan().wait(60)
        hashes = [media_hash(settings, f) for f in files]
        wait_for(lambda: all((k, h) in records(settings) for h in hashes for k in KINDS), 180,
                 "every preview made")  # fmt: skip
        here = sum(bg.jobs.status().done.get(k, 0) for k in KINDS)
        kept = sum(
            "kept (" in r.getMessage() and any(h in r.getMessage() for h in hashes)
            for r in caplog.records
        )  # this test's media (another cluster may log too)
        assert here > 0 and kept > 0, (here, kept)
        assert here + kept == len(hashes) * len(KINDS)  # none made by both
    finally:
        if bg is not None:
            bg.stop()
        workers.stop_all()
        redis.stop()


_gate = threading.Event()


def _slow_batch(key: str) -> None:
    conn.redis_link(os.environ["LVS_TEST_REDIS"]).client().rpush(key, "batch started")
    _gate.wait(20)


def _session_job(key: str) -> None:
    conn.redis_link(os.environ["LVS_TEST_REDIS"]).client().rpush(key, "session job")


def test_session_jobs_do_not_wait_behind_batch_work(redis_server, monkeypatch) -> None:  # noqa: F811
    """A worker's batch work has threads of its own (Node batch_threads): with its one batch
    thread busy, a session job on its own queue still runs at once."""
    from services.compute.node import Node

    monkeypatch.setenv("LVS_TEST_REDIS", redis_server.url)
    info = registry.WorkerInfo(id="w-split", host="h", url="http://127.0.0.1:1", cpus=1)
    broker.actor("lvs.test.slow", queue=broker.BATCH_QUEUE, max_retries=0)(_slow_batch)
    broker.actor("lvs.test.session", queue=registry.queue_of("w-split"), max_retries=0)(
        _session_job
    )
    node = Node(redis_server.url, info, threads=1, batch_threads=1)
    node.start()
    client = conn.redis_link(redis_server.url).client()
    try:
        assert broker.send(redis_server.url, "lvs.test.slow", "ran")
        wait_for(lambda: client.lrange("ran", 0, -1) == ["batch started"], 10, "the batch job")
        assert broker.send(redis_server.url, "lvs.test.session", "ran")
        wait_for(lambda: "session job" in client.lrange("ran", 0, -1), 5, "the session job")
    finally:
        _gate.set()
        node.stop()
