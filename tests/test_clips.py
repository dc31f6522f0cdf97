"""Preview clips on real videos: snippets from where the plan says, the frame as shown, the
route, the CLI, the queue's place for them, and bad files failing with a reason."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageStat

from services import db as dbmod
from services.errors import ThumbnailError
from services.ffmpeg import file_arg
from services.previews import clips, frames, previews
from services.previews.queue import JobQueue, Priority
from tests.mediagen import X264, ffmpeg, make_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 60 s 320×240 clip (keyframe every second) and a 2 s anamorphic one (2:1 pixels)."""
    root = tmp_path_factory.mktemp("clips")
    sixty = make_video(root / "sixty.mp4", vcodec=X264, seconds=60)
    with_sound = make_video(root / "sound.mp4", vcodec=X264, acodec=["aac"], seconds=60)
    ts = root / "sixty.ts"  # MPEG-TS: no index, timestamps from 1.4 s, audio a little earlier
    ffmpeg("-i", file_arg(with_sound), "-c", "copy", "-f", "mpegts", file_arg(ts))
    return {
        "sixty": sixty,
        "sixty_ts": ts,
        "wide_pixels": make_video(root / "wide.mp4", vcodec=X264, vfilter="setsar=2"),
    }


def keyframes(path: Path) -> tuple[list[Image.Image], float, tuple[int, int]]:
    """Return a clip's keyframes (each snippet starts with one), its length and its size."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        found = [f.to_image() for f in container.decode(stream) if f.key_frame]
        size = (stream.codec_context.width, stream.codec_context.height)
        return found, container.duration / av.time_base, size


def frame_at(path: Path, seconds: float, size: tuple[int, int]) -> Image.Image:
    with frames.open_video(path) as video:
        packet = frames.seek_keyframe(video, seconds)
        [frame] = frames.decode(video, [packet])
        return frames.to_image(video, frame, *size)


def difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b)).mean) / 3


def test_the_plan_spreads_snippets_over_the_middle_and_keeps_short_videos_whole():
    assert clips.plan(2.0) == [(0.0, 2.0)]
    assert clips.plan(13.0) == [(0.0, clips.CLIP_SECONDS)]
    hour = clips.plan(3600.0)
    assert len(hour) == clips.SNIPPETS == 12 and all(s == 0.75 for _, s in hour)
    assert hour[0][0] > 0.05 * 3600 and hour[-1][0] + 0.75 < 0.95 * 3600
    gaps = {round(b[0] - a[0], 3) for a, b in zip(hour, hour[1:], strict=False)}
    assert gaps == {270.0}  # evenly spaced: 90 % of an hour over twelve
    assert len(clips.plan(20.0)) == 12 and len(clips.plan(15.0)) == 9  # never closer than 0.75 s
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ThumbnailError, match="unknown duration"):
            clips.plan(bad)


@pytest.mark.parametrize("key", ["sixty", "sixty_ts"])
def test_each_snippet_starts_at_the_keyframe_of_its_place(videos, tmp_path, key):
    dest = clips.clip_path(tmp_path, "0123456789abcdef")
    made = clips.render_clip(os.fsencode(videos[key]), str(dest))

    assert made.snippets == 12 and made.seconds == 9.0 and made.size == dest.stat().st_size
    found, length, size = keyframes(dest)
    plan = clips.plan(60.0)
    assert size == (320, 240)  # smaller than the box: never enlarged
    assert 8.8 <= length <= 9.5 and len(found) == 12
    # Snippet k starts at the keyframe PyAV found for its planned start: in an MP4 the one at or
    # before it (a keyframe a second); MPEG-TS seeks by timestamps, so within a keyframe of it.
    with frames.open_video(videos[key]) as video:
        first = video.container.start_time / av.time_base
        starts = [at - (video.start - first) for at, _ in clips.keyframe_starts(video, plan)]
    for image, at, (planned, _) in zip(found, starts, plan, strict=True):
        second = round(at)
        assert second == int(planned) if key == "sixty" else abs(second - planned) <= 1
        here = difference(image, frame_at(videos["sixty"], second, size))
        elsewhere = min(
            difference(image, frame_at(videos["sixty"], second + d, size)) for d in (-1, 1)
        )
        assert here < 12 < elsewhere, (planned, at, here, elsewhere)
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]  # no temporary left


def test_the_frame_is_shown_as_the_video_is_upright_with_square_pixels(media, videos, tmp_path):
    rotated = tmp_path / "rotated.mp4"
    clips.render_clip(os.fsencode(media["rotated_mp4"]), str(rotated))
    assert keyframes(rotated)[2] == (240, 320)  # stored 320×240, shown turned
    wide = tmp_path / "wide.mp4"
    clips.render_clip(os.fsencode(videos["wide_pixels"]), str(wide))
    assert keyframes(wide)[2] == (480, 180)  # shown 640×240: fitted in 480
    big = tmp_path / "vr.mp4"
    clips.render_clip(os.fsencode(videos["sixty"]), str(big), box=160)
    assert keyframes(big)[2] == (160, 120)


@pytest.mark.parametrize("key", ["name_concat", "name_dash_vf", "name_bad_utf8"])
def test_names_that_look_like_ffmpeg_syntax_are_just_files(media, tmp_path, key):
    dest = tmp_path / "clip.mp4"
    made = clips.render_clip(os.fsencode(media[key]), str(dest))
    assert made.snippets == 1 and keyframes(dest)[1] == pytest.approx(2.0, abs=0.2)


@pytest.mark.parametrize(
    "key, reason",
    [("corrupt_mp4", "not a media file"), ("audio_only_mp4", "no video stream")],
)
def test_bad_files_fail_with_a_reason_and_leave_nothing(media, tmp_path, key, reason):
    dest = clips.clip_path(tmp_path, "0123456789abcdef")
    with pytest.raises(ThumbnailError, match=reason):
        clips.render_clip(os.fsencode(media[key]), str(dest))
    assert not dest.parent.exists() or not any(dest.parent.iterdir())


def test_past_its_deadline_ffmpeg_is_stopped_and_nothing_is_left(videos, tmp_path):
    dest = tmp_path / "clips" / "clip.mp4"
    with pytest.raises(ThumbnailError, match="timed out|ran out of time"):
        clips.render_clip(os.fsencode(videos["sixty"]), str(dest), timeout=0.05)
    assert not any(dest.parent.iterdir())


def test_clips_wait_for_every_other_job_and_leave_a_worker_free():
    queue = JobQueue(workers=2, mark=0, feed=False, paused=False)
    media = [previews.Target(n, f"{n:016x}", "video") for n in range(1, 5)]
    with queue.cv:  # pop and finished run under the queue's lock, as the runner does
        queue.add("clip", media[0], Priority.NEW)
        queue.add("clip", media[1], Priority.NEW)
        queue.add("sprite", media[2], Priority.BACKLOG)
        first = queue.pop()
        assert (first.kind, first.priority) == (
            "sprite",
            Priority.BACKLOG,
        )  # a backlog sprite first
        clip = queue.pop()
        assert clip.kind == "clip" and clip.target == media[0].media_hash
        assert queue.pop() is None  # one clip at a time with two workers: the other stays free
        queue.add("thumbnail", media[3], Priority.VISIBLE)
        assert queue.pop().kind == "thumbnail"  # a page's thumbnail finds the free worker
        queue.finished(clip, "done")
        assert queue.pop().target == media[1].media_hash


def test_the_route_and_the_cli(app, runner, media, library_dir, admin_client):
    shutil.copy2(media["h264_mp4"], library_dir / "a.mp4")
    shutil.copy2(media["jpeg_exif"], library_dir / "b.jpg")
    assert runner.invoke(args=["scan"]).exit_code == 0  # thumbnails and sprites, no clips
    db = dbmod.open_db(app.config["SETTINGS"].data_dir)
    [video] = [r[0] for r in db.execute("SELECT media_hash FROM media WHERE kind = 'video'")]
    [picture] = [r[0] for r in db.execute("SELECT media_hash FROM media WHERE kind = 'picture'")]
    db.close()
    assert admin_client.get(f"/media/{video}/clip.mp4").status_code == 404  # not made yet

    off = runner.invoke(args=["thumbnails", "--no-clips"])
    assert off.exit_code == 0 and ": 0 made, 0 failed, 3 skipped" in off.output
    made = runner.invoke(args=["thumbnails", "--clips"])
    assert made.exit_code == 0, made.output
    assert "Preview clips" in made.output and ": 1 made, 0 failed, 3 skipped" in made.output

    whole = admin_client.get(f"/media/{video}/clip.mp4")
    assert whole.status_code == 200 and whole.mimetype == "video/mp4"
    assert whole.headers["Cache-Control"].endswith("immutable")
    part = admin_client.get(f"/media/{video}/clip.mp4", headers={"Range": "bytes=4-11"})
    assert part.status_code == 206 and part.data == whole.data[4:12] == b"ftypisom"
    for missing in (picture, "ffffffffffffffff", "..%2f..%2fetc"):
        assert admin_client.get(f"/media/{missing}/clip.mp4").status_code == 404
    again = runner.invoke(args=["thumbnails", "--clips"])
    assert ": 0 made, 0 failed, 4 skipped" in again.output
    # The dashboard counts them with the other previews.
    assert admin_client.get("/admin/performance.json").get_json()["library"]["previews"] == {
        "thumbnail:ok": 2,
        "sprite:ok": 1,
        "clip:ok": 1,
    }
    page = admin_client.get("/admin/performance").get_data(as_text=True)
    assert "thumbnail 2, sprite 1, clip 1" in page


def test_the_setting_decides_what_the_server_and_the_cli_make(tmp_path, media):
    from app import create_app
    from config import load_settings
    from services.errors import ConfigError

    off = load_settings({"preview_clips": "off"}, environ={}, dotenv_path=tmp_path / "none")
    on = load_settings({}, environ={}, dotenv_path=tmp_path / "none")
    assert on.preview_clips is True and off.preview_clips is False
    assert previews.background_kinds(off) == ("thumbnail", "sprite")
    assert previews.background_kinds(on) == ("thumbnail", "sprite", "clip")
    with pytest.raises(ConfigError, match="LVS_PREVIEW_CLIPS .*'sometimes' is not on or off"):
        load_settings({}, environ={"LVS_PREVIEW_CLIPS": "sometimes"}, dotenv_path=tmp_path / "x")

    library = tmp_path / "library"
    library.mkdir()
    shutil.copy2(media["h264_mp4"], library / "a.mp4")
    data = tmp_path / "data"
    app = create_app({"media_dirs": [str(library)], "data_dir": str(data), "preview_clips": "off"})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["scan"]).exit_code == 0
    assert runner.invoke(args=["thumbnails"]).exit_code == 0
    assert not (data / "clips").exists()  # off: `flask thumbnails` makes none either
    made = runner.invoke(args=["thumbnails", "--clips"])  # unless asked
    assert made.exit_code == 0 and ": 1 made" in made.output
    assert len(list((data / "clips").rglob("*.mp4"))) == 1
