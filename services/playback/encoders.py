"""Which H.264 encoder transcodes use, and how fast this machine encodes.

Hardware encoders (VAAPI, QSV, NVENC) are used only after a short real test encode succeeded
(Jellyfin only parses `ffmpeg -encoders`, and users pay for it: jellyfin #4389, #4927). With no
GPU device node at all the answer is "none" at once, without starting ffmpeg. The test encode
uses the very options a transcode adds (`hardware_args`: the device, the upload into GPU memory,
the encoder's settings). A run that fails on a hardware encoder is restarted in software from
the same segment, for that job, with one WARNING (services/playback/transcoder.py).

This machine has no GPU: the hardware command lines are checked by ffmpeg's own option parser
and `ffmpeg -h encoder=…` (tests/test_hls.py), and the fallback by a forced VAAPI encoder on a
render node that is not there; no hardware encode has run here.
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
H264_PRESET = "veryfast"  # Jellyfin's VOD default: real time at 1080p on two cores for most sources
H264_CRF = "23"
TEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class EncoderChoice:
    """The encoder in use and why (shown on the dashboard)."""

    name: str  # libx264, h264_vaapi, h264_qsv, h264_nvenc
    hardware: str  # "none", "vaapi", "qsv", "nvenc"
    reason: str
    device: str = ""  # the render node VAAPI and QSV open (/dev/dri/renderD128); NVENC: ""


def _candidates() -> list[tuple[str, str, str]]:
    """Return (hardware, encoder, device) for the GPU device nodes present."""
    found = []
    nodes = sorted(glob.glob("/dev/dri/renderD*"))
    if os.path.exists("/dev/nvidia0"):
        found.append(("nvenc", "h264_nvenc", ""))
    if nodes:
        found.append(("qsv", "h264_qsv", nodes[0]))
        found.append(("vaapi", "h264_vaapi", nodes[0]))
    return found


def hardware_args(encoder: str, device: str) -> tuple[list[str], list[tuple[str, dict]], dict]:
    """Return what a hardware encoder adds to a transcode: global options (the device), the
    filters after the software graph's last one (frames into the GPU's memory), and the
    encoder's own options. libx264 (or an unknown name): nothing.

    VAAPI and QSV encode only frames in GPU memory: the graph ends with `format=nv12,hwupload`
    (QSV: a frame pool for its look-ahead, then its own format). NVENC takes frames from system
    memory; `forced-idr` makes the keyframes forced on segment boundaries IDR frames, so every
    segment starts clean as with libx264.
    """
    if encoder == "h264_vaapi":
        return (["-vaapi_device", device], [("format", {"pix_fmts": "nv12"}), ("hwupload", {})],
                {"c:v": encoder, "qp": 23, "profile:v": "high"})  # fmt: skip
    if encoder == "h264_qsv":
        return (["-init_hw_device", f"qsv=hw:{device}", "-filter_hw_device", "hw"],
                [("format", {"pix_fmts": "nv12"}), ("hwupload", {"extra_hw_frames": 64}),
                 ("format", {"pix_fmts": "qsv"})],
                {"c:v": encoder, "preset": "faster", "global_quality": 23, "profile:v": "high"})  # fmt: skip
    if encoder == "h264_nvenc":
        return ([], [], {"c:v": encoder, "preset": "p4", "cq": 23, "profile:v": "high",
                         "forced-idr": 1})  # fmt: skip
    return [], [], {}


@functools.cache
def detect() -> EncoderChoice:
    """Return the encoder transcodes use: the first hardware one whose test encode works."""
    candidates = _candidates()
    if not candidates:
        return EncoderChoice(SOFTWARE, "none", "no GPU device (/dev/dri/renderD*, /dev/nvidia0)")
    failures = []
    for hardware, name, device in candidates:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "test.mp4")
            try:
                run_ffmpeg(test_args(name, device, f"file:{out}"), timeout=TEST_TIMEOUT)
                if os.path.getsize(out) > 0:
                    log.info("hardware encoder %s works: transcodes use it", name)
                    return EncoderChoice(name, hardware, "a test encode at start-up succeeded",
                                         device)  # fmt: skip
            except (FFmpegError, OSError) as exc:
                failures.append(f"{name}: {str(exc)[:120]}")
    reason = "hardware test encodes failed: " + "; ".join(failures)
    log.warning("%s; transcodes use %s", reason, SOFTWARE)
    return EncoderChoice(SOFTWARE, "none", reason)


def test_args(encoder: str, device: str, out: str) -> list[str]:
    """Return the start-up test encode's arguments: 25 frames through the transcodes' own
    hardware options (hardware_args), so what passes here is what a transcode runs."""
    globals_, filters, codec = hardware_args(encoder, device)
    graph = ",".join([f"{name}=" + ":".join(f"{k}={v}" for k, v in opts.items()) if opts
                      else name for name, opts in filters])  # fmt: skip
    opts = [x for k, v in codec.items() for x in (f"-{k}", str(v))]
    return [*globals_, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=1",
            *(["-vf", graph] if graph else []), *opts, "-frames:v", "25", "-y", out]  # fmt: skip


@functools.cache
def realtime_pixels() -> float:
    """Return the pixels per second this machine encodes with the transcode settings.

    Measured once per process with a 2-second 720p test encode (about a second of CPU).
    """
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
