"""The ccxt adapter against a local stub of Binance's spot API: the real ccxt `binance` class, in
sandbox mode, pointed at the stub by `TRADEFLOW_BROKER_ENDPOINTS` (REST paths, HMAC signatures,
payloads and error codes are Binance's). Covers placement and lookup by our client order id, cancel,
open/recent orders, balances as positions, candles, precision and limits, the error mapping, and the
timeout-then-lookup path of the execution service (exactly one order at the exchange)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import ccxt
import ccxt.pro
import pytest

from tradeflow.accounts.credentials import CcxtCredentials, CredentialVault
from tradeflow.accounts.halts import account_halt
from tradeflow.brokers import factory
from tradeflow.brokers.ccxt_exchange import CcxtBroker, NoSandbox, build_exchange
from tradeflow.brokers.endpoints import ENDPOINTS_ENV
from tradeflow.brokers.port import (
    BrokerAuthFailed,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    DuplicateClientOrderId,
    RejectCode,
)
from tradeflow.brokers.resilience import CircuitBreaker, GuardedBroker
from tradeflow.domain import (
    Account,
    Bar,
    Order,
    OrderIntent,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    Signal,
    SignalAction,
    SignalOutcome,
    TimeInForce,
)
from tradeflow.domain.ids import client_order_id
from tradeflow.execution.accounts import open_account
from tradeflow.execution.service import ExecutionService
from tradeflow.local.moto_server import free_port
from tradeflow.local.stubs.binance import DEFAULT_API_KEY, DEFAULT_SECRET, BinanceStub, StubMarket
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.dynamo import transact
from tradeflow.storage.orders import OrderRepository
from tradeflow.storage.positions import PositionRepository
from tradeflow.storage.signals import SignalRepository

TENANT = "acme"
ACCOUNT = "bn-1"
T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
CREDENTIALS = CcxtCredentials(exchange="binance", api_key=DEFAULT_API_KEY, secret=DEFAULT_SECRET, sandbox=True)


def bar(symbol: str, close: str, minute: int = 0, high: str | None = None, low: str | None = None) -> Bar:
    price = Decimal(close)
    return Bar(
        symbol=symbol,
        ts=T0 + timedelta(minutes=minute),
        open=price,
        high=Decimal(high) if high else price,
        low=Decimal(low) if low else price,
        close=price,
        volume=Decimal(2),
    )


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[BinanceStub]:
    server = BinanceStub(free_port())
    server.start()
    monkeypatch.setenv(ENDPOINTS_ENV, json.dumps({"binance": server.base_url}))
    server.publish_bar("BTC/USDT", bar("BTC/USDT", "40000"))
    server.publish_bar("ETH/USDT", bar("ETH/USDT", "2000"))
    try:
        yield server
    finally:
        factory.forget_adapter(TENANT, ACCOUNT)
        server.stop()


@pytest.fixture
def account(aws: object) -> Account:
    open_account(
        TENANT,
        ACCOUNT,
        Decimal(10_000),
        T0 - timedelta(days=1),
        broker="ccxt:binance",
        mode="paper",
        currency="USDT",
        broker_config={"exchange": "binance", "sandbox": True, "timeout_seconds": 1},
    )
    CredentialVault().store_credentials(TENANT, ACCOUNT, CREDENTIALS, actor="test")
    found = AccountRepository().get(TENANT, ACCOUNT)
    assert found is not None
    return found


@pytest.fixture
def broker(stub: BinanceStub, account: Account) -> CcxtBroker:
    return CcxtBroker.connect(account, CREDENTIALS, symbols=["BTC/USDT", "ETH/USDT"])


def order(
    coid: str,
    side: OrderSide = OrderSide.BUY,
    quantity: str = "0.01",
    *,
    symbol: str = "BTC/USDT",
    order_type: OrderType = OrderType.MARKET,
    tif: TimeInForce = TimeInForce.GTC,
    limit: str | None = None,
    stop: str | None = None,
    record: bool = False,
) -> Order:
    """An order of the account; `record`: written to our ledger first, as the execution service does."""
    built = Order(
        tenant_id=TENANT,
        account_id=ACCOUNT,
        client_order_id=coid,
        broker="ccxt:binance",
        symbol=symbol,
        side=side,
        quantity=Decimal(quantity),
        order_type=order_type,
        time_in_force=tif,
        limit_price=Decimal(limit) if limit else None,
        stop_price=Decimal(stop) if stop else None,
        created_at=T0,
        updated_at=T0,
    )
    if record:
        assert OrderRepository().create(built)
    return built


def sent(stub: BinanceStub, coid: str) -> dict[str, str]:
    """The parameters of the order POST the stub received for `coid`."""
    matches = [r for r in stub.order_requests if r.get("newClientOrderId") == coid]
    assert len(matches) == 1, stub.order_requests
    return matches[0]


# -- placement ------------------------------------------------------------------------------------


def test_market_and_limit_orders_reach_binance_with_our_client_order_id(broker: CcxtBroker, stub: BinanceStub) -> None:
    filled = broker.submit(order("tf-market-1"))
    assert filled.client_order_id == "tf-market-1" and filled.status is OrderStatus.FILLED
    assert filled.order_type is OrderType.MARKET and filled.quantity == Decimal("0.01")
    [fill] = filled.fills
    assert fill.ref == f"{filled.broker_order_id}@0.01"
    assert (fill.quantity, fill.price) == (Decimal("0.01"), Decimal(40000))
    assert (fill.cumulative_quantity, fill.cumulative_average) == (Decimal("0.01"), Decimal(40000))
    assert fill.fee == Decimal("0.4")  # 0.1% of 400 USDT, charged in the quote currency
    request = sent(stub, "tf-market-1")
    assert (request["symbol"], request["side"], request["type"], request["quantity"]) == (
        "BTCUSDT",
        "BUY",
        "MARKET",
        "0.01",
    )
    assert "timeInForce" not in request  # Binance refuses a time in force on market orders

    resting = broker.submit(order("tf-limit-1", order_type=OrderType.LIMIT, limit="39000", tif=TimeInForce.DAY))
    assert resting.status is OrderStatus.ACCEPTED and not resting.fills
    assert resting.limit_price == Decimal(39000)
    assert resting.time_in_force is TimeInForce.DAY  # sent as GTC (no sessions in crypto), reported as asked
    request = sent(stub, "tf-limit-1")
    assert (request["type"], request["price"], request["timeInForce"]) == ("LIMIT", "39000", "GTC")

    ioc = broker.submit(order("tf-ioc-1", order_type=OrderType.LIMIT, limit="39000", tif=TimeInForce.IOC))
    assert ioc.status is OrderStatus.EXPIRED and ioc.time_in_force is TimeInForce.IOC
    assert sent(stub, "tf-ioc-1")["timeInForce"] == "IOC"


def test_stop_and_stop_limit_orders_trigger_at_the_exchange(broker: CcxtBroker, stub: BinanceStub) -> None:
    stop_limit = broker.submit(
        order("tf-stoplimit-1", order_type=OrderType.STOP_LIMIT, stop="41000", limit="41100", record=True)
    )
    assert stop_limit.order_type is OrderType.STOP_LIMIT and stop_limit.status is OrderStatus.ACCEPTED
    assert (stop_limit.stop_price, stop_limit.limit_price) == (Decimal(41000), Decimal(41100))
    request = sent(stub, "tf-stoplimit-1")
    assert (request["type"], request["stopPrice"], request["price"]) == ("STOP_LOSS_LIMIT", "41000", "41100")
    stop = broker.submit(order("tf-stop-1", order_type=OrderType.STOP, stop="42000", record=True))
    assert stop.order_type is OrderType.STOP and stop.stop_price == Decimal(42000)
    assert sent(stub, "tf-stop-1")["type"] == "STOP_LOSS"

    stub.publish_bar("BTC/USDT", bar("BTC/USDT", "41500", minute=1, high="41600", low="40000"))
    after = broker.get_order_by_client_id("tf-stoplimit-1")
    assert after is not None and after.status is OrderStatus.FILLED
    assert after.fills[0].cumulative_average == Decimal(41100)  # triggered at 41000, limit 41100 vs the bar's open
    assert broker.get_order_by_client_id("tf-stop-1").status is OrderStatus.ACCEPTED  # type: ignore[union-attr]
    stub.publish_bar("BTC/USDT", bar("BTC/USDT", "42500", minute=2, high="42600", low="42400"))
    triggered = broker.get_order_by_client_id("tf-stop-1")
    assert triggered is not None and triggered.status is OrderStatus.FILLED
    assert triggered.fills[0].price == Decimal(42500)  # gapped over the stop: filled at the open


def test_a_type_the_market_lacks_is_refused_naming_the_type_and_the_exchange(
    stub: BinanceStub, account: Account
) -> None:
    stub.add_market(StubMarket("SOL", "USDT", tick_size=Decimal("0.01"), order_types=("LIMIT", "MARKET")))
    broker = CcxtBroker.connect(account, CREDENTIALS)
    with pytest.raises(BrokerRejected) as refused:
        broker.submit(order("tf-sol-stop", symbol="SOL/USDT", order_type=OrderType.STOP, stop="150", quantity="1"))
    assert refused.value.code is RejectCode.REJECTED
    assert "stop orders are not supported by binance for SOL/USDT" in str(refused.value)
    assert stub.orders_created == 0


# -- lookup, cancel, lists ---------------------------------------------------------------------------


def test_lookup_by_client_order_id_takes_the_symbol_from_our_ledger(stub: BinanceStub, account: Account) -> None:
    broker = CcxtBroker.connect(account, CREDENTIALS)  # no symbols of its own: the ledger must tell
    placed = broker.submit(order("tf-eth-1", symbol="ETH/USDT", quantity="0.5", record=True))
    found = broker.get_order_by_client_id("tf-eth-1")
    assert found is not None
    assert (found.broker_order_id, found.symbol, found.status) == (
        placed.broker_order_id,
        "ETH/USDT",
        OrderStatus.FILLED,
    )
    assert found.fills[0].ref == placed.fills[0].ref  # the same running total, however it is read
    assert broker.get_order_by_client_id("tf-never-sent") is None
    order("tf-recorded-only", record=True)
    assert broker.get_order_by_client_id("tf-recorded-only") is None  # Binance's -2013: not found
    assert stub.requests["GET /api/v3/order"] == 2


def test_cancel_reports_our_order_not_the_cancel_request(broker: CcxtBroker, stub: BinanceStub) -> None:
    broker.submit(order("tf-cancel-1", order_type=OrderType.LIMIT, limit="39000", record=True))
    cancelled = broker.cancel("tf-cancel-1")
    assert cancelled.client_order_id == "tf-cancel-1"  # Binance answers with the cancel's own id
    assert cancelled.status is OrderStatus.CANCELLED
    assert stub.order("tf-cancel-1")["status"] == "CANCELED"  # type: ignore[index]
    assert broker.cancel("tf-cancel-1").status is OrderStatus.CANCELLED  # a second cancel changes nothing
    with pytest.raises(BrokerRejected, match="not found"):
        broker.cancel("tf-unknown")


def test_a_fill_that_wins_the_race_with_a_cancel_is_reported(broker: CcxtBroker, stub: BinanceStub) -> None:
    broker.submit(order("tf-race-1", order_type=OrderType.LIMIT, limit="39000", record=True))
    stub.fill_silently("tf-race-1", Decimal("0.004"), Decimal("39000"))
    partly = broker.cancel("tf-race-1")
    assert partly.status is OrderStatus.CANCELLED and partly.filled_quantity == Decimal("0.004")
    assert partly.fills[0].cumulative_quantity == Decimal("0.004")
    broker.submit(order("tf-race-2", order_type=OrderType.LIMIT, limit="39000", record=True))
    stub.fill_silently("tf-race-2", Decimal("0.01"), Decimal("39000"))
    assert broker.cancel("tf-race-2").status is OrderStatus.FILLED


def test_open_and_recent_orders(broker: CcxtBroker, stub: BinanceStub) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    broker.submit(order("tf-list-filled", record=True))
    broker.submit(order("tf-list-resting", order_type=OrderType.LIMIT, limit="39000", record=True))
    broker.submit(order("tf-list-cancelled", order_type=OrderType.LIMIT, limit="38000", record=True))
    broker.cancel("tf-list-cancelled")
    broker.submit(order("tf-list-eth", symbol="ETH/USDT", order_type=OrderType.LIMIT, limit="1900", quantity="1"))
    assert {o.client_order_id for o in broker.open_orders()} == {"tf-list-resting", "tf-list-eth"}
    recent = {o.client_order_id: o.status for o in broker.recent_orders(before)}
    assert recent == {
        "tf-list-filled": OrderStatus.FILLED,
        "tf-list-resting": OrderStatus.ACCEPTED,
        "tf-list-cancelled": OrderStatus.CANCELLED,
        "tf-list-eth": OrderStatus.ACCEPTED,
    }
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert {o.client_order_id for o in broker.recent_orders(later)} == {"tf-list-resting", "tf-list-eth"}


# -- balances ---------------------------------------------------------------------------------------


def test_positions_and_account_from_the_balances(broker: CcxtBroker, stub: BinanceStub) -> None:
    broker.submit(order("tf-pos-1", quantity="0.05"))
    stub.set_balance("ETH", Decimal(2))  # an unexplained balance: our ledger has no such position
    transact(
        [
            PositionRepository().save_write(
                Position(
                    tenant_id=TENANT,
                    account_id=ACCOUNT,
                    symbol="BTC/USDT",
                    quantity=Decimal("0.05"),
                    average_price=Decimal(39500),
                )
            )
        ]
    )
    positions = {p.symbol: p for p in broker.positions()}
    assert set(positions) == {"BTC/USDT", "ETH/USDT"}
    assert (positions["BTC/USDT"].quantity, positions["BTC/USDT"].average_price) == (Decimal("0.05"), Decimal(39500))
    assert (positions["ETH/USDT"].quantity, positions["ETH/USDT"].average_price) == (Decimal(2), Decimal(0))
    broker.submit(order("tf-pos-rest", order_type=OrderType.LIMIT, limit="30000", quantity="0.1"))
    usdt = stub.balance("USDT")
    funds = broker.account()
    assert funds.currency == "USDT"
    assert funds.cash == usdt.free + usdt.locked and funds.buying_power == usdt.free
    assert funds.cash == Decimal(10_000) - Decimal(2000) - Decimal(2)  # 0.05 BTC at 40000 plus 0.1% fee
    assert funds.equity == funds.cash + Decimal("0.05") * 40000 + 2 * 2000


# -- candles ----------------------------------------------------------------------------------------


def test_historical_bars_page_through_fetch_ohlcv(broker: CcxtBroker, stub: BinanceStub) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stub.seed_bars(
        "BTC/USDT",
        [
            Bar(
                symbol="BTC/USDT",
                ts=start + timedelta(minutes=i),
                open=Decimal(40000 + i),
                high=Decimal(40010 + i),
                low=Decimal(39990 + i),
                close=Decimal("40005.5") + i,
                volume=Decimal("1.25"),
            )
            for i in range(2500)
        ],
    )
    requests_before = stub.requests["GET /api/v3/klines"]
    end = start + timedelta(minutes=2099)
    bars = broker.historical_bars("BTC/USDT", "1m", start, end)
    assert len(bars) == 2100 and stub.requests["GET /api/v3/klines"] - requests_before == 3
    assert [b.ts for b in bars] == [start + timedelta(minutes=i) for i in range(2100)]
    assert bars[7] == Bar(
        symbol="BTC/USDT",
        timeframe="1m",
        ts=start + timedelta(minutes=7),
        open=Decimal(40007),
        high=Decimal(40017),
        low=Decimal(39997),
        close=Decimal("40012.5"),
        volume=Decimal("1.25"),
    )
    assert [b.ts for b in broker.historical_bars("BTC/USDT", "1m", start + timedelta(minutes=10), limit=3)] == [
        start + timedelta(minutes=m) for m in (10, 11, 12)
    ]
    with pytest.raises(BrokerRejected, match="no 7m candles"):
        broker.historical_bars("BTC/USDT", "7m", start)


# -- precision and limits ---------------------------------------------------------------------------


def test_amounts_and_prices_are_rounded_to_the_market(broker: CcxtBroker, stub: BinanceStub) -> None:
    placed = broker.submit(order("tf-round-1", quantity="0.0123456", order_type=OrderType.LIMIT, limit="39000.126"))
    request = sent(stub, "tf-round-1")
    assert (request["quantity"], request["price"]) == ("0.01234", "39000.13")  # truncated to the step, tick-rounded
    assert (placed.quantity, placed.limit_price) == (Decimal("0.01234"), Decimal("39000.13"))


@pytest.mark.parametrize(
    ("symbol", "quantity", "limit", "message"),
    [
        ("ETH/USDT", "0.0005", None, "ETH/USDT: amount 0.0005 is below the minimum 0.001"),
        ("ETH/USDT", "0.00059", None, "ETH/USDT: amount 0.00059 (rounded to 0.0005) is below the minimum 0.001"),
        ("BTC/USDT", "0.000001", None, "BTC/USDT: amount 0.000001 rounds to 0 at the market's precision 0.00001"),
        ("BTC/USDT", "0.0001", None, "BTC/USDT: notional 4 (amount 0.0001 x price 40000) is below the minimum 5"),
        ("BTC/USDT", "0.001", "4000", "BTC/USDT: notional 4 (amount 0.001 x price 4000) is below the minimum 5"),
        ("BTC/USDT", "10000", None, "BTC/USDT: amount 10000 is above the maximum 9000"),
    ],
)
def test_orders_outside_the_markets_limits_are_refused_before_sending(
    broker: CcxtBroker, stub: BinanceStub, symbol: str, quantity: str, limit: str | None, message: str
) -> None:
    kind = OrderType.LIMIT if limit else OrderType.MARKET
    with pytest.raises(BrokerRejected) as refused:
        broker.submit(order("tf-small", symbol=symbol, quantity=quantity, order_type=kind, limit=limit))
    assert refused.value.code is RejectCode.PRECISION
    assert str(refused.value) == f"precision: {message}"
    assert stub.order_requests == []


def test_an_unknown_symbol_is_rejected_naming_it(broker: CcxtBroker, stub: BinanceStub) -> None:
    with pytest.raises(BrokerRejected) as refused:
        broker.submit(order("tf-doge", symbol="DOGE/EUR", quantity="100"))
    assert refused.value.code is RejectCode.UNKNOWN_SYMBOL and "DOGE/EUR is not a market on binance" in str(
        refused.value
    )
    with pytest.raises(BrokerRejected) as refused_read:
        broker.historical_bars("DOGE/EUR", "1m", T0)
    assert refused_read.value.code is RejectCode.UNKNOWN_SYMBOL


def test_insufficient_funds_keep_binances_words(broker: CcxtBroker) -> None:
    with pytest.raises(BrokerRejected) as refused:
        broker.submit(order("tf-rich", quantity="1"))  # 40000 USDT with 10000
    assert refused.value.code is RejectCode.INSUFFICIENT_FUNDS
    assert "Account has insufficient balance for requested action." in refused.value.broker_message


def test_a_duplicate_client_order_id_of_an_open_order(broker: CcxtBroker, stub: BinanceStub) -> None:
    broker.submit(order("tf-dup-1", order_type=OrderType.LIMIT, limit="39000"))
    with pytest.raises(DuplicateClientOrderId) as duplicate:
        broker.submit(order("tf-dup-1", order_type=OrderType.LIMIT, limit="39000"))
    assert "Duplicate order sent." in duplicate.value.broker_message
    assert stub.orders_created == 1


def test_ccxt_never_invents_a_client_order_id(broker: CcxtBroker, stub: BinanceStub) -> None:
    ours = [f"tf-own-{i}" for i in range(4)]
    broker.submit(order(ours[0]))
    broker.submit(order(ours[1], order_type=OrderType.LIMIT, limit="39000"))
    broker.submit(order(ours[2], order_type=OrderType.STOP_LIMIT, stop="45000", limit="45100"))
    broker.submit(order(ours[3], side=OrderSide.SELL, quantity="0.005"))
    with pytest.raises(BrokerRejected):
        broker.submit(order("tf-own-rejected", quantity="5"))
    received = [r.get("newClientOrderId") for r in stub.order_requests]
    assert received == [*ours, "tf-own-rejected"]  # every POST carried ours; ccxt's x-... ids never appear


# -- failures -----------------------------------------------------------------------------------------


def test_a_timed_out_order_is_looked_up_not_resent_by_the_execution_service(
    stub: BinanceStub, account: Account
) -> None:
    signal_id = "sig_timeout_1"
    coid = client_order_id(signal_id)
    SignalRepository().record_new(  # journaled before its intent, as the strategy function leaves it
        Signal(
            signal_id=signal_id,
            tenant_id=TENANT,
            deployment_id="dep-1",
            account_id=ACCOUNT,
            symbol="BTC/USDT",
            action=SignalAction.BUY,
            bar_time=T0,
            generated_at=T0,
            price=Decimal(40000),
            strategy="test",
        )
    )
    intent = OrderIntent(
        tenant_id=TENANT,
        account_id=ACCOUNT,
        client_order_id=coid,
        signal_id=signal_id,
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        quantity=Decimal("0.02"),
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.GTC,
        reference_price=Decimal(40000),
        reserved_notional=Decimal(800),
        decided_at=T0,
    )
    stub.delay_next_order(2.5)  # the order is made at once; the answer comes after the 1 s timeout
    service = ExecutionService(broker_for=factory.broker_for)
    result = service.execute(intent)
    assert result.status == "submitted" and result.order is not None
    assert result.order.status is OrderStatus.FILLED and result.order.filled_quantity == Decimal("0.02")
    assert result.order.broker_order_id == str(stub.order(coid)["orderId"])  # type: ignore[index]
    assert stub.orders_created == 1 and stub.requests["POST /api/v3/order"] == 1
    assert stub.requests["GET /api/v3/order"] == 1  # the lookup by client order id
    again = service.execute(intent)  # the queue delivers the intent again
    assert again.status == "duplicate" and stub.orders_created == 1
    record = SignalRepository().get(TENANT, signal_id)
    assert record is not None and record.outcome is SignalOutcome.FILLED
    breaker = CircuitBreaker(TENANT, ACCOUNT).state()
    assert "BrokerTimeout" in str(breaker.get("reason"))  # the timeout counted, and was recorded


def test_a_429_is_honoured_by_the_guarded_broker(broker: CcxtBroker, stub: BinanceStub) -> None:
    slept: list[float] = []
    guarded = GuardedBroker(broker, CircuitBreaker(TENANT, ACCOUNT), sleep=slept.append)
    guarded.account()  # markets loaded, key known
    stub.fail_next(1, 429, retry_after=3, path="/api/v3/order")
    placed = guarded.submit(order("tf-429-1"))
    assert placed.status is OrderStatus.FILLED
    assert len(slept) == 1 and slept[0] >= 3  # Retry-After honoured before the POST was sent again
    assert stub.requests["POST /api/v3/order"] == 2 and stub.orders_created == 1
    stub.fail_next(2, 429, retry_after=1, path="/api/v3/openOrders")
    assert guarded.open_orders() == []
    assert len(slept) == 3 and min(slept[1:]) >= 1


def test_an_exchange_failure_on_submit_means_look_it_up(broker: CcxtBroker, stub: BinanceStub) -> None:
    broker.account()
    stub.fail_next(1, 503, path="/api/v3/order")
    with pytest.raises(BrokerTimeout, match="may exist"):
        broker.submit(order("tf-503"))
    stub.fail_next(1, 502, path="/api/v3/account")
    with pytest.raises(BrokerUnavailable):
        broker.account()


def test_revoked_credentials_halt_the_account(stub: BinanceStub, account: Account) -> None:
    guarded = factory.broker_for(account, T0)
    guarded.account()  # the key worked once (ccxt then reports -2015 as DDoSProtection)
    stub.revoke(DEFAULT_API_KEY)
    with pytest.raises(BrokerAuthFailed) as refused:
        guarded.account()
    assert "-2015" in refused.value.broker_message and "Invalid API-key" in refused.value.broker_message
    halt = account_halt(TENANT, ACCOUNT)
    assert halt is not None and "Invalid API-key, IP, or permissions for action." in halt.reason


def test_a_wrong_key_is_refused(stub: BinanceStub, account: Account) -> None:
    wrong = CREDENTIALS.model_copy(update={"api_key": "not-the-stub-key-0000"})
    with pytest.raises(BrokerAuthFailed):
        CcxtBroker.connect(account, wrong).account()


# -- connecting -------------------------------------------------------------------------------------


def test_sandbox_urls_and_the_endpoint_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENDPOINTS_ENV, raising=False)
    testnet = build_exchange(ccxt, CREDENTIALS, sandbox=True, timeout=2)
    assert testnet.urls["api"]["private"] == "https://testnet.binance.vision/api/v3"
    assert testnet.options["fetchMarkets"]["types"] == ["spot"] and testnet.enableRateLimit
    assert testnet.timeout == 2000
    monkeypatch.setenv(ENDPOINTS_ENV, json.dumps({"binance": "http://127.0.0.1:9"}))
    local = build_exchange(ccxt.pro, CREDENTIALS, sandbox=True, timeout=2)
    assert local.urls["api"]["private"] == "http://127.0.0.1:9/api/v3"
    assert local.urls["api"]["ws"]["spot"] == "ws://127.0.0.1:9/ws"
    assert local.urls["api"]["ws"]["ws-api"]["spot"] == "ws://127.0.0.1:9/ws-api/v3"
    everything = json.dumps({k: local.urls[k] for k in ("api", "test", "apiBackup") if k in local.urls})
    assert "binance.com" not in everything and "binance.vision" not in everything


def test_an_exchange_without_a_sandbox_is_never_traded_live_by_accident() -> None:
    kraken = CcxtCredentials(
        exchange="kraken", api_key="kraken-key-0123456789", secret="kraken-secret-0123", sandbox=True
    )
    with pytest.raises(NoSandbox, match="kraken has no sandbox"):
        build_exchange(ccxt, kraken, sandbox=True, timeout=2)


def test_credentials_for_another_exchange_are_refused(account: Account) -> None:
    other = CcxtCredentials(exchange="kraken", api_key="kraken-key-0123456789", secret="kraken-secret-0123")
    with pytest.raises(BrokerRejected, match="configured for binance"):
        CcxtBroker.connect(account, other)
