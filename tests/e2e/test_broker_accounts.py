"""Issue 6's "done when", end to end: an Alpaca paper account and a Binance testnet account, opened
through the REST API of the local cloud, trade against the local stubs of those brokers exactly as the
paper broker does — alpaca-py and ccxt send their real requests, the streamer holds the accounts'
streams (trade updates, market data), and scheduled reconciliation records each account's opening
balance from the broker and finds nothing to repair.

Checked for each account: the opening balance came from the broker; a deployment's signals became orders
at the broker carrying our client order ids, each exactly once; the fills the broker made are the fills
in our ledger; the ledger's positions equal the broker's; the streamer holds the account's lease.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tradeflow.api.dev_issuer import DevIssuer
from tradeflow.local.brokers import BINANCE_KEY, BINANCE_SECRET
from tradeflow.local.cloud import LocalCloud
from tradeflow.local.demo import DEMO_TENANT
from tradeflow.storage.fills import FillRepository
from tradeflow.storage.orders import OrderRepository
from tradeflow.storage.positions import PositionRepository
from tradeflow.streaming.lease import LeaseStore

from helpers import running_cloud

pytestmark = pytest.mark.e2e

WITHIN_S = 60.0
ALPACA_KEY = "PKLOCALE2ETRADER0001"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with running_cloud(tmp_path_factory.mktemp("issuer"), ["GOOG"], websocket=False) as local:
        yield local


@pytest.fixture(scope="module")
def api(cloud: LocalCloud) -> Iterator[httpx.Client]:
    assert cloud.api is not None
    token = DevIssuer().issue(DEMO_TENANT, "broker-e2e")
    with httpx.Client(base_url=cloud.api.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client


def wait(what: str, found: Callable[[], Any], timeout: float = WITHIN_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hit = found()
        if hit:
            return hit
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout:.0f}s: {what}")


def _deploy(api: httpx.Client, account_id: str, symbol: str, fractional: bool = False) -> str:
    sizing: dict[str, Any] = {"method": "percent_of_equity", "percent": "5"}
    if fractional:  # crypto: 5% of the account buys a fraction of a coin
        sizing.update(fractional=True, quantity_step="0.0001")
    answer = api.post(
        "/v1/deployments",
        json={
            "strategy": "sma_cross",
            "params": {"fast": 3, "slow": 8},
            "symbols": [symbol],
            "account_id": account_id,
            "mode": "paper",
            "risk": {"sizing": sizing},
        },
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["deployment_id"])


def _filled_orders(account_id: str) -> list[Any]:
    return [o for o in OrderRepository().list_for_account(DEMO_TENANT, account_id) if o.filled_quantity > 0]


def _ledger_positions(account_id: str) -> dict[str, Decimal]:
    return {p.symbol: p.quantity for p in PositionRepository().list(DEMO_TENANT, account_id) if p.quantity != 0}


def _opening_balance(api: httpx.Client, account_id: str) -> Decimal:
    account = wait(
        f"{account_id}'s opening balance recorded by reconciliation",
        lambda: (a := api.get(f"/v1/accounts/{account_id}").json()) and Decimal(a["cash"]) > 0 and a,
    )
    assert account["halted"] is None
    return Decimal(account["cash"])


def _streamed(cloud: LocalCloud, account_id: str) -> None:
    wait(
        f"the streamer holding {account_id}'s lease",
        lambda: LeaseStore("probe", 30, lambda: datetime.now(UTC)).holder(DEMO_TENANT, account_id) == "local-streamer",
    )


def test_an_alpaca_paper_account_trades_against_the_stub(cloud: LocalCloud, api: httpx.Client) -> None:
    assert cloud.brokers is not None
    opened = api.post(
        "/v1/accounts",
        json={"kind": "alpaca", "account_id": "alp-e2e", "api_key_id": ALPACA_KEY, "secret_key": "local-e2e-secret"},
    )
    assert opened.status_code == 201, opened.text
    assert opened.json()["credentials"]["key_hint"] == "PKLO…0001"
    assert _opening_balance(api, "alp-e2e") == Decimal(100_000)  # the stub's paper account
    _deploy(api, "alp-e2e", "GOOG")
    _streamed(cloud, "alp-e2e")
    filled = wait("an order filled at Alpaca and in the ledger", lambda: _filled_orders("alp-e2e"))

    at_broker = {o["client_order_id"]: o for o in cloud.brokers.alpaca.orders(ALPACA_KEY)}
    for order in filled:
        assert order.broker == "alpaca"
        placed = at_broker[order.client_order_id]  # our id reached Alpaca unchanged
        assert Decimal(placed["filled_qty"]) == order.filled_quantity
        assert Decimal(placed["filled_avg_price"]) == order.average_fill_price
    assert len(at_broker) == len({o["client_order_id"] for o in cloud.brokers.alpaca.orders(ALPACA_KEY)})
    fills = FillRepository().list(DEMO_TENANT, "alp-e2e")
    assert sum(f.quantity for f in fills if f.client_order_id == filled[0].client_order_id) == filled[0].filled_quantity
    wait("the ledger's positions equal Alpaca's", lambda: _positions_agree(cloud, "alp-e2e"), timeout=30)


def _positions_agree(cloud: LocalCloud, account_id: str) -> bool:
    from tradeflow.brokers.alpaca import AlpacaBroker

    assert cloud.brokers is not None
    broker = AlpacaBroker(ALPACA_KEY, "local-e2e-secret", paper=True, base_url=cloud.brokers.alpaca.base_url)
    theirs = {p.symbol: p.quantity for p in broker.positions() if p.quantity != 0}
    return theirs == _ledger_positions(account_id)


def test_a_binance_testnet_account_trades_against_the_stub(cloud: LocalCloud, api: httpx.Client) -> None:
    assert cloud.brokers is not None
    opened = api.post(
        "/v1/accounts",
        json={
            "kind": "ccxt",
            "account_id": "bnb-e2e",
            "exchange": "binance",
            "api_key": BINANCE_KEY,
            "secret": BINANCE_SECRET,
            "sandbox": True,
            "currency": "USDT",
        },
    )
    assert opened.status_code == 201, opened.text
    assert _opening_balance(api, "bnb-e2e") > 0
    _deploy(api, "bnb-e2e", "BTC/USDT", fractional=True)
    _streamed(cloud, "bnb-e2e")
    filled = wait("an order filled at Binance and in the ledger", lambda: _filled_orders("bnb-e2e"), timeout=90)
    for order in filled:
        placed = cloud.brokers.binance.order(order.client_order_id)  # our id, never one ccxt invented
        assert placed is not None and Decimal(placed["executedQty"]) == order.filled_quantity
    held = _ledger_positions("bnb-e2e")
    btc = cloud.brokers.binance.balance("BTC")
    assert held.get("BTC/USDT", Decimal(0)) == btc.free + btc.locked
