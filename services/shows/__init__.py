"""Shows, seasons and movies, and the metadata people already keep beside their files.

Reading what lies beside the media: nfo (Kodi/Jellyfin `.nfo` files read with a safe XML
parser: no DTD, no entities, a size cap), artwork (posters, fanart, season posters scaled into
the data dir's cache), ingest (what runs after a scan: read the pending sidecars, regroup what
changed). Grouping: names (title keys, sort titles, season folders, multi-episode files),
classify (what a file is: an episode, a film or neither, and the show or movie it joins),
grouping (writing the groups and keeping their counts, pictures and genres), quality
(resolution class, HDR, codec, channels, bitrate, one figure). Pages: grid (the Shows and Movies
grids' keyset pages, sorts and filters), seasons (a show's and a season's pages: episodes, next
up), metadata (what an .nfo says, the VR APIs' description), upnext (episode order for the
player, a title's versions) and choose (which version this browser plays best).

The scan writes the `sidecars` rows (services/library/sidecars.py); this package reads them.
Nothing here writes into a media folder.

May import: the shared core (db, errors, metrics), config, library (file names, sidecars,
identity), previews (the JPEG writing and picture shrinking of thumbnails), browse (cards) and
playback (the play decision, for choose). Only blueprints, cli, jobs and vrapi import shows.
"""
