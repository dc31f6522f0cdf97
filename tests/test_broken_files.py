"""A file that is not media (issue 16: `broken.mp4`) is not a video: its card says so, the
Videos filter and the library's counts leave it out, and counts read "1 video", not "1 videos"."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import signed_in
from tests.sample_library import scan_library


def test_a_file_that_is_not_media_is_not_counted_as_a_video(app, library_dir: Path, media) -> None:
    folder = library_dir / "Mixed"
    folder.mkdir()
    shutil.copyfile(media["h264_mp4"], folder / "clip.mp4")
    shutil.copyfile(media["corrupt_mp4"], folder / "broken.mp4")
    shutil.copyfile(media["png"], folder / "still.png")
    scan_library(app.config["SETTINGS"])
    admin = signed_in(app, "admin")
    html = admin.get(f"/browse/{library_dir.name}/Mixed").get_data(as_text=True)
    broken = html[html.index('<li class="card broken') :]
    broken = broken[: broken.index("</li>")]
    assert ">broken</span>" in broken and "Not a playable file" in broken
    videos = admin.get(f"/browse/{library_dir.name}/Mixed?kind=video").get_data(as_text=True)
    assert ">clip</span>" in videos and ">broken</span>" not in videos
    assert "1 of 3 items match" in videos
    page = admin.get("/admin/performance").get_data(as_text=True)
    assert "(1 video, 1 picture)" in page
