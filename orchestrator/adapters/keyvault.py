"""Secrets from Azure Key Vault, read in-process: the ``keyvault`` callable that
:func:`orchestrator.config.resolve_secret` uses for ``{keyvault: secret-name}`` references.

``azure-keyvault-secrets``' ``SecretClient`` with ``azure-identity``'s ``DefaultAzureCredential``
(service principal environment variables, workload identity, managed identity, Azure CLI...),
the vault URL from ``key_vault_url``. Values stay in memory (a per-process cache, so a secret
used twice is read once) and are never written anywhere; ``resolve_secret`` registers each one
for masking. Failures are one line naming the secret: a missing secret is a
:class:`UsageError` (fix the config or the vault), an unauthorized or unreachable vault an
:class:`InfrastructureError`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from orchestrator.errors import InfrastructureError, UsageError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from orchestrator.config.schema import BuildConfig

__all__ = ["KeyVaultSecrets", "keyvault_for"]

INSTALL_HINT = "Key Vault secrets need the Azure SDK: pip install 'orchestrator[azure]'"
_CREDENTIAL_HINT = (
    "sign in with `az login`, or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, "
    "or run with a managed or workload identity"
)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


class KeyVaultSecrets:
    """``KeyVaultSecrets(url)(name) -> value``. ``credential`` defaults to
    ``DefaultAzureCredential()``; ``client_options`` go to ``SecretClient`` (transport
    settings, ``verify_challenge_resource``...)."""

    def __init__(
        self,
        vault_url: str,
        *,
        credential: TokenCredential | None = None,
        **client_options: Any,
    ) -> None:
        self.vault_url = vault_url.rstrip("/")
        self._credential = credential
        self._owned_credential: Any = None
        self._options = client_options
        self._client: Any = None
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def _secret_client(self) -> Any:
        if self._client is None:
            try:
                from azure.keyvault.secrets import SecretClient

                credential = self._credential
                if credential is None:
                    from azure.identity import DefaultAzureCredential

                    credential = self._owned_credential = DefaultAzureCredential()
            except ImportError as exc:
                raise UsageError(f"{INSTALL_HINT} ({exc.name} is missing)") from None
            except ValueError as exc:  # e.g. an invalid AZURE_TOKEN_CREDENTIALS
                raise UsageError(f"Azure credential: {_first_line(exc)}") from None
            self._client = SecretClient(self.vault_url, credential, **self._options)
        return self._client

    def __call__(self, name: str) -> str:
        with self._lock:
            if name in self._cache:
                return self._cache[name]
            value = self._read(name)
            self._cache[name] = value
            return value

    def _read(self, name: str) -> str:
        from azure.core.exceptions import (
            AzureError,
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
        )

        where = f"Key Vault {self.vault_url}"
        client = self._secret_client()
        try:
            secret = client.get_secret(name)
        except ResourceNotFoundError:
            raise UsageError(f"secret {name!r} was not found in {where}") from None
        except ClientAuthenticationError as exc:
            if getattr(exc, "status_code", None) in (401, 403):
                raise InfrastructureError(
                    f"not authorized to read secret {name!r} from {where}: {_first_line(exc)}"
                ) from None
            raise InfrastructureError(
                f"no Azure credential to read secret {name!r} from {where} "
                f"({_first_line(exc)}; {_CREDENTIAL_HINT})"
            ) from None
        except HttpResponseError as exc:
            status = getattr(exc, "status_code", None)
            if status in (401, 403):
                raise InfrastructureError(
                    f"not authorized to read secret {name!r} from {where} "
                    f"(HTTP {status}: {_first_line(exc)})"
                ) from None
            raise InfrastructureError(
                f"reading secret {name!r} from {where}: {_first_line(exc)}"
            ) from None
        except AzureError as exc:
            raise InfrastructureError(
                f"reading secret {name!r} from {where}: {_first_line(exc)}"
            ) from None
        value = getattr(secret, "value", None)
        if not value:
            raise UsageError(f"secret {name!r} in {where} has no value")
        return str(value)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._owned_credential is not None:
            self._owned_credential.close()


def keyvault_for(config: BuildConfig) -> KeyVaultSecrets | None:
    """The resolver for the config's ``key_vault_url`` (None without one). Nothing is
    imported or contacted until a secret is read."""
    if config.key_vault_url is None:
        return None
    return KeyVaultSecrets(config.key_vault_url)
