"""Subtitles: a video's tracks (embedded and sidecar), WebVTT conversion, extraction, preferences.

tracks (what a video has, sidecars read and checked), convert (any encoding and format to
WebVTT), extract (embedded text streams in one ffmpeg pass, cached), prefs (each person's choice,
carried to the next video). Sidecars are found by the scan: services.library.subtitle_files.

May import: as services.playback.
"""
