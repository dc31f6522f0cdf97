"""Whether a browser can play an original file directly, decided from its probe, with the reason.

The rule is conservative on purpose: "yes" means every browser the household uses plays the file
as is — Chrome, Edge, Firefox, Safari (macOS, iPhone, iPad) and the Quest Browser. A file that only
some of them play gets "no" with the reason, and the watch page offers the download (and, once the
transcoding issue lands, a remux or a transcode, which for a container-only problem costs little).

- Containers: MP4 (ISO BMFF, incl. .m4v) and WebM. Matroska (.mkv) is "no" even with H.264/AAC
  inside: Chrome, Edge and the Quest Browser play many MKVs, but Safari plays none and Firefox only
  recent versions, and a file that plays on the laptop but not on the iPad is the worse surprise.
  QuickTime (.mov) is "no" for the same reason the other way round (Safari yes, Firefox often not),
  and AVI, WMV/ASF, FLV, MPEG-TS/PS, 3GP and Ogg are no browser's format.
- Video: H.264 in 8 bits (Hi10P / 4:2:2 / 4:4:4 H.264 has no decoder in Chrome or Firefox), VP9,
  AV1 (software decoders in Chrome and Firefox; Safari on recent hardware), VP8 in WebM only.
  HEVC needs transcoding: Firefox has no decoder, Chrome only with a hardware one. MPEG-4 Part 2
  (DivX/Xvid), MPEG-2, VC-1/WMV, ProRes and the rest need transcoding too.
- Audio: AAC, MP3, Opus, FLAC in MP4; Opus and Vorbis in WebM. AC-3/E-AC-3 (Dolby), DTS, TrueHD
  and PCM need transcoding: Chrome and Firefox play none of them. No audio at all is fine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

CONTAINERS = frozenset({"mp4", "webm"})
VIDEO = {
    "mp4": frozenset({"h264", "vp9", "av1"}),
    "webm": frozenset({"vp8", "vp9", "av1"}),
}
AUDIO = {
    "mp4": frozenset({"aac", "mp3", "opus", "flac"}),
    "webm": frozenset({"opus", "vorbis"}),
}
PICTURES = frozenset({"jpeg", "png", "gif", "webp", "bmp"})

CONTAINER_NAMES = {
    "matroska": "MKV",
    "mov": "MOV (QuickTime)",
    "avi": "AVI",
    "asf": "WMV/ASF",
    "flv": "FLV",
    "mpegts": "MPEG-TS",
    "mpeg": "MPEG-PS",
    "3gp": "3GP",
    "ogg": "Ogg",
    "webm": "WebM",
    "mp4": "MP4",
}
CODEC_NAMES = {
    "h264": "H.264",
    "hevc": "HEVC",
    "mpeg4": "MPEG-4 Part 2",
    "msmpeg4v2": "MS MPEG-4 v2",
    "msmpeg4v3": "MS MPEG-4 v3",
    "mpeg2video": "MPEG-2",
    "mpeg1video": "MPEG-1",
    "vc1": "VC-1",
    "wmv3": "WMV 9",
    "wmv2": "WMV 8",
    "prores": "ProRes",
    "theora": "Theora",
    "vp8": "VP8",
    "vp9": "VP9",
    "av1": "AV1",
    "ac3": "AC-3 (Dolby Digital)",
    "eac3": "E-AC-3 (Dolby Digital Plus)",
    "dts": "DTS",
    "truehd": "Dolby TrueHD",
    "wmav2": "WMA",
    "vorbis": "Vorbis",
    "opus": "Opus",
    "aac": "AAC",
    "mp3": "MP3",
    "flac": "FLAC",
}


class Playable(NamedTuple):
    """Whether the original plays directly in every browser, and if not, why (shown to the user)."""

    ok: bool
    reason: str


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _codec(codec: str) -> str:
    return CODEC_NAMES.get(codec, codec.upper())


def _container(container: str) -> str:
    return CONTAINER_NAMES.get(container, container.upper())


def can_play(media: Any, streams: Iterable[Any] = ()) -> Playable:
    """Return whether a browser can play this media's original file directly, and why not.

    `media` is a media row (mapping or object with kind, probe_status, container, video_codec,
    audio_codec); `streams` its stream rows (type, codec, profile, bit_depth), optional: with them
    10-bit H.264 is caught. Codec problems come before the container's, since they need a
    transcode while a container alone needs only a remux.
    """
    kind = _get(media, "kind") or "video"
    status = _get(media, "probe_status")
    container = (_get(media, "container") or "").lower()
    if status == "failed":
        return Playable(False, "the file could not be read as media")
    if status == "pending" or not container:
        return Playable(False, "the file has not been examined yet")
    if kind == "picture":
        if container in PICTURES:
            return Playable(True, "")
        return Playable(False, f"{container.upper()} pictures are not shown by every browser")
    video = (_get(media, "video_codec") or "").lower()
    audio = (_get(media, "audio_codec") or "").lower()
    reasons: list[str] = []
    # In a container no browser takes, judge the codecs by any container: a remux can fix that.
    any_video, any_audio = VIDEO["mp4"] | VIDEO["webm"], AUDIO["mp4"] | AUDIO["webm"]
    videos = VIDEO.get(container, any_video)
    audios = AUDIO.get(container, any_audio)
    if not video:
        reasons.append("no video stream")
    elif video not in videos:
        if video in any_video:
            reasons.append(f"{_codec(video)} video is not playable in {_container(container)}")
        else:
            reasons.append(f"{_codec(video)} video needs transcoding")
    elif video == "h264" and _high_bit_depth_h264(streams):
        reasons.append("10-bit H.264 video needs transcoding")
    if audio and audio not in audios:
        if audio in any_audio:
            reasons.append(f"{_codec(audio)} audio is not playable in {_container(container)}")
        else:
            reasons.append(f"{_codec(audio)} audio needs transcoding")
    if container not in CONTAINERS:
        reasons.append(f"container {_container(container)} is not playable in every browser")
    return Playable(not reasons, "; ".join(reasons))


def _high_bit_depth_h264(streams: Iterable[Any]) -> bool:
    for s in streams:
        if _get(s, "type") != "video" or (_get(s, "codec") or "").lower() != "h264":
            continue
        depth = _get(s, "bit_depth") or 8
        profile = (_get(s, "profile") or "").lower()
        if depth > 8 or "10" in profile or "4:2:2" in profile or "4:4:4" in profile:
            return True
    return False
