"""Which ``Host`` a request to the local workspace may name.

The workspace listens on loopback only, and its pages need no token. A web page elsewhere can
still reach it through DNS rebinding: a name the attacker controls is made to resolve to
127.0.0.1, and the browser then sends requests, with that name as ``Host``, to this port.
Naming the host is what such a request cannot avoid, so a request is served only when its
``Host`` names the address the server is bound to or ``localhost``; any port (a proxy on this
machine forwards its own). Anything else, a missing or repeated ``Host`` included, is refused
before the token is checked or the body read.
"""

from __future__ import annotations

import ipaddress
from email.message import Message

__all__ = ["allowed_host", "host_names"]


def host_names(bound: str) -> frozenset[str]:
    """The host names a server bound to ``bound`` answers for (lower case, IPv6 bracketed)."""
    names = {"localhost", bound.lower()}
    try:
        address = ipaddress.ip_address(bound)
    except ValueError:
        return frozenset(names)
    if address.version == 6:
        names.add(f"[{address.compressed}]")
        names.discard(bound.lower())
    else:
        names.add(address.compressed)
    return frozenset(names)


def allowed_host(headers: Message, names: frozenset[str]) -> bool:
    """Whether the request's one ``Host`` header names one of ``names`` (with any port)."""
    values = headers.get_all("Host") or []
    if len(values) != 1:
        return False
    host = values[0].strip().lower()
    if host.startswith("["):  # [::1] or [::1]:8080
        name, _, rest = host.partition("]")
        name += "]"
        if rest and not (rest.startswith(":") and _port(rest[1:])):
            return False
    else:
        name, colon, port = host.partition(":")
        if colon and not _port(port):
            return False
    return name in names


def _port(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 5
