"""Alpaca's streams (alpaca-py's websocket clients, driven by our stream sources) against the local stub:
trade updates arrive as BrokerOrders with cumulative fills matching the REST view, bars arrive for
stocks and crypto, a dropped connection ends `run()` (the supervisor reconnects), a silent one stays
connected without frames (the watchdog's case), a malformed frame is reported and skipped, and refused
credentials are an auth failure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from pydantic import SecretStr

from tradeflow.accounts.credentials import AlpacaCredentials
from tradeflow.brokers import alpaca_streams
from tradeflow.brokers.alpaca import AlpacaBroker
from tradeflow.brokers.alpaca_streams import AlpacaBars, AlpacaTradeUpdates
from tradeflow.brokers.endpoints import ENDPOINTS_ENV
from tradeflow.brokers.port import BrokerAuthFailed, BrokerOrder
from tradeflow.domain import Bar, Order, OrderSide, OrderStatus, OrderType, TimeInForce
from tradeflow.local.moto_server import free_port
from tradeflow.local.stubs.alpaca import DEFAULT_KEY_ID, DEFAULT_SECRET, AlpacaStub
from tradeflow.streaming.source import BrokerStream

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
CREDENTIALS = AlpacaCredentials(api_key_id=DEFAULT_KEY_ID, secret_key=SecretStr(DEFAULT_SECRET), paper=True)
WAIT = 5.0  # seconds any expected event may take


class Recorder:
    """A StreamHandler that keeps what it is given."""

    def __init__(self) -> None:
        self.touches = 0
        self.bars: list[Bar] = []
        self.orders: list[BrokerOrder] = []
        self.bad: list[tuple[object, str]] = []

    def touch(self) -> None:
        self.touches += 1

    async def on_bar(self, bar: Bar) -> None:
        self.bars.append(bar)

    async def on_order(self, order: BrokerOrder) -> None:
        self.orders.append(order)

    def malformed(self, raw: object, reason: str) -> None:
        self.bad.append((raw, reason))


async def until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A blocking call (the stub's controls, the REST adapter) off the event loop."""
    return await asyncio.to_thread(function, *args, **kwargs)


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[AlpacaStub]:
    server = AlpacaStub(free_port(), clock=lambda: START)
    server.start()
    monkeypatch.setenv(ENDPOINTS_ENV, json.dumps({"alpaca": server.base_url}))
    yield server
    server.stop()


def streaming(stream: BrokerStream, scenario: Callable[[asyncio.Task[None], Recorder], Awaitable[None]]) -> Recorder:
    """Run `stream` while `scenario` drives the stub; the stream is always cancelled and closed."""
    recorder = Recorder()

    async def main() -> None:
        task = asyncio.create_task(stream.run(recorder))
        try:
            await scenario(task, recorder)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await stream.close()

    asyncio.run(main())
    return recorder


def _bar(symbol: str, price: str, low: str | None = None, minute: int = 0) -> Bar:
    p = Decimal(price)
    return Bar(
        symbol=symbol,
        ts=START + timedelta(minutes=minute),
        open=p,
        high=p,
        low=Decimal(low) if low else p,
        close=p,
        volume=Decimal(7),
    )


def _limit_buy(coid: str, limit: str) -> Order:
    return Order(
        tenant_id="acme",
        account_id="alp-1",
        client_order_id=coid,
        broker="alpaca",
        symbol="GOOG",
        side=OrderSide.BUY,
        quantity=Decimal(10),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(limit),
        time_in_force=TimeInForce.GTC,
        created_at=START,
        updated_at=START,
    )


def _listening(stub: AlpacaStub, kind: str, count: int = 1) -> Callable[[], Awaitable[None]]:
    async def wait() -> None:
        deadline = asyncio.get_running_loop().time() + WAIT
        while (await call(stub.subscribers))[kind] < count:
            assert asyncio.get_running_loop().time() < deadline, f"no {kind} subscription"
            await asyncio.sleep(0.02)

    return wait


def test_trade_updates_arrive_as_broker_orders_with_the_same_cumulative_fills_as_rest(stub: AlpacaStub) -> None:
    broker = AlpacaBroker(DEFAULT_KEY_ID, DEFAULT_SECRET, base_url=stub.base_url)

    async def scenario(task: asyncio.Task[None], seen: Recorder) -> None:
        await _listening(stub, "trade_updates")()
        await call(stub.publish_bar, "GOOG", _bar("GOOG", "100"))
        await call(broker.submit, _limit_buy("tf-stream-1", "95"))
        await call(stub.publish_bar, "GOOG", _bar("GOOG", "95", low="94", minute=1), Decimal(4))
        await call(stub.publish_bar, "GOOG", _bar("GOOG", "93", minute=2))
        await until(lambda: len(seen.orders) >= 3, "three trade updates")
        assert not task.done()

    seen = streaming(AlpacaTradeUpdates(CREDENTIALS, paper=True, name="alpaca:trade_updates:acme/alp-1"), scenario)
    new, partial, filled = seen.orders
    assert all(o.client_order_id == "tf-stream-1" for o in seen.orders)
    assert (new.status, new.fills) == (OrderStatus.ACCEPTED, [])
    assert partial.status is OrderStatus.PARTIALLY_FILLED and partial.filled_quantity == 4
    assert [(f.ref, f.cumulative_quantity, f.cumulative_average) for f in partial.fills] == [
        (f"{partial.broker_order_id}@4", Decimal(4), Decimal(95))
    ]
    assert filled.status is OrderStatus.FILLED
    assert [(f.cumulative_quantity, f.cumulative_average) for f in filled.fills] == [(Decimal(10), Decimal("93.8"))]
    # the stream and a REST lookup describe the same executions with the same ref: recorded once
    assert filled.fills == broker.get_order_by_client_id("tf-stream-1").fills  # type: ignore[union-attr]
    assert seen.touches >= 5 and seen.bad == []  # the acks count as life too


def test_a_silent_fill_never_reaches_the_stream(stub: AlpacaStub) -> None:
    broker = AlpacaBroker(DEFAULT_KEY_ID, DEFAULT_SECRET, base_url=stub.base_url)

    async def scenario(task: asyncio.Task[None], seen: Recorder) -> None:
        await _listening(stub, "trade_updates")()
        await call(broker.submit, _limit_buy("tf-missed", "90"))
        await until(lambda: len(seen.orders) == 1, "the new order")
        await call(stub.fill_silently, "tf-missed", Decimal(10), Decimal(90))
        await call(broker.submit, _limit_buy("tf-next", "80"))
        await until(lambda: len(seen.orders) == 2, "the next order")

    seen = streaming(AlpacaTradeUpdates(CREDENTIALS), scenario)
    assert [(o.client_order_id, o.status) for o in seen.orders] == [
        ("tf-missed", OrderStatus.ACCEPTED),
        ("tf-next", OrderStatus.ACCEPTED),
    ]
    assert broker.get_order_by_client_id("tf-missed").status is OrderStatus.FILLED  # type: ignore[union-attr]


def test_bars_arrive_for_stocks_and_crypto(stub: AlpacaStub) -> None:
    async def scenario(task: asyncio.Task[None], seen: Recorder) -> None:
        await _listening(stub, "bars", count=2)()  # one connection for stocks, one for crypto
        await call(stub.publish_bar, "GOOG", _bar("GOOG", "101.5"))
        await call(stub.publish_bar, "BTC/USD", _bar("BTC/USD", "64000.25"))
        await call(stub.publish_bar, "AAPL", _bar("AAPL", "10"))  # not subscribed
        await until(lambda: len(seen.bars) >= 4, "bars and updated bars")
        await asyncio.sleep(0.1)
        assert not task.done()

    seen = streaming(AlpacaBars(CREDENTIALS, ["GOOG", "BTC/USD"]), scenario)
    assert sorted((b.symbol, b.timeframe, b.ts, b.close, b.volume) for b in seen.bars) == [
        ("BTC/USD", "1m", START, Decimal("64000.25"), Decimal(7)),
        ("BTC/USD", "1m", START, Decimal("64000.25"), Decimal(7)),  # the bar, and the same bar updated
        ("GOOG", "1m", START, Decimal("101.5"), Decimal(7)),
        ("GOOG", "1m", START, Decimal("101.5"), Decimal(7)),
    ]
    assert seen.touches >= 6 and seen.bad == []


@pytest.mark.parametrize("kind", ["trade_updates", "bars"])
def test_a_dropped_connection_ends_run(stub: AlpacaStub, kind: str) -> None:
    stream: BrokerStream = (
        AlpacaTradeUpdates(CREDENTIALS) if kind == "trade_updates" else AlpacaBars(CREDENTIALS, ["GOOG", "ETH/USD"])
    )

    async def scenario(task: asyncio.Task[None], seen: Recorder) -> None:
        await _listening(stub, kind)()
        await call(stub.drop_streams)
        await asyncio.wait_for(asyncio.shield(task), WAIT)  # returns: the supervisor reconnects
        assert task.exception() is None

    streaming(stream, scenario)


def test_a_silent_stream_stays_connected_and_says_nothing(stub: AlpacaStub) -> None:
    async def scenario(task: asyncio.Task[None], seen: Recorder) -> None:
        await _listening(stub, "bars")()
        await call(stub.silence_streams, True)
        before = seen.touches
        await call(stub.publish_bar, "GOOG", _bar("GOOG", "100"))
        await asyncio.sleep(0.3)
        assert seen.touches == before and seen.bars == [] and not task.done()  # only a watchdog can tell
        await call(stub.silence_streams, False)
        await call(stub.publish_bar, "GOOG", _bar("GOOG", "101", minute=1))
        await until(lambda: len(seen.bars) >= 1, "a bar after the silence")

    seen = streaming(AlpacaBars(CREDENTIALS, ["GOOG"]), scenario)
    assert [b.close for b in seen.bars][:1] == [101]


def test_a_malformed_trade_update_is_reported_and_the_stream_goes_on(stub: AlpacaStub) -> None:
    broker = AlpacaBroker(DEFAULT_KEY_ID, DEFAULT_SECRET, base_url=stub.base_url)
    garbage = "{not json"
    half = json.dumps({"stream": "trade_updates", "data": {"event": "fill", "order": {"id": "x"}}}).encode()

    async def scenario(task: asyncio.Task[None], seen: Recorder) -> None:
        await _listening(stub, "trade_updates")()
        await call(stub.send_raw, garbage)
        await call(stub.send_raw, half)
        await until(lambda: len(seen.bad) == 2, "two malformed frames")
        await call(broker.submit, _limit_buy("tf-after-garbage", "90"))
        await until(lambda: len(seen.orders) == 1, "the next trade update")
        assert not task.done()

    seen = streaming(AlpacaTradeUpdates(CREDENTIALS), scenario)
    assert [raw for raw, _ in seen.bad] == [garbage, half]
    assert "not JSON" in seen.bad[0][1] and "not understood" in seen.bad[1][1]
    assert seen.orders[0].client_order_id == "tf-after-garbage"


def test_malformed_market_data_is_reported_and_skipped(stub: AlpacaStub) -> None:
    # a bar whose high is below its low breaks our Bar's invariants; 0xc1 is never valid msgpack
    impossible = {"T": "b", "S": "GOOG", "o": 1.0, "h": 0.5, "l": 2.0, "c": 1.0, "v": 1, "t": "2026-03-02T15:00:00Z"}

    async def scenario(task: asyncio.Task[None], seen: Recorder) -> None:
        await _listening(stub, "bars")()
        await call(stub.send_raw, msgpack.packb([impossible, "not a message"]), to="market_data")
        await call(stub.send_raw, b"\xc1", to="market_data")
        await until(lambda: len(seen.bad) == 3, "three malformed messages")
        await call(stub.publish_bar, "GOOG", _bar("GOOG", "100"))
        await until(lambda: len(seen.bars) == 2, "the bar and its update")
        assert not task.done()

    seen = streaming(AlpacaBars(CREDENTIALS, ["GOOG"]), scenario)
    assert [reason.split(":")[0] for _, reason in seen.bad] == [
        "bar not understood",
        "not a message object",
        "not msgpack",
    ]
    assert [b.close for b in seen.bars] == [100, 100]


@pytest.mark.parametrize("kind", ["trade_updates", "bars"])
def test_refused_credentials_are_an_auth_failure(stub: AlpacaStub, kind: str) -> None:
    stub.revoke(DEFAULT_KEY_ID)
    stream: BrokerStream = (
        AlpacaTradeUpdates(CREDENTIALS) if kind == "trade_updates" else AlpacaBars(CREDENTIALS, ["GOOG"])
    )

    async def main() -> None:
        try:
            await asyncio.wait_for(stream.run(Recorder()), WAIT)
        finally:
            await stream.close()

    with pytest.raises(BrokerAuthFailed, match="refused"):
        asyncio.run(main())


def test_a_quiet_trade_stream_proves_it_is_alive_with_pings(stub: AlpacaStub, monkeypatch: pytest.MonkeyPatch) -> None:
    # No order trades, so Alpaca sends nothing; the keep-alive's answered pings keep the watchdog away.
    monkeypatch.setattr(alpaca_streams, "PING_SECONDS", 0.1)

    async def scenario(task: asyncio.Task[None], seen: Recorder) -> None:
        await _listening(stub, "trade_updates")()
        before = seen.touches
        await asyncio.sleep(0.6)
        assert seen.touches >= before + 3 and seen.orders == [] and not task.done()

    streaming(AlpacaTradeUpdates(CREDENTIALS), scenario)
