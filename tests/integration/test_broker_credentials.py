"""Broker credentials (design rule 5): they land in Secrets Manager only, under a tenant-scoped name;
the API and the accounts table show a hint; every access (create, rotate, system read, delete) is one
audit event without values; and no log line — not even botocore's DEBUG wire logs — carries a secret."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tradeflow.accounts.credentials import (
    AlpacaCredentials,
    CcxtCredentials,
    CredentialsNotFound,
    key_hint,
    read_broker_credentials,
)
from tradeflow.accounts.exchanges import CCXT_EXCHANGES
from tradeflow.api.context import logger as api_logger
from tradeflow.runtime.aws import client
from tradeflow.secrets import REDACTED, SecretsManagerStore, secret_name
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.dynamo import DynamoTable

from apiclient import TENANT_A, TENANT_B, Api, make_api

KEY_ID = "PKTEST1234567890ABCD"
SECRET = "alpaca-secret-" + "x9" * 16
CCXT_KEY = "ccxtkey-" + "k" * 24 + "-END9"
CCXT_SECRET = "ccxt-secret-" + "q7" * 16
CCXT_PASSWORD = "ccxt-passphrase-42"
NEW_SECRET = "rotated-secret-" + "z5" * 16
ALPACA = {"kind": "alpaca", "account_id": "alp-1", "api_key_id": KEY_ID, "secret_key": SECRET, "paper": True}
CCXT = {
    "kind": "ccxt",
    "account_id": "kr-1",
    "exchange": "kraken",
    "api_key": CCXT_KEY,
    "secret": CCXT_SECRET,
    "password": CCXT_PASSWORD,
    "sandbox": False,
}
SECRETS = (SECRET, CCXT_SECRET, CCXT_PASSWORD, NEW_SECRET)


@pytest.fixture
def api(aws: object, tmp_path_factory: pytest.TempPathFactory) -> Api:
    """The REST API on a clean local AWS (as in tests/api)."""
    return make_api(tmp_path_factory.getbasetemp() / "api-keys")


def _stored_secret(tenant: str, account: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        client("secretsmanager").get_secret_value(SecretId=secret_name(tenant, account))["SecretString"]
    )
    return value


def _credential_events(tenant: str = TENANT_A) -> list[tuple[str, str, str]]:
    return [
        (e.action, e.actor, e.subject) for e in AuditRepository().list(tenant) if e.action.startswith("credentials.")
    ]


def test_alpaca_credentials_land_in_secrets_manager_and_only_a_hint_comes_back(api: Api) -> None:
    created = api.post("/v1/accounts", json=ALPACA)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["kind"] == "alpaca" and body["broker"] == "alpaca" and body["mode"] == "paper"
    assert body["credentials"] == {"key_hint": "PKTE…ABCD", "exchange": None, "sandbox": None, "paper": True}
    assert body["cash"] == "0" and body["starting_cash"] is None
    assert KEY_ID not in created.text and SECRET not in created.text
    # the secret, tenant-scoped
    name = secret_name(TENANT_A, "alp-1")
    assert name == "tradeflow-local/acme/alp-1"
    assert _stored_secret(TENANT_A, "alp-1") == {
        "kind": "alpaca",
        "api_key_id": KEY_ID,
        "secret_key": SECRET,
        "paper": True,
    }
    # the accounts table holds the secret's name and the hint, nothing else of the credentials
    raw = json.dumps(DynamoTable("accounts").get({"pk": TENANT_A, "sk": "alp-1"}), default=str, ensure_ascii=False)
    assert KEY_ID not in raw and SECRET not in raw
    assert "PKTE…ABCD" in raw and name in raw
    assert api.get("/v1/accounts/alp-1").json() == body
    assert _credential_events() == [("credentials.created", "user:user-1", "alp-1")]


def test_ccxt_credentials_with_a_passphrase(api: Api) -> None:
    created = api.post("/v1/accounts", json=CCXT)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["kind"] == "ccxt" and body["broker"] == "ccxt:kraken" and body["mode"] == "live"
    assert body["credentials"]["key_hint"] == key_hint(CCXT_KEY) == "ccxt…END9"
    assert body["credentials"]["exchange"] == "kraken" and body["credentials"]["sandbox"] is False
    assert not any(s in created.text for s in (CCXT_KEY, CCXT_SECRET, CCXT_PASSWORD))
    assert _stored_secret(TENANT_A, "kr-1")["password"] == CCXT_PASSWORD


def test_secret_names_are_tenant_scoped(api: Api) -> None:
    assert api.post("/v1/accounts", json=ALPACA).status_code == 201
    other = {**ALPACA, "secret_key": NEW_SECRET}
    assert api.post("/v1/accounts", TENANT_B, json=other).status_code == 201
    assert secret_name(TENANT_B, "alp-1") == "tradeflow-local/globex/alp-1"
    assert _stored_secret(TENANT_A, "alp-1")["secret_key"] == SECRET
    assert _stored_secret(TENANT_B, "alp-1")["secret_key"] == NEW_SECRET
    with pytest.raises(ValueError, match="cannot name a secret"):
        secret_name(TENANT_A, "a:b")


def test_rotation_stores_a_new_version_and_keeps_the_endpoint(api: Api) -> None:
    assert api.post("/v1/accounts", json=ALPACA).status_code == 201
    new_key = "PKROTATE0000000009WXYZ"
    rotated = api.client.put(
        "/v1/accounts/alp-1/credentials",
        headers=api.as_(),
        json={"kind": "alpaca", "api_key_id": new_key, "secret_key": NEW_SECRET, "paper": False},
    )
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["credentials"]["key_hint"] == "PKRO…WXYZ" and rotated.json()["mode"] == "paper"
    assert NEW_SECRET not in rotated.text and new_key not in rotated.text
    stored = _stored_secret(TENANT_A, "alp-1")
    assert stored["secret_key"] == NEW_SECRET and stored["paper"] is True  # rotation does not go live
    versions = client("secretsmanager").list_secret_version_ids(SecretId=secret_name(TENANT_A, "alp-1"))["Versions"]
    assert len(versions) == 2
    assert _credential_events() == [
        ("credentials.created", "user:user-1", "alp-1"),
        ("credentials.rotated", "user:user-1", "alp-1"),
    ]


def test_rotation_must_match_the_account(api: Api) -> None:
    assert api.post("/v1/accounts", json=ALPACA).status_code == 201
    assert api.post("/v1/accounts", json=CCXT).status_code == 201
    headers = api.as_()
    wrong_kind = api.client.put(
        "/v1/accounts/alp-1/credentials",
        headers=headers,
        json={"kind": "ccxt", "exchange": "kraken", "api_key": CCXT_KEY, "secret": NEW_SECRET},
    )
    assert wrong_kind.status_code == 422 and wrong_kind.json()["errors"][0]["field"] == "body.kind"
    wrong_exchange = api.client.put(
        "/v1/accounts/kr-1/credentials",
        headers=headers,
        json={"kind": "ccxt", "exchange": "binance", "api_key": CCXT_KEY, "secret": NEW_SECRET},
    )
    assert wrong_exchange.status_code == 422 and wrong_exchange.json()["errors"][0]["field"] == "body.exchange"
    missing = api.client.put("/v1/accounts/alp-1/credentials", headers=headers, json={"kind": "alpaca"})
    assert missing.status_code == 422
    assert {e["field"] for e in missing.json()["errors"]} == {"body.api_key_id", "body.secret_key"}
    assert _stored_secret(TENANT_A, "alp-1")["secret_key"] == SECRET  # nothing changed
    assert [a for a, _, _ in _credential_events()] == ["credentials.created", "credentials.created"]


def test_the_system_read_returns_the_credentials_and_is_audited(api: Api) -> None:
    assert api.post("/v1/accounts", json=ALPACA).status_code == 201
    assert api.post("/v1/accounts", json=CCXT).status_code == 201
    alpaca = read_broker_credentials(TENANT_A, "alp-1", actor="execution")
    assert isinstance(alpaca, AlpacaCredentials)
    assert alpaca.api_key_id == KEY_ID and alpaca.secret_key.get_secret_value() == SECRET
    assert SECRET not in repr(alpaca) and SECRET not in str(alpaca)
    ccxt = read_broker_credentials(TENANT_A, "kr-1", actor="streamer")
    assert isinstance(ccxt, CcxtCredentials) and ccxt.password is not None
    assert ccxt.password.get_secret_value() == CCXT_PASSWORD and ccxt.exchange == "kraken"
    # another tenant's account, a paper account and a missing one are not found — and audited too
    with pytest.raises(CredentialsNotFound):
        read_broker_credentials(TENANT_B, "alp-1", actor="execution")
    events = _credential_events()
    assert events.count(("credentials.read", "execution", "alp-1")) == 1
    assert events.count(("credentials.read", "streamer", "kr-1")) == 1
    assert _credential_events(TENANT_B) == [("credentials.read", "execution", "alp-1")]
    # the trail never holds a value
    trail = json.dumps([e.model_dump(mode="json") for e in AuditRepository().list(TENANT_A)])
    assert not any(s in trail for s in (*SECRETS, KEY_ID, CCXT_KEY))


def test_delete_schedules_the_secrets_deletion(api: Api) -> None:
    assert api.post("/v1/accounts", json=ALPACA).status_code == 201
    assert api.client.delete("/v1/accounts/alp-1", headers=api.as_()).status_code == 204
    described = client("secretsmanager").describe_secret(SecretId=secret_name(TENANT_A, "alp-1"))
    assert "DeletedDate" in described
    with pytest.raises(CredentialsNotFound):
        read_broker_credentials(TENANT_A, "alp-1", actor="execution")
    assert [a for a, _, _ in _credential_events()] == [
        "credentials.created",
        "credentials.deleted",
        "credentials.read",
    ]
    # an id without history can be used again within the recovery window: the secret is restored
    again = api.post("/v1/accounts", json={**ALPACA, "secret_key": NEW_SECRET})
    assert again.status_code == 201, again.text
    assert _stored_secret(TENANT_A, "alp-1")["secret_key"] == NEW_SECRET


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.__dict__} {record.exc_text or ''}")


@pytest.fixture
def every_log_line() -> Iterator[_Collect]:
    """Every record of every logger, at DEBUG (botocore's wire logs included)."""
    collect = _Collect()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(collect)
    api_logger.addHandler(collect)
    try:
        yield collect
    finally:
        root.removeHandler(collect)
        api_logger.removeHandler(collect)
        root.setLevel(level)


class _FailingSecrets:
    """The real client, except that writes fail like an outage."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def create_secret(self, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "InternalServiceError", "Message": str(kwargs)}}, "CreateSecret")


def test_no_secret_reaches_any_log(
    api: Api, every_log_line: _Collect, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert api.post("/v1/accounts", json=ALPACA).status_code == 201
    assert api.post("/v1/accounts", json=CCXT).status_code == 201
    rotate = {"kind": "alpaca", "api_key_id": KEY_ID, "secret_key": NEW_SECRET}
    assert api.client.put("/v1/accounts/alp-1/credentials", headers=api.as_(), json=rotate).status_code == 200
    read_broker_credentials(TENANT_A, "alp-1", actor="execution")
    read_broker_credentials(TENANT_A, "kr-1", actor="execution")
    # invalid bodies carrying secrets
    assert api.post("/v1/accounts", json={**ALPACA, "account_id": "bad id"}).status_code == 422
    assert api.post("/v1/accounts", json={**CCXT, "exchange": "nowhere", "account_id": "x"}).status_code == 422
    # Secrets Manager failing (its error message even echoes the request): 503, nothing left behind
    real = SecretsManagerStore()._sm
    monkeypatch.setattr(SecretsManagerStore, "_sm", property(lambda self: _FailingSecrets(real)))
    failed = api.post("/v1/accounts", json={**ALPACA, "account_id": "alp-2"})
    assert failed.status_code == 503 and SECRET not in failed.text
    assert api.get("/v1/accounts/alp-2").status_code == 404
    monkeypatch.undo()
    assert api.client.delete("/v1/accounts/kr-1", headers=api.as_()).status_code == 204

    captured = capfd.readouterr()
    text = "\n".join(every_log_line.lines) + captured.out + captured.err
    assert any("botocore" in line for line in every_log_line.lines)  # the wire logs were on
    assert REDACTED in text  # ... and their secret payloads were blanked
    leaked = [s for s in SECRETS if s in text]
    assert leaked == []


def test_the_exchange_list_is_static_and_checked_against_ccxt() -> None:
    assert all(e.isascii() and e == e.lower() and e.isidentifier() for e in CCXT_EXCHANGES)
    assert {"binance", "kraken", "coinbase", "okx", "bybit"} <= CCXT_EXCHANGES
    try:
        import ccxt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return  # not installed: the static list stands (re-checked wherever ccxt is installed)
    assert set(ccxt.exchanges) >= CCXT_EXCHANGES, sorted(CCXT_EXCHANGES - set(ccxt.exchanges))


def test_the_api_imports_no_broker_sdk() -> None:
    code = (
        "import sys, tradeflow.api.routers.accounts, tradeflow.accounts.service;"
        "bad = [m for m in ('ccxt', 'alpaca') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
