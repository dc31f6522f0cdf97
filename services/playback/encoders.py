"""Which H.264 encoder transcodes use, and how fast this machine encodes.

Hardware encoders (VAAPI, QSV, NVENC) are used only after a short real test encode succeeded
(Jellyfin only parses `ffmpeg -encoders`, and users pay for it: jellyfin #4389, #4927). With no
GPU device node at all the answer is "none" at once, without starting ffmpeg. A run that fails
on a hardware encoder is restarted in software (services/playback/transcoder.py).
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import tempfile
import time
from dataclasses import dataclass

from services.errors import FFmpegError
from services.ffmpeg import run_ffmpeg

log = logging.getLogger(__name__)

SOFTWARE = "libx264"
TEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class EncoderChoice:
    """The encoder in use and why (shown on the dashboard)."""

    name: str  # libx264, h264_vaapi, h264_qsv, h264_nvenc
    hardware: str  # "none", "vaapi", "qsv", "nvenc"
    reason: str


def _candidates() -> list[tuple[str, str, list[str]]]:
    """Return (hardware, encoder, test arguments) for the GPU device nodes present."""
    found = []
    nodes = sorted(glob.glob("/dev/dri/renderD*"))
    if os.path.exists("/dev/nvidia0"):
        found.append(("nvenc", "h264_nvenc", ["-c:v", "h264_nvenc"]))
    if nodes:
        node = nodes[0]
        found.append(("qsv", "h264_qsv", ["-init_hw_device", f"qsv=hw:{node}", "-c:v", "h264_qsv"]))
        found.append(("vaapi", "h264_vaapi", ["-vaapi_device", node, "-vf",
                      "format=nv12,hwupload", "-c:v", "h264_vaapi"]))  # fmt: skip
    return found


@functools.cache
def detect() -> EncoderChoice:
    """Return the encoder transcodes use: the first hardware one whose test encode works."""
    candidates = _candidates()
    if not candidates:
        return EncoderChoice(SOFTWARE, "none", "no GPU device (/dev/dri/renderD*, /dev/nvidia0)")
    failures = []
    for hardware, name, args in candidates:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "test.mp4")
            try:
                run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=1",
                            *args, "-frames:v", "25", "-y", f"file:{out}"],
                           timeout=TEST_TIMEOUT)  # fmt: skip
                if os.path.getsize(out) > 0:
                    log.info("hardware encoder %s works: transcodes use it", name)
                    return EncoderChoice(name, hardware, "a test encode at start-up succeeded")
            except (FFmpegError, OSError) as exc:
                failures.append(f"{name}: {str(exc)[:120]}")
    reason = "hardware test encodes failed: " + "; ".join(failures)
    log.warning("%s; transcodes use %s", reason, SOFTWARE)
    return EncoderChoice(SOFTWARE, "none", reason)


@functools.cache
def realtime_pixels() -> float:
    """Return the pixels per second this machine encodes with the transcode settings.

    Measured once per process with a 2-second 720p test encode (about a second of CPU).
    """
    from services.playback.hls import H264_CRF, H264_PRESET

    started = time.perf_counter()
    try:
        run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=2",
                    "-c:v", SOFTWARE, "-preset", H264_PRESET, "-crf", H264_CRF, "-f", "null", "-"],
                   timeout=60)  # fmt: skip
    except FFmpegError as exc:
        log.warning("encoder speed test failed: %s", exc)
        return 1280 * 720 * 25.0
    took = max(0.05, time.perf_counter() - started)
    return 1280 * 720 * 50 / took


def max_realtime_height(width: int, height: int, fps: float, headroom: float = 0.8) -> int:
    """Return the largest shorter side (a multiple of 2) encodable in real time for this shape."""
    short, long = min(width, height), max(width, height)
    budget = realtime_pixels() * headroom / max(1.0, fps)
    # short × (short × long/short) ≤ budget
    fits = int((budget * short / long) ** 0.5)
    return max(240, min(short, fits - fits % 2))
