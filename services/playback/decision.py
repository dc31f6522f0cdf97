"""The play decision: direct play, remux to HLS, or transcode to HLS — with its reasons, in words.

Input: the Source (probe + facts), what THIS browser reported (`Capabilities`: the page asks
`MediaSource.isTypeSupported`/`canPlayType` for the fixed codec strings of static/js/playback.js
and sends the names that passed), and the viewer's choices (quality, audio track, subtitle to
burn in, "the original failed here"). As in Jellyfin's StreamBuilder: any video problem means a
transcode; only container and audio problems mean a remux (video copied, audio re-encoded only
when it is the audio that is wrong). A browser that reports nothing gets the conservative rule
of playability.can_play (what every browser plays).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from services.errors import InvalidInput
from services.playback.playability import CODEC_NAMES, CONTAINER_NAMES
from services.playback.source import Source, Track

# The names the page may report, each one codec string it asked about (static/js/playback.js).
CAPABILITIES = frozenset(
    {
        "mse", "hls",  # MediaSource (hls.js) and native HLS
        "mp4", "webm", "mkv", "mov",  # containers played directly
        "h264_baseline", "h264_main", "h264_high", "h264_high_l51", "h264_high10",
        "hevc", "hevc_main10", "vp8", "vp9", "vp9_10", "av1", "av1_10",
        "aac", "mp3", "opus", "flac", "vorbis", "ac3", "eac3",
    }
)  # fmt: skip
# What every browser the household uses plays: the conservative fallback (playability.can_play).
EVERY_BROWSER = frozenset(
    {"mse", "mp4", "webm", "h264_baseline", "h264_main", "h264_high", "vp9", "av1", "aac", "mp3",
     "opus", "flac", "vorbis", "vp8"}
)  # fmt: skip

QUALITIES = ("auto", "original", "max", "1080", "720", "480")
LADDER = (1080, 720, 480)  # the menu's rungs, never above the source
AUTO_CEILING = 720  # a transcode nobody asked a size of: what two cores encode in real time
SEGMENT_REMUX = 6.0  # seconds; copied video can only be cut at its keyframes
SEGMENT_TRANSCODE = 3.0  # our own keyframes: short segments start and seek fast
MAX_INDEX = 99  # stream indexes the choices may name

CONTAINER_CAP = {"mp4": "mp4", "webm": "webm", "matroska": "mkv", "mov": "mov"}
DIRECT_VIDEO = {
    "mp4": {"h264", "hevc", "vp9", "av1"},
    "mov": {"h264", "hevc"},
    "webm": {"vp8", "vp9", "av1"},
    "mkv": {"h264", "hevc", "vp8", "vp9", "av1"},
}
DIRECT_AUDIO = {
    "mp4": {"aac", "mp3", "opus", "flac", "ac3", "eac3"},
    "mov": {"aac", "mp3", "ac3", "eac3"},
    "webm": {"opus", "vorbis"},
    "mkv": {"aac", "mp3", "opus", "flac", "vorbis", "ac3", "eac3"},
}
COPY_VIDEO = frozenset({"h264"})  # what goes into our HLS (MPEG-TS, hls.py) unchanged
COPY_AUDIO = frozenset({"aac"})  # what hls.js and Safari both take from MPEG-TS


class Method(StrEnum):
    DIRECT = "direct"
    REMUX = "remux"
    TRANSCODE = "transcode"


class Reason(StrEnum):
    """Why the original is not played as it is (Jellyfin's TranscodeReason, by name)."""

    CONTAINER = "container"
    VIDEO_CODEC = "video codec"
    PROFILE = "profile"
    BIT_DEPTH = "bit depth"
    LEVEL = "level"
    INTERLACED = "interlaced"
    HDR = "hdr"
    AUDIO_CODEC = "audio codec"
    CHANNELS = "channels"
    AUDIO_TRACK = "audio track"
    SUBTITLES = "subtitles burn-in"
    QUALITY = "lower quality asked"
    DIRECT_FAILED = "direct play failed"
    ROTATION = "rotation"
    NO_REPORT = "browser reported nothing"


VIDEO_REASONS = frozenset(
    {Reason.VIDEO_CODEC, Reason.PROFILE, Reason.BIT_DEPTH, Reason.LEVEL, Reason.INTERLACED,
     Reason.HDR, Reason.SUBTITLES, Reason.QUALITY}
)  # fmt: skip


@dataclass(frozen=True)
class Capabilities:
    """The capability names a browser reported; `reported` False when it sent none at all."""

    names: frozenset[str]
    reported: bool

    def has(self, name: str) -> bool:
        return name in self.names


def parse_capabilities(value: str | None) -> Capabilities:
    """Parse `caps=` (comma-separated names from CAPABILITIES); an unknown name is InvalidInput."""
    if value is None or value == "":
        return Capabilities(EVERY_BROWSER, reported=False)
    if len(value) > 1000:
        raise InvalidInput("caps is too long")
    names = frozenset(value.split(","))
    unknown = sorted(n for n in names if n not in CAPABILITIES)
    if unknown:
        raise InvalidInput(f"unknown capability {unknown[0][:40]!r}")
    return Capabilities(names, reported=True)


@dataclass(frozen=True)
class Choice:
    """What the viewer asked for, validated against the source."""

    quality: str = "auto"
    audio: int | None = None  # an audio stream index; None: the default track
    burn: int | None = None  # a subtitle stream index to burn in
    no_direct: bool = False  # the original failed to play in this browser (runtime fallback)


def _index(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 2:  # '²' passes isdigit
        raise InvalidInput(f"{name} must be a stream number 0..{MAX_INDEX}")
    return int(value)


def parse_choice(args: Mapping[str, str], source: Source) -> Choice:
    """Parse and check the viewer's choices (q, audio, burn, nodirect) against the source."""
    quality = args.get("q") or "auto"
    if quality not in QUALITIES:
        raise InvalidInput(f"q must be one of {', '.join(QUALITIES)}")
    if quality.isdigit() and int(quality) > source.short_side:
        raise InvalidInput(f"{quality}p is above the source ({source.short_side}p)")
    audio = _index(args.get("audio"), "audio")
    if audio is not None and source.audio_track(audio) is None:
        raise InvalidInput(f"stream {audio} is not an audio track of this video")
    burn = _index(args.get("burn"), "burn")
    if burn is not None and source.subtitle_track(burn) is None:
        raise InvalidInput(f"stream {burn} is not a subtitle track of this video")
    no_direct = args.get("nodirect", "0")
    if no_direct not in ("0", "1"):
        raise InvalidInput("nodirect must be 0 or 1")
    return Choice(quality, audio, burn, no_direct == "1")


@dataclass(frozen=True)
class Output:
    """An HLS rendition: what the encoder makes. `key` names it in URLs and the cache."""

    video: str  # "copy" or "h264"
    height: int  # the shorter side of the output (0 for copy)
    audio: int | None  # audio stream index, None: no audio
    audio_copy: bool
    burn: int | None
    segment: float

    @property
    def key(self) -> str:
        v = "copy" if self.video == "copy" else f"h264-{self.height}"
        a = "an" if self.audio is None else f"a{self.audio}{'c' if self.audio_copy else 't'}"
        b = "" if self.burn is None else f"_b{self.burn}"
        return f"{v}_{a}{b}"


@dataclass(frozen=True)
class Decision:
    """How this browser plays this video, why, and in words."""

    method: Method
    reasons: tuple[Reason, ...]
    words: str  # "Transcoding HEVC 10-bit → H.264 720p: this browser has no HEVC decoder"
    output: Output | None  # None for direct play
    qualities: tuple[str, ...] = field(default=())  # the menu: original?, then heights


def decide(
    source: Source,
    caps: Capabilities,
    choice: Choice,
    *,
    max_height: int = 0,
    allow_direct: bool = True,
) -> Decision:
    """Decide direct play, remux or transcode for this source, browser and choice.

    `max_height` is what this machine encodes in real time at the source's frame rate (for the
    "max" quality a VR player asks for); 0: unknown, then the source's own size is tried.
    `allow_direct` False: an HLS rendition is wanted whatever (the master playlist).
    """
    track = source.audio_track(choice.audio) if choice.audio is not None else None
    track = track or source.default_audio()
    video_reasons = _video_reasons(source, caps)
    audio_direct = _audio_reasons(track, caps, direct=True)
    container = CONTAINER_CAP.get(source.container)
    reasons: list[Reason] = []
    if not caps.reported:
        reasons.append(Reason.NO_REPORT)
    if container is None or not caps.has(container) or not _fits(container, source, track):
        reasons.append(Reason.CONTAINER)
    reasons += video_reasons + audio_direct
    if track is not None and track != source.default_audio():
        reasons.append(Reason.AUDIO_TRACK)
    if choice.burn is not None:
        reasons.append(Reason.SUBTITLES)
    height = _asked_height(source, choice.quality, max_height)
    if choice.quality.isdigit():
        reasons.append(Reason.QUALITY)
    if choice.no_direct:
        reasons.append(Reason.DIRECT_FAILED)
    blocking = set(reasons) - {Reason.NO_REPORT}
    direct_ok = not blocking and choice.quality in ("auto", "original", "max") and allow_direct
    original = not (blocking - {Reason.QUALITY})
    qualities = (("original",) if original else ()) + tuple(
        str(h) for h in LADDER if h <= source.short_side
    )
    if direct_ok:
        return Decision(Method.DIRECT, (), "Playing the original file", None, qualities)
    segment_remux = not (set(reasons) & VIDEO_REASONS) and source.video_codec in COPY_VIDEO
    if segment_remux and source.rotation:
        segment_remux = False  # MPEG-TS has no rotation flag: turn the picture in a transcode
        reasons.append(Reason.ROTATION)
    if segment_remux and not (caps.has("mse") or caps.has("hls")):
        segment_remux = False
    audio_copy = track is not None and not _audio_reasons(track, caps, direct=False)
    if segment_remux:
        out = Output("copy", 0, track.index if track else None, audio_copy, None, SEGMENT_REMUX)
        shown = _dedupe(r for r in reasons if r != Reason.NO_REPORT) or (Reason.CONTAINER,)
        return Decision(Method.REMUX, shown, _words(Method.REMUX, source, out, shown, track, caps),
                        out, qualities)  # fmt: skip
    target = height or min(source.short_side, AUTO_CEILING)
    target = min(_even(target), _even(source.short_side))
    out = Output("h264", target, track.index if track else None, audio_copy, choice.burn,
                 SEGMENT_TRANSCODE)  # fmt: skip
    shown = _dedupe(r for r in reasons if r != Reason.NO_REPORT) or (Reason.VIDEO_CODEC,)
    return Decision(Method.TRANSCODE, shown, _words(Method.TRANSCODE, source, out, shown, track,
                    caps), out, qualities)  # fmt: skip


def signature(source: Source) -> str:
    """Return what makes two files play alike in a browser (a failed direct play is
    remembered by it): container, video codec, profile, bit depth, default audio codec."""
    audio = source.default_audio()
    parts = (source.container, source.video_codec, source.profile, str(source.bit_depth),
             audio.codec if audio else "")  # fmt: skip
    return "/".join(parts)


def _even(n: int) -> int:
    return max(2, n - n % 2)


def _asked_height(source: Source, quality: str, max_height: int) -> int:
    if quality.isdigit():
        return int(quality)
    if quality == "max":
        return min(source.short_side, max_height) if max_height else source.short_side
    return 0


def _dedupe(reasons: Iterable[Reason]) -> tuple[Reason, ...]:
    return tuple(dict.fromkeys(reasons))


def _fits(container: str, source: Source, track: Track | None) -> bool:
    """Return whether the codecs may live in this container as a browser reads it."""
    if source.video_codec not in DIRECT_VIDEO[container]:
        return source.video_codec not in _ALL_VIDEO  # an unknown codec is the codec's problem
    return track is None or track.codec in DIRECT_AUDIO[container] or track.codec not in _ALL_AUDIO


_ALL_VIDEO = set().union(*DIRECT_VIDEO.values())
_ALL_AUDIO = set().union(*DIRECT_AUDIO.values())


def _video_reasons(s: Source, caps: Capabilities) -> list[Reason]:
    codec, profile = s.video_codec, s.profile.lower()
    reasons: list[Reason] = []
    if s.interlaced:
        reasons.append(Reason.INTERLACED)
    if s.hdr:
        reasons.append(Reason.HDR)
    if codec == "h264":
        if "4:2:2" in profile or "4:4:4" in profile:
            return [Reason.PROFILE, *reasons]
        if s.bit_depth > 8 or "10" in profile:
            if caps.has("h264_high10"):
                return reasons
            return [Reason.BIT_DEPTH if _any_h264(caps) else Reason.VIDEO_CODEC, *reasons]
        need = "h264_high"
        if "baseline" in profile:
            need = "h264_baseline"
        elif profile == "main":
            need = "h264_main"
        if not caps.has(need):
            return [Reason.PROFILE if _any_h264(caps) else Reason.VIDEO_CODEC, *reasons]
        if s.level > 42 and not caps.has("h264_high_l51"):
            reasons.append(Reason.LEVEL)
        return reasons
    bits = s.bit_depth > 8
    pairs = {"hevc": ("hevc", "hevc_main10"), "vp9": ("vp9", "vp9_10"), "av1": ("av1", "av1_10"),
             "vp8": ("vp8", "vp8")}  # fmt: skip
    if codec not in pairs:
        return [Reason.VIDEO_CODEC, *reasons]
    eight, ten = pairs[codec]
    if not caps.has(eight):
        return [Reason.VIDEO_CODEC, *reasons]
    if bits and not caps.has(ten):
        return [Reason.BIT_DEPTH, *reasons]
    return reasons


def _any_h264(caps: Capabilities) -> bool:
    return any(caps.has(n) for n in ("h264_baseline", "h264_main", "h264_high"))


def _audio_reasons(track: Track | None, caps: Capabilities, *, direct: bool) -> list[Reason]:
    if track is None:
        return []
    codec = track.codec
    playable = caps.has(codec) if codec in CAPABILITIES else False
    if not direct and codec not in COPY_AUDIO:
        playable = False
    if playable:
        return []
    if (track.channels or 0) > 2:
        return [Reason.AUDIO_CODEC, Reason.CHANNELS]
    return [Reason.AUDIO_CODEC]


def codec_name(codec: str) -> str:
    return CODEC_NAMES.get(codec, codec.upper())


def _describe_video(s: Source) -> str:
    name = codec_name(s.video_codec)
    if s.bit_depth > 8:
        name += f" {s.bit_depth}-bit"
    return name


def _words(method: Method, s: Source, out: Output, reasons: tuple[Reason, ...],
           track: Track | None, caps: Capabilities) -> str:  # fmt: skip
    """Say what happens and why: "Transcoding HEVC 10-bit → H.264 720p: this browser has no …"."""
    container = CONTAINER_NAMES.get(s.container, s.container.upper())
    if method == Method.REMUX:
        what = f"Remuxing {container} → HLS (video copied"
        if track is not None and not out.audio_copy:
            what += f", {codec_name(track.codec)} audio → AAC stereo"
        what += ")"
    else:
        what = f"Transcoding {_describe_video(s)} → H.264 {out.height}p"
        if track is not None and not out.audio_copy:
            chans = f" {track.channels}ch" if (track.channels or 0) > 2 else ""
            what += f", {codec_name(track.codec)}{chans} audio → AAC stereo"
    why = [_say(r, s, track, container, caps) for r in reasons]
    return f"{what}: {'; '.join(w for w in why if w)}"


def _say(r: Reason, s: Source, track: Track | None, container: str, caps: Capabilities) -> str:
    video = codec_name(s.video_codec)
    audio = codec_name(track.codec) if track else ""
    return {
        Reason.CONTAINER: f"this browser does not play {container} files",
        Reason.VIDEO_CODEC: f"this browser has no {video} decoder",
        Reason.PROFILE: f"this browser does not play {video} {s.profile or 'of this'} profile",
        Reason.BIT_DEPTH: f"this browser has no {s.bit_depth}-bit {video} decoder",
        Reason.LEVEL: f"{video} level {s.level / 10:g} is above what this browser plays",
        Reason.INTERLACED: "the video is interlaced (deinterlaced for the browser)",
        Reason.HDR: "HDR is tone-mapped to SDR",
        Reason.AUDIO_CODEC: f"this browser has no {audio} decoder",
        Reason.CHANNELS: f"{track.channels if track else 0}-channel audio is mixed down to stereo",
        Reason.AUDIO_TRACK: "another audio track was chosen",
        Reason.SUBTITLES: "subtitles are burned in",
        Reason.QUALITY: "a quality was chosen in the menu",
        Reason.DIRECT_FAILED: "the original did not play in this browser",
        Reason.ROTATION: f"the video is shown turned {s.rotation}°",
        Reason.NO_REPORT: "",
    }[r]
