"""Secrets: Key Vault through the real ``SecretClient`` against a local TLS double
(tests/kvserver.py explains why it is a double), ``DefaultAzureCredential`` through a fake
``az`` on PATH, one-line errors that name the secret, and literal secrets refused in config."""

from __future__ import annotations

import json
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.adapters import keyvault as secrets_module
from orchestrator.adapters.keyvault import KeyVaultSecrets
from orchestrator.cli import main
from orchestrator.config.loader import resolve_secret
from orchestrator.config.schema import SecretRef
from orchestrator.errors import InfrastructureError, UsageError
from orchestrator.masking import masker
from tests.buildkit import build, remote_args
from tests.kvserver import TENANT, TOKEN, FakeCredential, KeyVaultDouble, client_options, key_vault


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex}"


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[KeyVaultDouble]:
    with key_vault(
        tmp_path / "kv", {"db-token": unique("token"), "empty": ""}, forbidden={"locked"}
    ) as double:
        yield double


def resolver(vault: KeyVaultDouble, credential: object | None = None) -> KeyVaultSecrets:
    return KeyVaultSecrets(
        vault.url,
        credential=credential or FakeCredential(),  # type: ignore[arg-type]
        **client_options(vault),
    )


def test_a_secret_is_read_after_the_bearer_challenge_and_cached(vault: KeyVaultDouble) -> None:
    credential = FakeCredential()
    kv = resolver(vault, credential)
    try:
        assert kv("db-token") == vault.secrets["db-token"]
        assert kv("db-token") == vault.secrets["db-token"]
    finally:
        kv.close()
    # the challenge first (no token sent), then the token for the resource it named; once
    assert vault.seen == [
        ("/secrets/db-token/", None),
        ("/secrets/db-token/", f"Bearer {TOKEN}"),
    ]
    assert credential.scopes == [("https://vault.azure.net/.default",)]


@pytest.mark.parametrize(
    ("name", "error", "text"),
    [
        ("missing-one", UsageError, "secret 'missing-one' was not found in Key Vault"),
        ("locked", InfrastructureError, "not authorized to read secret 'locked'"),
        ("empty", UsageError, "secret 'empty' in Key Vault"),
    ],
)
def test_missing_forbidden_or_empty_secrets_are_one_line_errors_naming_them(
    vault: KeyVaultDouble, name: str, error: type[Exception], text: str
) -> None:
    kv = resolver(vault)
    try:
        with pytest.raises(error) as failure:
            resolve_secret(
                SecretRef(keyvault=name), field="storage.account_key", environ={}, keyvault=kv
            )
    finally:
        kv.close()
    message = str(failure.value)
    assert message.startswith(f"storage.account_key: {text}"), message
    assert "\n" not in message and "\r" not in message


def test_every_resolved_value_is_registered_for_masking(vault: KeyVaultDouble) -> None:
    kv = resolver(vault)
    env_value = unique("env-secret")
    try:
        from_vault = resolve_secret(
            SecretRef(keyvault="db-token"), field="workspace.token", environ={}, keyvault=kv
        )
    finally:
        kv.close()
    from_env = resolve_secret(SecretRef(env="X"), field="workspace.token", environ={"X": env_value})
    assert {from_vault, from_env} <= masker().values
    assert masker().mask(f"a {from_vault} b {from_env}") == "a *** b ***"


def fake_az(folder: Path, log: Path, *, fail: bool = False) -> Path:
    """A stand-in for the Azure CLI: ``az account get-access-token`` prints a token."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "az"
    body = {"accessToken": TOKEN, "expires_on": 4102444800, "tokenType": "Bearer", "tenant": TENANT}
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        + (
            "sys.stderr.write('ERROR: Please run az login to setup account.\\n'); sys.exit(1)\n"
            if fail
            else f"print({json.dumps(body)!r})\n"
        )
    )
    script.chmod(0o755)
    return folder


def test_default_azure_credential_gets_its_token_from_the_azure_cli(
    vault: KeyVaultDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "az.log"
    monkeypatch.setenv("PATH", str(fake_az(tmp_path / "bin", log)))
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "AzureCliCredential")  # no IMDS probing
    kv = KeyVaultSecrets(vault.url, **client_options(vault))  # DefaultAzureCredential
    try:
        assert kv("db-token") == vault.secrets["db-token"]
    finally:
        kv.close()
    assert "account get-access-token" in log.read_text()
    assert "https://vault.azure.net" in log.read_text()


@pytest.mark.parametrize("az", ["failing", "absent"])
def test_no_usable_azure_credential_is_one_line_with_a_hint(
    vault: KeyVaultDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, az: str
) -> None:
    path = (
        fake_az(tmp_path / "bin", tmp_path / "az.log", fail=True) if az == "failing" else tmp_path
    )
    monkeypatch.setenv("PATH", str(path))
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "AzureCliCredential")
    kv = KeyVaultSecrets(vault.url, **client_options(vault))
    try:
        with pytest.raises(InfrastructureError) as failure:
            kv("db-token")
    finally:
        kv.close()
    message = str(failure.value)
    assert "no Azure credential to read secret 'db-token'" in message and "az login" in message
    assert "\n" not in message


# -- through the CLI ----------------------------------------------------------------------------


@pytest.fixture
def vault_for_builds(vault: KeyVaultDouble, monkeypatch: pytest.MonkeyPatch) -> KeyVaultDouble:
    """Builds read the config's key_vault_url through the double (test credential, trusted
    certificate, challenge resource not checked against 127.0.0.1)."""

    def keyvault_for(config: object) -> KeyVaultSecrets:
        url = getattr(config, "key_vault_url", None)
        assert url == vault.url
        return resolver(vault)

    monkeypatch.setattr(secrets_module, "keyvault_for", keyvault_for)
    return vault


@pytest.mark.parametrize(
    ("secret", "code", "text"),
    [
        ("nope", 2, "workspace.token: secret 'nope' was not found in Key Vault"),
        ("locked", 3, "workspace.token: not authorized to read secret 'locked'"),
    ],
)
def test_a_build_with_a_bad_vault_secret_stops_with_one_line_before_anything_remote(
    project: Path,
    server: object,
    vault_for_builds: KeyVaultDouble,
    capsys: pytest.CaptureFixture[str],
    secret: str,
    code: int,
    text: str,
) -> None:
    args = remote_args(server)  # type: ignore[arg-type]
    args[args.index("workspace.token=env:ORCH_TEST_TOKEN")] = f"workspace.token=keyvault:{secret}"
    vault_url = f"key_vault_url={vault_for_builds.url}"
    assert build(project, "--build-id", "kv1", *args, "--set", vault_url) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"orchestrator: error: {text}"), err
    from tests.test_build import nothing_created

    assert nothing_created(server)  # type: ignore[arg-type]


def test_a_build_reads_its_token_through_the_real_key_vault_factory(
    project: Path, ws: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing replaced but the vault's name in DNS: the build's own ``keyvault_for``, its
    ``SecretClient`` with ``DefaultAzureCredential`` (the Azure CLI stand-in), TLS checked
    against the double's certificate, and the challenge's resource verified as for a real
    vault (``kv.orchestrator.test`` is under the challenge's ``orchestrator.test``)."""
    host = "kv.orchestrator.test"
    real_getaddrinfo = socket.getaddrinfo

    def resolve(name: Any, *args: Any, **kwargs: Any) -> Any:  # the one stubbed piece: DNS
        return real_getaddrinfo("127.0.0.1" if name == host else name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    token = ws.token  # type: ignore[attr-defined]
    with key_vault(
        tmp_path / "kv",
        {"workspace-token": token},
        host=host,
        resource="https://orchestrator.test:{port}",
    ) as vault:
        log = tmp_path / "az.log"
        bin_dir = fake_az(tmp_path / "bin", log)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "AzureCliCredential")  # no IMDS probing
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(vault.cert))
        args = remote_args(ws)  # type: ignore[arg-type]
        args[args.index("workspace.token=env:ORCH_TEST_TOKEN")] = (
            "workspace.token=keyvault:workspace-token"
        )
        code = build(project, "--build-id", "kvreal", *args, "--set", f"key_vault_url={vault.url}")
        assert code == 0
        assert ("/secrets/workspace-token/", f"Bearer {TOKEN}") in vault.seen
    assert f"https://orchestrator.test:{vault.url.rsplit(':', 1)[1]}" in log.read_text()


# -- literal secrets in the config --------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("defaults:\n  storage:\n    account_key: abc123==\n", "storage.account_key"),
        ("defaults:\n  storage:\n    sas_token: sv=2024&sig=x\n", "storage.sas_token"),
        (
            "targets:\n  local:\n    storage:\n      connection_string: AccountKey=x\n",
            "targets.local.storage.connection_string",
        ),
        ("targets:\n  prod:\n    workspace:\n      client_secret: hunter2\n", "client_secret"),
    ],
)
def test_plan_refuses_a_literal_secret_naming_the_field(
    project: Path, capsys: pytest.CaptureFixture[str], yaml_text: str, field: str
) -> None:
    (project / "orchestrator.yml").write_text("version: 1\n" + yaml_text)
    assert main(["plan", "--config", str(project / "orchestrator.yml")]) == 2
    err = capsys.readouterr().err
    assert field in err and "literal secret" in err
    for value in ("abc123==", "sig=x", "AccountKey=x", "hunter2"):
        assert value not in err


def test_a_secret_flag_must_be_a_reference(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(project / "orchestrator.yml")
    assert main(["plan", "--config", config, "--set", "storage.account_key=abc123=="]) == 2
    err = capsys.readouterr().err
    assert "storage.account_key" in err and "env:NAME or keyvault:NAME" in err
    assert "abc123" not in err
