"""Scrub-preview sprites on real clips: cues over the whole duration, one tile per keyframe."""

from __future__ import annotations

import os
import re
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageStat

from services.ffmpeg import file_arg
from services.previews import frames
from services.previews.sprites import cue_times, render_sprite, sprite_paths
from tests.mediagen import X264, ffmpeg, make_video

CUE_RE = re.compile(
    r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n"
    r"sprite\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)$",
    re.M,
)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Return a 12 s and a 60 s clip, a keyframe every second, and the 12 s one as Matroska."""
    root = tmp_path_factory.mktemp("sprites")
    twelve = make_video(root / "twelve.mp4", vcodec=X264, seconds=12, size="160x120")
    sixty = make_video(root / "sixty.mp4", vcodec=X264, seconds=60, size="64x48")
    mkv = root / "twelve.mkv"
    ffmpeg("-i", file_arg(twelve), "-c", "copy", file_arg(mkv))
    return {"twelve": twelve, "sixty": sixty, "twelve_mkv": mkv}


def make(source: Path, tmp_path: Path, **kw):
    jpg, vtt = tmp_path / "sprite.jpg", tmp_path / "sprite.vtt"
    sprite = render_sprite(os.fsencode(source), str(jpg), str(vtt), **kw)
    return sprite, Image.open(jpg), cues(vtt.read_text())


def cues(text: str) -> list[tuple[float, float, tuple[int, int, int, int]]]:
    assert text.startswith("WEBVTT\n\n")
    found = []
    for m in CUE_RE.finditer(text):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(v) for v in m.groups()[:8])
        start = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000
        end = h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        found.append((start, end, tuple(int(v) for v in m.groups()[8:])))
    assert len(found) == text.count(" --> ")  # every cue parsed
    return found


def assert_covers(found, duration: float, sheet: Image.Image, tile: tuple[int, int]) -> None:
    assert found[0][0] == 0
    for (_, end, _), (start, _, _) in zip(found, found[1:], strict=False):
        assert start == end  # no gap, no overlap
    assert found[-1][1] == pytest.approx(duration, abs=0.001)
    for _, _, (x, y, w, h) in found:
        assert (w, h) == tile
        assert x + w <= sheet.width and y + h <= sheet.height


def frame_at(path: Path, seconds: float, size: tuple[int, int]) -> Image.Image:
    with frames.open_video(path) as video:
        packet = frames.seek_keyframe(video, seconds)
        [frame] = frames.decode(video, [packet])
        return frames.to_image(video, frame, *size)


def difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b)).mean) / 3


def test_short_clip_gets_fewer_cues(media, tmp_path):
    sprite, sheet, found = make(media["h264_mp4"], tmp_path)  # 2 s, keyframes at 0 and 1 s

    assert sprite.cues == 4 and sprite.tiles == 2  # a cue per half second, a tile per keyframe
    assert sheet.size == (2 * 160, 120) and sheet.format == "JPEG"
    assert [(s, e) for s, e, _ in found] == [(0.0, 1.0), (1.0, 2.0)]  # runs of one tile merged
    assert_covers(found, 2.0, sheet, (160, 120))


@pytest.mark.parametrize("mode", ["seek", "pass"])
def test_each_cue_shows_the_keyframe_before_it_decoded_once(clips, tmp_path, monkeypatch, mode):
    decoded: list[int] = []
    real_decode = frames.decode

    def counting_decode(video, packets):
        decoded.extend(p.pts for p in packets)
        return real_decode(video, packets)

    monkeypatch.setattr(frames, "decode", counting_decode)
    sprite, sheet, found = make(clips["twelve"], tmp_path, tile_width=80, mode=mode)
    monkeypatch.undo()

    assert (sprite.cues, sprite.tiles, sprite.columns, sprite.rows) == (24, 12, 9, 2)
    assert sorted(decoded) == sorted(set(decoded)) and len(decoded) == 12
    assert [round(s) for s, _, _ in found] == list(range(12))
    assert_covers(found, 12.0, sheet, (80, 60))
    # The tile of the cue starting at k s is the keyframe at k s, not its neighbours (JPEG at
    # this size leaves a mean error of about 13; the neighbours differ by 30 and more).
    for start, _, (x, y, w, h) in found[1:-1]:
        tile = sheet.crop((x, y, x + w, y + h))
        here = difference(tile, frame_at(clips["twelve"], start, (w, h)))
        before = difference(tile, frame_at(clips["twelve"], start - 1, (w, h)))
        after = difference(tile, frame_at(clips["twelve"], start + 1, (w, h)))
        assert here < 20 < min(before, after)


def test_one_pass_and_seeking_agree_and_matroska_works(clips, tmp_path):
    seek = make(clips["twelve"], tmp_path / "a", mode="seek")
    one_pass = make(clips["twelve"], tmp_path / "b", mode="pass")
    mkv = make(clips["twelve_mkv"], tmp_path / "c")

    assert seek[2] == one_pass[2] == mkv[2]
    assert difference(seek[1], one_pass[1].convert("RGB")) < 1
    assert mkv[0].tiles == 12


def test_long_video_is_bounded_to_81_tiles(clips, tmp_path):
    sprite, sheet, found = make(clips["sixty"], tmp_path)

    assert sprite.cues == 81 and sprite.columns == 9 and sprite.tiles == 60
    assert sprite.mode == "seek"  # MP4 indexes every sample
    assert sheet.size == (9 * 64, 7 * 48)  # 64×48 video: tiles never wider than the video
    assert_covers(found, 60.0, sheet, (64, 48))
    assert len(cue_times(7200.0, 81)) == 81 and len(cue_times(3.0, 81)) == 6


def test_rotated_video_gets_upright_tiles(media, tmp_path):
    sprite, sheet, found = make(media["rotated_mp4"], tmp_path)
    assert (sprite.tile_width, sprite.tile_height) == (160, 214)
    assert_covers(found, 2.0, sheet, (160, 214))


def test_sheet_is_in_place_before_its_vtt_and_no_temporary_file_remains(media, tmp_path):
    jpg, vtt = sprite_paths(tmp_path, "0123456789abcdef")
    render_sprite(os.fsencode(media["hevc_mkv"]), str(jpg), str(vtt))

    assert jpg.stat().st_mtime_ns <= vtt.stat().st_mtime_ns
    assert sorted(p.name for p in jpg.parent.iterdir()) == [jpg.name, vtt.name]
    with pytest.raises(ValueError):
        sprite_paths(tmp_path, "../0123456789ab")


def test_video_without_frames_fails_with_a_reason(media, tmp_path):
    from services.errors import ThumbnailError

    with pytest.raises(ThumbnailError, match="^no video stream$"):
        make(media["audio_only_mp4"], tmp_path)
    with av.open(str(media["h264_mp4"])) as container:
        assert container.streams.video  # the corpus clip itself is fine
