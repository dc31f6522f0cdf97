"""What every command shares: the app's settings and numbers written for people."""

from __future__ import annotations

from flask import current_app

from config import Settings


def app_settings() -> Settings:
    """Return the running app's settings."""
    return current_app.config["SETTINGS"]


def human_size(n: float) -> str:
    """Return a byte count as B, KB, MB, GB or TB (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    """Return seconds as 1h02m, 3m05s or 4.2s."""
    if seconds >= 3600:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    if seconds >= 60:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{seconds:.1f}s"


def count(n: int, word: str) -> str:
    """Return '1 video', '2 videos'."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Return rows as left-aligned columns under upper-case headers (no trailing spaces)."""
    cells = [[h.upper() for h in headers], *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )
