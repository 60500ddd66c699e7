"""A stand-in for Azure Key Vault's secrets endpoint, for tests.

Why a test double: no Key Vault emulator exists, and the real ``SecretClient`` refuses plain
http (bearer tokens only travel over TLS). So this is a small HTTPS server on 127.0.0.1 with a
self-signed certificate made per test session (``cryptography``, installed with
azure-identity), speaking the part of the protocol the client uses:

- a request without a token gets the bearer challenge: ``401`` with
  ``WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>",
  resource="https://vault.azure.net"``;
- ``GET /secrets/<name>`` with the expected token: ``200 {"value": ..., "id": ...}``, ``404
  SecretNotFound``, or ``403 Forbidden`` for names listed as forbidden.

The client must be built with ``verify_challenge_resource=False`` (the challenge names
vault.azure.net, the server is 127.0.0.1) and told to trust the certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

TENANT = "00000000-0000-0000-0000-000000000000"
TOKEN = "kv-test-access-token"  # what the fake credential hands out
CHALLENGE = (
    f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
    'resource="https://vault.azure.net"'
)


def self_signed_cert(folder: Path, *names: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, localhost and ``names`` and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    *(x509.DNSName(n) for n in ("localhost", *names)),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class KeyVaultDouble:
    url: str
    cert: Path
    secrets: dict[str, str]
    forbidden: set[str] = field(default_factory=set)
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, authorization)


class FakeCredential:
    """A ``TokenCredential`` test double: a fixed token, and the scopes it was asked for."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


@contextmanager
def key_vault(
    folder: Path,
    secrets: dict[str, str],
    *,
    forbidden: set[str] | None = None,
    host: str = "127.0.0.1",
    resource: str | None = None,
) -> Iterator[KeyVaultDouble]:
    """The double, listening on 127.0.0.1; ``host`` is the name its URL and certificate give
    (a name other than 127.0.0.1 must be resolved by the test), ``resource`` the challenge's
    resource (``{port}`` is filled in; default ``https://vault.azure.net``)."""
    cert, key = self_signed_cert(folder, host)
    state: dict[str, KeyVaultDouble] = {}
    challenge: list[str] = [CHALLENGE]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict[str, Any], **headers: str) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            vault = state["vault"]
            path = urlsplit(self.path).path
            auth = self.headers.get("Authorization")
            vault.seen.append((path, auth))
            if auth != f"Bearer {TOKEN}":
                error = {"error": {"code": "Unauthorized", "message": "AKV10000: token missing"}}
                self._send(401, error, WWW_Authenticate=challenge[0])
                return
            parts = path.strip("/").split("/")
            name = parts[1] if len(parts) >= 2 and parts[0] == "secrets" else ""
            if name in vault.forbidden:
                message = (
                    "Caller is not authorized to perform action on resource.\r\n"
                    f"Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\nSecret {name}"
                )
                self._send(403, {"error": {"code": "Forbidden", "message": message}})
            elif name not in vault.secrets:
                message = f"A secret with (name/id) {name} was not found in this key vault."
                self._send(404, {"error": {"code": "SecretNotFound", "message": message}})
            else:
                self._send(
                    200,
                    {
                        "value": vault.secrets[name],
                        "id": f"{vault.url}/secrets/{name}/0123456789abcdef",
                        "attributes": {"enabled": True},
                    },
                )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    url = f"https://{host}:{port}"
    if resource is not None:
        challenge[0] = (
            f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
            f'resource="{resource.format(port=port)}"'
        )
    state["vault"] = KeyVaultDouble(url, cert, dict(secrets), set(forbidden or ()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["vault"]
    finally:
        server.shutdown()
        server.server_close()


def client_options(vault: KeyVaultDouble) -> dict[str, Any]:
    """What a test passes to ``KeyVaultSecrets`` to reach the double."""
    return {"verify_challenge_resource": False, "connection_verify": str(vault.cert)}
