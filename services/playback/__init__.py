"""Getting media to a player: trusted open files, Range answers, and what a browser can play.

media_files (a media_hash to an open file inside a library), ranges (RFC 9110 decisions as pure
functions), playability (the conservative direct-play rule), source (the facts playing needs),
decision (direct play / remux / transcode with reasons, from what the browser reports), hls
(segment boundaries, playlists, the encoder's command line), transcoder (HLS sessions and their
encoders: start, seek, throttle, reap, cache), encoders (hardware detection, encode speed).
Subtitles and VR projection belong here too.

May import: the shared core (db, errors, ffmpeg, fsutil, metrics), config, and library.
"""
