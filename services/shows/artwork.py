"""Artwork beside the media (posters, fanart, season posters, episode thumbs), scaled into the cache.

A picture is read once, when the scan finds it new or changed, and scaled to a JPEG under
`<data dir>/artwork/<key[:2]>/<key>.jpg`; the key is derived from the file's content (its
oshash), so a poster shared by two folders is stored once and an edited one gets a new file.
The original is never written. A file that is not a picture, or too big to decode, is refused
with a reason (and a log line from the caller).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from services.library.identity import oshash
from services.previews.thumbnails import write_jpeg

MAX_PIXELS = (
    60_000_000  # a 6000x10000 scan at most; beyond that, decoding would need too much memory
)
MAX_BYTES = 50 << 20
WIDTHS = {"poster": 400, "fanart": 1280, "landscape": 640, "thumb": 480, "banner": 1000}
DEFAULT_WIDTH = 400


class ArtworkError(Exception):
    """A picture that cannot be used as artwork, with the reason."""


@dataclass(frozen=True)
class Art:
    key: str
    width: int
    height: int


def cache_path(data_dir: Path, key: str) -> Path:
    """Return where the scaled picture of `key` lives."""
    return data_dir / "artwork" / key[:2] / f"{key}.jpg"


def width_for(role: str | None) -> int:
    """Return the width to scale a role's picture to ('season:1:poster' → poster's)."""
    last = (role or "").rsplit(":", 1)[-1]
    return WIDTHS.get(last, DEFAULT_WIDTH)


def make(path: bytes, data_dir: Path, role: str | None) -> Art:
    """Scale the picture at path into the cache (once per content) and return its key and size."""
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise ArtworkError(f"cannot read: {exc.strerror or exc}") from None
    if size > MAX_BYTES:
        raise ArtworkError(f"too large ({size} bytes)")
    try:
        key, _ = oshash(path)
    except OSError as exc:
        raise ArtworkError(f"cannot read: {exc.strerror or exc}") from None
    width = width_for(role)
    key = f"{key}-{width}"
    dest = cache_path(data_dir, key)
    if dest.exists():
        with Image.open(dest) as done:
            return Art(key, done.width, done.height)
    image = _scaled(path, width)
    write_jpeg(image, dest, quality=85)
    return Art(key, image.width, image.height)


def _scaled(path: bytes, width: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(os.fsdecode(path), formats=("JPEG", "PNG", "WEBP")) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise ArtworkError(f"too large to decode: {im.width}x{im.height}")
                out_w = max(1, min(width, im.width))
                out_h = max(1, round(out_w * im.height / im.width))
                im.draft("RGB", (out_w, out_h))
                im.load()
                if im.mode in ("RGBA", "LA", "P"):
                    rgba = im.convert("RGBA")
                    im = Image.new("RGB", rgba.size, (24, 24, 28))
                    im.paste(rgba, mask=rgba.getchannel("A"))
                elif im.mode != "RGB":
                    im = im.convert("RGB")
                return im.resize((out_w, out_h), Image.Resampling.LANCZOS, reducing_gap=3.0)
        except Image.DecompressionBombError:
            raise ArtworkError("too large to decode") from None
        except UnidentifiedImageError:
            raise ArtworkError("not a picture") from None
        except (ValueError, SyntaxError, EOFError) as exc:
            raise ArtworkError(f"damaged picture: {exc}") from None
        except OSError as exc:
            if exc.errno is not None:
                raise ArtworkError(f"cannot read: {exc.strerror or exc}") from None
            raise ArtworkError(f"damaged picture: {exc}") from None
