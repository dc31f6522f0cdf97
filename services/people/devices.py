"""Name a browser session for people: "Chrome on Android", "Quest Browser", "Safari on iPhone".

The User-Agent is parsed by ua-parser (the Python port of uap-core's maintained rules, pinned in
requirements.txt), never by regexes of our own.
"""

from __future__ import annotations

from functools import lru_cache

from ua_parser import parse

# uap-core's family names, shortened to what a person calls the browser.
_BROWSERS = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Android WebView",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Oculus Browser": "Quest Browser",
    "Samsung Internet": "Samsung Internet",
}
# Devices that name the place better than their OS does (a Quest runs Android).
_DEVICES = {"iPhone", "iPad", "Quest"}


@lru_cache(maxsize=256)
def device_name(user_agent: str) -> str:
    """Return a short, readable name for the browser and device of a User-Agent string."""
    if not user_agent.strip():
        return "Unknown browser"
    result = parse(user_agent)
    browser = result.user_agent.family if result.user_agent else None
    browser = _BROWSERS.get(browser, browser) if browser and browser != "Other" else None
    device = result.device.family if result.device else None
    os = result.os.family if result.os and result.os.family != "Other" else None
    if browser == "Quest Browser":
        return browser
    place = device if device in _DEVICES else os
    if browser and place:
        return f"{browser} on {place}"
    if browser or place:
        return browser or place or ""
    return user_agent[:40].strip() or "Unknown browser"
