"""What the native VR players (DeoVR, HereSphere) are told: the library's sections, one video's
fields, the HereSphere auth-token, the players' playback events and the opt-in write-back.

SPEC appendix A. The routes and the URLs (absolute, signed) are in blueprints/vr_api.py; these
modules hold the data and the rules, without Flask.

May import: the shared core (db, errors), people (accounts, tokens), organize (favourites,
ratings, tags, markers, watch state), browse (a video's details) and playback (projection,
playability, subtitle tracks) and shows (the plot from .nfo files).
"""
