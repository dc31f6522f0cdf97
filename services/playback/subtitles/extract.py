"""Embedded text subtitles to WebVTT: one ffmpeg pass per file, cached by media_hash.

The first request for any embedded track of a file starts one ffmpeg that reads the file once
and writes every text subtitle stream at the same time (`-map 0:<i>` per stream, SubRip or ASS
copied, mov_text and WebVTT turned into SubRip), flushing each cue as it is read. Until it ends,
a track is served from what has been written so far (the player asks again), so the first cues
are there within a second of pressing play on a long film. When it ends, each stream is
converted to WebVTT (services.playback.subtitles.convert) and kept in
`<data dir>/subtitles/<media_hash>/<stream>.vtt` with a manifest of the file's size and mtime:
a file that changes gets a new media_hash, or fails the size/mtime check, and is extracted again.

One extraction per file across all server processes: an exclusive flock on the cache folder's
lock file, held by the thread that runs ffmpeg.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from services.errors import FFmpegError
from services.ffmpeg import file_arg, run_ffmpeg
from services.playback.subtitles.convert import SubtitleError, to_vtt

log = logging.getLogger(__name__)

TIMEOUT = 30 * 60.0  # seconds one extraction may take (Jellyfin's SubtitleExtractionTimeout)
COPY = frozenset({"subrip", "srt", "ass", "ssa"})  # written as they are; others become SubRip
MANIFEST = "manifest.json"

MAX_RUNNING = 2  # extractions at once in one server process; more wait their turn
_guard = threading.Lock()
_slots = threading.BoundedSemaphore(MAX_RUNNING)


@dataclass(frozen=True)
class Status:
    """Where the extraction of a file stands."""

    done: bool
    tracks: dict[int, dict]  # stream index -> {"status", "reason", "cues"} once done


def cache_dir(data_dir: Path, media_hash: str) -> Path:
    return data_dir / "subtitles" / media_hash


def _work_name(index: int, codec: str) -> str:
    return f"{index}.ass" if codec in ("ass", "ssa") else f"{index}.srt"


def read_manifest(folder: Path, size: int, mtime_ns: int) -> dict | None:
    """Return the manifest of a finished extraction of the file as it is now, else None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("size") != size or manifest.get("mtime_ns") != mtime_ns:
        return None
    return manifest


def ensure(
    data_dir: Path,
    media_hash: str,
    source: bytes,
    streams: list[tuple[int, str]],
    *,
    wait: float = 0.0,
) -> Status:
    """Start extracting the file's text streams (index, codec) unless done or under way.

    Returns at once (or after `wait` seconds at most, if it finishes sooner) with the status.
    """
    folder = cache_dir(data_dir, media_hash)
    st = os.stat(source)
    manifest = read_manifest(folder, st.st_size, st.st_mtime_ns)
    if manifest is not None:
        return Status(True, {int(k): v for k, v in manifest["tracks"].items()})
    # The lock alone says whether an extraction runs (flock conflicts between descriptors, so in
    # this process too): a thread that is finishing has released it, and one whose cache folder
    # was deleted under it holds a lock on a file no longer there.
    with _guard:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # under way, here or in another process
        else:
            manifest = read_manifest(folder, st.st_size, st.st_mtime_ns)
            if manifest is not None:  # finished between our look and the lock
                os.close(fd)
                return Status(True, {int(k): v for k, v in manifest["tracks"].items()})
            threading.Thread(
                target=_run,
                args=(fd, folder, source, streams, st.st_size, st.st_mtime_ns),
                name=f"lvs-subtitles-{media_hash}",
                daemon=True,
            ).start()
    deadline = time.monotonic() + wait
    while True:
        manifest = read_manifest(folder, st.st_size, st.st_mtime_ns)
        if manifest is not None:
            return Status(True, {int(k): v for k, v in manifest["tracks"].items()})
        if time.monotonic() >= deadline:
            return Status(False, {})
        time.sleep(0.05)


def extract_args(source: bytes, work: Path, streams: list[tuple[int, str]]) -> list[str]:
    """Return ffmpeg's arguments for one pass writing every stream to its own file in `work`."""
    args = ["-loglevel", "error", "-i", file_arg(source)]
    for index, codec in streams:
        ass = codec in ("ass", "ssa")
        args += [
            "-map",
            f"0:{index}",
            "-c:s",
            "copy" if codec in COPY else "srt",
            "-flush_packets",
            "1",
            "-f",
            "ass" if ass else "srt",
            file_arg(work / _work_name(index, codec)),
        ]
    return args


def _run(
    fd: int,
    folder: Path,
    source: bytes,
    streams: list[tuple[int, str]],
    size: int,
    mtime_ns: int,
) -> None:
    work = folder / "work"
    tracks: dict[str, dict] = {}
    _slots.acquire()
    try:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        started = time.perf_counter()
        error = None
        if streams:
            try:
                run_ffmpeg(["-y", *extract_args(source, work, streams)], timeout=TIMEOUT)
            except FFmpegError as exc:
                error = str(exc)
                log.warning("extracting subtitles of %s: %s", os.fsdecode(source), exc)
        for index, codec in streams:
            tracks[str(index)] = _finish(folder, work, index, codec, error)
        manifest = {
            "size": size,
            "mtime_ns": mtime_ns,
            "seconds": round(time.perf_counter() - started, 3),
            "tracks": tracks,
        }
        tmp = folder / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest))
        os.replace(tmp, folder / MANIFEST)
        shutil.rmtree(work, ignore_errors=True)
    except Exception:
        log.exception("extracting subtitles of %s failed", os.fsdecode(source))
    finally:
        _slots.release()
        os.close(fd)


def _finish(folder: Path, work: Path, index: int, codec: str, error: str | None) -> dict:
    """Convert one extracted stream to WebVTT in the cache; return its manifest entry."""
    src = work / _work_name(index, codec)
    try:
        text = src.read_text("utf-8", errors="replace")
    except OSError:
        return {"status": "failed", "reason": error or "ffmpeg wrote nothing for it"}
    try:
        done = to_vtt(text, "ass" if codec in ("ass", "ssa") else "srt", partial=error is not None)
    except SubtitleError as exc:
        return {"status": "failed", "reason": error or str(exc)}
    tmp = folder / f"{index}.vtt.tmp"
    tmp.write_text(done.vtt, "utf-8")
    os.replace(tmp, folder / f"{index}.vtt")
    if error:
        return {"status": "partial", "reason": error, "cues": done.cues}
    return {"status": "ok", "reason": None, "cues": done.cues}


def read_track(folder: Path, index: int, codec: str, status: Status) -> tuple[str, bool]:
    """Return (WebVTT, complete) of a stream: the cached file, or what is written so far."""
    if status.done:
        entry = status.tracks.get(index)
        if entry is None:
            raise SubtitleError("this track was not extracted")
        if entry["status"] == "failed":
            raise SubtitleError(entry.get("reason") or "cannot be extracted")
        return (folder / f"{index}.vtt").read_text("utf-8"), True
    src = folder / "work" / _work_name(index, codec)
    try:
        text = src.read_text("utf-8", errors="replace")
    except OSError:
        text = ""
    if not text.strip():
        return "WEBVTT\n\n", False
    fmt = "ass" if codec in ("ass", "ssa") else "srt"
    try:
        return to_vtt(text, fmt, partial=True).vtt, False
    except SubtitleError:
        return "WEBVTT\n\n", False
