"""Reading the library for pages: folder pages in keyset order, home rows, cards, details.

browse (folder pages, home rows, neighbours, related), cards (the row → Card conversion every
list shares), details (one item as the watch page shows it).

May import: the shared core (db, errors) and playback.projection (a card's VR badge).
organize builds on browse, never the other way round.
"""
