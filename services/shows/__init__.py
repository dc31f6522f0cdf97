"""Shows, seasons and movies, and the metadata people already keep beside their files.

nfo (Kodi/Jellyfin `.nfo` files read with a safe XML parser: no DTD, no entities, a size cap),
artwork (posters, fanart, season posters scaled into the data dir's cache), grouping (episodes
into shows and seasons, films into movies with their versions, from parsed names, folders and
.nfo files), quality (resolution class, HDR, codec, channels, bitrate, one figure), ingest (what
runs after a scan: read the pending sidecars, regroup what changed) and catalog (the queries the
Shows, show, season and Movies pages and the watch page's details need).

The scan writes the `sidecars` rows (services/library/sidecars.py); this package reads them.
Nothing here writes into a media folder.

May import: the shared core (db, errors, metrics), config, library (file names, sidecars,
identity), previews (the JPEG writing and picture shrinking of thumbnails) and browse (cards).
Only blueprints, cli and jobs import shows.
"""
