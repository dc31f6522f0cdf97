"""Operate: what the per-request metrics cost (request id, latency and SQL counting, state files).

Ours: 500 requests of /livez (the trivial route) and of a signed-in page that runs SQL, through
the app with its request hooks; baseline: the same app with the metrics hooks taken out.
In-process (Flask test client), so the number is the hooks' cost, not the network's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.harness import Bench

REQUESTS = 500


def _app(base: Path, hooks: bool):
    from app import create_app
    from blueprints import metrics as request_metrics

    (base / "lib").mkdir(parents=True, exist_ok=True)
    app = create_app({"media_dirs": [str(base / "lib")], "data_dir": str(base / "data")})
    if not hooks:
        ours = {request_metrics.__name__}
        for funcs in (app.before_request_funcs, app.after_request_funcs):
            funcs[None] = [f for f in funcs.get(None, []) if f.__module__ not in ours]
        app.teardown_request_funcs[None] = [
            f for f in app.teardown_request_funcs.get(None, []) if f.__module__ not in ours
        ]
    return app


def _runner(app, path: str, headers: dict[str, str]):
    client = app.test_client()

    def run() -> None:  # the harness times the whole batch
        for _ in range(REQUESTS):
            client.get(path, headers=headers)

    return run


def main() -> None:
    from services import db as dbmod
    from services.people import apitokens

    base = Path(tempfile.mkdtemp(prefix="lvs-op-"))
    bench = Bench("op_hooks", "per-request metrics hooks", params={"requests": REQUESTS})
    plain = _app(base / "a", hooks=False)
    hooked = _app(base / "b", hooks=True)
    headers = {}
    for app in (plain, hooked):
        db = dbmod.open_db(app.config["SETTINGS"].data_dir)
        headers[id(app)] = {"Authorization": "Bearer " + apitokens.create(db, 1, "bench")}
        db.close()
    bench.pair("livez", _runner(plain, "/livez", {}), _runner(hooked, "/livez", {}), pairs=7)
    bench.pair(
        "home (signed in, SQL)",
        _runner(plain, "/", headers[id(plain)]),
        _runner(hooked, "/", headers[id(hooked)]),
        pairs=7,
        target=1.1,
        headline=True,
    )
    bench.finish()


if __name__ == "__main__":
    main()
