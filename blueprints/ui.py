"""Template helpers of the visual system (issue 16): the icon sprite, device names, time left.

Icons are Lucide's (static/vendor/lucide/, ISC licence): the SVGs the app uses are read once at
start-up into one inline sprite of <symbol id="i-NAME">, so a page loads no icon file and a
TV or headset lacks no glyph. `{{ icon('play') }}` draws one.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Flask, g
from markupsafe import Markup, escape

from services.people.devices import device_name

# The sprite's ids the templates and scripts use, and the Lucide icon each one draws.
ALIASES = {
    "prev": "skip-back",
    "next": "skip-forward",
    "volume": "volume-2",
    "muted": "volume-x",
    "fullscreen": "maximize",
    "exit-fullscreen": "minimize",
    "home": "house",
    "playlists": "list-video",
    "duplicates": "copy",
    "dashboard": "gauge",
    "people": "users",
    "alert": "triangle-alert",
    "filters": "sliders-horizontal",
    "left": "chevron-left",
    "right": "chevron-right",
    "down": "chevron-down",
    "restart": "rotate-ccw",
    "remove": "x",
    "pip": "picture-in-picture-2",
    "subtitles": "captions",
}
_SVG_BODY = re.compile(r"<svg[^>]*>(.*)</svg>", re.S)


def icon_sprite(folder: Path) -> Markup:
    """Return the inline SVG sprite of every vendored icon, under its own name and its aliases."""
    bodies = {}
    for path in sorted(folder.glob("*.svg")):
        found = _SVG_BODY.search(path.read_text(encoding="utf-8"))
        if found:
            bodies[path.stem] = " ".join(found.group(1).split())
    names = {name: name for name in bodies} | {a: n for a, n in ALIASES.items() if n in bodies}
    symbols = "".join(
        f'<symbol id="i-{alias}" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
        f'stroke-width="2" stroke-linecap="round" stroke-linejoin="round">{bodies[name]}</symbol>'
        for alias, name in sorted(names.items())
    )
    return Markup(
        '<svg class="icon-sprite" aria-hidden="true" focusable="false" width="0" height="0">'
        f"{symbols}</svg>"
    )


def icon(name: str, label: str = "") -> Markup:
    """Return an <svg> that draws the sprite's icon `name` (decorative unless labelled)."""
    name = escape(name)
    if label:
        return Markup(
            f'<svg class="i i-{name}" role="img" aria-label="{escape(label)}"><use href="#i-{name}"/></svg>'
        )
    return Markup(f'<svg class="i i-{name}" aria-hidden="true"><use href="#i-{name}"/></svg>')


def minutes_left(position: float | None, duration: float | None) -> str:
    """Return what is left of a started video as people say it: "12 min left", "1 h 5 min left"."""
    if not position or not duration or position >= duration:
        return ""
    left = max(1, round((duration - position) / 60))
    if left < 60:
        return f"{left} min left"
    return f"{left // 60} h {left % 60} min left" if left % 60 else f"{left // 60} h left"


def install_ui_helpers(app: Flask) -> None:
    """Add `icon()`, `icon_sprite`, and the `device_name` and `minutes_left` filters."""
    sprite = icon_sprite(Path(app.static_folder or "static") / "vendor" / "lucide" / "icons")
    app.jinja_env.globals.update(icon=icon, icon_sprite=sprite)
    app.jinja_env.filters.update(device_name=device_name)
    app.jinja_env.globals["minutes_left"] = minutes_left
    guest_mode = bool(getattr(app.config.get("SETTINGS"), "guest", False))

    @app.context_processor
    def _browsing() -> dict:
        # The header's search and places: for the signed in, and for guests where guests browse.
        return {"can_browse": g.get("user") is not None or guest_mode}
