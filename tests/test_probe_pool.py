"""Drive ProbePool's real worker processes: concurrency, deadlines, crashes and shutdown."""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import termios
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.errors import ProbeError
from services.library.probe import probe_file
from services.library.probe_pool import ProbePool

MIX = [
    "h264_mp4",
    "hevc_mkv",
    "vp9_webm",
    "mpeg4_avi",
    "rotated_mp4",
    "subtitle_mkv",
    "name_concat",
]


@pytest.fixture
def pool() -> Iterator[ProbePool]:
    with ProbePool(workers=2, timeout=20) as p:
        yield p


def _unread_bytes(pool: ProbePool) -> int:
    """Return how many bytes sent to a one-worker pool's worker it has not read yet (SIOCOUTQ)."""
    [worker] = pool._workers
    assert worker.conn is not None
    raw = fcntl.ioctl(worker.conn.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    return struct.unpack("i", raw)[0]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_unused_pool_starts_no_process() -> None:
    with ProbePool(workers=4, timeout=5) as p:
        assert p.worker_pids() == []


def test_results_equal_in_process_probes(pool: ProbePool, media: dict[str, Path]) -> None:
    for key in [*MIX, "jpeg_exif"]:
        kind = "picture" if key == "jpeg_exif" else "video"
        assert pool.probe(media[key], kind) == probe_file(media[key], kind)


def test_many_threads_share_the_workers(pool: ProbePool, media: dict[str, Path]) -> None:
    expected = {key: probe_file(media[key], "video") for key in MIX}
    jobs = [key for key in MIX for _ in range(6)]
    with ThreadPoolExecutor(max_workers=8) as threads:
        results = list(threads.map(lambda key: pool.probe(media[key], "video"), jobs))
    assert results == [expected[key] for key in jobs]
    assert 1 <= len(pool.worker_pids()) <= 2


def test_bad_file_reason_crosses_the_process_boundary(
    pool: ProbePool, media: dict[str, Path]
) -> None:
    with pytest.raises(ProbeError, match="^truncated: moov atom not found$"):
        pool.probe(media["truncated_mp4"], "video")
    with pytest.raises(ProbeError, match="^playlist files are not media$"):
        pool.probe(media["playlist_mp4"], "video")
    with pytest.raises(FileNotFoundError):
        pool.probe(media["h264_mp4"].with_name("gone.mp4"), "video")
    pids = pool.worker_pids()
    assert pool.probe(media["h264_mp4"], "video").video_codec == "h264"
    assert pool.worker_pids() == pids  # bad files do not cost a worker


def test_invalid_utf8_path_crosses_the_process_boundary(
    pool: ProbePool, media: dict[str, Path]
) -> None:
    assert pool.probe(os.fsencode(media["name_bad_utf8"]), "video").video_codec == "h264"


@pytest.mark.timeout(30)
def test_stuck_probe_is_killed_at_the_deadline_and_replaced(media: dict[str, Path]) -> None:
    with ProbePool(workers=1, timeout=1) as p:
        p.probe(media["h264_mp4"], "video")
        [stuck] = p.worker_pids()
        # A stopped worker makes no progress, like one blocked in a read on a dead NFS mount.
        os.kill(stuck, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(ProbeError, match=r"^probe timed out after 1 s$"):
            p.probe(media["hevc_mkv"], "video")
        assert 1 <= time.monotonic() - started < 5
        assert _gone(stuck)
        assert p.probe(media["hevc_mkv"], "video").video_codec == "hevc"
        [fresh] = p.worker_pids()
        assert fresh != stuck


@pytest.mark.timeout(30)
def test_worker_crash_during_a_probe_is_reported_and_replaced(media: dict[str, Path]) -> None:
    with ProbePool(workers=1, timeout=15) as p:
        p.probe(media["h264_mp4"], "video")
        [victim] = p.worker_pids()
        os.kill(victim, signal.SIGSTOP)  # hold it so the request is surely in flight
        outcome: list[BaseException | object] = []

        def ask() -> None:
            try:
                outcome.append(p.probe(media["h264_mp4"], "video"))
            except BaseException as exc:  # handed to the test thread to assert on
                outcome.append(exc)

        asker = threading.Thread(target=ask)
        asker.start()
        deadline = time.monotonic() + 10  # not a fixed sleep: a loaded machine may be slower
        while not _unread_bytes(p):
            assert time.monotonic() < deadline, "the request never reached the worker's pipe"
            time.sleep(0.01)
        os.kill(victim, signal.SIGSEGV)
        os.kill(victim, signal.SIGCONT)  # the pending SIGSEGV kills it as it resumes
        asker.join(timeout=20)
        assert len(outcome) == 1
        assert isinstance(outcome[0], ProbeError) and str(outcome[0]) == "probe crashed"
        assert _gone(victim)
        assert p.probe(media["h264_mp4"], "video").video_codec == "h264"
        assert p.worker_pids() != [victim]


def test_worker_that_died_while_idle_is_replaced_silently(media: dict[str, Path]) -> None:
    with ProbePool(workers=1, timeout=10) as p:
        p.probe(media["h264_mp4"], "video")
        [dead] = p.worker_pids()
        os.kill(dead, signal.SIGKILL)
        while not _gone(dead) and p.worker_pids():
            time.sleep(0.01)
        assert p.probe(media["vp9_webm"], "video").video_codec == "vp9"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_huge_picture_does_not_grow_the_worker(media: dict[str, Path]) -> None:
    def peak_rss_kib(pid: int) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    with ProbePool(workers=1, timeout=10) as p:
        p.probe(media["jpeg_exif"], "picture")
        [pid] = p.worker_pids()
        before = peak_rss_kib(pid)
        got = p.probe(media["huge_jpg"], "picture")
        assert (got.width, got.height) == (12000, 12000)
        # Decoding it would need 12000 × 12000 × 3 bytes = 412 MiB.
        assert peak_rss_kib(pid) - before < 20 * 1024


def test_close_stops_workers_and_refuses_new_probes(media: dict[str, Path]) -> None:
    p = ProbePool(workers=2, timeout=10)
    with ThreadPoolExecutor(max_workers=2) as threads:
        list(threads.map(lambda key: p.probe(media[key], "video"), ["h264_mp4", "hevc_mkv"] * 3))
    pids = p.worker_pids()
    assert pids
    p.close()
    assert p.worker_pids() == []
    assert all(_gone(pid) for pid in pids)
    with pytest.raises(RuntimeError, match="closed"):
        p.probe(media["h264_mp4"], "video")
    p.close()  # idempotent


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        ProbePool(workers=0, timeout=1)
    with pytest.raises(ValueError):
        ProbePool(workers=1, timeout=0)
