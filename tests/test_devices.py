"""Session names from a parsed User-Agent (issue 16): what the account page calls a browser."""

from __future__ import annotations

import pytest

from services.people.devices import device_name

CASES = [
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Mobile Safari/537.36",
        "Chrome on Android",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; Quest 3) AppleWebKit/537.36 (KHTML, like Gecko) "
        "OculusBrowser/33.0.0.x SamsungBrowser/4.0 Chrome/126.0.6478.122 VR Safari/537.36",
        "Quest Browser",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Safari on iPhone",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Firefox on Windows",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
        "Chrome on Linux",
    ),
    ("", "Unknown browser"),
    ("curl/8.5.0", "curl"),
]


@pytest.mark.parametrize(("user_agent", "name"), CASES)
def test_a_session_is_named_after_its_browser_and_device(user_agent: str, name: str) -> None:
    assert device_name(user_agent) == name


def test_the_account_page_names_sessions_not_raw_user_agents(app) -> None:
    from services import db as dbmod
    from services.people import sessions
    from tests.conftest import make_user

    data = app.config["SETTINGS"].data_dir
    user = make_user(data, "viewer", "dana")
    client = app.test_client()
    db = dbmod.open_db(data)
    token = sessions.create(db, user.id, user_agent=CASES[0][0], ip="127.0.0.1")
    db.close()
    client.set_cookie("lvs_session", token)
    html = client.get("/account").get_data(as_text=True)
    assert ">Chrome on Android<" in html
