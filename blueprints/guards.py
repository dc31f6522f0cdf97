"""What every answer goes through before sign-in: the Host check, cross-site writes refused,
and the security headers.

Flask requests get them from `install(app)`; blueprints/media_direct.py, which answers the
media file route in front of Flask, calls the same `Guards` methods.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import socket
from urllib.parse import urlsplit

from flask import Flask, Response, request

from config import Settings

log = logging.getLogger(__name__)

# Names a DNS-rebinding attacker cannot own; "auto" trusts these, IP literals and this machine.
LOCAL_SUFFIXES = (".local", ".lan", ".home.arpa", ".internal", ".home", ".localhost")
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# On every answer; pages (text/html) get PAGE_HEADERS too.
EVERY_ANSWER = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"))
PAGE_HEADERS = (("Content-Security-Policy", CSP), ("X-Frame-Options", "DENY"))


@functools.lru_cache(maxsize=256)  # asked on every request; a few names in practice
def host_allowed(host: str, trusted: tuple[str, ...], machine: frozenset[str]) -> bool:
    """Return whether the Host header names this server, per LVS_TRUSTED_HOSTS.

    `auto` trusts IP literals, localhost, this machine's names, single-label LAN names and the
    local-only suffixes: names a DNS-rebinding page on the internet cannot point at us.
    A name Werkzeug's router cannot take (not IDNA: `a..b`, a label over 63 characters) is
    refused even with `*`: Flask could not route it, and its error page then failed (a 500).
    """
    name = host.lower()
    try:
        name.partition(":")[0].encode("idna")  # as werkzeug.routing.Map.bind does
    except UnicodeError:
        return False
    if "*" in trusted:
        return True
    if name.startswith("["):
        name = name.partition("]")[0][1:]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    name = name.rstrip(".")
    if not name:
        return False
    for entry in trusted:
        if entry == name or (entry.startswith(".") and (name.endswith(entry) or name == entry[1:])):
            return True
    if "auto" not in trusted:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return (
        name == "localhost" or name in machine or "." not in name or name.endswith(LOCAL_SUFFIXES)
    )


def _machine_names() -> frozenset[str]:
    names = {socket.gethostname().lower()}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:
        pass
    names |= {n.split(".")[0] + ".local" for n in names}
    return frozenset(names)


class Guards:
    """The checks for one app's settings (this machine's names looked up once)."""

    def __init__(self, settings: Settings) -> None:
        self.trusted = settings.trusted_hosts
        self.origins = frozenset(settings.cors_origins)
        self.machine = _machine_names()

    def host_ok(self, host: str) -> bool:
        """Return whether a Host header names this server."""
        return host_allowed(host, self.trusted, self.machine)

    def refuse_host(self, host: str, remote: str | None) -> Response | None:
        """Return the 400 for a Host header that does not name this server, else None."""
        if self.host_ok(host):
            return None
        log.warning("refused Host %r from %s", host[:100], remote)
        return Response(
            "This server does not answer to that host name; add it to LVS_TRUSTED_HOSTS.\n",
            400,
            mimetype="text/plain",
        )

    def refuse_origin(self, method: str, origin: str | None, host: str) -> Response | None:
        """Return the 403 for a cross-site write (an Origin that is neither us nor allowed)."""
        if method in UNSAFE_METHODS and origin and origin not in self.origins:
            if urlsplit(origin).netloc.lower() != host.lower():
                log.warning("refused cross-site %s from origin %r", method, origin[:100])
                return Response("Cross-site request refused.\n", 403, mimetype="text/plain")
        return None


def security_headers(response: Response) -> Response:
    """Add the headers every answer carries (and pages a CSP the templates satisfy)."""
    headers = response.headers
    page = response.mimetype == "text/html"
    for name, value in EVERY_ANSWER + PAGE_HEADERS if page else EVERY_ANSWER:
        headers.setdefault(name, value)
    return response


def install(app: Flask, settings: Settings) -> Guards:
    """Refuse foreign Host headers and cross-site writes; add security headers to every answer."""
    guards = app.extensions["guards"] = Guards(settings)

    @app.before_request
    def _check_request() -> Response | None:
        host = request.headers.get("Host", "")
        return guards.refuse_host(host, request.remote_addr) or guards.refuse_origin(
            request.method, request.headers.get("Origin"), host
        )

    app.after_request(security_headers)
    return guards
