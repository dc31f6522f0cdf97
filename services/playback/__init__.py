"""Getting media to a player: trusted open files, Range answers, and what a browser can play.

media_files (a media_hash to an open file inside a library), ranges (RFC 9110 decisions as pure
functions), playability (direct play or not, with the reason). Transcoding, subtitles and VR
projection belong here too.

May import: the shared core (db, errors, ffmpeg, fsutil, metrics), config, and library.
"""
