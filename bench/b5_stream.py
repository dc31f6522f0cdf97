"""B5: Range streaming of a ≥ 500 MB file — our app under gunicorn vs nginx (sendfile on).

Both servers listen on loopback and serve the same file from the page cache; the clients are
Python (http.client on keep-alive connections, reading into one reused buffer), the same for both.
Rows (SPEC §5 targets), each from interleaved rounds (baseline, ours, baseline, ours …), one
untimed warm-up round first. Ours runs with the project's gunicorn.conf.py (its worker class,
gunicorn_worker.py's gthread) and background work off (nothing but serving is measured):
- full GET throughput, MB/s: ours ≥ 0.8× nginx (higher is better).
- 1 MiB Range at 99 % offset, latency per request: ours ≤ 3× nginx (median).
- random 256 KiB ranges from 8 concurrent client processes, req/s: ours ≥ 0.5× nginx. A
  "ceiling" row beside it: the same 8 clients on bench/bare_ranges_app.py (parse the range,
  sendfile; no sign-in, no lookup) under the same gunicorn worker class, workers and threads —
  what gunicorn itself reaches on this machine; a second ceiling, the same app answering with
  our twelve headers to clients sending our session cookie (the same bytes both ways); and the
  servers' CPU time per random range (psutil), ours against both ceilings.
- page p95 while 3 streams play: the page (`/`, else `/health`) on our server with three
  clients streaming the file at STREAM_MBPS each, ≤ 2× the same page's p95 on the idle server.

    python -m bench.b5_stream [--size-mb 600] [--pairs 5] [--workers 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from bench.harness import CORPUS_DIR, ROOT, Bench, Samples, process_cpu, session_cookie

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MIB = 1024 * 1024
RANGE_99 = MIB  # bytes in the range at the 99 % offset
FULL_GETS = 3  # whole-file downloads per server per round (a noisy machine needs samples)
RANDOM_RANGE = 256 * 1024  # bytes per random range
CLIENTS = 8  # concurrent clients for the random ranges
RANDOM_SECONDS = 3.0  # length of one random-ranges round per server
LATENCY_REQUESTS = 40  # 1 MiB range requests per server per round
STREAMS = 3
STREAM_MBPS = 8.0  # a playing video reads ~8 MB/s (64 Mbit/s: a high-bitrate 4K file)
PAGE_REQUESTS = 40  # page requests per round, idle and while streaming
PAGE_GAP = 0.02  # seconds between page requests, as a person clicking would not hammer

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    sendfile on;
    tcp_nopush on;
    access_log off;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    types {{ video/mp4 mp4; }}
    default_type application/octet-stream;
    server {{
        listen {host}:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def ensure_file(size_mb: int) -> Path:
    """Return bench/corpus/b5/lib/stream-<N>MB.mp4: N MiB of random bytes, made once."""
    lib = CORPUS_DIR / "b5" / "lib"
    path = lib / f"stream-{size_mb}MB.mp4"
    if path.exists() and path.stat().st_size == size_mb * MIB:
        return path
    lib.mkdir(parents=True, exist_ok=True)
    for old in lib.iterdir():
        old.unlink()  # one file in the library, so the index holds exactly it
    part = path.with_suffix(".part")
    rng = random.Random(5)
    with open(part, "wb") as f:
        for _ in range(size_mb):
            f.write(rng.randbytes(MIB))
    part.rename(path)
    return path


def index(lib: Path, data_dir: Path) -> str:
    """Scan the library into the data dir and return the file's media_hash."""
    from config import load_settings
    from services import db as dbmod
    from services.library.scanner import scan

    settings = load_settings({"media_dirs": [str(lib)], "data_dir": str(data_dir)})
    db = dbmod.open_db(settings.data_dir)
    try:
        scan(db, settings)
        row = db.execute(
            "SELECT m.media_hash FROM media m JOIN files f ON f.media_id = m.id WHERE f.present = 1"
        ).fetchone()
    finally:
        db.close()
    if not row:
        raise RuntimeError(f"the scan of {lib} found no file")
    return row[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_ready(port: int, path: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            conn = HTTPConnection(HOST, port, timeout=5)
            conn.request("HEAD", path)
            status = conn.getresponse().status
            conn.close()
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not ready after {timeout} s")


@contextmanager
def nginx(root: Path, workers: int) -> Iterator[int]:
    """Run nginx with `sendfile on` serving `root`; yield its port."""
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    work = CORPUS_DIR / "b5" / f"nginx-{port}"
    work.mkdir(parents=True, exist_ok=True)
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, dir=work, host=HOST, port=port, root=root))
    argv = [exe, "-c", str(conf), "-p", str(work), "-e", str(work / "error.log")]
    try:
        with serving(argv, os.environ, port, "/", stop=signal.SIGQUIT):
            yield port
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def serving(
    argv: list[str],
    env: Mapping[str, str],
    port: int,
    ready: str,
    stop: int = signal.SIGTERM,
    cwd: Path = ROOT,
) -> Iterator[None]:
    """Run a server process until the block ends (`stop`, then a kill after 30 s)."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(port, ready, proc)
        SERVERS[port] = proc.pid
        yield
    finally:
        proc.send_signal(stop)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# Per port: the bench admin's session cookie (gunicorn() sets it; forked clients inherit it).
AUTH: dict[int, dict[str, str]] = {}
SERVERS: dict[int, int] = {}  # per port: the server's main process (serving() sets it)


def server_cpu(port: int) -> float:
    """Return the CPU seconds (user + system) the server on `port` and its workers used so far."""
    return process_cpu(SERVERS[port])


@contextmanager
def bare_gunicorn(path: Path, workers: int, threads: int, like: int | None = None) -> Iterator[int]:
    """Run bench/bare_ranges_app.py under gunicorn with the app's worker class; yield its port.

    `like`: the app's port — then it answers with the app's headers (B5_HEADERS=ours) and the
    clients send it the app's session cookie, so requests and answers are the app's bytes.
    """
    port = free_port()
    argv = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", "/dev/null"]
    argv += ["-k", "gunicorn_worker.Worker", "-w", str(workers), "--threads", str(threads)]
    argv += ["--keep-alive", "5", "-b", f"{HOST}:{port}", "bench.bare_ranges_app:app"]
    env = {**os.environ, "B5_FILE": str(path)}
    if like is not None:
        env["B5_HEADERS"] = "ours"
        AUTH[port] = AUTH[like]
    with serving(argv, env, port, "/"):
        yield port


@contextmanager
def gunicorn(
    lib: Path, data_dir: Path, workers: int, threads: int, tree: Path = ROOT
) -> Iterator[int]:
    """Run the app under a real gunicorn with the project's configuration; yield its port.

    `tree`: another checkout's app (bench/side_by_side.py), run with this venv's gunicorn."""
    port = free_port()
    AUTH[port] = session_cookie(data_dir)  # every route needs a session (default deny)
    env = {
        **os.environ,
        "LVS_MEDIA_DIRS": str(lib),
        "LVS_DATA_DIR": str(data_dir),
        "LVS_HOST": HOST,
        "LVS_PORT": str(port),
        "LVS_WATCH": "off",
        "LVS_BACKGROUND": "off",  # no thumbnail work competing: B5 measures serving only
        "LVS_LOG_LEVEL": "WARNING",
    }
    argv = [str(ROOT / ".venv" / "bin" / "gunicorn")]
    if (tree / "gunicorn.conf.py").exists():
        argv += ["-c", str(tree / "gunicorn.conf.py")]  # its worker class, as users run it
    else:
        argv += ["-k", "gthread"]
    argv += ["-w", str(workers), "--threads", str(threads)]
    argv += ["-b", f"{HOST}:{port}", "app:create_app()"]
    with serving(argv, env, port, "/health", cwd=tree):
        yield port


class Client:
    """One keep-alive connection that reads bodies into a reused buffer and counts the bytes."""

    def __init__(self, port: int) -> None:
        self.conn = HTTPConnection(HOST, port, timeout=60)
        self.auth = AUTH.get(port, {})  # none for nginx
        self.buf = memoryview(bytearray(4 * MIB))

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, int]:
        """GET path; return (status, body bytes read)."""
        self.conn.request("GET", path, headers={**self.auth, **(headers or {})})
        r = self.conn.getresponse()
        total = 0
        while n := r.readinto(self.buf):
            total += n
        return r.status, total

    def close(self) -> None:
        self.conn.close()


def _check(status: int, got: int, want_status: int, want_bytes: int, what: str) -> None:
    if status != want_status or got != want_bytes:
        raise AssertionError(
            f"{what}: {status} with {got} bytes, wanted {want_status}/{want_bytes}"
        )


def _random_worker(port: int, path: str, size: int, seed: int, start: float, q: Any) -> None:
    """Issue random 256 KiB ranges from one connection until RANDOM_SECONDS after `start`."""
    rng = random.Random(seed)
    client = Client(port)
    while time.time() < start:
        time.sleep(0.001)
    end = start + RANDOM_SECONDS
    done = 0
    while time.time() < end:
        offset = rng.randrange(0, size - RANDOM_RANGE)
        rng_header = {"Range": f"bytes={offset}-{offset + RANDOM_RANGE - 1}"}
        status, got = client.get(path, rng_header)
        _check(status, got, 206, RANDOM_RANGE, "random range")
        done += 1
    client.close()
    q.put(done)


def random_ranges(
    port: int, path: str, size: int, round_no: int, cpu: Samples | None = None
) -> float:
    """Return req/s of CLIENTS processes issuing random ranges for RANDOM_SECONDS; add the
    server's CPU time per request to `cpu` (its processes', from the kernel's accounting: under
    load steadier than req/s, which depends on what share of the cores the server gets)."""
    used = server_cpu(port) if cpu is not None else 0.0
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    start = time.time() + 0.5  # every process connected and waiting before the clock starts
    procs = [
        ctx.Process(target=_random_worker, args=(port, path, size, round_no * 100 + i, start, q))
        for i in range(CLIENTS)
    ]
    for p in procs:
        p.start()
    counts = [q.get(timeout=RANDOM_SECONDS + 60) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"a random-range client failed ({p.exitcode})")
    if cpu is not None and sum(counts):
        cpu.add((server_cpu(port) - used) / sum(counts))
    return sum(counts) / RANDOM_SECONDS


def _stream_worker(port: int, path: str, stop: Any) -> None:
    """Play the file: read it from the start at STREAM_MBPS, as a video element buffers it."""
    conn = HTTPConnection(HOST, port, timeout=60)
    buf = memoryview(bytearray(MIB // 4))
    rate = STREAM_MBPS * 1e6
    while not stop.is_set():
        conn.request("GET", path, headers={**AUTH.get(port, {}), "Range": "bytes=0-"})
        r = conn.getresponse()
        began, total = time.monotonic(), 0
        while not stop.is_set() and (n := r.readinto(buf)):
            total += n
            ahead = total / rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)
        if stop.is_set():
            break
    conn.close()


@contextmanager
def streams(port: int, path: str, count: int) -> Iterator[None]:
    """Keep `count` clients streaming the file while the block runs."""
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    procs = [ctx.Process(target=_stream_worker, args=(port, path, stop)) for _ in range(count)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let them connect and fill their first buffers
    try:
        yield
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()


def page_latencies(port: int, page: str, samples: Samples) -> None:
    client = Client(port)
    for _ in range(PAGE_REQUESTS):
        began = time.perf_counter()
        status, _ = client.get(page)
        samples.add(time.perf_counter() - began)
        if status != 200:
            raise AssertionError(f"page {page}: {status}")
        time.sleep(PAGE_GAP)
    client.close()


def main() -> int:
    """Run B5 and write bench/out/b5.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=600)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers and nginx's")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.pairs < 5:
        parser.error("SPEC §5 asks for at least 5 pairs")
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()) and os.geteuid() == 0:
        print("installing Debian's nginx-light for the baseline ...", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=600, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], check=False,
                       timeout=600, env=env)  # fmt: skip
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        print("B5 needs nginx (Debian: apt-get install nginx-light)", file=sys.stderr)
        return 2

    path = ensure_file(args.size_mb)
    size = path.stat().st_size
    lib = path.parent
    data_dir = CORPUS_DIR / "b5" / "data"
    media_hash = index(lib, data_dir)
    ours_path = f"/media/{media_hash}/file"
    nginx_path = f"/{path.name}"
    offset_99 = size * 99 // 100
    range_99 = {"Range": f"bytes={offset_99}-{offset_99 + RANGE_99 - 1}"}
    rounds = range(1 + args.pairs)  # round 0 is the warm-up

    with (
        nginx(lib, args.workers) as nport,
        gunicorn(lib, data_dir, args.workers, args.threads) as oport,
        bare_gunicorn(path, args.workers, args.threads) as bport,
        bare_gunicorn(path, args.workers, args.threads, like=oport) as hport,
    ):
        page = "/"
        probe = Client(oport)
        if probe.get("/")[0] != 200:
            page = "/health"
        probe.close()
        bench = Bench(
            "b5",
            f"Range streaming of a {size // MIB} MiB file: gunicorn vs nginx sendfile",
            params={
                "size": size,
                "workers": args.workers,
                "threads": args.threads,
                "gunicorn_conf": (ROOT / "gunicorn.conf.py").exists(),
                "nginx": subprocess.run(
                    ["nginx", "-v"], capture_output=True, text=True, check=False
                ).stderr.strip(),
                "clients": CLIENTS,
                "random_range": RANDOM_RANGE,
                "streams": STREAMS,
                "stream_mbps": STREAM_MBPS,
                "page": page,
            },
        )
        servers = {"nginx": (nport, nginx_path), "ours": (oport, ours_path)}

        log.info("full GET throughput")
        full = {name: Samples(name, "MB/s") for name in servers}
        for round_no in rounds:
            for _ in range(FULL_GETS):
                for name, (port, url) in servers.items():
                    client = Client(port)
                    began = time.perf_counter()
                    status, got = client.get(url)
                    elapsed = time.perf_counter() - began
                    client.close()
                    _check(status, got, 200, size, f"{name} full GET")
                    if round_no:
                        full[name].add(size / elapsed / 1e6)
        bench.compare(
            "full GET throughput",
            full["nginx"],
            full["ours"],
            target=0.8,
            higher_is_better=True,
            headline=True,
        )

        log.info("1 MiB range at 99 % offset")
        latency = {name: Samples(name) for name in servers}
        for round_no in rounds:
            for name, (port, url) in servers.items():
                client = Client(port)
                for _ in range(LATENCY_REQUESTS):
                    began = time.perf_counter()
                    status, got = client.get(url, range_99)
                    elapsed = time.perf_counter() - began
                    _check(status, got, 206, RANGE_99, f"{name} range at 99 %")
                    if round_no:
                        latency[name].add(elapsed)
                client.close()
        bench.compare(
            "1 MiB range at 99 % offset, latency", latency["nginx"], latency["ours"], target=3.0
        )
        bench.compare(
            "1 MiB range at 99 % offset, p95", latency["nginx"], latency["ours"], stat="p95"
        )

        log.info("random ranges, %d clients", CLIENTS)
        rps = {name: Samples(name, "req/s") for name in servers}
        ceiling = Samples("bare WSGI app", "req/s")
        same = Samples("bare WSGI app, our headers", "req/s")
        cpu = {name: Samples(name) for name in ("ours", "bare", "bare, our headers")}
        for round_no in rounds:
            for name, (port, url) in servers.items():
                value = random_ranges(
                    port, url, size, round_no, cpu.get(name) if round_no else None
                )
                if round_no:
                    rps[name].add(value)
            value = random_ranges(
                bport, nginx_path, size, round_no, cpu["bare"] if round_no else None
            )
            if round_no:
                ceiling.add(value)
            value = random_ranges(
                hport, nginx_path, size, round_no, cpu["bare, our headers"] if round_no else None
            )
            if round_no:
                same.add(value)
        bench.compare(
            f"random {RANDOM_RANGE // 1024} KiB ranges, {CLIENTS} clients",
            rps["nginx"],
            rps["ours"],
            target=0.5,
            higher_is_better=True,
        )
        # What gunicorn itself reaches with the same clients, workers and threads: an app that
        # only parses the range and sendfile()s it (bench/bare_ranges_app.py). The row above cannot
        # be higher than this one.
        bench.compare(
            f"ceiling: bare WSGI ranges under the same gunicorn, {CLIENTS} clients (vs nginx)",
            rps["nginx"],
            ceiling,
            higher_is_better=True,
        )
        bench.compare(
            f"ours vs that ceiling, {CLIENTS} clients", ceiling, rps["ours"], higher_is_better=True
        )
        # The same bare app sending what ours sends (our twelve headers, our session cookie in
        # each request): the HTTP code on both ends handles the same bytes, so what is left
        # between this row and ours is our app's own work per request.
        bench.compare(
            f"ceiling with our answer's headers, {CLIENTS} clients (vs the bare ceiling)",
            ceiling,
            same,
            higher_is_better=True,
        )
        bench.compare(
            f"ours vs the ceiling with our headers, {CLIENTS} clients",
            same,
            rps["ours"],
            higher_is_better=True,
        )
        # Server CPU per random range (lower is better): the servers' own cost, whatever share
        # of the two cores they got; ratio = bare / ours reads like the rows above.
        bench.compare(
            "server CPU per random range: ours vs the bare ceiling", cpu["bare"], cpu["ours"]
        )
        bench.compare(
            "server CPU per random range: ours vs the ceiling with our headers",
            cpu["bare, our headers"],
            cpu["ours"],
        )

        log.info("page p95 while %d streams play", STREAMS)
        idle, busy = Samples(f"{page} idle"), Samples(f"{page} with {STREAMS} streams")
        for round_no in rounds:
            warm = Samples("warm-up")
            page_latencies(oport, page, idle if round_no else warm)
            with streams(oport, ours_path, STREAMS):
                page_latencies(oport, page, busy if round_no else warm)
        bench.compare(
            f"page {page} p95 while {STREAMS} streams play", idle, busy, target=2.0, stat="p95"
        )
    bench.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
