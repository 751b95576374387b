"""The streamer's ccxt streams against the Binance stub's websockets, through the real ccxt.pro
`binance` class: klines become Bars, executionReports (Binance's WebSocket API user-data stream) become
BrokerOrders with running-total fills, a dropped connection ends `run()`, a silenced one delivers
nothing, and malformed frames are reported and skipped while the stream goes on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from tradeflow.accounts.credentials import CcxtCredentials
from tradeflow.brokers import ccxt_streams
from tradeflow.brokers.ccxt_exchange import CcxtBroker
from tradeflow.brokers.ccxt_streams import CcxtOhlcv, CcxtOrders, StreamUnsupported
from tradeflow.brokers.endpoints import ENDPOINTS_ENV
from tradeflow.brokers.port import BrokerAuthFailed, BrokerOrder, BrokerUnavailable
from tradeflow.domain import Account, Bar, Order, OrderSide, OrderStatus, OrderType, TimeInForce
from tradeflow.local.moto_server import free_port
from tradeflow.local.stubs.binance import DEFAULT_API_KEY, DEFAULT_SECRET, BinanceStub

T = TypeVar("T")
T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
CREDENTIALS = CcxtCredentials(exchange="binance", api_key=DEFAULT_API_KEY, secret=DEFAULT_SECRET, sandbox=True)
ACCOUNT = Account(
    tenant_id="acme",
    account_id="bn-1",
    broker="ccxt:binance",
    currency="USDT",
    broker_config={"exchange": "binance", "sandbox": True, "timeout_seconds": 2},
    created_at=T0,
    updated_at=T0,
)
WAIT = 5.0


class Recorder:
    """A StreamHandler that keeps everything it is given."""

    def __init__(self) -> None:
        self.bars: list[Bar] = []
        self.orders: list[BrokerOrder] = []
        self.malformed_frames: list[tuple[object, str]] = []
        self.touches = 0

    def touch(self) -> None:
        self.touches += 1

    async def on_bar(self, bar: Bar) -> None:
        self.bars.append(bar)

    async def on_order(self, order: BrokerOrder) -> None:
        self.orders.append(order)

    def malformed(self, raw: object, reason: str) -> None:
        self.malformed_frames.append((raw, reason))


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[BinanceStub]:
    server = BinanceStub(free_port())
    server.start()
    monkeypatch.setenv(ENDPOINTS_ENV, json.dumps({"binance": server.base_url}))
    server.publish_bar("BTC/USDT", bar("BTC/USDT", 0, "40000"))
    try:
        yield server
    finally:
        server.stop()


def bar(symbol: str, minute: int, close: str, high: str | None = None) -> Bar:
    price = Decimal(close)
    return Bar(
        symbol=symbol,
        ts=T0 + timedelta(minutes=minute),
        open=price,
        high=Decimal(high) if high else price,
        low=price,
        close=price,
        volume=Decimal("1.5"),
    )


async def until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def off_loop(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A blocking call (the stub's controls, the REST adapter) without stalling the streams' loop."""
    return await asyncio.to_thread(call, *args, **kwargs)


async def subscribed(stub: BinanceStub, kind: str, streams: set[str] | None = None) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        ready = await off_loop(stub.stream_count, kind)
        names = await off_loop(stub.market_streams) if streams else set()
        if ready and (not streams or streams <= names):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the {kind} stream did not subscribe")
        await asyncio.sleep(0.02)


def running(
    scenario: Callable[[Recorder, list[asyncio.Task[None]]], Awaitable[None]], *streams: CcxtOhlcv | CcxtOrders
) -> Recorder:
    """Run `streams` with one recorder while `scenario` drives the stub; close them all afterwards."""
    recorder = Recorder()

    async def main() -> None:
        tasks = [asyncio.create_task(s.run(recorder)) for s in streams]
        try:
            await scenario(recorder, tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for stream in streams:
                await stream.close()

    asyncio.run(main())
    return recorder


def test_klines_arrive_as_bars(stub: BinanceStub) -> None:
    async def scenario(recorder: Recorder, tasks: list[asyncio.Task[None]]) -> None:
        await subscribed(stub, "market", {"btcusdt@kline_1m", "ethusdt@kline_1m"})
        await off_loop(stub.publish_bar, "BTC/USDT", bar("BTC/USDT", 1, "40100"), closed=False)  # forming
        await until(lambda: len(recorder.bars) == 1, "the forming bar")
        await off_loop(stub.publish_bar, "BTC/USDT", bar("BTC/USDT", 1, "40150.25", high="40200"))  # closed
        await off_loop(stub.publish_bar, "ETH/USDT", bar("ETH/USDT", 1, "2000.5"))
        await until(lambda: len(recorder.bars) == 3, "the closed bar and ETH's")

    stream = CcxtOhlcv(ACCOUNT, CREDENTIALS, ["BTC/USDT", "ETH/USDT"])
    recorder = running(scenario, stream)
    btc = [b for b in recorder.bars if b.symbol == "BTC/USDT"]
    assert [b.ts for b in btc] == [T0 + timedelta(minutes=1)] * 2  # the same candle, updated
    assert btc[-1] == Bar(
        symbol="BTC/USDT",
        timeframe="1m",
        ts=T0 + timedelta(minutes=1),
        open=Decimal("40150.25"),
        high=Decimal(40200),
        low=Decimal("40150.25"),
        close=Decimal("40150.25"),
        volume=Decimal("1.5"),
    )
    assert [(b.symbol, b.close) for b in recorder.bars if b.symbol == "ETH/USDT"] == [("ETH/USDT", Decimal("2000.5"))]
    assert recorder.touches >= 4 and recorder.malformed_frames == []
    assert stream.name == "ccxt:binance:ohlcv:acme/bn-1"


def test_execution_reports_arrive_as_orders_with_running_total_fills(stub: BinanceStub) -> None:
    broker = CcxtBroker.connect(ACCOUNT, CREDENTIALS)  # places the orders the user stream reports
    limit = Order(
        tenant_id="acme",
        account_id="bn-1",
        client_order_id="tf-stream-1",
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        quantity=Decimal("0.01"),
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        limit_price=Decimal(39000),
        created_at=T0,
        updated_at=T0,
    )

    def updates_of(recorder: Recorder, status: OrderStatus) -> list[BrokerOrder]:
        return [o for o in recorder.orders if o.client_order_id == "tf-stream-1" and o.status is status]

    async def scenario(recorder: Recorder, tasks: list[asyncio.Task[None]]) -> None:
        await subscribed(stub, "user")
        await off_loop(broker.submit, limit)
        await until(lambda: bool(updates_of(recorder, OrderStatus.ACCEPTED)), "the NEW report")
        await off_loop(stub.fill, "tf-stream-1", Decimal("0.004"), Decimal("39000"))
        await until(lambda: bool(updates_of(recorder, OrderStatus.PARTIALLY_FILLED)), "the partial fill")
        await off_loop(stub.fill, "tf-stream-1", Decimal("0.006"), Decimal("38900"))
        await until(lambda: bool(updates_of(recorder, OrderStatus.FILLED)), "the fill")

    recorder = running(scenario, CcxtOrders(ACCOUNT, CREDENTIALS))
    [new] = updates_of(recorder, OrderStatus.ACCEPTED)
    assert new.fills == [] and new.limit_price == Decimal(39000) and new.order_type is OrderType.LIMIT
    [partial] = updates_of(recorder, OrderStatus.PARTIALLY_FILLED)
    [done] = updates_of(recorder, OrderStatus.FILLED)
    assert partial.broker_order_id == done.broker_order_id == new.broker_order_id
    [first] = partial.fills
    assert first.ref == f"{partial.broker_order_id}@0.004"
    assert (first.cumulative_quantity, first.cumulative_average, first.fee) == (
        Decimal("0.004"),
        Decimal(39000),
        Decimal("0.156"),
    )
    [total] = done.fills
    assert total.ref == f"{done.broker_order_id}@0.01" and done.filled_quantity == Decimal("0.01")
    assert (total.cumulative_quantity, total.cumulative_average) == (Decimal("0.01"), Decimal(38940))
    assert total.fee == Decimal("0.156") + Decimal("0.2334")  # the commissions of both trades seen


def test_a_cancel_report_names_our_order(stub: BinanceStub) -> None:
    broker = CcxtBroker.connect(ACCOUNT, CREDENTIALS)  # places the orders the user stream reports

    async def scenario(recorder: Recorder, tasks: list[asyncio.Task[None]]) -> None:
        await subscribed(stub, "user")
        placed = await off_loop(broker.submit, _limit("tf-stream-cancel"))
        await off_loop(broker.exchange.cancel_order, placed.broker_order_id, "BTC/USDT")
        await until(lambda: any(o.status is OrderStatus.CANCELLED for o in recorder.orders), "the cancel report")

    recorder = running(scenario, CcxtOrders(ACCOUNT, CREDENTIALS))
    cancelled = [o for o in recorder.orders if o.status is OrderStatus.CANCELLED]
    assert [o.client_order_id for o in cancelled] == ["tf-stream-cancel"]  # Binance's `C`, not the cancel's `c`


def test_a_dropped_connection_ends_run(stub: BinanceStub) -> None:
    ended: list[BaseException | None] = []

    async def scenario(recorder: Recorder, tasks: list[asyncio.Task[None]]) -> None:
        await subscribed(stub, "market")
        await subscribed(stub, "user")
        await off_loop(stub.drop_streams)
        done, _ = await asyncio.wait(tasks, timeout=WAIT)
        ended.extend(t.exception() for t in done)

    running(scenario, CcxtOhlcv(ACCOUNT, CREDENTIALS, ["BTC/USDT"]), CcxtOrders(ACCOUNT, CREDENTIALS))
    assert len(ended) == 2 and all(isinstance(e, BrokerUnavailable) for e in ended), ended
    assert all("connection ended" in str(e) for e in ended)


def test_a_silenced_stream_stays_open_and_delivers_nothing(stub: BinanceStub) -> None:
    async def scenario(recorder: Recorder, tasks: list[asyncio.Task[None]]) -> None:
        await subscribed(stub, "market")
        await off_loop(stub.silence_streams, True)
        touched = recorder.touches
        await off_loop(stub.publish_bar, "BTC/USDT", bar("BTC/USDT", 1, "40100"))
        await asyncio.sleep(0.5)
        assert recorder.bars == [] and recorder.touches == touched  # what the streamer's watchdog sees
        assert not any(t.done() for t in tasks)
        await off_loop(stub.silence_streams, False)
        await off_loop(stub.publish_bar, "BTC/USDT", bar("BTC/USDT", 2, "40200"))
        await until(lambda: len(recorder.bars) == 1, "the bar after the silence")

    recorder = running(scenario, CcxtOhlcv(ACCOUNT, CREDENTIALS, ["BTC/USDT"]))
    assert [b.close for b in recorder.bars] == [Decimal(40200)]


def test_malformed_frames_are_reported_and_skipped(stub: BinanceStub) -> None:
    broker = CcxtBroker.connect(ACCOUNT, CREDENTIALS)  # places the orders the user stream reports

    async def scenario(recorder: Recorder, tasks: list[asyncio.Task[None]]) -> None:
        await subscribed(stub, "market")
        await subscribed(stub, "user")
        await off_loop(stub.send_raw, "{not json", "market")
        bad_kline = {
            "e": "kline",
            "E": 1,
            "s": "BTCUSDT",
            "k": {"t": 1767623460000, "s": "BTCUSDT", "i": "1m", "o": "oops", "h": "1", "l": "1", "c": "1",
                  "v": "1", "x": False},
        }  # fmt: skip
        await off_loop(stub.send_raw, bad_kline, "market")
        sideless = {"subscriptionId": 0, "event": {"e": "executionReport", "s": "BTCUSDT", "c": "tf-x", "i": 99,
                                                   "X": "NEW", "x": "NEW", "q": "1", "z": "0"}}  # fmt: skip
        await off_loop(stub.send_raw, sideless, "user")
        await until(lambda: len(recorder.malformed_frames) == 3, "three malformed frames")
        await off_loop(stub.publish_bar, "BTC/USDT", bar("BTC/USDT", 3, "40300"))
        await off_loop(broker.submit, _limit("tf-after-bad"))
        await until(lambda: bool(recorder.bars) and bool(recorder.orders), "the frames after the bad ones")
        assert not any(t.done() for t in tasks)

    recorder = running(scenario, CcxtOhlcv(ACCOUNT, CREDENTIALS, ["BTC/USDT"]), CcxtOrders(ACCOUNT, CREDENTIALS))
    raw_frame, reason = recorder.malformed_frames[0]
    assert raw_frame == "{not json" and "JSONDecodeError" in reason
    assert "incomplete OHLCV row" in recorder.malformed_frames[1][1]
    assert "side None" in recorder.malformed_frames[2][1]
    assert [b.close for b in recorder.bars] == [Decimal(40300)]
    assert [o.client_order_id for o in recorder.orders] == ["tf-after-bad"]


def test_refused_credentials_end_the_orders_stream(stub: BinanceStub) -> None:
    stub.revoke(DEFAULT_API_KEY)
    outcome: list[BaseException | None] = []

    async def scenario(recorder: Recorder, tasks: list[asyncio.Task[None]]) -> None:
        done, _ = await asyncio.wait(tasks, timeout=WAIT)
        outcome.extend(t.exception() for t in done)

    running(scenario, CcxtOrders(ACCOUNT, CREDENTIALS))
    [error] = outcome
    assert isinstance(error, BrokerAuthFailed) and "-2015" in error.broker_message


def test_an_exchange_without_the_watch_method_says_so() -> None:
    coincheck = CcxtCredentials(
        exchange="coincheck", api_key="coincheck-key-0123456", secret="coincheck-secret-01", sandbox=False
    )
    account = ACCOUNT.model_copy(update={"broker": "ccxt:coincheck", "broker_config": {"exchange": "coincheck"}})

    async def run(stream: CcxtOrders | CcxtOhlcv) -> None:
        try:
            await stream.run(Recorder())
        finally:
            await stream.close()

    with pytest.raises(StreamUnsupported, match="coincheck has no watchOrders"):
        asyncio.run(run(CcxtOrders(account, coincheck)))
    with pytest.raises(StreamUnsupported, match="coincheck has no watchOHLCV"):
        asyncio.run(run(CcxtOhlcv(account, coincheck, ["BTC/JPY"])))


def _limit(coid: str) -> Order:
    return Order(
        tenant_id="acme",
        account_id="bn-1",
        client_order_id=coid,
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        quantity=Decimal("0.01"),
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        limit_price=Decimal(39000),
        created_at=T0,
        updated_at=T0,
    )


def test_a_quiet_order_stream_proves_it_is_alive_with_pongs(stub: BinanceStub, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing trades, so Binance sends nothing; ccxt's pings (shortened here) come back as pongs.
    monkeypatch.setattr(ccxt_streams, "KEEPALIVE_MS", 100)

    async def scenario(recorder: Recorder, tasks: list[asyncio.Task[None]]) -> None:
        await subscribed(stub, "user")
        touched = recorder.touches
        await asyncio.sleep(0.7)
        assert recorder.touches >= touched + 3 and recorder.orders == []
        assert not any(t.done() for t in tasks)

    running(scenario, CcxtOrders(ACCOUNT, CREDENTIALS))
