"""Draw the app icons (static/icons/*.png) from static/favicon.svg's shapes with Pillow.

Usage: python scripts/make_icons.py

The favicon is a rounded square (rx 14 of 64) with a play triangle (24,18 48,32 24,46). Pillow
cannot read SVG, so this reads those numbers from the file and draws them 4× larger, then scales
down (anti-aliasing). Maskable icons fill the square edge to edge and keep the triangle inside
the middle 80 % (the safe zone a platform's mask never cuts).
"""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
SVG = ROOT / "static" / "favicon.svg"
OUT = ROOT / "static" / "icons"
SIZES = (96, 180, 192, 512)
SS = 4  # supersampling


def shapes() -> tuple[float, str, str, list[tuple[float, float]]]:
    """Return the corner radius, fill colours and triangle points from the SVG (64×64 units)."""
    text = SVG.read_text()
    rx = float(re.search(r'rx="([\d.]+)"', text)[1])
    fills = re.findall(r'fill="(#[0-9a-fA-F]{6})"', text)
    num = r"(-?[\d.]+)"
    d = re.search(rf'd="M{num} {num}l{num} {num} ?{num} {num}z"', text)
    x, y, dx1, dy1, dx2, dy2 = map(float, d.groups())
    points = [(x, y), (x + dx1, y + dy1), (x + dx1 + dx2, y + dy1 + dy2)]
    return rx, fills[0], fills[1], points


def draw(size: int, *, maskable: bool) -> Image.Image:
    rx, background, accent, points = shapes()
    big = size * SS
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    if maskable:
        pen.rectangle((0, 0, big, big), fill=background)
        scale, offset = big * 0.8 / 64, big * 0.1
    else:
        pen.rounded_rectangle((0, 0, big - 1, big - 1), radius=rx * big / 64, fill=background)
        scale, offset = big / 64, 0.0
    pen.polygon([(offset + px * scale, offset + py * scale) for px, py in points], fill=accent)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for size in SIZES:
        draw(size, maskable=False).save(OUT / f"icon-{size}.png", optimize=True)
    draw(512, maskable=True).save(OUT / "maskable-512.png", optimize=True)
    print(f"wrote {len(SIZES) + 1} icons to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
