"""What open pages need to stay alive without a reload (issue 19).

feed (the change log after a page's last seq: files, thumbnails, ratings and tags), activity (the
background owner's running and queued jobs, shared with every process through a small file).

May import: the shared core (db, errors), and nothing of the other domains: the change log is
written by triggers (services/db.py m0015), the activity from a plain callable.
"""
