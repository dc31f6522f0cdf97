"""Test-pattern videos for the VR tests (issue 14): one colour per eye, made by real ffmpeg.

A side-by-side pattern has its left half one colour and its right half another (lavfi `color`
sources + `hstack`); a top/bottom one its top half one and its bottom half another (`vstack`).
An eye that shows only its own colour proves the player split the frame right.
"""

from __future__ import annotations

from pathlib import Path

from tests.mediagen import X264, ffmpeg, file_arg

LEFT, RIGHT = "red", "blue"  # the left eye's colour (left/top half), the right eye's
RGB = {"red": (255, 0, 0), "blue": (0, 0, 255), "lime": (0, 255, 0)}


def pattern_video(
    out: Path,
    width: int,
    height: int,
    layout: str = "sbs",
    *,
    seconds: float = 2,
    fps: int = 10,
    colors: tuple[str, str] = (LEFT, RIGHT),
) -> Path:
    """Encode an H.264 MP4 of `width`×`height`: halves coloured per eye ('sbs' or 'tb'), or one
    colour ('mono'). Made once per path."""
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    a, b = colors
    if layout == "mono":
        graph = f"color=c={a}:s={width}x{height}:r={fps}:d={seconds}[v]"
    elif layout == "sbs":
        half = f"{width // 2}x{height}"
        graph = (
            f"color=c={a}:s={half}:r={fps}:d={seconds}[l];"
            f"color=c={b}:s={half}:r={fps}:d={seconds}[r];[l][r]hstack[v]"
        )
    else:
        half = f"{width}x{height // 2}"
        graph = (
            f"color=c={a}:s={half}:r={fps}:d={seconds}[l];"
            f"color=c={b}:s={half}:r={fps}:d={seconds}[r];[l][r]vstack[v]"
        )
    ffmpeg(
        "-filter_complex",
        graph,
        "-map",
        "[v]",
        "-c:v",
        *X264,
        "-g",
        str(fps),
        "-movflags",
        "+faststart",
        file_arg(out),
    )
    return out
