"""VR projection: the one value per file, how it is decided, and what it means to each player.

SPEC §4 C7 and appendix A. The value (`VRProjection`: type flat/180/360/fisheye, stereo
mono/sbs/tb, eye swap, fisheye lens) is decided per file, the first rule that applies winning:

1. an admin's override for the media (table `projection_overrides`, user data: it is exported);
2. the file name's appendix A tokens (services/library/filenames.py, stored in `parses`);
3. inside a folder marked VR (an admin's flag in `vr_folders`, or a folder named as in the
   `LVS_VR_FOLDERS` setting, and everything under either), the frame's aspect ratio: 2:1 is
   180° side by side, 1:1 is 360° top/bottom. Outside VR folders 2:1 is a film, not VR;
4. flat.

Where the rule that gave the type says nothing about stereo (a name with only "180"), the frame
decides: a 180°/fisheye frame twice as wide as tall is side by side, a square one mono; a square
360° frame is top/bottom, a 2:1 one mono.

The result is stored per file in `projections` (migration m0012), one row for every file that is
not flat mono, and kept in step by triggers on parses, files, media, overrides and VR folders, so
the scanner need not know it exists. `resolve()` is the same decision in Python (the triggers'
SQL is checked against it in tests/test_projection.py). The DeoVR and HereSphere fields, the
badge and the VR resolution label are pure functions of the value.

May import: the shared core (db, errors) and library (the file name tokens).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from services import db as dbmod
from services.errors import InvalidInput, NotFound
from services.library.filenames import Projection as NamedProjection

TYPES = ("flat", "180", "360", "fisheye")
STEREOS = ("mono", "sbs", "tb")
# Fisheye lenses and their field of view in degrees (a bare "fisheye"/"f180" token is 180°).
LENS_FOV: dict[str, int] = {
    "mkx200": 200,
    "mkx220": 220,
    "vrca220": 220,
    "rf52": 190,
    "fisheye190": 190,
    "fisheye": 180,
}
LENS_NAMES = {
    "mkx200": "MKX200",
    "mkx220": "MKX220",
    "vrca220": "VRCA220",
    "rf52": "Canon RF 5.2 mm",
    "fisheye190": "Fisheye 190°",
    "fisheye": "Fisheye",
}
SOURCES = ("override", "filename", "aspect", "none")
# Folder names that count as VR folders by default (LVS_VR_FOLDERS), compared lower-cased.
DEFAULT_VR_FOLDER_NAMES = ("vr",)


@dataclass(frozen=True)
class VRProjection:
    """How a video maps onto the viewer's sphere: the one value every player reads."""

    type: str = "flat"  # flat | 180 | 360 | fisheye
    stereo: str = "mono"  # mono | sbs | tb
    eye_swap: bool = False  # the right eye's picture comes first (_RL, _BT)
    lens: str | None = None  # a LENS_FOV key for fisheye, else None
    source: str = "none"  # override | filename | aspect | none

    @property
    def is_vr(self) -> bool:
        """Return whether the video is meant for a headset (not a flat film, 3D or not)."""
        return self.type != "flat"

    @property
    def fov(self) -> int | None:
        """Return the horizontal field of view in degrees, None for flat."""
        if self.type == "fisheye":
            return LENS_FOV.get(self.lens or "fisheye", 180)
        return {"180": 180, "360": 360}.get(self.type)

    @property
    def badge(self) -> str:
        """Return the short label cards and the watch page show: "180° 3D", "360°", "Fisheye 200°"."""
        three_d = " 3D" if self.stereo != "mono" else ""
        if self.type == "fisheye":
            return f"Fisheye {self.fov}°"
        if self.type in ("180", "360"):
            return f"{self.type}°{three_d}"
        return "3D" if three_d else ""

    @property
    def code(self) -> str:
        """Return the value as a token string, e.g. '180_sbs', 'mkx200_sbs_swap', 'flat'."""
        parts = [self.lens if self.type == "fisheye" else self.type]
        if not (self.type == "flat" and self.stereo == "mono"):
            parts.append(self.stereo)
        if self.eye_swap:
            parts.append("swap")
        return "_".join(p for p in parts if p)

    @property
    def search_words(self) -> str:
        """Return the words the search index holds for it: 'vr 180 3d sbs', 'vr fisheye mkx200
        200 3d sbs', '3d tb' (a flat 3D film), '' (flat). The index's SQL (services/db.py,
        PROJECTION_WORDS_SQL) writes the same words: tests/test_projection.py checks it."""
        words = []
        if self.type == "fisheye":
            words = ["vr", "fisheye"] + ([self.lens] if self.lens not in (None, "fisheye") else [])
            words.append(str(self.fov))
        elif self.is_vr:
            words = ["vr", self.type]
        if self.stereo != "mono":
            words += ["3d", self.stereo]
        return " ".join(w for w in words if w)

    def describe(self) -> str:
        """Return a sentence-like description for the watch page's details."""
        if not self.is_vr and self.stereo == "mono":
            return "Flat"
        words = [self.badge]
        if self.stereo != "mono":
            words.append("side by side" if self.stereo == "sbs" else "top/bottom")
        if self.eye_swap:
            words.append("eyes swapped")
        if self.type == "fisheye" and self.lens and self.lens != "fisheye":
            words.append(f"{LENS_NAMES[self.lens]} lens")
        return " · ".join(words)


FLAT = VRProjection()

# What an admin picks from (VRProjection.code -> label); "auto" removes the override.
PRESETS: tuple[tuple[str, str], ...] = (
    ("auto", "Automatic (file name, VR folder)"),
    ("flat", "Flat"),
    ("flat_sbs", "Flat 3D, side by side"),
    ("flat_tb", "Flat 3D, top/bottom"),
    ("180_mono", "180°"),
    ("180_sbs", "180° 3D, side by side"),
    ("180_tb", "180° 3D, top/bottom"),
    ("360_mono", "360°"),
    ("360_tb", "360° 3D, top/bottom"),
    ("360_sbs", "360° 3D, side by side"),
    ("mkx200_sbs", "Fisheye MKX200 (200°), 3D"),
    ("mkx220_sbs", "Fisheye MKX220 (220°), 3D"),
    ("vrca220_sbs", "Fisheye VRCA220 (220°), 3D"),
    ("rf52_sbs", "Canon RF 5.2 mm dual fisheye (190°), 3D"),
    ("fisheye190_sbs", "Fisheye 190°, 3D"),
    ("fisheye_sbs", "Fisheye 180°, 3D"),
    ("fisheye_mono", "Fisheye 180°"),
)


def from_code(code: str) -> VRProjection:
    """Return the projection a token string names ('180_sbs', 'mkx200', 'flat_tb_swap').

    The inverse of VRProjection.code, for forms: the first part is a type or a lens, then an
    optional stereo mode and 'swap'. A fisheye lens without a stereo mode is side by side, a
    180°/360° without one is side by side / mono as in a file name. Raises InvalidInput.
    """
    parts = (code or "").strip().lower().split("_")
    head, rest = parts[0], parts[1:]
    swap = bool(rest) and rest[-1] == "swap"
    if swap:
        rest = rest[:-1]
    if len(rest) > 1 or (rest and rest[0] not in STEREOS):
        raise InvalidInput(f"projection: {code[:40]!r} is not a projection (e.g. 180_sbs)")
    if head in LENS_FOV:
        return make("fisheye", rest[0] if rest else "sbs", swap, head, "override")
    if head in TYPES and head != "fisheye":
        default = {"180": "sbs"}.get(head, "mono")
        return make(head, rest[0] if rest else default, swap, None, "override")
    raise InvalidInput(f"projection: {code[:40]!r} is not a projection (e.g. 180_sbs)")


def make(
    type: str,
    stereo: str,
    eye_swap: bool = False,
    lens: str | None = None,
    source: str = "override",
) -> VRProjection:
    """Return a checked projection; raise InvalidInput naming the field that is wrong."""
    if type not in TYPES:
        raise InvalidInput(f"type: {str(type)[:20]!r} is not one of {', '.join(TYPES)}")
    if stereo not in STEREOS:
        raise InvalidInput(f"stereo: {str(stereo)[:20]!r} is not one of {', '.join(STEREOS)}")
    if not isinstance(eye_swap, bool):
        raise InvalidInput("eye_swap: must be true or false")
    if type == "fisheye":
        lens = lens or "fisheye"
        if lens not in LENS_FOV:
            raise InvalidInput(f"lens: {str(lens)[:20]!r} is not one of {', '.join(LENS_FOV)}")
    elif lens is not None:
        raise InvalidInput("lens: only a fisheye projection has a lens")
    if eye_swap and stereo == "mono":
        raise InvalidInput("eye_swap: a mono video has only one eye")
    return VRProjection(type, stereo, eye_swap, lens, source)


def parse_json(data: Any) -> VRProjection:
    """Return the projection a JSON body states: {"type", "stereo", "eye_swap", "lens"} or {"code"}."""
    if not isinstance(data, Mapping):
        raise InvalidInput(
            'the body must be a JSON object such as {"type": "180", "stereo": "sbs"}'
        )
    if "code" in data:
        if not isinstance(data["code"], str):
            raise InvalidInput("code: must be a string such as '180_sbs'")
        return from_code(data["code"])
    unknown = sorted(set(data) - {"type", "stereo", "eye_swap", "lens"})
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(unknown)[:80]}")
    kind = data.get("type")
    default_stereo = (
        {"180": "sbs", "fisheye": "sbs"}.get(kind, "mono") if isinstance(kind, str) else ""
    )
    return make(
        kind,  # type: ignore[arg-type]
        data.get("stereo", default_stereo),
        data.get("eye_swap", False),
        data.get("lens"),
        "override",
    )


# --- the decision -------------------------------------------------------------------------------


def _near(a: float, b: float) -> bool:
    return abs(a - b) <= a * 0.01


def aspect_guess(width: int | None, height: int | None) -> VRProjection | None:
    """Return what a VR folder's frame size says: 2:1 → 180° SBS, 1:1 → 360° TB, else None."""
    if not width or not height or width <= 0 or height <= 0:
        return None
    if _near(width, 2 * height):
        return VRProjection("180", "sbs", False, None, "aspect")
    if _near(width, height):
        return VRProjection("360", "tb", False, None, "aspect")
    return None


def stereo_for_frame(type: str, width: int | None, height: int | None) -> str:
    """Return the stereo layout a frame implies when the name gave a type but no layout.

    180°/fisheye: at least 1.5 times as wide as tall is side by side, at most 0.75 top/bottom,
    else mono (an unknown size: side by side, as XBVR and DeoVR assume). 360°: near square is
    top/bottom, 3:1 or wider side by side, else (2:1) mono. Flat: mono.
    """
    known = bool(width and height and width > 0 and height > 0)
    if type in ("180", "fisheye"):
        if not known or width >= 1.5 * height:  # type: ignore[operator]
            return "sbs"
        return "tb" if width <= 0.75 * height else "mono"  # type: ignore[operator]
    if type == "360" and known:
        if width >= 3 * height:  # type: ignore[operator]
            return "sbs"
        if width < 1.5 * height:  # type: ignore[operator]
            return "tb"
    return "mono"


def resolve(
    named: NamedProjection | None,
    width: int | None,
    height: int | None,
    *,
    vr_folder: bool,
    override: VRProjection | None = None,
    kind: str = "video",
) -> VRProjection:
    """Return a file's projection: the override, else the name's tokens, else (videos in VR
    folders only) the aspect ratio, else flat. See the module docstring for the rules."""
    if override is not None:
        return VRProjection(
            override.type, override.stereo, override.eye_swap, override.lens, "override"
        )
    if named is not None and named.source == "filename":
        lens = named.lens if named.projection == "fisheye" else None
        stereo = named.stereo or stereo_for_frame(named.projection, width, height)
        swap = named.eye_swap and stereo != "mono"
        return VRProjection(named.projection, stereo, swap, lens, "filename")
    if vr_folder and kind == "video":
        guess = aspect_guess(width, height)
        if guess is not None:
            return guess
    return FLAT


# --- what players and pages read ----------------------------------------------------------------

_DEOVR_SCREEN = {"flat": "flat", "180": "dome", "360": "sphere"}
_DEOVR_LENS_SCREENS = frozenset({"mkx200", "mkx220", "rf52", "fisheye190", "vrca220"})


def deovr_fields(p: VRProjection) -> dict[str, Any]:
    """Return DeoVR's screenType, stereoMode and is3d (DeoVR has no eye-swap field)."""
    if p.type == "fisheye":
        screen = p.lens if p.lens in _DEOVR_LENS_SCREENS else "fisheye"
    else:
        screen = _DEOVR_SCREEN[p.type]
    return {
        "screenType": screen,
        "stereoMode": "off" if p.stereo == "mono" else p.stereo,
        "is3d": p.stereo != "mono",
    }


_HS_PROJECTION = {
    "flat": "perspective",
    "180": "equirectangular",
    "360": "equirectangular360",
    "fisheye": "fisheye",
}
_HS_LENS = {"mkx200": "MKX200", "mkx220": "MKX220", "vrca220": "VRCA220"}


def heresphere_fields(p: VRProjection) -> dict[str, Any]:
    """Return HereSphere's projection, stereo, isEyeSwapped, fov and lens.

    HereSphere models only the MKX200/MKX220/VRCA220 lenses; other fisheyes are 'Linear' with
    their field of view (190° for rf52/fisheye190), as XBVR sends them. Flat says 180 (unused).
    """
    return {
        "projection": _HS_PROJECTION[p.type],
        "stereo": p.stereo,
        "isEyeSwapped": p.eye_swap,
        "fov": float(p.fov or 180),
        "lens": _HS_LENS.get(p.lens or "", "Linear"),
    }


def eye_size(p: VRProjection, width: int, height: int) -> tuple[int, int]:
    """Return one eye's picture size in pixels."""
    if p.stereo == "sbs":
        return width // 2, height
    if p.stereo == "tb":
        return width, height // 2
    return width, height


def resolution_label(p: VRProjection, width: int | None, height: int | None) -> str:
    """Return a VR video's resolution as VR players name it: '6K', '8K' ('' when unknown).

    From one eye's width scaled to the frame a side-by-side 180° (or mono 360°) release would
    have: 5760×2880 180° SBS (2880 per eye) is 6K, 8192×4096 is 8K, a 3840×1920 360° is 4K.
    """
    if not width or not height or not p.is_vr:
        return ""
    return f"{max(1, round(vr_width(p, width, height) / 1000))}K"


def vr_width(p: VRProjection, width: int, height: int) -> int:
    """Return the frame width a VR video's resolution is named by: one eye's width, doubled for
    180° and fisheye (a side-by-side release's frame), as is for 360° (a mono release's)."""
    eye_w, _ = eye_size(p, width, height)
    return eye_w if p.type == "360" else eye_w * 2


def class_side(p: VRProjection, width: int, height: int) -> int:
    """Return the short side the resolution classes (SD, 720p, 1080p, 4K) bucket a frame by.

    A flat frame's own short side; a VR video's is that of the flat 16:9 frame as wide as
    vr_width(), the width its badge is named by: a "4K" 3840×1920 180° SBS is 4K (its frame's
    short side, 1920, would say 1080p), a "3K" 2880×2880 360° TB is 1080p (not 4K).
    The browse filter reads it from files.class_side (services/db.py, CLASS_SIDE_SQL).
    """
    if not p.is_vr:
        return min(width, height)
    return vr_width(p, width, height) * 9 // 16


# --- storage -------------------------------------------------------------------------------------


def refresh_all(db: Database) -> None:
    """Recompute every file's projection (after the VR folder names changed)."""
    with dbmod.write(db):
        for statement in dbmod.projection_rows_sql("1").split(";\n"):
            db.execute(statement)


def sync_folder_names(db: Database, names: Sequence[str]) -> bool:
    """Make `vr_folder_names` hold the setting's names; recompute all if they changed."""
    wanted = sorted({n.strip().lower() for n in names if n.strip()})
    with dbmod.write(db):
        have = [r[0] for r in db.execute("SELECT name FROM vr_folder_names ORDER BY name")]
        if have == wanted:
            return False
        db.execute("DELETE FROM vr_folder_names")
        for name in wanted:
            db.execute("INSERT INTO vr_folder_names (name) VALUES (?)", [name])
        for statement in dbmod.projection_rows_sql("1").split(";\n"):
            db.execute(statement)
    return True


_COLUMNS = "type, stereo, eye_swap, lens, source"


def _row(row: Sequence[Any] | None) -> VRProjection:
    if row is None:
        return FLAT
    return VRProjection(row[0], row[1], bool(row[2]), row[3], row[4])


def of_file(db: Database, file_id: int) -> VRProjection:
    """Return a file's stored projection (flat when it has no row)."""
    return _row(
        db.execute(f"SELECT {_COLUMNS} FROM projections WHERE file_id = ?", [file_id]).fetchone()
    )


def of_files(db: Database, file_ids: Iterable[int]) -> dict[int, VRProjection]:
    """Return the stored projection of each file (flat ones included), in one query."""
    ids = list(dict.fromkeys(file_ids))
    out = dict.fromkeys(ids, FLAT)
    if ids:
        marks = ",".join("?" * len(ids))
        for row in db.execute(
            f"SELECT file_id, {_COLUMNS} FROM projections WHERE file_id IN ({marks})", ids
        ):
            out[row[0]] = _row(row[1:])
    return out


def of_media(db: Database, media_ids: Iterable[int]) -> dict[int, VRProjection]:
    """Return each media's projection (of its first present file, as the watch page shows it),
    flat ones included, in one query: for the VR APIs' scene lists."""
    ids = list(dict.fromkeys(media_ids))
    out = dict.fromkeys(ids, FLAT)
    if ids:
        marks = ",".join("?" * len(ids))
        rows = db.execute(
            f"SELECT f.media_id, pj.type, pj.stereo, pj.eye_swap, pj.lens, pj.source "
            "FROM files f JOIN projections pj ON pj.file_id = f.id "
            f"WHERE f.media_id IN ({marks}) AND f.id = (SELECT min(x.id) FROM files x "
            "WHERE x.media_id = f.media_id AND x.present = 1)",
            ids,
        )
        for row in rows:
            out[row[0]] = _row(row[1:])
    return out


def from_columns(
    type: str | None, stereo: str | None, eye_swap: Any, lens: str | None
) -> VRProjection:
    """Return the value from a card row's LEFT JOINed projection columns (NULL: flat)."""
    if type is None:
        return FLAT
    return VRProjection(type, stereo or "mono", bool(eye_swap), lens, "stored")


def override_of(db: Database, media_id: int) -> VRProjection | None:
    """Return the admin's override for a media, None when there is none."""
    row = db.execute(
        "SELECT type, stereo, eye_swap, lens FROM projection_overrides WHERE media_id = ?",
        [media_id],
    ).fetchone()
    return None if row is None else VRProjection(row[0], row[1], bool(row[2]), row[3], "override")


def media_ids(db: Database, hashes: Sequence[str]) -> list[int]:
    """Return the media ids of these media_hashes; NotFound naming the first unknown one."""
    ids: list[int] = []
    for h in hashes:
        row = (
            db.execute("SELECT id FROM media WHERE media_hash = ?", [h]).fetchone()
            if (isinstance(h, str) and len(h) <= 64)
            else None
        )
        if row is None:
            raise NotFound(f"no such media: {str(h)[:40]}")
        ids.append(row[0])
    return ids


def set_override(db: Database, ids: Sequence[int], value: VRProjection, user_id: int | None) -> int:
    """Set (or replace) the override of these media; return how many were set."""
    now = time.time()
    with dbmod.write(db):
        for media_id in ids:
            db.execute(
                "INSERT INTO projection_overrides (media_id, type, stereo, eye_swap, lens, set_by, "
                "set_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (media_id) DO UPDATE SET "
                "type = excluded.type, stereo = excluded.stereo, eye_swap = excluded.eye_swap, "
                "lens = excluded.lens, set_by = excluded.set_by, set_at = excluded.set_at",
                [media_id, value.type, value.stereo, int(value.eye_swap), value.lens, user_id, now],
            )
    return len(ids)


def clear_override(db: Database, ids: Sequence[int]) -> int:
    """Remove the override of these media (back to the automatic rules); return how many had one."""
    n = 0
    with dbmod.write(db):
        for media_id in ids:
            n += db.execute(
                "DELETE FROM projection_overrides WHERE media_id = ?", [media_id]
            ).rowcount
    return n


def folder_marked(db: Database, root: str, rel_path: str) -> bool:
    """Return whether an admin marked this folder itself as VR."""
    row = db.execute(
        "SELECT 1 FROM vr_folders WHERE root = ? AND rel_path = ?", [root, rel_path]
    ).fetchone()
    return row is not None


def in_vr_folder(db: Database, folder_id: int) -> bool:
    """Return whether a folder is a VR folder: marked, named so, or inside one."""
    row = db.execute(
        f"SELECT {dbmod.IN_VR_FOLDER_SQL} FROM folders fo JOIN libraries l ON l.id = fo.library_id "
        "WHERE fo.id = ?",
        [folder_id],
    ).fetchone()
    return bool(row and row[0])


def mark_folder(db: Database, root: str, rel_path: str, on: bool) -> None:
    """Mark (or unmark) a folder as VR: its files without projection tokens go by aspect ratio."""
    with dbmod.write(db):
        if on:
            db.execute(
                "INSERT OR IGNORE INTO vr_folders (root, rel_path, marked_at) VALUES (?, ?, ?)",
                [root, rel_path, time.time()],
            )
        else:
            db.execute("DELETE FROM vr_folders WHERE root = ? AND rel_path = ?", [root, rel_path])
