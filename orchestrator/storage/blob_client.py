"""The Blob-endpoint client behind :class:`orchestrator.storage.adls.AdlsStorage`: credentials,
the retry policy and request counting (the ``abfss://`` URL is parsed by :mod:`orchestrator.abfss`).

``abfss://<container>@<account>.dfs.<suffix>/<prefix>`` names the place; the client talks to
``https://<account>.blob.<suffix>`` (or a connection string's ``BlobEndpoint``). Credentials, in
order: a connection string, an account key, a SAS token, else ``DefaultAzureCredential``. The
Azure SDK is imported only by :func:`open_blob_service`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline import PipelineRequest

    from orchestrator.abfss import AbfssLocation
    from orchestrator.storage.base import StorageAuth

__all__ = [
    "INSTALL_HINT",
    "MIB",
    "BlobService",
    "RequestStats",
    "RetryNotices",
    "RetrySettings",
    "one_line",
    "open_blob_service",
]

log = logging.getLogger(__name__)

INSTALL_HINT = "ADLS Gen2 storage needs the Azure SDK: pip install 'orchestrator[azure]'"
MIB = 1024 * 1024


@dataclass(frozen=True)
class RetrySettings:
    """The SDK's ``ExponentialRetry``: waits of about ``initial_backoff + increment_base**n``
    seconds (n = 1, 2...) +/- ``jitter``, up to ``total`` retries of a request (of any kind:
    connection, read, status); and the socket timeouts. The defaults wait about 3, 5, 9, 17 and
    33 s: a minute of service trouble is ridden out."""

    total: int = 5
    initial_backoff: int = 1
    increment_base: int = 2
    jitter: int = 1
    connection_timeout: float = 20.0
    read_timeout: float = 120.0


@dataclass
class RequestStats:
    """Requests sent (every attempt, retries included) and request body bytes, by method."""

    requests: int = 0
    bytes_sent: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, request: PipelineRequest[Any]) -> None:
        http = request.http_request
        length = int(http.headers.get("Content-Length") or 0)
        with self._lock:
            self.requests += 1
            self.bytes_sent += length
            self.by_method[http.method] = self.by_method.get(http.method, 0) + 1

    def reset(self) -> None:
        with self._lock:
            self.requests = self.bytes_sent = 0
            self.by_method = {}


class RetryNotices:
    """Says what the storage client retries (method, URL without its query, why, which retry
    of how many, the wait), at the first retry and then at most every ``interval`` seconds;
    a warning log line by default, which reaches stderr, masked, on a terminal and in CI."""

    def __init__(
        self,
        total: int,
        *,
        interval: float = 10.0,
        now: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.total = total
        self.interval = interval
        self.now = now
        self.say = say or log.warning
        self._last: float | None = None
        self._lock = threading.Lock()

    def __call__(self, settings: dict[str, Any], backoff: float) -> None:
        with self._lock:
            moment = self.now()
            if self._last is not None and moment - self._last < self.interval:
                return
            self._last = moment
        history = settings.get("history") or []
        last = history[-1] if history else None
        request = getattr(last, "http_request", None)
        method = getattr(request, "method", "request")
        url = str(getattr(request, "url", "")).split("?", 1)[0]
        response = getattr(last, "http_response", None)
        error = getattr(last, "error", None)
        why = (
            f"HTTP {response.status_code}"
            if response is not None
            else (one_line(error) if error is not None else "failed")
        )
        self.say(
            f"retrying storage {method} {url} ({why}): retry {settings.get('count', '?')} of "
            f"{self.total}, next in {backoff:.0f} s"
        )


def _reporting_retry(r: RetrySettings, notices: RetryNotices) -> Any:
    """The SDK's ``ExponentialRetry`` (see :class:`RetrySettings`) that tells ``notices``
    before each wait."""
    from azure.storage.blob import ExponentialRetry

    class ReportingRetry(ExponentialRetry):
        def sleep(self, settings: dict[str, Any], transport: Any) -> None:
            backoff = self.get_backoff_time(settings)
            notices(settings, backoff)
            if backoff and backoff > 0:
                transport.sleep(backoff)

    return ReportingRetry(
        initial_backoff=r.initial_backoff,
        increment_base=r.increment_base,
        retry_total=r.total,
        random_jitter_range=r.jitter,
        # each kind has its own cap (default 3), which would cut ``total`` short
        retry_connect=r.total,
        retry_read=r.total,
        retry_status=r.total,
    )


def one_line(exc: BaseException) -> str:
    code = getattr(exc, "error_code", None)
    status = getattr(exc, "status_code", None)
    text = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    first = str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
    tags = ", ".join(str(t) for t in (status, code) if t)
    return f"{first} ({tags})" if tags and str(code or "") not in first else first


@dataclass(frozen=True)
class BlobService:
    """A ``BlobServiceClient`` and what it owns (its session, a default credential)."""

    client: Any
    session: Any
    owned_credential: Any = None

    def close(self) -> None:
        self.client.close()
        self.session.close()
        if self.owned_credential is not None:
            self.owned_credential.close()


def open_blob_service(
    location: AbfssLocation,
    auth: StorageAuth,
    *,
    concurrency: int,
    retry: RetrySettings,
    block_size: int,
    stats: RequestStats,
    endpoint: str | None = None,
    credential: TokenCredential | None = None,
) -> BlobService:
    """The client for ``location``; UsageError without the SDK or with malformed credentials."""
    try:
        return _open(location, auth, concurrency, retry, block_size, stats, endpoint, credential)
    except ImportError as exc:
        raise UsageError(f"{INSTALL_HINT} ({exc.name} is missing)") from None
    except ValueError as exc:  # a malformed connection string or key
        raise UsageError(f"storage credentials for {location.url()}: {one_line(exc)}") from None


def _client_options(
    concurrency: int, r: RetrySettings, block_size: int, stats: RequestStats
) -> tuple[Any, dict[str, Any]]:
    """The pooled session and the client options every ``BlobServiceClient`` here gets."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from urllib3.util.retry import Retry

    # one pooled session sized for the thread pool; urllib3's own retries off (the SDK's retry
    # policy is the only one, so attempts are counted and backed off in one place)
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=4,
        pool_maxsize=concurrency + 2,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    options: dict[str, Any] = {
        "transport": RequestsTransport(
            session=session,
            session_owner=False,
            connection_timeout=r.connection_timeout,
            read_timeout=r.read_timeout,
        ),
        "retry_policy": _reporting_retry(r, RetryNotices(r.total)),
        "max_single_put_size": block_size,
        "max_block_size": block_size,
        "max_single_get_size": block_size,
        "max_chunk_get_size": block_size,
        "raw_request_hook": stats.record,
    }
    return session, options


def _open(
    location: AbfssLocation,
    auth: StorageAuth,
    concurrency: int,
    r: RetrySettings,
    block_size: int,
    stats: RequestStats,
    endpoint: str | None,
    credential: TokenCredential | None,
) -> BlobService:
    from azure.storage.blob import BlobServiceClient

    session, options = _client_options(concurrency, r, block_size, stats)
    if auth.connection_string:
        client = BlobServiceClient.from_connection_string(auth.connection_string, **options)
        name = getattr(client, "account_name", None)
        if name and name != location.account:
            raise ValueError(
                f"the connection string is for account {name}, the URL names {location.account}"
            )
        return BlobService(client, session)
    url = endpoint or location.blob_endpoint
    if auth.account_key:
        from azure.core.credentials import AzureNamedKeyCredential

        key = AzureNamedKeyCredential(location.account, auth.account_key)
        return BlobService(BlobServiceClient(url, credential=key, **options), session)
    if auth.sas_token:
        from azure.core.credentials import AzureSasCredential

        sas = AzureSasCredential(auth.sas_token.lstrip("?"))
        return BlobService(BlobServiceClient(url, credential=sas, **options), session)
    owned = None
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = owned = DefaultAzureCredential()
    return BlobService(BlobServiceClient(url, credential=credential, **options), session, owned)
