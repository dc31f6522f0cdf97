"""VR projection (issue 14, SPEC §4 C7, appendix A): the rules, the stored value, the override,
VR folders, what the DeoVR/HereSphere fields say, and where pages show it."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from services import db as dbmod
from services.errors import InvalidInput
from services.library.filenames import parse_name, parse_projection
from services.operate import userdata
from services.playback import projection
from services.playback.projection import VRProjection, resolve
from tests.vr_media import pattern_video


def named(name: str, width: int | None = None, height: int | None = None, **kw) -> VRProjection:
    """Return the projection a file of this name and size gets (outside VR folders by default)."""
    return resolve(parse_projection(name), width, height, vr_folder=kw.pop("vr", False), **kw)


def P(type: str, stereo: str = "mono", swap: bool = False, lens: str | None = None, src="filename"):  # noqa: N802
    return VRProjection(type, stereo, swap, lens, src)


# --- every token of appendix A --------------------------------------------------------------

TOKENS = [
    # lens tokens: fisheye with their field of view (side by side unless the frame says not)
    ("clip_mkx200.mp4", P("fisheye", "sbs", lens="mkx200"), 200),
    ("clip_mkx220.mp4", P("fisheye", "sbs", lens="mkx220"), 220),
    ("clip_vrca220.mp4", P("fisheye", "sbs", lens="vrca220"), 220),
    ("clip_rf52.mp4", P("fisheye", "sbs", lens="rf52"), 190),
    ("clip_fisheye190.mp4", P("fisheye", "sbs", lens="fisheye190"), 190),
    ("clip_fisheye.mp4", P("fisheye", "sbs", lens="fisheye"), 180),
    ("clip_f180.mp4", P("fisheye", "sbs", lens="fisheye"), 180),
    ("clip_180f.mp4", P("fisheye", "sbs", lens="fisheye"), 180),
    ("clip_vr180.mp4", P("180", "sbs"), 180),  # Google's VR180 is equirectangular
    # projection tokens
    ("clip_360.mp4", P("360", "mono"), 360),
    ("clip_180.mp4", P("180", "sbs"), 180),
    ("clip_flat.mp4", P("flat", "mono"), None),
    ("clip_180x180.mp4", P("180", "sbs"), 180),  # compound
    # stereo tokens (beside a projection)
    ("clip_180_lr.mp4", P("180", "sbs"), 180),
    ("clip_180_3dh.mp4", P("180", "sbs"), 180),
    ("clip_180_sbs.mp4", P("180", "sbs"), 180),
    ("clip_180_rl.mp4", P("180", "sbs", swap=True), 180),
    ("clip_360_tb.mp4", P("360", "tb"), 360),
    ("clip_360_3dv.mp4", P("360", "tb"), 360),
    ("clip_360_ou.mp4", P("360", "tb"), 360),
    ("clip_360_bt.mp4", P("360", "tb", swap=True), 360),
    ("clip_180_mono.mp4", P("180", "mono"), 180),
    # alone, lr/rl/3dh mean 180° side by side (DeoVR/SLR names); sbs/tb alone are 3D films
    ("clip_LR.mp4", P("180", "sbs"), 180),
    ("clip_RL.mp4", P("180", "sbs", swap=True), 180),
    ("film_sbs.mp4", P("flat", "sbs"), None),
    ("film_tb.mp4", P("flat", "tb"), None),
    # compound names, first match wins, case and separators
    ("Beach_180_sbs.mp4", P("180", "sbs"), 180),
    ("Scene.MKX200.3dh.mp4", P("fisheye", "sbs", lens="mkx200"), 200),
    ("Scene [360] (TB).mkv", P("360", "tb"), 360),
    ("Scene_360_180.mp4", P("360", "mono"), 360),
    ("Scene_TB_LR_180.mp4", P("180", "tb"), 180),
    ("Scene_180_MKX220.mp4", P("fisheye", "sbs", lens="mkx220"), 220),
    ("Scene-FISHEYE190-RL.mp4", P("fisheye", "sbs", swap=True, lens="fisheye190"), 190),
    ("Scene_f180_mono.mp4", P("fisheye", "mono", lens="fisheye"), 180),
    # not tokens
    ("clip_360p.mp4", P("flat", src="none"), None),
    ("Tout ou rien (2014).mkv", P("flat", src="none"), None),
    ("Souvenir.mp4", P("flat", src="none"), None),
]


@pytest.mark.parametrize(("name", "expected", "fov"), TOKENS, ids=[t[0] for t in TOKENS])
def test_every_appendix_a_token(name: str, expected: VRProjection, fov: int | None) -> None:
    got = named(name)
    assert got == expected
    assert got.fov == fov


def test_the_title_drops_the_tokens_and_the_badge_shows_them() -> None:
    assert parse_name("Beach_180_sbs.mp4").title == "Beach"
    assert named("Beach_180_sbs.mp4").badge == "180° 3D"
    assert parse_name("Alps_360.mp4").title == "Alps"
    assert named("Alps_360.mp4").badge == "360°"
    assert named("Alps_360_TB.mp4").badge == "360° 3D"
    assert named("Reef_MKX200.mp4").badge == "Fisheye 200°"
    assert named("x_RF52.mp4").badge == "Fisheye 190°"
    assert named("film_sbs.mp4").badge == "3D"
    assert named("film.mp4").badge == ""


@pytest.mark.parametrize(
    ("name", "size", "stereo"),
    [
        ("a_180.mp4", (5760, 2880), "sbs"),  # 2:1 at 180° is two square eyes
        ("a_180.mp4", (2880, 2880), "mono"),  # one square eye
        ("a_180.mp4", (2880, 5760), "tb"),
        ("a_360.mp4", (3840, 1920), "mono"),  # 2:1 at 360° is one eye
        ("a_360.mp4", (3840, 3840), "tb"),
        ("a_360.mp4", (7680, 1920), "sbs"),
        ("a_mkx200.mp4", (2880, 2880), "mono"),
        ("a_360.mp4", (None, None), "mono"),
        ("a_180.mp4", (None, None), "sbs"),
        ("a_360_sbs.mp4", (3840, 3840), "sbs"),  # a stated layout beats the frame
    ],
)
def test_the_frame_decides_the_layout_a_name_does_not_state(name, size, stereo) -> None:
    assert named(name, *size).stereo == stereo


def test_aspect_fallback_only_inside_vr_folders() -> None:
    assert named("holiday.mp4", 5760, 2880, vr=True) == P("180", "sbs", src="aspect")
    assert named("holiday.mp4", 4096, 4096, vr=True) == P("360", "tb", src="aspect")
    assert named("holiday.mp4", 5760, 2880) == projection.FLAT  # a 2:1 film stays flat
    assert named("holiday.mp4", 1920, 1080, vr=True) == projection.FLAT  # 16:9 is not VR
    assert named("holiday.mp4", None, None, vr=True) == projection.FLAT
    # the name wins over the folder: "flat" in a VR folder is flat, "360" is 360
    assert named("menu_flat.mp4", 5760, 2880, vr=True) == P("flat")
    assert named("x_360.mp4", 5760, 2880, vr=True) == P("360", "mono")
    # pictures never go by aspect
    assert resolve(None, 4000, 2000, vr_folder=True, kind="picture") == projection.FLAT


def test_the_override_wins() -> None:
    override = projection.make("360", "tb", True)
    assert named("Beach_180_sbs.mp4", 5760, 2880, override=override) == P(
        "360", "tb", True, src="override"
    )
    flat = projection.make("flat", "mono")
    assert named("x.mp4", 4096, 4096, vr=True, override=flat) == P("flat", src="override")


@pytest.mark.parametrize(
    ("name", "deovr", "heresphere"),
    [
        ("m.mp4", ("flat", "off", False), ("perspective", "mono", False, 180.0, "Linear")),
        ("x_180_LR.mp4", ("dome", "sbs", True), ("equirectangular", "sbs", False, 180.0, "Linear")),
        (
            "x_180_mono.mp4",
            ("dome", "off", False),
            ("equirectangular", "mono", False, 180.0, "Linear"),
        ),
        (
            "x_360.mp4",
            ("sphere", "off", False),
            ("equirectangular360", "mono", False, 360.0, "Linear"),
        ),
        (
            "x_360_TB.mp4",
            ("sphere", "tb", True),
            ("equirectangular360", "tb", False, 360.0, "Linear"),
        ),
        (
            "x_360_BT.mp4",
            ("sphere", "tb", True),
            ("equirectangular360", "tb", True, 360.0, "Linear"),
        ),
        ("x_MKX200.mp4", ("mkx200", "sbs", True), ("fisheye", "sbs", False, 200.0, "MKX200")),
        ("x_MKX220_RL.mp4", ("mkx220", "sbs", True), ("fisheye", "sbs", True, 220.0, "MKX220")),
        ("x_VRCA220.mp4", ("vrca220", "sbs", True), ("fisheye", "sbs", False, 220.0, "VRCA220")),
        ("x_RF52.mp4", ("rf52", "sbs", True), ("fisheye", "sbs", False, 190.0, "Linear")),
        (
            "x_FISHEYE190.mp4",
            ("fisheye190", "sbs", True),
            ("fisheye", "sbs", False, 190.0, "Linear"),
        ),
        ("x_FISHEYE.mp4", ("fisheye", "sbs", True), ("fisheye", "sbs", False, 180.0, "Linear")),
        ("x_F180_MONO.mp4", ("fisheye", "off", False), ("fisheye", "mono", False, 180.0, "Linear")),
        ("x_flat_sbs.mp4", ("flat", "sbs", True), ("perspective", "sbs", False, 180.0, "Linear")),
    ],
)
def test_deovr_and_heresphere_fields(name: str, deovr: tuple, heresphere: tuple) -> None:
    p = named(name)
    assert projection.deovr_fields(p) == dict(
        zip(("screenType", "stereoMode", "is3d"), deovr, strict=True)
    )
    keys = ("projection", "stereo", "isEyeSwapped", "fov", "lens")
    assert projection.heresphere_fields(p) == dict(zip(keys, heresphere, strict=True))


@pytest.mark.parametrize(
    ("name", "size", "label", "eye"),
    [
        ("a_180_sbs.mp4", (5760, 2880), "6K", (2880, 2880)),
        ("a_180_sbs.mp4", (8192, 4096), "8K", (4096, 4096)),
        ("a_180_sbs.mp4", (3840, 1920), "4K", (1920, 1920)),
        ("a_180_sbs.mp4", (1280, 640), "1K", (640, 640)),
        ("a_360.mp4", (3840, 1920), "4K", (3840, 1920)),
        ("a_360_tb.mp4", (4096, 4096), "4K", (4096, 2048)),
        ("a_180_tb.mp4", (2880, 5760), "6K", (2880, 2880)),
        ("a_MKX200.mp4", (5760, 2880), "6K", (2880, 2880)),
        ("a_flat_sbs.mp4", (3840, 1080), "", (1920, 1080)),
    ],
)
def test_vr_resolution_labels_use_one_eye(name, size, label, eye) -> None:
    p = named(name, *size)
    assert projection.resolution_label(p, *size) == label
    assert projection.eye_size(p, *size) == eye


def test_codes_round_trip_and_bad_values_are_refused() -> None:
    for code, _ in projection.PRESETS[1:]:
        assert projection.from_code(code).code == code
    assert projection.from_code("mkx200").code == "mkx200_sbs"
    assert projection.from_code("180_sbs_swap") == VRProjection(
        "180", "sbs", True, None, "override"
    )
    for bad in ("", "sphere", "180_lr", "360_tb_x", "auto", "mkx999"):
        with pytest.raises(InvalidInput):
            projection.from_code(bad)
    good = {"type": "fisheye", "lens": "rf52", "stereo": "sbs", "eye_swap": True}
    assert projection.parse_json(good).fov == 190
    for bad in (
        [],
        {"type": "dome"},
        {"type": "180", "stereo": "lr"},
        {"type": "180", "lens": "mkx200"},
        {"type": "fisheye", "lens": "canon"},
        {"type": "180", "eye_swap": "yes"},
        {"type": "180", "stereo": "mono", "eye_swap": True},
        {"type": "180", "extra": 1},
        {"code": 5},
    ):
        with pytest.raises(InvalidInput):
            projection.parse_json(bad)


# --- the stored value: the triggers' SQL agrees with resolve() -------------------------------


class Lib:
    """Rows of a library written straight into a real database, as the scanner writes them."""

    def __init__(self, db, root: str = "/srv/media") -> None:
        self.db = db
        self.root = root
        now = time.time()
        with dbmod.write(db):
            self.lib = db.execute(
                "INSERT INTO libraries (root, name, added_at) VALUES (?, ?, ?) RETURNING id",
                [root, root.rsplit("/", 1)[-1], now],
            ).fetchone()[0]
        self.folders: dict[str, int] = {}
        self.n = 0

    def folder(self, rel: str) -> int:
        if rel not in self.folders:
            parent = self.folder(rel.rpartition("/")[0]) if rel else None
            with dbmod.write(self.db):
                self.folders[rel] = self.db.execute(
                    "INSERT INTO folders (library_id, parent_id, path, rel_path, name) "
                    "VALUES (?, ?, ?, ?, ?) RETURNING id",
                    [self.lib, parent, rel.encode(), rel, rel.rpartition("/")[2]],
                ).fetchone()[0]
        return self.folders[rel]

    def file(self, rel: str, width: int | None, height: int | None, kind: str = "video") -> int:
        """Insert a file as a scan does: file, then its parse, then (probed) the frame size."""
        self.n += 1
        folder, _, name = rel.rpartition("/")
        fid = self.folder(folder)
        with dbmod.write(self.db):
            media = self.db.execute(
                "INSERT INTO media (media_hash, kind, size, added_at) VALUES (?, ?, 1, 0) "
                "RETURNING id",
                [f"{self.n:016x}", kind],
            ).fetchone()[0]
            file_id = self.db.execute(
                "INSERT INTO files (media_id, library_id, folder_id, path, name, size, mtime_ns, "
                "first_seen) VALUES (?, ?, ?, ?, ?, 1, 0, 0) RETURNING id",
                [media, self.lib, fid, f"{rel}#{self.n}".encode(), name],
            ).fetchone()[0]
            p = parse_name(name)
            self.db.execute(
                "INSERT INTO parses (file_id, title, projection, stereo, eye_swap, lens, fov, "
                "projection_source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [file_id, p.title, p.projection.projection, p.projection.stereo,
                 int(p.projection.eye_swap), p.projection.lens, p.projection.fov,
                 p.projection.source],
            )  # fmt: skip
            self.db.execute(
                "UPDATE media SET width = ?, height = ?, probe_status = 'ok' WHERE id = ?",
                [width, height, media],
            )
        return file_id


NAMES = ["holiday.mp4", "Beach_180_sbs.mp4", "x_360.mp4", "x_RL.mp4", "x_MKX200.mp4",
         "menu_flat.mp4", "film_sbs.mp4", "y_360_bt.mp4", "z_180_mono.mp4"]  # fmt: skip
SIZES = [(5760, 2880), (4096, 4096), (1920, 1080), (2880, 2880), (None, None)]
FOLDERS = ["Films", "VR", "VR/Beach", "Stuff/vr", "Marked", "Marked/Deeper", "Virtual"]


def stored(db, file_id: int) -> VRProjection:
    return projection.of_file(db, file_id)


def test_stored_projection_follows_resolve_for_every_combination(db) -> None:
    lib = Lib(db)
    projection.mark_folder(db, lib.root, "Marked", True)
    cases = []
    for folder, name, (w, h) in itertools.product(FOLDERS, NAMES, SIZES):
        fid = lib.file(f"{folder}/{name}", w, h)
        vr = folder in ("VR", "VR/Beach", "Stuff/vr", "Marked", "Marked/Deeper")
        expected = resolve(parse_projection(name), w, h, vr_folder=vr)
        if expected.type == "flat" and expected.stereo == "mono":
            expected = projection.FLAT  # stored as no row: its source is not kept
        cases.append((fid, expected))
    assert len(cases) == len(FOLDERS) * len(NAMES) * len(SIZES)
    for fid, expected in cases:
        assert stored(db, fid) == expected, (fid, expected)
    # the resolution filter's column (m0019b) agrees with projection.class_side()
    for (fid, expected), (_, _, (w, h)) in zip(
        cases, itertools.product(FOLDERS, NAMES, SIZES), strict=True
    ):
        side = db.execute("SELECT class_side FROM files WHERE id = ?", [fid]).fetchone()[0]
        assert side == (projection.class_side(expected, w, h) if w else None), (fid, expected)
    assert projection.of_files(db, [c[0] for c in cases]) == dict(cases)
    media = dict(db.execute("SELECT id, media_id FROM files").fetchall())
    assert projection.of_media(db, [media[fid] for fid, _ in cases]) == {
        media[fid]: p for fid, p in cases
    }
    # flat mono files have no row: the table holds only what a badge shows
    flat = db.execute("SELECT count(*) FROM projections WHERE type = 'flat' AND stereo = 'mono'")
    assert flat.fetchone()[0] == 0


def test_stored_projection_follows_changes(db) -> None:
    lib = Lib(db)
    wide = lib.file("Films/wide.mp4", 5760, 2880)
    named_file = lib.file("Films/Beach_180_sbs.mp4", 5760, 2880)
    assert stored(db, wide) == projection.FLAT
    media = db.execute("SELECT media_id FROM files WHERE id = ?", [wide]).fetchone()[0]
    # an admin marks the folder: the 2:1 file becomes 180° 3D, the named one stays as named
    projection.mark_folder(db, lib.root, "Films", True)
    assert stored(db, wide) == P("180", "sbs", src="aspect")
    assert stored(db, named_file) == P("180", "sbs")
    # the override wins, and removing it goes back to the rules
    projection.set_override(db, [media], projection.make("360", "tb", True), user_id=1)
    assert stored(db, wide) == P("360", "tb", True, src="override")
    projection.clear_override(db, [media])
    assert stored(db, wide) == P("180", "sbs", src="aspect")
    projection.mark_folder(db, lib.root, "Films", False)
    assert stored(db, wide) == projection.FLAT
    # a re-probe that changes the frame (the file was re-encoded) is followed
    projection.mark_folder(db, lib.root, "", True)  # the whole library
    with dbmod.write(db):
        db.execute("UPDATE media SET width = 4000, height = 4000 WHERE id = ?", [media])
    assert stored(db, wide) == P("360", "tb", src="aspect")
    # a move into another folder (a rename keeps the row, scan_write updates folder_id)
    projection.mark_folder(db, lib.root, "", False)
    vr_folder = lib.folder("VR")
    with dbmod.write(db):
        db.execute("UPDATE files SET folder_id = ? WHERE id = ?", [vr_folder, wide])
    assert stored(db, wide) == P("360", "tb", src="aspect")
    # a rename re-parses the name
    with dbmod.write(db):
        db.execute(
            "UPDATE parses SET projection = 'fisheye', stereo = NULL, lens = 'mkx200', "
            "fov = 200, projection_source = 'filename' WHERE file_id = ?",
            [wide],
        )
    assert stored(db, wide) == P("fisheye", "mono", lens="mkx200")  # a square frame: one eye
    with dbmod.write(db):
        db.execute("DELETE FROM files WHERE id = ?", [named_file])
    assert (
        db.execute("SELECT count(*) FROM projections WHERE file_id = ?", [named_file]).fetchone()[0]
        == 0
    )


def test_the_vr_folders_setting_names_folders(db) -> None:
    lib = Lib(db)
    a = lib.file("360 Videos/trip.mp4", 4096, 4096)
    b = lib.file("vr/trip.mp4", 4096, 4096)
    assert stored(db, a) == projection.FLAT and stored(db, b).type == "360"
    assert projection.sync_folder_names(db, ["360 videos"])
    assert stored(db, a).type == "360" and stored(db, b) == projection.FLAT
    assert not projection.sync_folder_names(db, ["360 Videos "])  # same names: nothing to do
    projection.sync_folder_names(db, [])
    assert stored(db, a) == projection.FLAT


def test_the_setting_is_read_at_start(tmp_path: Path, library_dir: Path) -> None:
    from app import create_app
    from config import load_settings

    with pytest.raises(Exception, match="LVS_VR_FOLDERS"):
        load_settings({"vr_folders": "a/b"}, environ={}, dotenv_path=tmp_path / "none")
    create_app({"media_dirs": [str(library_dir)], "data_dir": str(tmp_path / "d"),
                "vr_folders": "Headset, 3D Films"})  # fmt: skip
    db = dbmod.open_db(tmp_path / "d")
    names = [r[0] for r in db.execute("SELECT name FROM vr_folder_names ORDER BY name")]
    db.close()
    assert names == ["3d films", "headset"]


def test_overrides_and_vr_folders_are_user_data(db) -> None:
    assert userdata.unclassified_tables(db) == []
    assert {"projection_overrides", "vr_folders"} <= set(userdata.USER_TABLES)
    lib = Lib(db)
    fid = lib.file("Films/wide.mp4", 5760, 2880)
    media = db.execute("SELECT media_id FROM files WHERE id = ?", [fid]).fetchone()[0]
    projection.set_override(db, [media], projection.from_code("mkx220_sbs_swap"), user_id=1)
    projection.mark_folder(db, lib.root, "Films", True)
    doc = json.loads(json.dumps(userdata.export(db)))
    assert doc["tables"]["projection_overrides"][0]["media_hash"] == f"{1:016x}"
    projection.clear_override(db, [media])
    projection.mark_folder(db, lib.root, "Films", False)
    assert stored(db, fid) == projection.FLAT
    report = userdata.import_(db, doc)
    assert report.written["projection_overrides"] == 1 and report.written["vr_folders"] == 1
    assert stored(db, fid) == P("fisheye", "sbs", True, "mkx220", src="override")
    assert projection.folder_marked(db, lib.root, "Films")


# --- a real scanned library: cards, watch page, filters, home row, the API -------------------


@pytest.fixture(scope="module")
def vr_site(tmp_path_factory: pytest.TempPathFactory):
    """A library scanned by the real scanner: VR-named, VR-folder and flat test patterns."""
    from app import create_app
    from config import load_settings
    from tests.organize_util import make_users
    from tests.sample_library import scan_library

    base = tmp_path_factory.mktemp("vr_site")
    cache = base.parent / "vr-patterns"
    root = base / "library"
    files = {
        "beach": ("Films/Beach_180_sbs.mp4", 128, 64),
        "wide": ("Films/wide film.mp4", 128, 64),
        "untagged": ("VR/untagged.mp4", 128, 64),
        "square": ("VR/square.mp4", 96, 96),
        "reef": ("Films/Reef_MKX200.mp4", 128, 64),
    }
    paths = {}
    for key, (rel, w, h) in files.items():
        src = pattern_video(cache / f"{w}x{h}.mp4", w, h, "sbs" if w > h else "tb")
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        # distinct content per file (a trailing free box, as tests/sample_library does)
        data = src.read_bytes()
        n = len(paths) + 8
        dst.write_bytes(data + (8 + n).to_bytes(4, "big") + b"free" + bytes(n))
        paths[key] = dst
    config = {"media_dirs": [str(root)], "data_dir": str(base / "data"), "probe_workers": 2}
    settings = load_settings(config, environ={}, dotenv_path=base / "no.env")
    scan_library(settings)

    class Site:
        pass

    site = Site()
    site.app, site.settings, site.root, site.files = create_app(config), settings, root, paths
    site.who = make_users(site)
    from tests.sample_library import media_hash

    site.hash = lambda key: media_hash(settings, paths[key])
    return site


def test_cards_and_the_watch_page_show_the_badge(vr_site) -> None:
    client = vr_site.app.test_client()
    admin = vr_site.who.admin
    films = client.get(f"/browse/{vr_site.root.name}/Films", headers=admin).get_data(as_text=True)
    assert '<span class="badge vr">180° 3D</span>' in films
    assert '<span class="badge vr">Fisheye 200°</span>' in films
    assert ">Beach</span>" in films  # the title without its tokens
    assert films.count('class="badge vr"') == 2  # the 2:1 film outside a VR folder has none
    # a 3D video's card shows one eye (static/css/vr.css crops the poster to it)
    assert films.count('<span class="thumb eye-sbs">') == 2
    vr_page = client.get(f"/browse/{vr_site.root.name}/VR", headers=admin).get_data(as_text=True)
    assert vr_page.count('<span class="thumb eye-tb">') == 1  # square: 360° top/bottom
    vr = client.get(f"/browse/{vr_site.root.name}/VR", headers=admin).get_data(as_text=True)
    assert (
        '<span class="badge vr">180° 3D</span>' in vr
        and '<span class="badge vr">360° 3D</span>' in vr
    )
    assert "VR folder" in vr
    page = client.get(f"/watch/{vr_site.hash('beach')}", headers=admin).get_data(as_text=True)
    assert "Beach" in page and '<span class="badge vr">180° 3D</span>' in page
    assert "(64 × 64 per eye)" in page and "from the file name" in page
    # the quality line names the resolution as the badge does (one eye), not the frame's "SD"
    quality = " ".join(page.split('id="quality"')[1].split("</p>")[0].split())
    assert "· 1K SDR" in quality, quality
    assert 'name="projection"' in page  # the admin's control
    viewer = client.get(f"/watch/{vr_site.hash('beach')}", headers=vr_site.who.plain)
    assert 'name="projection"' not in viewer.get_data(as_text=True)


def test_filter_search_and_home_row(vr_site) -> None:
    client = vr_site.app.test_client()
    admin = vr_site.who.admin
    lib = vr_site.root.name

    def titles(html: str) -> set[str]:
        import re

        return set(re.findall(r'<span class="title">([^<]*)</span>', html))

    page = client.get(f"/browse/{lib}/Films?projection=vr", headers=admin).get_data(as_text=True)
    assert titles(page) == {"Beach", "Reef"}
    page = client.get(f"/browse/{lib}/Films?projection=flat", headers=admin).get_data(as_text=True)
    assert titles(page) == {"wide film"}
    page = client.get(f"/browse/{lib}/VR?projection=360", headers=admin).get_data(as_text=True)
    assert titles(page) == {"square"}
    assert client.get(f"/browse/{lib}/VR?projection=dome", headers=admin).status_code == 400
    found = client.get("/search?q=beach&projection=180", headers=admin).get_data(as_text=True)
    assert "Beach" in found
    found = client.get("/search?q=beach&projection=360", headers=admin).get_data(as_text=True)
    assert "Beach" not in found.split('id="results"')[1]
    found = client.get("/search?q=sbs", headers=admin).get_data(as_text=True)
    assert "Beach" in found  # the tokens stay searchable in the file name
    # VR by its frame in a VR folder: found by its projection's words, and suggested so
    found = client.get("/search?q=360", headers=admin).get_data(as_text=True)
    assert titles(found.split('id="results"')[1]) == {"square"}
    found = client.get("/search?q=180+3d", headers=admin).get_data(as_text=True)
    assert titles(found.split('id="results"')[1]) == {"Beach", "untagged"}
    assert found.count('<span class="thumb eye-sbs">') == 2  # one eye on the cards here too
    box = client.get("/search/suggest?q=360", headers=admin).get_data(as_text=True)
    assert "square" in box and "did you mean" not in box.lower()
    home = client.get("/", headers=admin).get_data(as_text=True)
    row = home.split('id="vr"')[1].split("</section>")[0]
    assert titles(row) == {"Beach", "Reef", "untagged", "square"}


def test_the_projection_api(vr_site) -> None:
    client = vr_site.app.test_client()
    admin, viewer = vr_site.who.admin, vr_site.who.viewer
    h = vr_site.hash("wide")
    got = client.get(f"/api/projection/{h}", headers=viewer).get_json()
    assert got["projection"]["type"] == "flat" and got["override"] is None
    body = {"type": "180", "stereo": "sbs", "eye_swap": True}
    assert client.put(f"/api/projection/{h}", json=body, headers=viewer).status_code == 403
    r = client.put(f"/api/projection/{h}", json=body, headers=admin)
    assert r.status_code == 200
    doc = r.get_json()
    assert doc["projection"]["source"] == "override" and doc["projection"]["badge"] == "180° 3D"
    assert doc["projection"]["deovr"] == {"screenType": "dome", "stereoMode": "sbs", "is3d": True}
    assert doc["projection"]["heresphere"]["isEyeSwapped"] is True
    assert doc["resolution"] == "1K"
    bad = client.put(f"/api/projection/{h}", json={"type": "dome"}, headers=admin)
    assert bad.status_code == 400 and "type" in bad.get_json()["error"]
    assert client.put(f"/api/projection/{h}", data="x", headers=admin).status_code == 400
    assert (
        client.put("/api/projection/0123456789abcdef", json=body, headers=admin).status_code == 404
    )
    r = client.delete(f"/api/projection/{h}", headers=admin)
    assert r.get_json()["projection"]["type"] == "flat"
    # bulk on a selection
    both = [vr_site.hash("wide"), vr_site.hash("beach")]
    r = client.post(
        "/api/projection", json={"media": both, "projection": "360_mono"}, headers=admin
    )
    assert r.get_json() == {"updated": 2, "projection": "360_mono"}
    films = client.get(f"/browse/{vr_site.root.name}/Films", headers=admin).get_data(as_text=True)
    assert films.count('<span class="badge vr">360°</span>') == 2
    r = client.post("/api/projection", json={"media": both, "projection": "auto"}, headers=admin)
    assert r.status_code == 200
    assert (
        client.get(f"/api/projection/{both[1]}", headers=admin).get_json()["projection"]["badge"]
        == "180° 3D"
    )
    for bad_body in ({"media": []}, {"media": both, "projection": "x"}, {"media": "x"}, []):
        assert client.post("/api/projection", json=bad_body, headers=admin).status_code == 400
    r = client.post(
        "/api/projection", json={"media": ["nothex"], "projection": "flat"}, headers=admin
    )
    assert r.status_code == 404


def test_watch_page_control_and_folder_flag(vr_site) -> None:
    from tests.conftest import signed_in

    admin = signed_in(vr_site.app, "admin", name="ann")
    h = vr_site.hash("wide")
    r = admin.post(f"/watch/{h}/projection", data={"projection": "mkx200_sbs", "eye_swap": "1"})
    assert r.status_code == 303
    page = admin.get(f"/watch/{h}").get_data(as_text=True)
    assert "Fisheye 200°" in page and "eyes swapped" in page and "set by an admin" in page
    r = admin.post(
        f"/watch/{h}/projection", data={"projection": "auto"}, headers={"HX-Request": "true"}
    )
    assert r.status_code == 200 and 'id="projection"' in r.get_data(as_text=True)
    assert admin.post(f"/watch/{h}/projection", data={"projection": "x"}).status_code == 400
    viewer = signed_in(vr_site.app, "viewer", name="cy")
    assert viewer.post(f"/watch/{h}/projection", data={"projection": "flat"}).status_code == 403
    lib = vr_site.root.name
    r = admin.post(f"/browse/{lib}/Films/vr", data={"on": "1"})
    assert r.status_code == 303
    films = admin.get(f"/browse/{lib}/Films").get_data(as_text=True)
    assert films.count('class="badge vr"') - films.count(">VR folder<") == 3
    assert "Unmark as VR folder" in films
    admin.post(f"/browse/{lib}/Films/vr", data={"on": "0"})
    r = admin.post("/selection/projection", data={"projection": "360_tb", "media": [h]})
    assert r.get_json() == {"updated": 1, "projection": "360_tb"}
    admin.post("/selection/projection", data={"projection": "auto", "media": [h]})
    films = admin.get(f"/browse/{lib}/Films").get_data(as_text=True)
    assert films.count('class="badge vr"') == 2


# --- the projection is searchable, however it was decided (m0019) ----------------------------


def found(db, text: str) -> set[int]:
    """Return the file ids a search for `text` finds (the real search, no filters)."""
    from services.browse.browse import Query
    from services.organize import search

    return {c.file_id for c in search.search(db, text, Query(), user_id=1).cards}


def test_search_finds_the_projection_however_it_was_decided(db) -> None:
    lib = Lib(db)
    aspect = lib.file("VR/untitled.mp4", 5760, 2880)  # 180° 3D by its frame in a VR folder
    square = lib.file("VR/room.mp4", 4096, 4096)  # 360° 3D by its frame
    wide = lib.file("Films/wide.mp4", 5760, 2880)  # a 2:1 film outside: flat
    flat = lib.file("Films/holiday.mp4", 1920, 1080)
    named_file = lib.file("Films/Reef_MKX200.mp4", 5760, 2880)
    assert found(db, "180") == {aspect}
    assert found(db, "360") == {square}
    assert found(db, "3d") == {aspect, square, named_file}
    assert found(db, "VR") >= {aspect, square, named_file}  # (the VR folder's name too)
    assert wide not in found(db, "vr") and flat not in found(db, "vr")
    assert found(db, "fisheye") == {named_file} and found(db, "200") == {named_file}
    assert found(db, "sbs") == {aspect, named_file} and found(db, "tb") == {square}
    assert found(db, "180 3d") == {aspect}
    # an admin's override is searchable, and removing it takes its words away
    media = db.execute("SELECT media_id FROM files WHERE id = ?", [wide]).fetchone()[0]
    projection.set_override(db, [media], projection.from_code("360_mono"), user_id=1)
    assert found(db, "360") == {square, wide} and wide not in found(db, "3d")
    projection.set_override(db, [media], projection.from_code("mkx220_sbs"), user_id=1)
    assert wide not in found(db, "360") and wide in found(db, "fisheye 220")
    projection.clear_override(db, [media])
    assert wide not in found(db, "fisheye") | found(db, "vr")
    # a folder an admin marks as VR: its 2:1 film becomes 180° 3D, and is found so
    projection.mark_folder(db, lib.root, "Films", True)
    assert found(db, "180") == {aspect, wide}
    projection.mark_folder(db, lib.root, "Films", False)
    assert found(db, "180") == {aspect}
    # the VR folder names setting
    projection.sync_folder_names(db, [])
    assert found(db, "180") == set() and found(db, "3d") == {named_file}
    projection.sync_folder_names(db, ["vr"])
    assert found(db, "180") == {aspect}
    # the file's other words are still there (the .nfo column is shared)
    assert found(db, "untitled") == {aspect} and found(db, "reef") == {named_file}
    # a file that leaves the library leaves the index
    with dbmod.write(db):
        db.execute("UPDATE files SET present = 0 WHERE id = ?", [aspect])
    assert found(db, "180") == set()


@pytest.mark.parametrize("code", [c for c, _ in projection.PRESETS[1:]])
def test_the_index_words_are_those_of_the_projection(db, code: str) -> None:
    lib = Lib(db)
    fid = lib.file("Films/plain.mp4", 1920, 1080)
    media = db.execute("SELECT media_id FROM files WHERE id = ?", [fid]).fetchone()[0]
    value = projection.from_code(code)
    projection.set_override(db, [media], value, user_id=1)
    meta = db.execute("SELECT meta FROM search_fts WHERE rowid = ?", [fid]).fetchone()[0]
    assert meta == value.search_words
    if value.is_vr:
        assert found(db, "vr") == {fid}
        assert found(db, str(value.fov)) == {fid}
    assert bool(found(db, "3d")) == (value.stereo != "mono")


def test_the_migration_fills_the_index_of_an_existing_library(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = dbmod.connect(data / "library.db")
    dbmod.migrations.apply(db, stop_before="m0019_search_projection")
    lib = Lib(db)
    aspect = lib.file("VR/untitled.mp4", 5760, 2880)
    other = lib.file("Films/other.mp4", 5760, 2880)
    media = db.execute("SELECT media_id FROM files WHERE id = ?", [other]).fetchone()[0]
    projection.set_override(db, [media], projection.from_code("360_tb"), user_id=1)
    assert found(db, "180") == set() and found(db, "360") == set()  # before: not indexed
    dbmod.migrations.apply(db)
    assert found(db, "180") == {aspect} and found(db, "360") == {other}
    assert found(db, "untitled") == {aspect}
    db.close()


# --- the resolution filter reads a VR video as its badge does (one eye) -----------------------

CLASSES = {"sd": "SD", "720p": "720p", "1080p": "1080p", "4k": "4K"}


def test_the_resolution_filter_buckets_vr_videos_by_one_eye(db) -> None:
    from dataclasses import replace

    from services.browse import browse, cards
    from services.organize import search

    lib = Lib(db)
    files = {
        # name, frame: the class its badge names (one eye's width, doubled for 180°)
        "VR/Beach_180_sbs.mp4": ((3840, 1920), "4k"),  # "4K" (the full frame's short side: 1080p)
        "VR/Reef_180_sbs.mp4": ((5760, 2880), "4k"),  # "6K"
        "VR/room.mp4": ((2880, 2880), "1080p"),  # 360° TB: "3K" (the full frame: 4K)
        "VR/cave.mp4": ((4096, 4096), "4k"),  # 360° TB: "4K"
        "VR/small_180_sbs.mp4": ((1280, 640), "720p"),  # "1K" (the full frame: SD)
        "VR/tiny_360.mp4": ((960, 480), "sd"),  # "1K", mono 360°
        "Films/film_sbs.mp4": ((3840, 1080), "1080p"),  # a flat 3D film: by its frame
        "Films/wide.mp4": ((5760, 2880), "4k"),  # a 2:1 film outside VR folders: flat
        "Films/clip.mp4": ((1920, 1080), "1080p"),
        "Films/phone.mp4": ((1080, 1920), "1080p"),
        "Films/old.mp4": ((640, 480), "sd"),
        "Films/hd.mp4": ((1280, 720), "720p"),
    }
    ids = {rel: lib.file(rel, *size) for rel, (size, _) in files.items()}
    all_cards = {c.file_id: c for c in search.search(db, "mp4", browse.Query(), user_id=1).cards}
    assert set(all_cards) == set(ids.values())
    for res in CLASSES:
        want = {ids[rel] for rel, (_, cls) in files.items() if cls == res}
        got: set[int] = set()
        for folder in ("VR", "Films"):
            q = replace(browse.Query(), resolution=res)
            page = browse.folder_page(db, lib.folders[folder], q, user_id=1)
            got |= {c.file_id for c in page.cards}
            here = {ids[rel] for rel in files if rel.startswith(folder + "/")}
            assert browse.count_matching(db, lib.folders[folder], q, user_id=1) == len(want & here)
        assert got == want, res
        found = {c.file_id for c in search.search(db, "mp4", q, user_id=1).cards}
        assert found == want, res
    # the filter agrees with the labels: a VR badge of 4K or more is in "4K"
    for rel, (size, cls) in files.items():
        card = all_cards[ids[rel]]
        label = card.resolution
        p = projection.of_file(db, ids[rel])
        assert cards.resolution_class(p, *size) == cls
        if p.is_vr:
            assert (int(label[:-1]) >= 4) == (cls == "4k"), (rel, label)
        else:
            assert label == CLASSES[cls], (rel, label)

    # the class follows the projection: an override, a folder marked VR, a new frame size
    wide, side = ids["Films/wide.mp4"], "SELECT class_side FROM files WHERE id = ?"
    media = db.execute("SELECT media_id FROM files WHERE id = ?", [wide]).fetchone()[0]
    assert db.execute(side, [wide]).fetchone()[0] == 2880
    projection.set_override(db, [media], projection.from_code("360_tb"), user_id=1)
    assert db.execute(side, [wide]).fetchone()[0] == 5760 * 9 // 16
    projection.set_override(db, [media], projection.from_code("mkx200_sbs"), user_id=1)
    assert db.execute(side, [wide]).fetchone()[0] == 5760 * 9 // 16
    projection.set_override(db, [media], projection.from_code("360_sbs"), user_id=1)
    assert db.execute(side, [wide]).fetchone()[0] == 2880 * 9 // 16
    projection.clear_override(db, [media])
    assert db.execute(side, [wide]).fetchone()[0] == 2880
    with dbmod.write(db):
        db.execute("UPDATE media SET width = 1920, height = 960 WHERE id = ?", [media])
    assert db.execute(side, [wide]).fetchone()[0] == 960
    projection.mark_folder(db, lib.root, "Films", True)  # 2:1 in a VR folder: 180° 3D
    assert db.execute(side, [wide]).fetchone()[0] == 1080
    q = replace(browse.Query(), resolution="1080p")
    assert wide in {
        c.file_id for c in browse.folder_page(db, lib.folders["Films"], q, user_id=1).cards
    }


def test_the_class_migration_fills_existing_files(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = dbmod.connect(data / "library.db")
    dbmod.migrations.apply(db, stop_before="m0019b_resolution_class")
    lib = Lib(db)
    vr = lib.file("VR/beach.mp4", 3840, 1920)
    flat = lib.file("Films/clip.mp4", 1280, 720)
    unprobed = lib.file("Films/new.mp4", None, None)
    dbmod.migrations.apply(db)
    sides = dict(db.execute("SELECT id, class_side FROM files").fetchall())
    assert sides == {vr: 2160, flat: 720, unprobed: None}
    db.close()
