"""One plain try of a JSON ``POST`` for bulk, idempotent calls (cleanup's folder deletes).

Through databricks-sdk a request costs about 0.9 ms of client CPU on a 2-core CI agent: the
SDK's retry wrapper, then ``requests`` preparing it (URL requoting, header validation, cookie
merging, hooks). Through a bare ``urllib3`` pool the same request costs about 0.3 ms. A cleanup
of hundreds of builds sends one delete per build, 16 at a time, and on two cores that CPU, not
the round trips, set its pace (``bench/cleanup_builds.py``).

So :class:`PlainPost` sends such a call once, with the SDK's own auth headers
(``Config.authenticate()``, which refreshes OAuth tokens as the SDK does), user agent and
timeout. A 200 is done, and a 404 is "not found" where the caller says so. Anything else goes
back to the caller, which sends the call through the SDK as before: its retries, the retry
reporter's budgets and messages, and its error mapping stay the one path for every answer but
those two (the calls are idempotent, so a second try is safe). A workspace that pushes back
(429, a 5xx) or does not answer turns the plain path off for the rest of the client's life:
from then on, every call takes the SDK's careful path.

It is used only where the SDK's session would go straight to the host: no proxy for it, and
the same CA bundle. ``urllib3`` is already installed (``requests`` is built on it).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import urllib3
    from databricks.sdk.config import Config

__all__ = ["PlainPost", "plain_post_for"]

log = logging.getLogger(__name__)

#: a host that does not accept a connection this fast gets the SDK's path, and its budgets
_CONNECT_TIMEOUT = 5.0


class PlainPost:
    """``POST`` JSON to ``host`` once; the answer's status (see the module docstring)."""

    def __init__(
        self,
        host: str,
        *,
        headers: Callable[[], Mapping[str, str]],
        user_agent: str,
        pool_size: int,
        timeout: float,
        ca_certs: str | None = None,
    ) -> None:
        import urllib3

        self.host = host.rstrip("/")
        self._headers = headers
        self._user_agent = user_agent
        self._lock = threading.Lock()
        #: False once the workspace pushed back or did not answer (see the module docstring)
        self.enabled = True
        # block: a thread beyond the pool's size waits for a connection instead of opening
        # one that is thrown away after ("Connection pool is full, discarding connection")
        self._pool: urllib3.PoolManager = urllib3.PoolManager(
            num_pools=1,
            maxsize=max(1, pool_size),
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=min(_CONNECT_TIMEOUT, timeout), read=timeout),
            ca_certs=ca_certs,
        )

    def __call__(self, path: str, body: Mapping[str, Any]) -> int | None:
        """The HTTP status the workspace answered; None when it was not asked (the plain path
        is off) or did not answer. Only 200 is success: the caller sends any other call
        through the SDK, which maps the error (404 aside, a caller may take as "not found")."""
        if not self.enabled:
            return None
        import urllib3

        try:
            auth = dict(self._headers())
        except Exception:  # noqa: BLE001 - the SDK's path meets it again, and reports it
            self._turn_off("the credentials failed")
            return None
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
            **auth,
        }
        try:
            answer = self._pool.request(
                "POST", self.host + path, body=json.dumps(body).encode(), headers=headers
            )
        except urllib3.exceptions.HTTPError as exc:
            self._turn_off(f"{type(exc).__name__}")
            return None
        if answer.status == 429 or answer.status >= 500:
            self._turn_off(f"HTTP {answer.status}")
        return int(answer.status)

    def _turn_off(self, why: str) -> None:
        with self._lock:
            if self.enabled:
                self.enabled = False
                log.debug("plain POSTs to %s off after %s: the SDK sends the rest", self.host, why)


def plain_post_for(config: Config, session: Any, *, pool_size: int) -> PlainPost | None:
    """A :class:`PlainPost` to the workspace of ``config``, or None where the SDK's session
    would not go straight to it (a proxy for the host, TLS verification off, a client
    certificate, no host)."""
    host = config.host or ""
    if urlsplit(host).scheme not in ("http", "https"):
        return None
    proxies = getattr(session, "proxies", None) or {}
    verify = getattr(session, "verify", True)
    if any(proxies.values()) or verify is False or getattr(session, "cert", None):
        return None
    return PlainPost(
        host,
        headers=config.authenticate,
        user_agent=str(config.user_agent),
        pool_size=pool_size,
        timeout=float(config.http_timeout_seconds or 60),
        ca_certs=verify if isinstance(verify, str) else _requests_bundle(),
    )


def _requests_bundle() -> str:
    """The CA bundle ``requests`` verifies with by default (certifi's), so both paths trust
    the same authorities."""
    from requests.utils import DEFAULT_CA_BUNDLE_PATH

    return str(DEFAULT_CA_BUNDLE_PATH)
