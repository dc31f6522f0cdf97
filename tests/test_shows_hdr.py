"""HDR kind from the probe (issue 17): a stream's colour transfer, not only the file's name.

Generated 10-bit HEVC files whose bitstream says SMPTE ST 2084 (PQ: HDR10) or ARIB STD-B67
(HLG), and a 10-bit one that says nothing (SDR: ten bits alone are not HDR); probed with the real
probe and held against what the bundled ffmpeg prints for them; then a library holding them,
scanned for real, whose quality analysis (the figure versions are ranked by, and the watch page's
line) uses the probe's kind where the name says none, and the name's where it says more (DV).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from services.ffmpeg import ffmpeg_path
from services.library.probe import hdr_kind, probe_file
from tests.mediagen import X265, ffmpeg, file_arg
from tests.show_library import scan_all


def _hevc10(out: Path, transfer: str | None) -> Path:
    params = "log-level=error"
    if transfer:
        params += f":colorprim=bt2020:transfer={transfer}:colormatrix=bt2020nc"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=10:duration=1",
        "-c:v", *X265[:-1], params, "-pix_fmt", "yuv420p10le", file_arg(out),
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hdr")
    return {
        "pq": _hevc10(d / "pq.mp4", "smpte2084"),
        "hlg": _hevc10(d / "hlg.mkv", "arib-std-b67"),
        "sdr10": _hevc10(d / "sdr10.mp4", None),
    }


def _video(path: Path):
    return next(s for s in probe_file(path, "video").streams if s.type == "video")


def _ffmpeg_says(path: Path) -> str:
    run = subprocess.run([ffmpeg_path(), "-hide_banner", "-i", str(path)], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    return next(line for line in run.stderr.splitlines() if "Video:" in line)


@pytest.mark.parametrize(
    ("key", "kind", "printed"),
    [("pq", "HDR10", "smpte2084"), ("hlg", "HLG", "arib-std-b67"), ("sdr10", None, None)],
)
def test_the_probe_reads_the_colour_transfer(clips, key, kind, printed):
    video = _video(clips[key])
    assert (video.bit_depth, video.hdr) == (10, kind)
    line = _ffmpeg_says(clips[key])
    if printed:
        assert printed in line  # what ffmpeg itself prints, e.g. yuv420p10le(bt2020nc/bt2020/…)
    else:
        assert "smpte2084" not in line and "arib-std-b67" not in line


def test_hdr_kind_of_transfers():
    assert hdr_kind(16) == "HDR10" and hdr_kind(18) == "HLG"
    assert hdr_kind(1) is None and hdr_kind(2) is None and hdr_kind(None) is None


def test_quality_uses_the_probes_kind_unless_the_name_says_more(clips, tmp_path):
    from config import load_settings
    from services import db as dbmod
    from services.shows import upnext

    film = tmp_path / "media" / "Nightfall (2021)"
    film.mkdir(parents=True)
    # No label in the name: the probe says HDR10. "DV" in the name: Dolby Vision, PQ too.
    (film / "Nightfall (2021).mp4").write_bytes(clips["pq"].read_bytes())
    (film / "Nightfall (2021) DV.mp4").write_bytes(clips["pq"].read_bytes() + b"\0" * 7)
    (film / "Nightfall (2021) HLG broadcast.mkv").write_bytes(clips["hlg"].read_bytes())
    (film / "Nightfall (2021) 10bit.mp4").write_bytes(clips["sdr10"].read_bytes())
    settings = load_settings(
        {"media_dirs": [str(tmp_path / "media")], "data_dir": str(tmp_path / "data")},
        environ={},
        dotenv_path=tmp_path / "no.env",
    )
    scan_all(settings)
    db = dbmod.connect(settings.db_path)
    try:
        mid = db.execute("SELECT id FROM movies WHERE title = 'Nightfall'").fetchone()[0]
        got = {v.name: v.quality for v in upnext.movie_versions(db, mid)}
        stored = dict(db.execute(
            "SELECT f.name, s.hdr FROM files f JOIN streams s ON s.media_id = f.media_id "
            "AND s.type = 'video'"
        ).fetchall())  # fmt: skip
    finally:
        db.close()
    assert {name: q.hdr for name, q in got.items()} == {
        "Nightfall (2021).mp4": "HDR10",
        "Nightfall (2021) DV.mp4": "DV",
        "Nightfall (2021) HLG broadcast.mkv": "HLG",
        "Nightfall (2021) 10bit.mp4": None,
    }
    assert stored["Nightfall (2021) DV.mp4"] == "HDR10"  # what the probe itself read
    # The same picture scores more as HDR than as 10-bit SDR.
    assert got["Nightfall (2021).mp4"].score > got["Nightfall (2021) 10bit.mp4"].score
