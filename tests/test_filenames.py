"""File-name parsing: title, year, episode, quality labels, VR projection tokens.

The VR API fields and the aspect rule are tested with the projection value (test_projection.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from services.library.filenames import FLAT, Projection, parse_name, parse_projection


def _p(projection: str, stereo: str | None, swap: bool = False, lens=None, fov=None) -> Projection:
    return Projection(projection, stereo, swap, lens, fov, "filename")


P180_SBS = _p("180", "sbs", fov=180)
P360_TB = _p("360", "tb", fov=360)


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    year: int | None = None
    season: int | None = None
    episode: int | None = None
    episode_title: str | None = None
    quality: str | None = None
    hdr: str | None = None
    codec: str | None = None
    projection: Projection = FLAT


CASES = [
    # --- movies, scene-release style
    Case(
        "Movie.Name.2019.1080p.BluRay.x264-GROUP.mkv",
        "Movie Name",
        2019,
        quality="1080p",
        codec="h264",
    ),
    Case("2001 A Space Odyssey (1968).mkv", "2001 A Space Odyssey", 1968),
    Case("2001.A.Space.Odyssey.1968.1080p.mkv", "2001 A Space Odyssey", 1968, quality="1080p"),
    Case(
        "Blade.Runner.2049.2017.2160p.UHD.BluRay.REMUX.HDR.HEVC.Atmos-EPSiLON.mkv",
        "Blade Runner 2049",
        2017,
        quality="2160p",
        hdr="HDR",
        codec="hevc",
    ),
    Case("Blade Runner 2049 (2017).mp4", "Blade Runner 2049", 2017),
    Case(
        "The Matrix (1999) [1080p] [x265] [10bit].mkv",
        "The Matrix",
        1999,
        quality="1080p",
        codec="hevc",
    ),
    Case("1917.2019.720p.WEBRip.x264.AAC-[YTS.MX].mp4", "1917", 2019, quality="720p", codec="h264"),
    Case("1917.mkv", "1917"),
    Case("2012.2009.1080p.BluRay.mkv", "2012", 2009, quality="1080p"),
    Case(
        "Dune.Part.Two.2024.2160p.WEB-DL.DDP5.1.Atmos.DV.HDR10.H.265-FLUX.mkv",
        "Dune Part Two",
        2024,
        quality="2160p",
        hdr="DV",
        codec="hevc",
    ),
    Case(
        "Avatar The Way of Water 2022 4K HDR10+ HEVC.mp4",
        "Avatar The Way of Water",
        2022,
        quality="2160p",
        hdr="HDR10+",
        codec="hevc",
    ),
    Case(
        "Tenet.2020.IMAX.2160p.UHD.BluRay.x265.10bit.HDR10.TrueHD.7.1.Atmos-SWTYBLZ.mkv",
        "Tenet",
        2020,
        quality="2160p",
        hdr="HDR10",
        codec="hevc",
    ),
    Case(
        "Spider-Man.No.Way.Home.2021.1080p.WEBRip.x264.mkv",
        "Spider-Man No Way Home",
        2021,
        quality="1080p",
        codec="h264",
    ),
    Case(
        "Mission Impossible - Dead Reckoning (2023) 2160p AV1.mkv",
        "Mission Impossible - Dead Reckoning",
        2023,
        quality="2160p",
        codec="av1",
    ),
    Case("Movie (2019) (1080p HEVC).mkv", "Movie", 2019, quality="1080p", codec="hevc"),
    Case("Charlottes.Web.1973.DVDRip.XviD.avi", "Charlottes Web", 1973),
    Case("Sintel.2010.480p.mkv", "Sintel", 2010, quality="480p"),
    Case(
        "Star.Wars.Episode.IV.A.New.Hope.1977.1080p.mkv",
        "Star Wars Episode IV A New Hope",
        1977,
        quality="1080p",
    ),
    Case(
        "A.I.Artificial.Intelligence.2001.720p.mkv",
        "A.I. Artificial Intelligence",
        2001,
        quality="720p",
    ),
    Case("Léon: The Professional (1994) Extended.mkv", "Léon: The Professional", 1994),
    Case("Nature.Documentary.2160p60.HDR.mp4", "Nature Documentary", quality="2160p", hdr="HDR"),
    Case("clip.VP9.webm", "clip", codec="vp9"),
    Case("Vacation 2019 4k.MOV", "Vacation", 2019, quality="2160p"),
    Case("movie_name_2015_720p_h.264.mp4", "movie name", 2015, quality="720p", codec="h264"),
    Case("Old.Home.Video.1080i.AVC.ts", "Old Home Video", quality="1080i", codec="h264"),
    Case("Screen Recording 1920x1080.mp4", "Screen Recording", quality="1080p"),
    Case("VID_20230714_153012.mp4", "VID 20230714 153012"),
    Case("Home video 2023-07-14 birthday.mp4", "Home video 2023-07-14 birthday"),
    Case("The.Flat.2011.1080p.mkv", "The Flat", 2011, quality="1080p", projection=_p("flat", None)),
    Case("Tout ou rien (2014).mkv", "Tout ou rien", 2014),
    # --- "360p" is one token: a quality, never a 360° video
    Case("Old.Clip.360p.mp4", "Old Clip", quality="360p"),
    Case("Movie.2008.360p.x264.mp4", "Movie", 2008, quality="360p", codec="h264"),
    Case("Tutorial Part 1 [360p].mp4", "Tutorial Part 1", quality="360p"),
    # --- series
    Case(
        "Breaking.Bad.S05E14.Ozymandias.1080p.WEB-DL.DD5.1.H.264.mkv",
        "Breaking Bad",
        season=5,
        episode=14,
        episode_title="Ozymandias",
        quality="1080p",
        codec="h264",
    ),
    Case(
        "The Office (US) - S02E01 - The Dundies.mkv",
        "The Office (US)",
        season=2,
        episode=1,
        episode_title="The Dundies",
    ),
    Case(
        "friends.1x02.the.one.with.the.sonogram.avi",
        "friends",
        season=1,
        episode=2,
        episode_title="the one with the sonogram",
    ),
    Case(
        "Doctor.Who.2005.S01E01.Rose.720p.mkv",
        "Doctor Who",
        2005,
        season=1,
        episode=1,
        episode_title="Rose",
        quality="720p",
    ),
    Case("show name s1e2.mp4", "show name", season=1, episode=2),
    Case(
        "Game of Thrones S08E03 The Long Night 2160p HDR10 x265.mkv",
        "Game of Thrones",
        season=8,
        episode=3,
        episode_title="The Long Night",
        quality="2160p",
        hdr="HDR10",
        codec="hevc",
    ),
    Case("Show.Name.S01E01E02.720p.mkv", "Show Name", season=1, episode=1, quality="720p"),
    Case("Show.S01.E05.mkv", "Show", season=1, episode=5),
    Case(
        "Marvels.Agents.of.S.H.I.E.L.D.S01E01.720p.HDTV.x264-2HD.mkv",
        "Marvels Agents of S.H.I.E.L.D.",
        season=1,
        episode=1,
        quality="720p",
        codec="h264",
    ),
    Case(
        "The.Mandalorian.S02E08.1080p.DSNP.WEB-DL.DDP5.1.Atmos.H.264-FLUX.mkv",
        "The Mandalorian",
        season=2,
        episode=8,
        quality="1080p",
        codec="h264",
    ),
    Case("Mr. Robot S01E01.mkv", "Mr. Robot", season=1, episode=1),
    Case("Podcast EP12 Guests.mp4", "Podcast", episode=12, episode_title="Guests"),
    Case("S01E02.mkv", "S01E02", season=1, episode=2),
    # --- anime fansub names
    Case(
        "[SubsPlease] Jujutsu Kaisen - 24 (1080p) [8A1B2C3D].mkv",
        "Jujutsu Kaisen",
        episode=24,
        quality="1080p",
    ),
    Case(
        "[Erai-raws] Sousou no Frieren - 01 [1080p][Multiple Subtitle][ABCDEF12].mkv",
        "Sousou no Frieren",
        episode=1,
        quality="1080p",
    ),
    Case(
        "[Judas] Shingeki no Kyojin - S04E28 [1080p][HEVC x265 10bit][Multi-Subs].mkv",
        "Shingeki no Kyojin",
        season=4,
        episode=28,
        quality="1080p",
        codec="hevc",
    ),
    Case(
        "[Group] Cowboy Bebop - 05v2 (BD 1080p FLAC) [CA5E1B2F].mkv",
        "Cowboy Bebop",
        episode=5,
        quality="1080p",
    ),
    Case("[HorribleSubs] One Piece - 1000 [720p].mkv", "One Piece", episode=1000, quality="720p"),
    Case(
        "Neon Genesis Evangelion - The End of Evangelion (1997) [BD 1080p].mkv",
        "Neon Genesis Evangelion - The End of Evangelion",
        1997,
        quality="1080p",
    ),
    # --- VR studio names
    Case(
        "SLR_Studio_Scene_Title_5K_180_LR.mp4",
        "SLR Studio Scene Title",
        quality="5K",
        projection=P180_SBS,
    ),
    Case(
        "VRBangers_Hot_Scene_Title_8K_3dh.mp4",
        "VRBangers Hot Scene Title",
        quality="4320p",
        projection=P180_SBS,
    ),
    Case(
        "Studio_Scene_Title_MKX200.mp4",
        "Studio Scene Title",
        projection=_p("fisheye", None, lens="mkx200", fov=200),
    ),
    Case(
        "Studio_Scene_Title_8K_FISHEYE190_alpha.mp4",
        "Studio Scene Title",
        quality="4320p",
        projection=_p("fisheye", None, lens="fisheye190", fov=190),
    ),
    Case("Studio_Title_360_TB.mp4", "Studio Title", projection=P360_TB),
    Case("Studio_Title_180_RL.mp4", "Studio Title", projection=_p("180", "sbs", True, fov=180)),
    Case("Studio_Title_360_BT.mp4", "Studio Title", projection=_p("360", "tb", True, fov=360)),
    Case("Studio_Title_RL.mp4", "Studio Title", projection=_p("180", "sbs", True, fov=180)),
    Case("Studio_Title_BT.mp4", "Studio Title", projection=_p("flat", "tb", True)),
    Case("Scene_Title_180x180_3dh_LR.mp4", "Scene Title", projection=P180_SBS),
    Case("Studio - Title [MONO_360].mp4", "Studio - Title", projection=_p("360", "mono", fov=360)),
    Case("Travel_Vlog_MONO_360.mp4", "Travel Vlog", projection=_p("360", "mono", fov=360)),
    Case("Studio_Title_VR180.mp4", "Studio Title", projection=_p("180", None, fov=180)),
    Case("Title_F180_OU.mp4", "Title", projection=_p("fisheye", "tb", lens="fisheye", fov=180)),
    Case(
        "Studio_Title_6K_MKX220_LR_h265.mp4",
        "Studio Title",
        quality="6K",
        codec="hevc",
        projection=_p("fisheye", "sbs", lens="mkx220", fov=220),
    ),
    Case(
        "Canon Test Clip RF52 8K.mp4",
        "Canon Test Clip",
        quality="4320p",
        projection=_p("fisheye", None, lens="rf52", fov=190),
    ),
    Case(
        "Studio.Title.VRCA220.mp4",
        "Studio Title",
        projection=_p("fisheye", None, lens="vrca220", fov=220),
    ),
    Case("Title_FLAT_SBS.mp4", "Title", projection=_p("flat", "sbs")),
    # --- unicode, odd and hostile names
    Case("千と千尋の神隠し (2001) [1080p].mkv", "千と千尋の神隠し", 2001, quality="1080p"),
    Case("Ünïcödé Fïlm – Teil 2 (2020).mp4", "Ünïcödé Fïlm – Teil 2", 2020),
    Case("Пример видео 2018 720p.mp4", "Пример видео", 2018, quality="720p"),
    Case("Movie.Name.2019.1080p", "Movie Name", 2019, quality="1080p"),
    Case("Show.S01E02.720p", "Show", season=1, episode=2, quality="720p"),
    Case(".hidden.clip.mp4", "hidden clip"),
    Case(".mp4", "mp4"),
    Case("", "untitled"),
    Case("-vf.mp4", "-vf"),
    Case("concat:a|b.mkv", "concat:a|b"),
    Case("[1080p].mkv", "[1080p]", quality="1080p"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name or "<empty>" for c in CASES])
def test_parse_name(case: Case) -> None:
    got = parse_name(case.name)
    assert (
        got.title,
        got.year,
        got.season,
        got.episode,
        got.episode_title,
        got.quality,
        got.hdr,
        got.codec,
        got.projection,
    ) == (
        case.title,
        case.year,
        case.season,
        case.episode,
        case.episode_title,
        case.quality,
        case.hdr,
        case.codec,
        case.projection,
    )


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 50


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "...",
        " ",
        "-",
        "[]",
        "()",
        "[ABC] ",
        "(2019)",
        "S01E01",
        "1080p.x264.mkv",
        "._.mp4",
    ],
)
def test_title_is_never_empty(name: str) -> None:
    assert parse_name(name).title.strip()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("clip_360p.mp4", FLAT),
        ("Around.the.World.1080p.mp4", FLAT),
        ("Souvenir.mp4", FLAT),  # "ou" inside a word
        ("Tout ou rien (2014).mkv", FLAT),  # "ou" alone is French, not over-under
        ("Trip_360_ou.mp4", _p("360", "tb", fov=360)),
        ("Trip_ou_180.mp4", _p("180", "tb", fov=180)),
        ("Trip_ou_LR_180.mp4", _p("180", "tb", fov=180)),  # ou is still the first stereo token
        ("Trip_LR_ou_180.mp4", P180_SBS),
        ("flatland.mp4", FLAT),
        ("Scene_180_MKX200.mp4", _p("fisheye", None, lens="mkx200", fov=200)),  # lens wins
        ("Scene_360_180.mp4", _p("360", None, fov=360)),  # first projection token wins
        ("Scene_TB_LR_180.mp4", _p("180", "tb", fov=180)),  # first stereo token wins
        ("Scene-180f-sbs.mp4", _p("fisheye", "sbs", lens="fisheye", fov=180)),
        ("Scene(180)[LR].mp4", P180_SBS),
        ("SCENE.360.3DV.MP4", P360_TB),
        ("scene_mono.mp4", _p("flat", "mono")),
        ("scene_sbs.mp4", _p("flat", "sbs")),
        ("scene_lrx.mp4", FLAT),
        ("scene_180_lr", P180_SBS),  # no extension
        (".scene_360_tb.mp4", P360_TB),
    ],
)
def test_parse_projection(name: str, expected: Projection) -> None:
    assert parse_projection(name) == expected
    assert parse_name(name).projection == expected


def test_parse_name_is_fast() -> None:
    # The scanner calls this once per file on a 100k library (bar B1); keep it in microseconds.
    # Unique words per name, so the token cache helps only as much as it would in a real library.
    rounds = 40
    batches = [[f"Word{r}x{i} {c.name}" for i, c in enumerate(CASES)] for r in range(rounds * 3)]
    best = float("inf")
    # The thread's CPU time, best of three: on a shared machine, wall time measures the load
    # (four times the CPU time with two busy processes beside the suite on two cores).
    for attempt in range(3):
        t0 = time.thread_time()
        for names in batches[attempt * rounds : (attempt + 1) * rounds]:
            for name in names:
                parse_name(name)
        best = min(best, (time.thread_time() - t0) / (rounds * len(CASES)))
    assert best < 150e-6, f"parse_name took {best * 1e6:.1f} µs per call"
