"""B18: transcode sessions on workers on other machines (issue 18), against this server alone.

Everything runs on this one machine: a real redis-server, `flask worker` processes with their
own scratch folders standing in for other machines, and two real gunicorn servers on copies of
B8's library (bench/corpus/b8: 1080p clips of 20 s): "local" (no Redis: today's single node)
and "workers" (LVS_REDIS_URL set, LVS_LOCAL_WORK=off, so every session goes to a worker).

Rows:
1. time to first segment (HEVC 1080p → 720p, segment 0 and after a seek), through a worker
   vs on the server itself (B8's client; the rendition's cache emptied every round, so every
   round starts an encoder) — target ≤ 1.25×;
2. proxy throughput: the same finished segment, fetched through the server's proxy vs straight
   from the worker (a signed request), MB/s — target ≥ 0.5× (higher is better);
3. failover: over KILLS kills, the worker holding a playing session is killed with its encoders
   (kill -9: a power cut) and the time of the next segment request is measured (detection +
   placing on the other worker + its encoder's first segment), against the same request that
   starts an encoder there after a seek (no kill) — target: every stall ≤ 10 s;
4. concurrent 1080p transcodes (HEVC 1080p → H.264 1080p, q=1080): N sessions
   fetching every segment as fast as they are made; speed = video seconds / wall seconds of
   the slowest session, with two workers vs the server alone. On this one 2-core VM both
   "machines" share the same two cores, so this row cannot show the gain of a second box: it
   shows the cost of the hop (a real second machine adds its own cores).
5. concurrency (`--only concurrency`): machines simulated by CPU pinning. "One machine alone"
   is a single-node server (no Redis: what LVS_LOCAL_WORK=on with no worker does) under
   `taskset -c 0` — its gunicorn workers and their ffmpeg children inherit the one core;
   "two workers" is a server with LVS_LOCAL_WORK=off and two `flask worker`s under
   `taskset -c 0` and `taskset -c 1`. For N = 1..--max-concurrency sessions at once of a 1080p
   HEVC clip (B8's, played LOOPS times over by stream copy: distinct media, 42 s) → 720p,
   each viewer pulls every segment as soon as it comes and plays along: playback starts when
   segment 0 arrives, and a later segment that arrives after its turn stalls the player. A
   session "keeps real time" when its stalls add up to ≤ STALL_OK s. Every server may run 4
   encoders (LVS_TRANSCODE_MAX=4): beyond one per core they share it, as a machine would.
   The two-worker server itself is not pinned (it only proxies; a real one is a third box),
   nor is this client.

    python -m bench.b18_workers [--pairs 5] [--kills 10] [--max-sessions 3]
    python -m bench.b18_workers --only concurrency [--max-concurrency 4]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.b8_hls_start import CLIPS, make_clips, prepare, segment_of
from bench.b8_hls_start import Client as KeepAlive
from bench.harness import CORPUS_DIR, ROOT, Bench, Samples, app_server

sys.path.insert(0, str(ROOT))

SECRET = secrets.token_hex(16)
LOOPS = 2  # the concurrency row's clip: B8's 1080p HEVC clip (21 s) twice over
STALL_OK = 0.5  # seconds of stalls a session may add up and still count as keeping real time
SECTIONS = ("first", "proxy", "failover", "concurrent", "concurrency")


class Client(KeepAlive):
    """B8's keep-alive client, reconnecting when the server closed an idle connection."""

    def __init__(self, port: int, token: str) -> None:
        super().__init__(port, token)
        self.port = port

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            return self._get(path)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            return self._get(path)

    def _get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path, headers=self.headers)
        r = self.conn.getresponse()
        return r.status, r.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, folder: Path) -> None:
        self.port, self.password = free_port(), secrets.token_hex(8)
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "redis.conf"
        conf.write_text(f"port {self.port}\nbind 127.0.0.1\nrequirepass {self.password}\n"
                        f'dir {folder}\nsave ""\nappendonly no\n')  # fmt: skip
        self.proc = subprocess.Popen(["/usr/bin/redis-server", str(conf)],
                                     stdout=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        self.url = f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Workers:
    def __init__(self, base: Path, redis_url: str, media: Path) -> None:
        self.base, self.redis_url, self.media = base, redis_url, media
        self.procs: dict[str, subprocess.Popen] = {}
        self.urls: dict[str, str] = {}

    def scratch(self, name: str) -> Path:
        return self.base / f"scratch-{name}"

    def start(self, name: str, cpus: str = "") -> None:
        """Start worker `name` (`cpus`: under taskset -c CPUS)."""
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LVS_")}
        env.update(LVS_REDIS_URL=self.redis_url, LVS_NODE_SECRET=SECRET,
                   LVS_MEDIA_DIRS=str(self.media), LVS_WORKER_SCRATCH=str(self.scratch(name)),
                   LVS_DATA_DIR=str(self.base / f"data-{name}"), LVS_LOG_LEVEL="WARNING",
                   LVS_TRANSCODE_MAX="4")  # fmt: skip
        flask = str(Path(sys.executable).parent / "flask")
        pin = ["taskset", "-c", cpus] if cpus else []
        self.procs[name] = subprocess.Popen(
            [*pin, flask, "--app", "app", "worker", "--bind", f"127.0.0.1:{port}", "--id", name,
             "--url", f"http://127.0.0.1:{port}", "--threads", "2"],
            cwd=ROOT, env=env, stdout=(self.base / f"{name}.log").open("ab"),
            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.urls[name] = f"http://127.0.0.1:{port}"
        self._wait(name)

    def _wait(self, name: str) -> None:
        from services.compute import conn, registry

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            client = conn.redis_link(self.redis_url).client()
            if client is not None and name in {w.id for w in registry.workers(client)}:
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker {name} did not announce itself")

    def kill(self, name: str) -> None:
        """kill -9 the worker's process group and every encoder it started (a power cut)."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        needle = str(self.scratch(name)).encode()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if needle in Path(f"/proc/{entry}/cmdline").read_bytes():
                        os.kill(int(entry), signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            proc = self.procs.pop(name)
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def copy_data(src: Path, dst: Path) -> Path:
    """A second data dir with the same database (the API token works on both servers)."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    with sqlite3.connect(src / "library.db") as a, sqlite3.connect(dst / "library.db") as b:
        a.backup(b)
    for name in ("secret_key",):
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)
    return dst


@contextlib.contextmanager
def env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def first_segment(port: int, token: str, data: Path, h: str, query: dict, fraction: float):
    def run() -> float:
        client = Client(port, token)
        started = time.perf_counter()
        sid, n = segment_of(client, h, query, fraction)
        status, body = client.get(f"/media/{h}/hls/{sid}/{n}.ts")
        took = time.perf_counter() - started
        assert status == 200 and body, (status, body[:300])
        client.post(f"/media/{h}/hls/{sid}/stop")
        shutil.rmtree(data / "hls" / "cache" / h, ignore_errors=True)
        return took

    return run


def throughput(local_port: int, port: int, token: str, workers: Workers, h: str,
               rounds: int) -> tuple[Samples, Samples, Samples]:  # fmt: skip
    """MB/s of the same three finished segments (720p): from the server's own cache (local
    server), through the server's proxy, and straight from the worker (a signed request)."""
    from services.compute import conn, leases, signing

    client, local = Client(port, token), Client(local_port, token)
    sid, _ = segment_of(client, h, {"q": "720"}, 0.0)
    lsid, _ = segment_of(local, h, {"q": "720"}, 0.0)
    for n in range(3):
        assert client.get(f"/media/{h}/hls/{sid}/{n}.ts")[0] == 200
        assert local.get(f"/media/{h}/hls/{lsid}/{n}.ts")[0] == 200
    holder = leases.holder(conn.redis_link(workers.redis_url).client(), sid)
    base = workers.urls[holder]
    on_disk = Samples("the server's own cache", "MB/s")
    direct = Samples("straight from the worker", "MB/s")
    proxied = Samples("through the server", "MB/s")

    def fetch_direct() -> int:
        got = 0
        for n in range(3):
            path = f"/node/sessions/{sid}/{n}.ts"
            req = urllib.request.Request(base + path, headers=signing.headers(SECRET, "GET", path))
            with urllib.request.urlopen(req, timeout=30) as r:
                got += len(r.read())
        return got

    def fetch(c: Client, session: str) -> int:
        got = 0
        for n in range(3):
            status, body = c.get(f"/media/{h}/hls/{session}/{n}.ts")
            assert status == 200
            got += len(body)
        return got

    jobs = ((lambda: fetch(local, lsid), on_disk), (fetch_direct, direct),
            (lambda: fetch(client, sid), proxied))  # fmt: skip
    for fn, _ in jobs:
        fn()  # warm-up
    for _ in range(rounds):
        for fn, samples in jobs:
            started = time.perf_counter()
            got = sum(fn() for _ in range(10))
            samples.add(got / 1e6 / (time.perf_counter() - started))
    client.post(f"/media/{h}/hls/{sid}/stop")
    local.post(f"/media/{h}/hls/{lsid}/stop")
    return on_disk, direct, proxied


def failover(
    port: int, token: str, workers: Workers, h: str, kills: int
) -> tuple[Samples, Samples]:
    """The next segment's time after the session's worker is killed, vs after a seek there."""
    from services.compute import conn, leases

    stalls, seeks = Samples("after a kill", "s"), Samples("after a seek, no kill", "s")
    query = {"q": "720"}
    for i in range(kills):
        client = Client(port, token)
        sid, _ = segment_of(client, h, query, 0.0)
        n = 1 + i % 4
        for k in (0, n):
            status, _ = client.get(f"/media/{h}/hls/{sid}/{k}.ts")
            assert status == 200
        holder = leases.holder(conn.redis_link(workers.redis_url).client(), sid)
        workers.kill(holder)
        started = time.perf_counter()
        status, body = client.get(f"/media/{h}/hls/{sid}/{n + 1}.ts")
        stalls.add(time.perf_counter() - started)
        assert status == 200 and body, status
        client.post(f"/media/{h}/hls/{sid}/stop")
        workers.start(holder)
        # the same request on a live worker: a new session that starts its encoder there
        client = Client(port, token)
        sid, _ = segment_of(client, h, query, 0.0)
        started = time.perf_counter()
        status, _ = client.get(f"/media/{h}/hls/{sid}/{n + 1}.ts")
        seeks.add(time.perf_counter() - started)
        client.post(f"/media/{h}/hls/{sid}/stop")
    return stalls, seeks


def concurrent(port: int, token: str, h: str, sessions: int, duration: float) -> float:
    """Run `sessions` viewers (distinct accounts' tokens are not needed: one viewer may hold one
    session per item, so each uses its own item copy) fetching every segment; return the
    slowest session's speed (× real time)."""
    speeds: list[float] = []

    def one(item: str) -> None:
        client = Client(port, token)
        sid, _ = segment_of(client, item, {"q": "1080"}, 0.0)
        status, body = client.get(f"/media/{item}/hls/{sid}/stream.m3u8")
        names = [x for x in body.decode().splitlines() if x and not x.startswith("#")]
        started = time.perf_counter()
        for name in names:
            status, body = client.get(f"/media/{item}/hls/{sid}/{name}")
            while status == 503:
                time.sleep(0.5)
                status, body = client.get(f"/media/{item}/hls/{sid}/{name}")
            assert status == 200, (status, name, body[:300])
        speeds.append(duration / (time.perf_counter() - started))
        client.post(f"/media/{item}/hls/{sid}/stop")

    run_each(one, h.split(",")[:sessions])
    return min(speeds)


def run_each(fn: Callable[[str], None], items: list[str]) -> None:
    """Run fn(item) for every item at once, a thread each; raise the first error any raised."""
    errors: list[BaseException] = []

    def guarded(item: str) -> None:
        try:
            fn(item)
        except BaseException as exc:  # noqa: BLE001 - raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def play_along(port: int, token: str, item: str, query: dict[str, str],
               redis_url: str = "") -> tuple[float, float, str]:  # fmt: skip
    """Play one session as a player that starts at segment 0's arrival and wants segment k at
    its time (later: a stall, added up); return (× real time from the first request, stalls s,
    who made its segments: the lease's worker after each, as the viewer's answers do not say)."""
    from services.compute import conn, leases

    link = conn.redis_link(redis_url) if redis_url else None
    client = Client(port, token)
    started = time.perf_counter()
    sid, _ = segment_of(client, item, query, 0.0)
    status, body = client.get(f"/media/{item}/hls/{sid}/stream.m3u8")
    assert status == 200, body[:300]
    lines = body.decode().splitlines()
    durations = [float(x.split(":", 1)[1].rstrip(",")) for x in lines if x.startswith("#EXTINF")]
    names = [x for x in lines if x and not x.startswith("#")]
    clock, due, stalls, now, made = 0.0, 0.0, 0.0, started, set()
    for duration, name in zip(durations, names, strict=True):
        status, body = client.get(f"/media/{item}/hls/{sid}/{name}")
        while status == 503:
            time.sleep(0.5)
            status, body = client.get(f"/media/{item}/hls/{sid}/{name}")
        assert status == 200 and body, (status, name, body[:300])
        now = time.perf_counter()
        redis = link.client() if link is not None else None
        made.add((leases.holder(redis, sid) if redis is not None else None) or "server")
        if not clock:
            clock = now  # playback starts
        else:
            stalls += max(0.0, now - (clock + due + stalls))
        due += duration
    client.post(f"/media/{item}/hls/{sid}/stop")
    return sum(durations) / (now - started), stalls, "+".join(sorted(made))


def play_together(port: int, token: str, items: list[str],
                  redis_url: str = "") -> list[tuple[float, float, str]]:  # fmt: skip
    """Play every item at once (one thread each, 720p); return each one's (speed, stalls, by)."""
    found: list[tuple[float, float, str]] = []
    run_each(lambda item: found.append(play_along(port, token, item, {"q": "720"}, redis_url)),
             items)  # fmt: skip
    return found


def pinned_concurrency(bench: Bench, root: Path, data: Path, token: str, items: list[str],
                       base: Path, redis_url: str) -> None:  # fmt: skip
    """Row 5 (see the module docstring): sessions keeping real time, two pinned workers vs one
    pinned machine alone, for 1..len(items) sessions at once."""
    alone_data = copy_data(data, CORPUS_DIR / "b18" / "data-alone")
    two_data = copy_data(data, CORPUS_DIR / "b18" / "data-two")
    (base / "pinned").mkdir(parents=True, exist_ok=True)
    workers = Workers(base / "pinned", redis_url, root)
    table: list[dict] = []
    try:
        workers.start("w-cpu0", cpus="0")
        workers.start("w-cpu1", cpus="1")
        with (
            env(LVS_TRANSCODE_MAX="4"),
            app_server(alone_data, root, prefix=("taskset", "-c", "0")) as (alone_port, _),
            env(LVS_REDIS_URL=redis_url, LVS_NODE_SECRET=SECRET, LVS_LOCAL_WORK="off"),
            app_server(two_data, root) as (two_port, _),
        ):
            for n in range(1, len(items) + 1):
                for item in items[:n]:  # every run encodes: no rendition kept from the last
                    shutil.rmtree(alone_data / "hls" / "cache" / item, ignore_errors=True)
                load = os.getloadavg()[0]
                alone = play_together(alone_port, token, items[:n])
                two = play_together(two_port, token, items[:n], redis_url)
                counts = []
                for label, got in (("one machine alone", alone), ("two workers", two)):
                    keep = sum(1 for _, stall, _ in got if stall <= STALL_OK)
                    samples = Samples(label, "sessions at ≥ 1×")
                    samples.add(keep)
                    counts.append(samples)
                    table.append({"sessions": n, "setup": label, "keep_real_time": keep,
                                  "speeds": sorted(round(s, 2) for s, _, _ in got),
                                  "stalls_s": sorted(round(x, 1) for _, x, _ in got),
                                  "made_by": sorted(by for _, _, by in got),
                                  "load_before": round(load, 2)})  # fmt: skip
                bench.compare(f"{n} at once, 1080p HEVC → 720p: sessions keeping real time, two "
                              "workers (a core each) / one machine (one core)", counts[0],
                              counts[1], higher_is_better=True, headline=n == len(items))  # fmt: skip
                bench.note(f"{n} at once: alone speeds {table[-2]['speeds']} stalls "
                           f"{table[-2]['stalls_s']} s; two workers speeds {table[-1]['speeds']} "
                           f"stalls {table[-1]['stalls_s']} s on {table[-1]['made_by']} (load "
                           f"before {load:.2f})")  # fmt: skip
    finally:
        workers.stop_all()
        bench.extra["concurrency"] = table
        bench.note("concurrency: 'one machine' = single-node gunicorn under taskset -c 0; 'two "
                   "workers' = flask worker under taskset -c 0 and -c 1, the server (proxy) and "
                   f"this client unpinned; a session keeps real time with ≤ {STALL_OK} s of "
                   "stalls after its first segment")  # fmt: skip


def copies(root: Path, data: Path, count: int, loops: int = 1) -> list[str]:
    """Make `count` byte-different copies of the HEVC clip (distinct media), `loops` times
    over (stream copy), and index them."""
    from config import load_settings
    from services import db as dbmod
    from services.ffmpeg import ffmpeg_path
    from services.library.scanner import scan

    src = root / CLIPS["hevc"][0]
    folder = root / "copies"
    folder.mkdir(exist_ok=True)
    stem = "copy" if loops == 1 else f"loop{loops}x"
    if loops > 1:
        looped = folder / f".loop{loops}.mkv"  # hidden: not scanned
        if not looped.exists():
            subprocess.run([ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y",
                            "-stream_loop", str(loops - 1), "-i", f"file:{src}", "-c", "copy",
                            "-f", "matroska", f"file:{looped}.part"], check=True, timeout=120)  # fmt: skip
            os.replace(f"{looped}.part", looped)
        src = looped
    for i in range(count):
        out = folder / f"{stem}{i}.mkv"
        if not out.exists():
            shutil.copyfile(src, out)
            with out.open("ab") as f:
                f.write(b"\0" * (i + 1))  # another size: another media_hash
    settings = load_settings({"media_dirs": [str(root)], "data_dir": str(data), "probe_workers": 1},
                             environ={}, dotenv_path=data / "no.env")  # fmt: skip
    db = dbmod.open_db(data)
    try:
        scan(db, settings)
        return [db.execute("SELECT m.media_hash FROM files f JOIN media m ON m.id = f.media_id "
                           "WHERE f.name = ?", [f"{stem}{i}.mkv"]).fetchone()[0]
                for i in range(count)]  # fmt: skip
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--max-sessions", type=int, default=3)
    parser.add_argument("--max-concurrency", type=int, default=4)
    parser.add_argument("--skip", action="append", default=[], choices=SECTIONS)
    parser.add_argument("--only", action="append", default=[], choices=SECTIONS)
    opts = parser.parse_args()
    run = set(opts.only) if opts.only else set(SECTIONS) - set(opts.skip)
    opts.skip = [s for s in SECTIONS if s not in run]
    root = make_clips()
    data, hashes, token = prepare(root)
    items = copies(root, data, opts.max_sessions)
    looped = copies(root, data, opts.max_concurrency, LOOPS) if "concurrency" in run else []
    h = hashes["hevc"]
    bench = Bench("b18", "transcode sessions on workers (Redis + flask worker) vs this server alone",
                  params={"pairs": opts.pairs, "kills": opts.kills, "clip": "HEVC 1920x1080 20 s",
                          "max_sessions": opts.max_sessions, "sections": sorted(run),
                          "max_concurrency": opts.max_concurrency, "loops": LOOPS,
                          "stall_ok_s": STALL_OK})  # fmt: skip
    base = Path(tempfile.mkdtemp(prefix="b18-", dir=CORPUS_DIR))
    redis = Redis(base / "redis")
    workers = Workers(base, redis.url, root)
    remote_data = copy_data(data, CORPUS_DIR / "b18" / "data-workers")
    try:
        if "concurrency" in run:
            pinned_concurrency(bench, root, data, token, looped, base, redis.url)
        if not run - {"concurrency"}:
            return
        workers.start("w-a")
        workers.start("w-b")
        with (
            app_server(data, root) as (local_port, _),
            env(LVS_REDIS_URL=redis.url, LVS_NODE_SECRET=SECRET, LVS_LOCAL_WORK="off"),
            app_server(remote_data, root) as (remote_port, _),
        ):
            if "first" not in opts.skip:
                for label, fraction in (("at 0", 0.0), ("after a seek", 0.6)):
                    bench.pair(f"first segment HEVC 1080p → 720p {label}: worker / local",
                               first_segment(local_port, token, data, h, {"q": "720"}, fraction),
                               first_segment(remote_port, token, remote_data, h, {"q": "720"},
                                             fraction),
                               pairs=opts.pairs, warmup=1, target=1.25,
                               headline=fraction == 0.0, baseline_label="local",
                               ours_label="through a worker")  # fmt: skip
            if "proxy" not in opts.skip:
                on_disk, direct, proxied = throughput(local_port, remote_port, token, workers, h,
                                                      opts.pairs)  # fmt: skip
                bench.compare("segment throughput: through the proxy / the server's own cache",
                              on_disk, proxied, target=0.5, higher_is_better=True,
                              headline=True)  # fmt: skip
                bench.compare("segment throughput: through the proxy / straight from the worker",
                              direct, proxied, higher_is_better=True)  # fmt: skip
            if "failover" not in opts.skip:
                stalls, seeks = failover(remote_port, token, workers, h, opts.kills)
                bench.compare("next segment after its worker is killed / after a seek (no kill)",
                              seeks, stalls, target=None)  # fmt: skip
                bench.extra["failover stalls s"] = [round(x, 3) for x in stalls.values]
                bench.extra["failover max stall s"] = round(max(stalls.values), 3)
                bench.extra["failover stall target s"] = 10
                bench.note(f"failover: the longest of {opts.kills} stalls was "
                           f"{max(stalls.values):.2f} s (target ≤ 10 s)")  # fmt: skip
            if "concurrent" not in opts.skip:
                for n in range(1, opts.max_sessions + 1):
                    chosen = ",".join(items[:n])
                    local = Samples(f"{n} at once, server alone", "× real time")
                    remote = Samples(f"{n} at once, two workers", "× real time")
                    for item in items[:n]:  # every round encodes: no cached rendition
                        shutil.rmtree(data / "hls" / "cache" / item, ignore_errors=True)
                        shutil.rmtree(remote_data / "hls" / "cache" / item, ignore_errors=True)
                    try:
                        local.add(concurrent(local_port, token, chosen, n, 20.0))
                        remote.add(concurrent(remote_port, token, chosen, n, 20.0))
                    except AssertionError as exc:
                        bench.note(f"{n} concurrent: a session failed: {str(exc)[:300]}")
                        break
                    bench.compare(f"{n} concurrent 1080p transcodes, slowest speed: two workers / "
                                  "server alone", local, remote, higher_is_better=True)  # fmt: skip
                bench.note("concurrent rows: one run each; both workers and the server share this "
                           "machine's 2 cores, so two workers cannot run more transcodes at ≥ 1× "
                           "than the machine alone — on real separate machines each adds its own "
                           "cores; the row measures the hop's cost, not the gain")  # fmt: skip
    except Exception as exc:  # keep the rows measured so far
        bench.note(f"stopped early: {type(exc).__name__}: {str(exc)[:300]}")
        raise
    finally:
        workers.stop_all()
        redis.stop()
        shutil.rmtree(base, ignore_errors=True)
        bench.note("every process on this one VM: worker 'machines' share its CPU and loopback")
        bench.finish()


if __name__ == "__main__":
    os.environ.setdefault("LVS_LOG_LEVEL", "WARNING")
    main()
