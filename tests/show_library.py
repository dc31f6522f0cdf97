"""A library laid out the way Sonarr, Radarr and Kodi users lay theirs out, scanned for real.

tv/The Expanse (2015)/            tvshow.nfo, poster.jpg, fanart.jpg, season01-poster.jpg
    Season 01/                    The.Expanse.S01E01.Dulcinea.mp4 (+ .nfo, -thumb.jpg),
                                  The.Expanse.S01E02.mp4, The.Expanse.S01E03-E04.mp4
    Season 02/                    S02E01.mp4 (no title in the name: the folders say it)
    Specials/                     The.Expanse.S00E01.mp4
tv/Flat Show/                     Flat.Show.1x02.mp4, Flat.Show.1x01.mp4 (flat, no seasons)
tv/Anime/                         Kaiju - EP12.mp4, Kaiju - EP13.mp4 (absolute numbers),
                                  Kaiju - EP13 - 720p HEVC.mp4 (EP13's other version)
tv2/The Expanse/Season 03/        The.Expanse.S03E01.mp4 (the same show, another library)
movies/Heat (1995)/               Heat (1995).mp4 + Heat (1995).nfo, Heat (1995) - 720p HEVC.mp4,
                                  poster.jpg
movies/Arrival (2016)/            Arrival.2016.mp4, Arrival.2016-poster.jpg (a portrait)
movies/Hostile (2001)/            Hostile (2001).mp4, Hostile (2001).nfo (billion laughs),
                                  poster.jpg (not a picture)
movies/home/                      birthday.mp4 (no year: neither a show nor a movie)
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from PIL import Image

from tests.mediagen import X265, ffmpeg, file_arg
from tests.sample_library import _variant

TVSHOW_NFO = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<tvshow>
  <title>The Expanse</title>
  <originaltitle>The Expanse</originaltitle>
  <year>2015</year>
  <plot>Humanity has colonised the solar system. A detective and a ship's officer find a
  conspiracy.</plot>
  <genre>Science Fiction</genre>
  <genre>Drama</genre>
  <studio>Alcon</studio>
  <premiered>2015-12-14</premiered>
  <uniqueid type="tvdb" default="true">280619</uniqueid>
  <actor><name>Steven Strait</name><role>James Holden</role></actor>
  <actor><name>Dominique Tipper</name><role>Naomi Nagata</role></actor>
</tvshow>
"""
EPISODE_NFO = """<?xml version="1.0" encoding="UTF-8"?>
<episodedetails>
  <title>Dulcinea</title>
  <season>1</season>
  <episode>1</episode>
  <aired>2015-12-14</aired>
  <plot>Miller searches for a missing girl; the Canterbury answers a distress call.</plot>
  <runtime>44</runtime>
  <ratings><rating name="tvdb" max="10" default="true"><value>7.9</value></rating></ratings>
</episodedetails>
"""
MOVIE_NFO = """<?xml version="1.0" encoding="UTF-8"?>
<movie>
  <title>Heat</title>
  <originaltitle>Heat</originaltitle>
  <sorttitle>Heat</sorttitle>
  <year>1995</year>
  <plot>A group of professional bank robbers start to feel the heat from police.</plot>
  <tagline>A Los Angeles crime saga</tagline>
  <runtime>170</runtime>
  <premiered>1995-12-15</premiered>
  <rating>8.3</rating>
  <genre>Crime</genre>
  <genre>Thriller</genre>
  <studio>Warner Bros.</studio>
  <director>Michael Mann</director>
  <credits>Michael Mann</credits>
  <uniqueid type="imdb" default="true">tt0113277</uniqueid>
  <uniqueid type="tmdb">949</uniqueid>
  <tag>heist</tag>
  <actor><name>Al Pacino</name><role>Vincent Hanna</role></actor>
  <actor><name>Robert De Niro</name><role>Neil McCauley</role></actor>
</movie>
"""
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<movie><title>&lol9;</title></movie>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE movie [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<movie><title>&xxe;</title></movie>
"""


def picture(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    """Write a JPEG of one colour with a lighter band (so it is not blank)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, colour)
    band = Image.new(
        "RGB", (size[0], max(1, size[1] // 6)), tuple(min(255, c + 90) for c in colour)
    )
    im.paste(band, (0, size[1] // 2))
    im.save(path, "JPEG", quality=80)
    return path


def clip_720p(out: Path) -> Path:
    """Encode a 1-second 1280x720 HEVC clip in MP4 (the better version of a film, which not
    every browser plays directly)."""
    if not out.exists():
        ffmpeg(
            "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=10:duration=1",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
            "-c:v", *X265, "-pix_fmt", "yuv420p", "-tag:v", "hvc1", "-c:a", "aac", "-ac", "2",
            "-shortest", "-movflags", "+faststart", file_arg(out),
        )  # fmt: skip
    return out


def make_show_library(base: Path, media: dict[str, Path], cache: Path) -> dict[str, Any]:
    """Lay out the three libraries under base; return their roots and the files by name."""
    tv, tv2, movies = base / "tv", base / "tv2", base / "movies"
    src = media["h264_mp4"]
    n = iter(range(100, 10_000, 7))
    files: dict[str, Path] = {}

    def video(key: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        files[key] = _variant(src, path, next(n))
        return path

    show = tv / "The Expanse (2015)"
    video("e101", show / "Season 01" / "The.Expanse.S01E01.Dulcinea.mp4")
    video("e102", show / "Season 01" / "The.Expanse.S01E02.mp4")
    video("e103", show / "Season 01" / "The.Expanse.S01E03-E04.mp4")
    video("e201", show / "Season 02" / "S02E01.mp4")
    video("s001", show / "Specials" / "The.Expanse.S00E01.mp4")
    (show / "tvshow.nfo").write_text(TVSHOW_NFO)
    (show / "Season 01" / "The.Expanse.S01E01.Dulcinea.nfo").write_text(EPISODE_NFO)
    picture(show / "poster.jpg", (200, 300), (30, 60, 120))
    picture(show / "fanart.jpg", (640, 360), (20, 20, 40))
    picture(show / "season01-poster.jpg", (200, 300), (120, 40, 40))
    picture(show / "Season 01" / "The.Expanse.S01E01.Dulcinea-thumb.jpg", (320, 180), (10, 90, 10))
    video("f102", tv / "Flat Show" / "Flat.Show.1x02.mp4")
    video("f101", tv / "Flat Show" / "Flat.Show.1x01.mp4")
    video("a12", tv / "Anime" / "Kaiju - EP12.mp4")
    video("a13", tv / "Anime" / "Kaiju - EP13.mp4")
    # EP13 in two versions: the HEVC one is "better" and first by name; not every browser plays it.
    files["a13hevc"] = shutil.copyfile(
        clip_720p(cache / "720p-hevc.mp4"), tv / "Anime" / "Kaiju - EP13 - 720p HEVC.mp4"
    )
    video("e301", tv2 / "The Expanse" / "Season 03" / "The.Expanse.S03E01.mp4")

    heat = movies / "Heat (1995)"
    video("heat", heat / "Heat (1995).mp4")
    heat.mkdir(parents=True, exist_ok=True)
    files["heat720"] = shutil.copyfile(
        clip_720p(cache / "720p-hevc.mp4"), heat / "Heat (1995) - 720p HEVC.mp4"
    )
    (heat / "Heat (1995).nfo").write_text(MOVIE_NFO)
    picture(heat / "poster.jpg", (300, 450), (150, 80, 20))
    video("arrival", movies / "Arrival (2016)" / "Arrival.2016.mp4")
    picture(movies / "Arrival (2016)" / "Arrival.2016-poster.jpg", (300, 450), (60, 60, 60))
    hostile = movies / "Hostile (2001)"
    video("hostile", hostile / "Hostile (2001).mp4")
    (hostile / "Hostile (2001).nfo").write_text(BILLION_LAUGHS)
    (hostile / "poster.jpg").write_text("this is not a picture\n")
    video("home", movies / "home" / "birthday.mp4")
    return {"roots": [tv, tv2, movies], "files": files}


def scan_all(settings: Any) -> Any:
    """Scan with the real scanner, then read the sidecars and group, as `flask scan` does."""
    from services import db as dbmod
    from services.library.scanner import scan
    from services.shows import ingest

    db = dbmod.open_db(settings.data_dir)
    try:
        report = scan(db, settings)
        ingest.after_scan(db, settings.data_dir, report)
        return report
    finally:
        db.close()


class ShowSite:
    """The show library scanned, its settings and the app serving it."""

    def __init__(self, base: Path, media: dict[str, Path]) -> None:
        from app import create_app
        from config import load_settings

        cache = base.parent / "site-cache"
        cache.mkdir(exist_ok=True)
        made = make_show_library(base / "media", media, cache)
        self.roots, self.files = made["roots"], made["files"]
        self.data = base / "data"
        config = {
            "media_dirs": [str(r) for r in self.roots],
            "data_dir": str(self.data),
            "probe_workers": 2,
        }
        self.settings = load_settings(config, environ={}, dotenv_path=base / "no.env")
        self.report = scan_all(self.settings)
        self.app = create_app(config)

    def db(self):
        from services import db as dbmod

        return dbmod.connect(self.settings.db_path)
