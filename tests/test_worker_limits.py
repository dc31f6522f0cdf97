"""Tiny pathological files cannot take gigabytes (issue 20, item 3).

What cannot be true is refused before FFmpeg opens or decodes it (a track claiming more samples
than the file has bytes, a picture over the size limit), and each worker process may take only
its share of the machine's memory: a file that hits it fails with that reason and the worker is
replaced. Real PyAV in real worker processes, on files built with struct and made by ffmpeg.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from services.errors import ProbeError, ThumbnailError
from services.library import probe_pool
from services.library.probe_pool import ProbePool
from services.library.scanner import scan
from tests.hostile_media import huge_mjpeg, many_samples_mp4


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hostile")
    return {
        "many": many_samples_mp4(base / "tiny.mp4"),
        "huge": huge_mjpeg(base / "huge.avi", side=12000),
        "big": huge_mjpeg(base / "big.avi", side=8000),
    }


def peak_rss(pid: int) -> int:
    """Return a process's peak resident memory in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_tiny_file_claiming_50_million_samples_fails_cheaply(hostile, settings, db) -> None:
    assert hostile["many"].stat().st_size == 1600
    with ProbePool(1, timeout=10) as pool:
        started = time.monotonic()
        with pytest.raises(ProbeError, match="impossible: a track claims 50,000,000"):
            pool.probe(hostile["many"], "video")
        assert time.monotonic() - started < pool.timeout
        (pid,) = pool.worker_pids()
        assert peak_rss(pid) < min(pool.memory, 300 << 20)  # it was 1.8 GB
        # Grabbing frames refuses it as well (the file may have changed since it was probed).
        with pytest.raises(ThumbnailError, match="impossible"):
            pool.run("thumbnail", str(hostile["many"]), "video", "/nonexistent/t.jpg", 320)
        assert peak_rss(pid) < 300 << 20
    # Scanned, it is a failed file with that reason, never a 50,000-second video.
    shutil.copy2(hostile["many"], settings.media_dirs[0] / "tiny.mp4")
    report = scan(db, settings)
    assert report.failed == 1
    status, duration = db.execute("SELECT probe_status, duration FROM media").fetchone()
    assert (status, duration) == ("failed", None)
    reason = db.execute("SELECT reason FROM probe_errors").fetchone()[0]
    assert reason.startswith("impossible: a track claims 50,000,000")


def test_a_12000_square_video_is_refused_before_decoding(hostile) -> None:
    with ProbePool(1, timeout=30) as pool:
        with pytest.raises(ProbeError, match="video too large: 12000x12000"):
            pool.probe(hostile["huge"], "video")
        with pytest.raises(ThumbnailError, match="video too large: 12000x12000"):
            pool.run("thumbnail", str(hostile["huge"]), "video", "/nonexistent/t.jpg", 320)
        with pytest.raises(ThumbnailError, match="video too large"):
            pool.run("sprite", str(hostile["huge"]), "/nonexistent/s.jpg", "/nonexistent/s.vtt")
        (pid,) = pool.worker_pids()
        assert peak_rss(pid) < 200 << 20  # a frame grab of it took 250-460 MB


def test_a_worker_that_runs_out_of_memory_fails_the_file_and_is_replaced(
    hostile, media, tmp_path: Path
) -> None:
    # 8000×8000 is allowed; decoding one frame needs ~100 MB more than a worker starts with.
    with ProbePool(1, timeout=30, memory=128 << 20) as pool:
        pool.probe(media["h264_mp4"], "video")  # a warm worker
        (before,) = pool.worker_pids()
        with pytest.raises(ThumbnailError, match=r"ran out of memory \(a worker may take 128 MiB"):
            pool.run("thumbnail", str(hostile["big"]), "video", str(tmp_path / "big.jpg"), 320)
        assert pool.worker_pids() == []  # that worker is gone
        made = pool.run("thumbnail", str(media["h264_mp4"]), "video", str(tmp_path / "t.jpg"), 320)
        assert made.width == 320
        (after,) = pool.worker_pids()
        assert after != before


def test_the_memory_limit_is_a_share_of_the_machine() -> None:
    machine = probe_pool.machine_memory()
    assert machine > 0
    for workers in (1, 2, 4, 32):
        limit = probe_pool.memory_limit(workers)
        assert probe_pool.MIN_WORKER_MEMORY <= limit <= probe_pool.MAX_WORKER_MEMORY
        assert limit == probe_pool.MIN_WORKER_MEMORY or limit <= machine // (workers + 2)
    assert ProbePool(2, timeout=1).memory == probe_pool.memory_limit(2)
