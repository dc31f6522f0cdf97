"""HLS for one rendition: its segment boundaries, its playlists, and its ffmpeg command line.

Segments are MPEG-TS, cut by ffmpeg's segment muxer at a list of times (decision: TS, not fMP4).
Why: copied video can only be cut at its own keyframes, and the HLS muxer cuts "at the first
keyframe `hls_time` after the start of this run", so a run restarted at segment 40 would cut
elsewhere than the run that began at 0 and the segments of two runs would not line up. The
segment muxer cuts at the exact times it is given, so every run — from 0, after a seek, on
another machine — writes byte-compatible segments with the same names and timestamps, and a
TS segment needs no init file that would have to match across runs. hls.js (transmuxing in a
worker) and Safari both play it. The cost: no HEVC copy (hls.js plays HEVC only in fMP4), so an
HEVC source is transcoded even where the browser has an HEVC decoder.

- Transcodes: fixed 3 s segments, keyframes forced at each boundary (`-force_key_frames`,
  `-sc_threshold 0`), output timestamps = position in the video (`-output_ts_offset`).
- Remux: boundaries at the source's keyframes nearest below every 6 s (read with PyAV seeks once
  per file version, kept in the play index),
  `-copyts` so timestamps are the source's own, the same in every run.
- A run writes only into its own folder, lists each finished segment in a CSV
  (`-segment_list`), and a segment is served only once listed: never a partial one.

Every argument comes from the Source, the Output (server-side enums and bounded numbers) and
paths the server made; the input is `/proc/self/fd/N` of the trusted open file (no library path
in any argv). The command line is built with ffmpeg-python and compiled to a list.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import av
import ffmpeg

from services.playback import encoders, playindex
from services.playback.decision import Output
from services.playback.source import Source

log = logging.getLogger(__name__)

SEGMENT_EXT = "ts"
BITMAP_SUBTITLES = frozenset({"hdmv_pgs_subtitle", "dvd_subtitle", "dvb_subtitle", "xsub"})
H264_PRESET = encoders.H264_PRESET
H264_CRF = encoders.H264_CRF
AUDIO_BITRATE = "160k"
MAX_SEGMENTS = 100_000  # ~83 h at 3 s: a duration beyond is refused


def boundaries(source: Source, output: Output, fd: int, index: Path | None) -> list[float]:
    """Return the start of every segment, in seconds from the start of the video.

    Transcode: every `output.segment` seconds. Remux: keyframe times, read once per file
    version and kept in the play index under `index` (services/playback/playindex.py), which
    outlives the rendition's cache; None: read them now.
    """
    if output.video != "copy":
        # A last sliver under 0.25 s (audio priming past the video) joins the segment before.
        count = max(1, math.ceil((source.duration - 0.25) / output.segment))
        return [round(i * output.segment, 6) for i in range(min(count, MAX_SEGMENTS))]
    key = f"keyframes/{source.video_index}-{output.segment:g}"
    found = playindex.fact(index, source.media_hash, source.version, key,
                           lambda: keyframe_boundaries(f"/proc/self/fd/{fd}", source, output.segment))  # fmt: skip
    try:
        return [float(x) for x in found]
    except (TypeError, ValueError):  # a damaged record: read them again
        return keyframe_boundaries(f"/proc/self/fd/{fd}", source, output.segment)


def keyframe_boundaries(path: str, source: Source, every: float) -> list[float]:
    """Return 0 and, for each multiple of `every`, the last keyframe at or before it (seconds
    from the start), without decoding: one index seek and one packet read per boundary."""
    found = [0.0]
    with av.open(path, "r", timeout=10) as container:
        stream = next(s for s in container.streams if s.index == source.video_index)
        base = stream.time_base
        start = container.start_time / av.time_base if container.start_time else 0.0
        t = every
        while t < source.duration - 0.5 and len(found) < MAX_SEGMENTS:
            container.seek(int((t + start) / base), stream=stream, backward=True)
            key = None
            for packet in container.demux(stream):
                if packet.pts is not None and packet.is_keyframe:
                    key = float(packet.pts * base) - start
                    break
            if key is not None and key > found[-1] + 0.5:
                found.append(round(key, 6))
            t = max(t + every, (key or 0) + every)
    return found


def media_playlist(bounds: list[float], duration: float, query: str) -> str:
    """Return the VOD media playlist: every segment, written up front from the duration."""
    lengths = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
    lengths.append(max(0.04, duration - bounds[-1]))
    target = math.ceil(max(lengths))
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]  # fmt: skip
    suffix = f"?{query}" if query else ""
    for i, length in enumerate(lengths):
        lines.append(f"#EXTINF:{length:.6f},")
        lines.append(f"{i}.{SEGMENT_EXT}{suffix}")
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def master_playlist(source: Source, output: Output, variant: str) -> str:
    """Return the master playlist naming the one rendition chosen (the menu switches them)."""
    if output.video == "copy":
        width, height = source.width, source.height
        bandwidth = 8_000_000
    else:
        width, height = scaled_size(source, output.height)
        bandwidth = int(width * height * min(source.fps, 60) * 0.12) + 200_000
    codecs = "avc1.640028" + (",mp4a.40.2" if output.audio is not None else "")
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n"
        f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={width}x{height},CODECS="{codecs}"\n'
        f"{variant}\n"
    )


def scaled_size(source: Source, short: int) -> tuple[int, int]:
    """Return the displayed width and height when the shorter side becomes `short`."""
    w, h = source.width, source.height
    if short >= min(w, h):
        return w - w % 2, h - h % 2
    if w >= h:
        return max(2, round(w * short / h / 2) * 2), short
    return short, max(2, round(h * short / w / 2) * 2)


def encoder_args(
    source: Source,
    output: Output,
    bounds: list[float],
    start: int,
    run_dir: Path,
    input_fd: int,
    encoder: str = "libx264",
    device: str = "",
) -> list[str]:
    """Return ffmpeg's arguments for a run that writes segments `start`… into run_dir.

    The input is /proc/self/fd/`input_fd`: the process inherits the trusted open file there.
    A hardware `encoder` (services/playback/encoders.py) opens `device` and gets its frames
    uploaded at the end of the filter graph.
    """
    hw_globals, hw_filters, _ = encoders.hardware_args(encoder, device)
    at = bounds[start]
    src = f"file:/proc/self/fd/{input_fd}"
    inp = ffmpeg.input(src, ss=f"{at:.6f}") if at > 0 else ffmpeg.input(src)
    streams = []
    opts: dict[str, object] = {"map_metadata": -1, "map_chapters": -1}
    if output.video == "copy":
        streams.append(inp[str(source.video_index)])
        opts.update({"c:v": "copy", "copyts": None})
        times = [b - at for b in bounds[start + 1 :]]
    else:
        video = _video_graph(inp, source, output, at, input_fd)
        for name, options in hw_filters:
            video = video.filter(name, **options)
        streams.append(video)
        keyframes = f"expr:gte(t,n_forced*{output.segment:g})"
        opts.update(_video_codec(encoder))
        opts.update({"force_key_frames": keyframes, "output_ts_offset": f"{at:.6f}"})
        times = []
    if output.audio is not None:
        streams.append(inp[str(output.audio)])
        if output.audio_copy:
            opts["c:a"] = "copy"
        else:
            opts.update({"c:a": "aac", "ac": 2, "b:a": AUDIO_BITRATE})
    segment: dict[str, object] = {
        "max_muxing_queue_size": 2048,
        "muxdelay": 0,
        "muxpreload": 0,
        "f": "segment",
        "segment_format": "mpegts",
        "segment_start_number": start,
        "segment_list_type": "csv",
        "segment_list": f"file:{run_dir / 'list.csv'}",
    }
    if output.video == "copy":
        if times:
            segment["segment_times"] = ",".join(f"{t:.6f}" for t in times)
        else:
            segment["segment_time"] = 86_400 * 365  # the last segment: no cut
    else:
        segment["segment_time"] = f"{output.segment:g}"
    out = ffmpeg.output(*streams, f"file:{run_dir}/%d.{SEGMENT_EXT}", **opts, **segment)
    args = out.global_args("-loglevel", "warning", "-nostats", *hw_globals).compile(cmd=[])
    return [str(a) for a in args]


def _video_codec(encoder: str) -> dict[str, object]:
    hardware = encoders.hardware_args(encoder, "")[2]
    if hardware:
        return hardware
    return {"c:v": "libx264", "preset": H264_PRESET, "crf": H264_CRF, "profile:v": "high",
            "sc_threshold": 0}  # fmt: skip


def _video_graph(inp: ffmpeg.nodes.FilterableStream, source: Source, output: Output,
                 at: float, input_fd: int) -> ffmpeg.nodes.FilterableStream:  # fmt: skip
    """Filters: burn-in, deinterlace, tone map, scale, 8-bit 4:2:0. Rotation is applied by
    ffmpeg's autorotate before these, so sizes here are as displayed."""
    video = inp[str(source.video_index)]
    if output.burn is not None:
        track = source.subtitle_track(output.burn)
        order = [s.index for s in source.subtitles].index(output.burn)
        if track is not None and track.codec in BITMAP_SUBTITLES:
            video = ffmpeg.filter([video, inp[str(output.burn)]], "overlay", eof_action="pass")
        else:
            # The subtitles filter reads the file from its start and times cues by the frames'
            # timestamps, which the input seek set back to 0: shift them there and back.
            video = video.filter("setpts", f"PTS+{at:.6f}/TB")
            video = video.filter("subtitles", f"/proc/self/fd/{input_fd}", si=order)
            video = video.filter("setpts", f"PTS-{at:.6f}/TB")
    if source.interlaced:
        video = video.filter("yadif", mode=0, deint="interlaced")
    if source.hdr:
        video = (
            video.filter("zscale", t="linear", npl=100)
            .filter("format", "gbrpf32le")
            .filter("zscale", p="bt709")
            .filter("tonemap", tonemap="hable", desat=0)
            .filter("zscale", t="bt709", m="bt709", r="tv")
        )
    width, height = scaled_size(source, output.height)
    video = video.filter("scale", width, height)
    return video.filter("format", "yuv420p")


def finished_segments(run_dir: Path) -> list[int]:
    """Return the numbers of the segments a run has finished (listed in its CSV), in order."""
    try:
        text = (run_dir / "list.csv").read_text()
    except OSError:
        return []
    done = []
    for line in text.splitlines():
        name = line.split(",", 1)[0]
        stem, _, ext = name.partition(".")
        if ext == SEGMENT_EXT and stem.isdigit():
            done.append(int(stem))
    return done
