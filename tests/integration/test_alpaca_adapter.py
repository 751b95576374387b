"""The Alpaca adapter against a local stub of Alpaca's APIs, through the unmodified alpaca-py SDK.

Covered: every order type with its time in force and our client order id, lookups, cancels, open and
recent orders, positions, the account, historical bars (stocks and crypto, paginated), Alpaca's
refusals in our terms (unknown symbol, buying power, quantity, price increment, market closed,
duplicate id), and the failure paths of design rule 4: a submit that times out is looked up rather than
resent (exactly one order at the broker), 429s are waited out as Alpaca asks, repeated 500s open the
account's circuit breaker, and revoked credentials halt the account with Alpaca's reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from tradeflow.accounts.credentials import AlpacaCredentials, CredentialVault
from tradeflow.accounts.halts import CREDENTIALS_PREFIX, account_halt
from tradeflow.brokers import alpaca as alpaca_adapter
from tradeflow.brokers.alpaca import TIMEOUTS_ENV, AlpacaBroker
from tradeflow.brokers.endpoints import ENDPOINTS_ENV
from tradeflow.brokers.factory import broker_for, forget_adapter
from tradeflow.brokers.port import (
    BrokerAuthFailed,
    BrokerPosition,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    DuplicateClientOrderId,
    RejectCode,
)
from tradeflow.brokers.resilience import CircuitBreaker, CircuitOpen, GuardedBroker
from tradeflow.domain import Account, Bar, Order, OrderIntent, OrderSide, OrderStatus, OrderType, TimeInForce
from tradeflow.execution.accounts import open_account
from tradeflow.execution.service import ExecutionService
from tradeflow.local.moto_server import free_port
from tradeflow.local.stubs.alpaca import DEFAULT_KEY_ID, DEFAULT_SECRET, AlpacaStub
from tradeflow.marketdata.catalog import load_dataset
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.fills import FillRepository

TENANT = "acme"
ACCOUNT_ID = "alp-1"
START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
CREDENTIALS = AlpacaCredentials(api_key_id=DEFAULT_KEY_ID, secret_key=SecretStr(DEFAULT_SECRET), paper=True)


class Clock:
    """The stub's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Sleeps(list[float]):
    """A `sleep` for GuardedBroker that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _crypto_history() -> list[Bar]:
    return [b.model_copy(update={"symbol": "BTC/USD"}) for b in load_dataset("BTCUSD")]


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def stub(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[AlpacaStub]:
    """Alpaca on a free port, with GOOG's and BTC/USD's shipped history; the adapters point at it."""
    server = AlpacaStub(
        free_port(),
        untradable=("DELIST",),
        history={"GOOG": load_dataset("GOOG"), "BTC/USD": _crypto_history()},
        clock=clock,
        page_size=500,
    )
    server.start()
    monkeypatch.setenv(ENDPOINTS_ENV, json.dumps({"alpaca": server.base_url}))
    forget_adapter(TENANT, ACCOUNT_ID)
    yield server
    forget_adapter(TENANT, ACCOUNT_ID)
    server.stop()


def _account(paper: bool = True) -> Account:
    return Account(
        tenant_id=TENANT,
        account_id=ACCOUNT_ID,
        broker="alpaca",
        mode="paper" if paper else "live",
        broker_config={"paper": paper},
        created_at=START,
        updated_at=START,
    )


@pytest.fixture
def broker(stub: AlpacaStub) -> AlpacaBroker:
    return AlpacaBroker.connect(_account(), CREDENTIALS)


def _bar(symbol: str, price: str, low: str | None = None, high: str | None = None, at: datetime = START) -> Bar:
    p = Decimal(price)
    return Bar(
        symbol=symbol,
        ts=at,
        open=p,
        high=Decimal(high) if high else p,
        low=Decimal(low) if low else p,
        close=p,
        volume=Decimal(1000),
    )


def _order(coid: str, symbol: str = "GOOG", qty: str = "10", side: OrderSide = OrderSide.BUY, **terms: Any) -> Order:
    return Order(
        tenant_id=TENANT,
        account_id=ACCOUNT_ID,
        client_order_id=coid,
        broker="alpaca",
        symbol=symbol,
        side=side,
        quantity=Decimal(qty),
        created_at=START,
        updated_at=START,
        **terms,
    )


# -- orders -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order_type", "tif", "limit", "stop"),
    [
        (OrderType.MARKET, TimeInForce.DAY, None, None),
        (OrderType.LIMIT, TimeInForce.GTC, "90.5", None),
        (OrderType.STOP, TimeInForce.DAY, None, "120"),
        (OrderType.STOP_LIMIT, TimeInForce.GTC, "121.25", "120"),
        (OrderType.LIMIT, TimeInForce.IOC, "101", None),
    ],
)
def test_each_order_type_reaches_alpaca_with_its_time_in_force_and_our_client_order_id(
    broker: AlpacaBroker,
    stub: AlpacaStub,
    order_type: OrderType,
    tif: TimeInForce,
    limit: str | None,
    stop: str | None,
) -> None:
    coid = f"tf-{order_type.value}-{tif.value}"
    order = _order(
        coid,
        order_type=order_type,
        time_in_force=tif,
        limit_price=Decimal(limit) if limit else None,
        stop_price=Decimal(stop) if stop else None,
    )
    placed = broker.submit(order)
    [sent] = stub.orders()
    assert (sent["client_order_id"], sent["type"], sent["time_in_force"], sent["qty"]) == (
        coid,
        order_type.value,
        tif.value,
        "10",
    )
    assert (sent["limit_price"], sent["stop_price"]) == (limit, stop)
    assert placed.client_order_id == coid and placed.broker_order_id == sent["id"]
    assert (placed.order_type, placed.time_in_force) == (order_type, tif)
    assert placed.limit_price == (Decimal(limit) if limit else None)
    assert placed.stop_price == (Decimal(stop) if stop else None)
    # no last price yet: a market order waits for the next bar, an ioc that cannot trade is cancelled
    expected = OrderStatus.CANCELLED if tif is TimeInForce.IOC else OrderStatus.ACCEPTED
    assert placed.status is expected and placed.fills == []
    assert broker.get_order_by_client_id(coid) == placed


def test_a_market_order_fills_at_the_last_price_as_one_cumulative_fill(broker: AlpacaBroker, stub: AlpacaStub) -> None:
    stub.publish_bar("GOOG", _bar("GOOG", "100.25"))
    placed = broker.submit(_order("tf-mkt-1"))
    assert placed.status is OrderStatus.FILLED and placed.filled_quantity == 10
    [fill] = placed.fills
    assert fill.ref == f"{placed.broker_order_id}@10"
    assert (fill.quantity, fill.price, fill.cumulative_quantity, fill.cumulative_average) == (
        Decimal(10),
        Decimal("100.25"),
        Decimal(10),
        Decimal("100.25"),
    )
    assert broker.get_order_by_client_id("tf-mkt-1") == placed


def test_a_resting_limit_order_fills_in_parts_reported_as_running_totals(
    broker: AlpacaBroker, stub: AlpacaStub, clock: Clock
) -> None:
    stub.publish_bar("GOOG", _bar("GOOG", "100"))
    broker.submit(
        _order("tf-lim-1", order_type=OrderType.LIMIT, limit_price=Decimal(95), time_in_force=TimeInForce.GTC)
    )
    stub.publish_bar("GOOG", _bar("GOOG", "97", low="96"))  # does not reach 95
    assert broker.get_order_by_client_id("tf-lim-1").status is OrderStatus.ACCEPTED  # type: ignore[union-attr]

    clock.advance(minutes=1)
    stub.publish_bar("GOOG", _bar("GOOG", "96", low="94"), liquidity=Decimal(4))
    partial = broker.get_order_by_client_id("tf-lim-1")
    assert partial is not None and partial.status is OrderStatus.PARTIALLY_FILLED
    assert [(f.ref, f.cumulative_quantity, f.price) for f in partial.fills] == [
        (f"{partial.broker_order_id}@4", Decimal(4), Decimal(95))
    ]

    clock.advance(minutes=1)
    stub.publish_bar("GOOG", _bar("GOOG", "93"))  # opens below the limit: the rest fills at the open
    done = broker.get_order_by_client_id("tf-lim-1")
    assert done is not None and done.status is OrderStatus.FILLED and done.filled_quantity == 10
    [fill] = done.fills
    assert fill.ref == f"{done.broker_order_id}@10" and fill.cumulative_average == Decimal("93.8")  # (4x95+6x93)/10
    assert fill.ts == clock.now


def test_a_stop_order_triggers_when_touched_and_fills_at_the_worse_of_open_and_stop(
    broker: AlpacaBroker, stub: AlpacaStub
) -> None:
    stub.publish_bar("GOOG", _bar("GOOG", "100"))
    broker.submit(_order("tf-stop-1", order_type=OrderType.STOP, stop_price=Decimal(105)))
    stub.publish_bar("GOOG", _bar("GOOG", "104", high="104.5"))
    assert broker.get_order_by_client_id("tf-stop-1").status is OrderStatus.ACCEPTED  # type: ignore[union-attr]
    stub.publish_bar("GOOG", _bar("GOOG", "104", high="106"))
    filled = broker.get_order_by_client_id("tf-stop-1")
    assert filled is not None and filled.status is OrderStatus.FILLED and filled.fills[0].price == 105


def test_cancel_by_client_order_id_reports_the_state_after(broker: AlpacaBroker, stub: AlpacaStub) -> None:
    stub.publish_bar("GOOG", _bar("GOOG", "100"))
    broker.submit(_order("tf-rest", order_type=OrderType.LIMIT, limit_price=Decimal(90), time_in_force=TimeInForce.GTC))
    broker.submit(_order("tf-done"))

    cancelled = broker.cancel("tf-rest")
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.client_order_id == "tf-rest"
    assert stub.orders()[0]["status"] == "canceled"
    # an order already final is returned as it is, without asking Alpaca to cancel it
    deletes = sum(n for k, n in stub.requests.items() if k.startswith("DELETE"))
    assert broker.cancel("tf-done").status is OrderStatus.FILLED
    assert sum(n for k, n in stub.requests.items() if k.startswith("DELETE")) == deletes
    with pytest.raises(BrokerRejected, match="tf-nowhere not found"):
        broker.cancel("tf-nowhere")


def test_an_unknown_client_order_id_is_none(broker: AlpacaBroker) -> None:
    assert broker.get_order_by_client_id("tf-never-sent") is None


def test_open_orders_and_recent_orders_across_pages(
    broker: AlpacaBroker, stub: AlpacaStub, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alpaca_adapter, "ORDERS_PAGE", 2)  # so a handful of orders spans several pages
    stub.publish_bar("GOOG", _bar("GOOG", "100"))
    resting: dict[str, Any] = {
        "limit_price": Decimal(80),
        "order_type": OrderType.LIMIT,
        "time_in_force": TimeInForce.GTC,
    }
    broker.submit(_order("tf-old-open", **resting))  # before `since`, still open
    broker.submit(_order("tf-old-filled"))  # before `since`, final: not recent
    clock.advance(hours=1)
    since = clock.now
    for i in range(5):
        clock.advance(seconds=1)
        broker.submit(_order(f"tf-new-{i}"))
    broker.submit(_order("tf-new-open", **resting))

    assert [o.client_order_id for o in broker.open_orders()] in (
        ["tf-new-open", "tf-old-open"],
        ["tf-old-open", "tf-new-open"],
    )
    before = stub.requests["GET /v2/orders"]
    recent = broker.recent_orders(since)
    assert [o.client_order_id for o in recent] == [
        "tf-old-open",
        "tf-new-0",
        "tf-new-1",
        "tf-new-2",
        "tf-new-3",
        "tf-new-4",
        "tf-new-open",
    ]
    assert stub.requests["GET /v2/orders"] - before >= 4  # three full pages and the open orders
    assert all(o.fills[0].cumulative_quantity == 10 for o in recent if o.status is OrderStatus.FILLED)


def test_positions_long_short_and_crypto_and_the_account(broker: AlpacaBroker, stub: AlpacaStub) -> None:
    stub.publish_bar("GOOG", _bar("GOOG", "100"))
    stub.publish_bar("AAPL", _bar("AAPL", "50"))
    stub.publish_bar("BTC/USD", _bar("BTC/USD", "20000"))
    broker.submit(_order("tf-goog", qty="10"))
    broker.submit(_order("tf-aapl", symbol="AAPL", qty="4", side=OrderSide.SELL))  # a short sale
    broker.submit(_order("tf-btc", symbol="BTC/USD", qty="0.5", time_in_force=TimeInForce.GTC))

    assert broker.positions() == [
        BrokerPosition(symbol="AAPL", quantity=Decimal(-4), average_price=Decimal(50)),
        BrokerPosition(symbol="BTC/USD", quantity=Decimal("0.5"), average_price=Decimal(20000)),
        BrokerPosition(symbol="GOOG", quantity=Decimal(10), average_price=Decimal(100)),
    ]
    account = broker.account()
    assert account.cash == Decimal(100_000) - 1000 + 200 - 10_000
    assert account.equity == account.cash + 1000 - 200 + 10_000
    assert account.buying_power == account.cash and account.currency == "USD"


def test_a_silent_fill_and_an_unexplained_position_are_visible_through_rest(
    broker: AlpacaBroker, stub: AlpacaStub
) -> None:
    """What reconciliation finds: a fill the stream never reported, a position no order explains."""
    broker.submit(
        _order("tf-missed", order_type=OrderType.LIMIT, limit_price=Decimal(90), time_in_force=TimeInForce.GTC)
    )
    stub.fill_silently("tf-missed", Decimal(3), Decimal("89.5"))
    stub.set_position("MSFT", Decimal(7), Decimal("410.1"))

    missed = broker.get_order_by_client_id("tf-missed")
    assert missed is not None and missed.status is OrderStatus.PARTIALLY_FILLED
    assert [(f.cumulative_quantity, f.cumulative_average) for f in missed.fills] == [(Decimal(3), Decimal("89.5"))]
    assert [o.client_order_id for o in broker.recent_orders(START - timedelta(minutes=1))] == ["tf-missed"]
    assert broker.positions() == [
        BrokerPosition(symbol="GOOG", quantity=Decimal(3), average_price=Decimal("89.5")),
        BrokerPosition(symbol="MSFT", quantity=Decimal(7), average_price=Decimal("410.1")),
    ]
    with pytest.raises(ValueError, match="cannot fill"):
        stub.fill_silently("tf-missed", Decimal(8), Decimal(90))  # more than is left


def test_a_day_order_for_crypto_is_sent_good_till_cancelled(broker: AlpacaBroker, stub: AlpacaStub) -> None:
    placed = broker.submit(_order("tf-btc-day", symbol="BTC/USD", qty="0.1", time_in_force=TimeInForce.DAY))
    assert stub.orders()[0]["time_in_force"] == "gtc" and placed.time_in_force is TimeInForce.GTC


# -- market data ---------------------------------------------------------------------------------------


def test_historical_stock_bars_are_the_shipped_goog_history_across_pages(
    broker: AlpacaBroker, stub: AlpacaStub
) -> None:
    start, end = datetime(2008, 1, 1, tzinfo=UTC), datetime(2012, 12, 31, tzinfo=UTC)
    expected = [b for b in load_dataset("GOOG") if start <= b.ts <= end]
    bars = broker.historical_bars("GOOG", "1d", start, end)
    assert len(bars) == len(expected) > 1000
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume) for b in bars] == [
        (b.ts, b.open, b.high, b.low, b.close, b.volume) for b in expected
    ]
    assert all(b.symbol == "GOOG" and b.timeframe == "1d" for b in bars)
    assert stub.requests["GET /v2/stocks/bars"] == 3  # 500 bars a page

    limited = broker.historical_bars("GOOG", "1d", start, end, limit=10)
    assert [b.ts for b in limited] == [b.ts for b in expected[:10]]
    assert broker.historical_bars("GOOG", "1h", start, end) == []


def test_historical_crypto_bars_come_from_the_crypto_endpoint(broker: AlpacaBroker, stub: AlpacaStub) -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    bars = broker.historical_bars("BTC/USD", "1mo", start)
    expected = [b for b in _crypto_history() if b.ts >= start]
    assert [(b.symbol, b.timeframe, b.ts, b.close) for b in bars] == [
        ("BTC/USD", "1mo", b.ts, b.close) for b in expected
    ]
    assert stub.requests["GET /v1beta3/crypto/us/bars"] == 1 and stub.requests["GET /v2/stocks/bars"] == 0


# -- refusals in our terms -------------------------------------------------------------------------------


def test_an_unknown_or_untradable_symbol_is_rejected_naming_it(broker: AlpacaBroker) -> None:
    for symbol in ("ZZZZ", "DELIST"):
        with pytest.raises(BrokerRejected) as refused:
            broker.submit(_order(f"tf-{symbol}", symbol=symbol))
        assert refused.value.code is RejectCode.UNKNOWN_SYMBOL
        assert symbol in str(refused.value) and symbol in refused.value.broker_message


def test_insufficient_buying_power_and_crypto_balance_are_insufficient_funds(
    broker: AlpacaBroker, stub: AlpacaStub
) -> None:
    stub.publish_bar("GOOG", _bar("GOOG", "100"))
    with pytest.raises(BrokerRejected) as too_big:
        broker.submit(_order("tf-big", qty="2000"))
    assert too_big.value.code is RejectCode.INSUFFICIENT_FUNDS
    assert too_big.value.broker_message == "insufficient buying power"
    with pytest.raises(BrokerRejected) as no_coins:
        broker.submit(
            _order("tf-btc-sell", symbol="BTC/USD", qty="1", side=OrderSide.SELL, time_in_force=TimeInForce.GTC)
        )
    assert no_coins.value.code is RejectCode.INSUFFICIENT_FUNDS
    assert "insufficient balance for BTC" in no_coins.value.broker_message
    assert stub.orders() == []


@pytest.mark.parametrize(
    ("terms", "code", "words"),
    [
        ({"quantity": Decimal("1.5"), "time_in_force": TimeInForce.GTC}, RejectCode.INVALID_QUANTITY, "fractional"),
        ({"order_type": OrderType.LIMIT, "limit_price": Decimal("100.123")}, RejectCode.PRECISION, "sub-penny"),
    ],
)
def test_refused_orders_carry_a_code_and_alpacas_words(
    broker: AlpacaBroker, terms: dict[str, object], code: RejectCode, words: str
) -> None:
    order = _order("tf-refused").model_copy(update=terms)
    with pytest.raises(BrokerRejected) as refused:
        broker.submit(order)
    assert refused.value.code is code and words in refused.value.broker_message


def test_an_order_refused_for_market_hours_is_market_closed(broker: AlpacaBroker, stub: AlpacaStub) -> None:
    message = "market orders are not allowed outside of market hours"
    stub.fail_next(1, 422, body={"code": 42210000, "message": message})
    with pytest.raises(BrokerRejected) as refused:
        broker.submit(_order("tf-closed"))
    assert refused.value.code is RejectCode.MARKET_CLOSED and refused.value.broker_message == message


def test_a_reused_client_order_id_is_a_duplicate(broker: AlpacaBroker) -> None:
    broker.submit(_order("tf-twice"))
    with pytest.raises(DuplicateClientOrderId, match="client_order_id must be unique"):
        broker.submit(_order("tf-twice"))


# -- transport failures ----------------------------------------------------------------------------------


def test_a_gateway_timeout_on_submit_is_not_resent_by_the_sdk(broker: AlpacaBroker, stub: AlpacaStub) -> None:
    stub.fail_next(1, 504)
    with pytest.raises(BrokerTimeout):
        broker.submit(_order("tf-504"))
    assert stub.requests["POST /v2/orders"] == 1  # alpaca-py's own 504 retry is off
    assert broker.get_order_by_client_id("tf-504") is None  # the caller looks up, and finds nothing


def test_an_unreachable_alpaca_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINTS_ENV, json.dumps({"alpaca": f"http://127.0.0.1:{free_port()}"}))
    nowhere = AlpacaBroker.connect(_account(), CREDENTIALS)
    with pytest.raises(BrokerUnavailable):
        nowhere.account()
    with pytest.raises(BrokerUnavailable) as refused:  # never sent: safe to send again later
        nowhere.submit(_order("tf-unsent"))
    assert not isinstance(refused.value, BrokerTimeout)


def test_a_slow_answer_times_out(stub: AlpacaStub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIMEOUTS_ENV, "2,0.3")
    quick = AlpacaBroker.connect(_account(), CREDENTIALS)
    stub.delay_next_order(1.0)
    with pytest.raises(BrokerTimeout):
        quick.submit(_order("tf-slow"))
    found = quick.get_order_by_client_id("tf-slow")
    assert found is not None and stub.orders_created == 1


def test_revoked_credentials_are_auth_failures_with_alpacas_message(broker: AlpacaBroker, stub: AlpacaStub) -> None:
    assert broker.account().cash == 100_000
    stub.revoke(DEFAULT_KEY_ID)
    with pytest.raises(BrokerAuthFailed) as refused:
        broker.account()
    assert refused.value.broker_message == "request is not authorized"
    with pytest.raises(BrokerAuthFailed):
        broker.submit(_order("tf-after-revoke"))


def test_live_only_when_the_account_and_the_credentials_both_say_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENDPOINTS_ENV, raising=False)
    live_keys = CREDENTIALS.model_copy(update={"paper": False})
    base = {
        (True, True): AlpacaBroker.connect(_account(paper=True), CREDENTIALS),
        (True, False): AlpacaBroker.connect(_account(paper=True), live_keys),
        (False, True): AlpacaBroker.connect(_account(paper=False), CREDENTIALS),
        (False, False): AlpacaBroker.connect(_account(paper=False), live_keys),
    }
    assert {k: b.paper for k, b in base.items()} == {
        (True, True): True,
        (True, False): True,
        (False, True): True,
        (False, False): False,
    }
    assert base[(False, False)]._trading._base_url == "https://api.alpaca.markets"
    assert base[(True, False)]._trading._base_url == "https://paper-api.alpaca.markets"


# -- through the resilience layer and the execution service (local AWS) ----------------------------------


def _open_alpaca_account() -> None:
    open_account(TENANT, ACCOUNT_ID, Decimal(100_000), START, broker="alpaca", broker_config={"paper": True})
    CredentialVault().store_credentials(TENANT, ACCOUNT_ID, CREDENTIALS, "test")


def _intent(coid: str, symbol: str = "GOOG", qty: str = "10") -> OrderIntent:
    return OrderIntent(
        tenant_id=TENANT,
        account_id=ACCOUNT_ID,
        client_order_id=coid,
        signal_id=f"sig-{coid}",
        symbol=symbol,
        side=OrderSide.BUY,
        quantity=Decimal(qty),
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.DAY,
        reference_price=Decimal(100),
        reserved_notional=Decimal(1000),
        opens=True,
        decided_at=START,
    )


def _guarded(broker: AlpacaBroker, clock: Clock, sleeps: Sleeps, threshold: int = 5) -> GuardedBroker:
    breaker = CircuitBreaker(TENANT, ACCOUNT_ID, threshold=threshold, cooldown=timedelta(seconds=60), clock=clock)
    return GuardedBroker(broker, breaker, sleep=sleeps)


def test_a_submit_that_times_out_is_looked_up_and_exists_exactly_once(
    aws: object, stub: AlpacaStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUTS_ENV, "2,0.3")
    _open_alpaca_account()
    stub.publish_bar("GOOG", _bar("GOOG", "100"))
    stub.delay_next_order(1.5)  # Alpaca creates the order but answers after our read timeout
    service = ExecutionService(broker_for)

    result = service.execute(_intent("tf-timeout-1"))
    assert result.status == "submitted" and result.order is not None
    assert result.order.status is OrderStatus.FILLED and result.order.broker_order_id == stub.orders()[0]["id"]
    assert stub.requests["POST /v2/orders"] == 1 and stub.orders_created == 1
    assert stub.requests["GET /v2/orders:by_client_order_id"] >= 1

    again = service.execute(_intent("tf-timeout-1"))  # the queue delivers the intent again
    assert again.status == "duplicate"
    assert [o["client_order_id"] for o in stub.orders()] == ["tf-timeout-1"]
    assert stub.requests["POST /v2/orders"] == 1
    fills = FillRepository().list(TENANT, ACCOUNT_ID)
    assert [(f.quantity, f.price) for f in fills] == [(Decimal(10), Decimal(100))]


def test_a_429_on_a_read_waits_as_long_as_alpaca_asks(
    aws: object, broker: AlpacaBroker, stub: AlpacaStub, clock: Clock
) -> None:
    sleeps = Sleeps()
    guarded = _guarded(broker, clock, sleeps)
    stub.fail_next(1, 429, retry_after=3)
    assert guarded.positions() == []
    assert sleeps == [3.0] and stub.requests["GET /v2/positions"] == 2


def test_a_429_on_a_submit_is_sent_again_and_creates_one_order(
    aws: object, broker: AlpacaBroker, stub: AlpacaStub, clock: Clock
) -> None:
    sleeps = Sleeps()
    guarded = _guarded(broker, clock, sleeps)
    stub.publish_bar("GOOG", _bar("GOOG", "100"))
    stub.fail_next(1, 429, retry_after=2)
    placed = guarded.submit(_order("tf-429"))
    assert placed.status is OrderStatus.FILLED
    assert sleeps == [2.0]
    assert stub.requests["POST /v2/orders"] == 2 and stub.orders_created == 1


def test_the_circuit_breaker_opens_after_repeated_500s_and_closes_after_a_success_past_cooldown(
    aws: object, broker: AlpacaBroker, stub: AlpacaStub, clock: Clock
) -> None:
    guarded = _guarded(broker, clock, Sleeps(), threshold=3)
    stub.publish_bar("GOOG", _bar("GOOG", "100"))
    stub.fail_next(3, 500)
    for i in range(3):
        with pytest.raises(BrokerUnavailable, match="internal server error"):
            guarded.submit(_order(f"tf-500-{i}"))
    with pytest.raises(CircuitOpen) as suspended:
        guarded.submit(_order("tf-while-open"))
    assert suspended.value.code is RejectCode.BROKER_UNAVAILABLE
    assert "3 broker failures in a row" in str(suspended.value) and "internal server error" in str(suspended.value)
    assert stub.requests["POST /v2/orders"] == 3  # the suspended submission never reached Alpaca
    opened = [e for e in AuditRepository().list(TENANT) if e.action == "broker.circuit_opened"]
    assert len(opened) == 1 and "internal server error" in str(opened[0].details["reason"])

    clock.advance(seconds=61)
    assert guarded.submit(_order("tf-after-cooldown")).status is OrderStatus.FILLED
    assert guarded.breaker.state()["state"] == "closed" and int(str(guarded.breaker.state()["failures"])) == 0


def test_revoked_credentials_halt_the_account_with_alpacas_reason(aws: object, stub: AlpacaStub) -> None:
    _open_alpaca_account()
    stub.publish_bar("GOOG", _bar("GOOG", "100"))
    service = ExecutionService(broker_for)
    assert service.execute(_intent("tf-before")).order.status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert account_halt(TENANT, ACCOUNT_ID) is None

    stub.revoke(DEFAULT_KEY_ID)
    refused = service.execute(_intent("tf-after"))
    assert refused.status == "rejected" and refused.order is not None
    assert refused.order.status is OrderStatus.REJECTED and "credentials" in (refused.order.reject_reason or "")
    halt = account_halt(TENANT, ACCOUNT_ID)
    assert halt is not None and halt.reason.startswith(CREDENTIALS_PREFIX)
    assert "request is not authorized" in halt.reason  # Alpaca's own words

    posts = stub.requests["POST /v2/orders"]
    later = service.execute(_intent("tf-later"))  # the halted account sends nothing more
    assert later.status == "rejected" and stub.requests["POST /v2/orders"] == posts
    assert [o["client_order_id"] for o in stub.orders()] == ["tf-before"]
