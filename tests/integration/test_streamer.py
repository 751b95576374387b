"""The streamer on moto: targets from deployments, one lease holder per account, the supervisor's
reconnects and watchdog, bars into the bars table, order updates through the queue into the ledger
(once), heartbeats, malformed messages.

The broker streams here are test doubles of a `BrokerStream`, fed by the test through an asyncio queue
(the SDK-backed streams are tested against the broker stubs in their own files); everything else —
DynamoDB, SQS, the execution function that books the fills — is the real code on moto.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from pydantic import ValidationError

from tradeflow.brokers.port import BrokerFill, BrokerOrder
from tradeflow.domain import Bar, Deployment, Order, OrderSide, OrderStatus, OrderType, TimeInForce
from tradeflow.domain.accounts import PendingExposure
from tradeflow.domain.deployments import DeploymentStatus
from tradeflow.domain.ids import client_order_id
from tradeflow.execution.accounts import open_account
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.bars import BarRepository
from tradeflow.storage.deployments import DeploymentRepository
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.fills import FillRepository
from tradeflow.storage.orders import OrderRepository
from tradeflow.storage.positions import PositionRepository
from tradeflow.streaming.lease import LeaseStore, lease_key
from tradeflow.streaming.service import Streamer, StreamerThread, utc_now
from tradeflow.streaming.settings import StreamerSettings
from tradeflow.streaming.source import AccountTarget, StreamHandler
from tradeflow.streaming.targets import read_targets

from helpers import Clock, deliver, receive

pytestmark = pytest.mark.usefixtures("aws")

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
ACME, GLOBEX = "acme", "globex"


# --- test doubles of a broker's stream ------------------------------------------------------------


END = "end"  # the broker closes the connection: run() returns
PING = "ping"  # a heartbeat frame: touch()


@dataclass(frozen=True)
class Garbage:
    raw: object
    reason: str


class Hub:
    """The test's side of the fake streams: one inbox per stream name (shared by the stream objects that
    bear that name, across instances and reconnects), every stream built, and a check that no two
    streams of one account ever run at the same time."""

    def __init__(self) -> None:
        self.inboxes: dict[str, asyncio.Queue[object]] = {}
        self.built: list[FakeStream] = []
        self.active: dict[str, int] = {}  # account -> streams of that name running now
        self.overlaps: list[str] = []

    def inbox(self, name: str) -> asyncio.Queue[object]:
        return self.inboxes.setdefault(name, asyncio.Queue())

    def send(self, name: str, *items: object) -> None:
        for item in items:
            self.inbox(name).put_nowait(item)

    def streams(self, name: str, owner: str | None = None) -> list[FakeStream]:
        return [s for s in self.built if s.name == name and (owner is None or s.owner == owner)]

    def running(self, owner: str | None = None) -> set[str]:
        return {s.name for s in self.built if s.active and (owner is None or s.owner == owner)}

    def factory(self, owner: str, names: Callable[[AccountTarget], list[str]]) -> Callable[[AccountTarget], list[Any]]:
        def build(target: AccountTarget) -> list[Any]:
            made = [FakeStream(name, self, owner) for name in names(target)]
            self.built.extend(made)
            return made

        return build


class FakeStream:
    def __init__(self, name: str, hub: Hub, owner: str) -> None:
        self.name = name
        self.hub = hub
        self.owner = owner
        self.runs = 0
        self.closes = 0
        self.active = False
        self.started: list[float] = []
        self.ended: list[float] = []

    async def run(self, handler: StreamHandler) -> None:
        self.runs += 1
        self.started.append(time.monotonic())
        self.active = True
        self.hub.active[self.name] = self.hub.active.get(self.name, 0) + 1
        if self.hub.active[self.name] > 1:
            self.hub.overlaps.append(self.name)
        try:
            handler.touch()  # the subscription's acknowledgement
            inbox = self.hub.inbox(self.name)
            while True:
                item = await inbox.get()
                if item == END:
                    return
                if isinstance(item, Exception):
                    raise item
                if isinstance(item, Bar):
                    await handler.on_bar(item)
                elif isinstance(item, BrokerOrder):
                    await handler.on_order(item)
                elif isinstance(item, Garbage):
                    handler.malformed(item.raw, item.reason)
                else:
                    handler.touch()
        finally:
            self.active = False
            self.ended.append(time.monotonic())
            self.hub.active[self.name] -= 1

    async def close(self) -> None:
        self.closes += 1


def orders_and_bars(target: AccountTarget) -> list[str]:
    """A trade-updates stream per account, and a market-data stream whose name shows its symbols."""
    account = f"{target.tenant_id}/{target.account_id}"
    return [f"orders:{account}", f"bars:{account}:{','.join(sorted(target.symbols))}"]


def orders_only(target: AccountTarget) -> list[str]:
    return [f"orders:{target.tenant_id}/{target.account_id}"]


# --- the streamer, fast -----------------------------------------------------------------------------


def streamer(factory: Callable[[AccountTarget], list[Any]], instance: str = "s1", **overrides: Any) -> Streamer:
    settings: dict[str, Any] = {
        "refresh_seconds": 0.2,
        "lease_seconds": 1.2,
        "heartbeat_seconds": 0.25,
        "silence_seconds": 30.0,
        "bar_grace_seconds": 0.0,
        "bar_tick_seconds": 0.05,
        "healthy_seconds": 30.0,
        "backoff": lambda attempt: 0.05,
    }
    settings.update(overrides)
    return Streamer(factory, instance_id=instance, **settings)


@asynccontextmanager
async def running(*streamers: Streamer) -> AsyncIterator[None]:
    stops = [asyncio.Event() for _ in streamers]
    tasks = [asyncio.create_task(s.run(stop)) for s, stop in zip(streamers, stops, strict=True)]
    try:
        yield
    finally:
        for stop in stops:
            stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=15)


async def until(check: Callable[[], object], what: str, timeout: float = 6.0, io: bool = False) -> None:
    """Wait for `check()` to be true; `io` checks (DynamoDB reads) run in a thread, off the event loop."""
    deadline = time.monotonic() + timeout
    while not (await asyncio.to_thread(check) if io else check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def run(scenario: Callable[[], Any]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=25))


# --- data -----------------------------------------------------------------------------------------


def broker_account(tenant: str, account_id: str, broker: str = "alpaca", cash: int = 100_000) -> None:
    config: dict[str, Any] = {"paper": True} if broker == "alpaca" else {"sandbox": True}
    open_account(tenant, account_id, Decimal(cash), T0 - timedelta(days=1), broker=broker, broker_config=config)


def deploy(
    tenant: str,
    deployment_id: str,
    account_id: str,
    symbols: list[str],
    timeframe: str = "1m",
    status: DeploymentStatus = DeploymentStatus.ACTIVE,
) -> Deployment:
    dep = Deployment(
        tenant_id=tenant,
        deployment_id=deployment_id,
        strategy="sma_cross",
        params={"fast": 5, "slow": 20},
        symbols=symbols,
        account_id=account_id,
        timeframe=timeframe,
        status=status,
        created_at=T0 - timedelta(days=1),
        updated_at=T0 - timedelta(days=1),
    )
    DeploymentRepository().put(dep)
    return dep


def bar(i: int, close: str, symbol: str = "AAPL", high: str | None = None, volume: str = "10") -> Bar:
    price = Decimal(close)
    return Bar(
        symbol=symbol,
        ts=T0 + timedelta(minutes=i),
        open=price,
        high=Decimal(high) if high else price,
        low=price,
        close=price,
        volume=Decimal(volume),
    )


# --- targets ----------------------------------------------------------------------------------------


def test_targets_are_the_broker_accounts_of_deployments_not_stopped() -> None:
    broker_account(ACME, "alp-1")
    broker_account(ACME, "alp-idle")
    open_account(ACME, "paper-1", Decimal(1000), T0, broker_config={"fill_model": "last_price"})
    broker_account(GLOBEX, "bin-1", broker="ccxt:binance")
    deploy(ACME, "d1", "alp-1", ["AAPL", "MSFT"], "1m")
    deploy(ACME, "d2", "alp-1", ["MSFT", "TSLA"], "5m")
    deploy(ACME, "d3", "alp-1", ["NVDA"], "1h", DeploymentStatus.STOPPED)
    deploy(ACME, "d4", "alp-1", ["AMD"], "15m", DeploymentStatus.PAUSED)  # paused: still streamed
    deploy(ACME, "d5", "paper-1", ["GOOG"])  # paper: no broker stream
    deploy(ACME, "d6", "alp-idle", ["IBM"], status=DeploymentStatus.STOPPED)
    deploy(GLOBEX, "g1", "bin-1", ["BTC/USDT"], "15m")
    deploy(GLOBEX, "g2", "no-such-account", ["ETH/USDT"])

    assert read_targets() == [
        AccountTarget(
            ACME, "alp-1", "alpaca", frozenset({"AAPL", "MSFT", "TSLA", "AMD"}), frozenset({"1m", "5m", "15m"})
        ),
        AccountTarget(GLOBEX, "bin-1", "ccxt:binance", frozenset({"BTC/USDT"}), frozenset({"15m"})),
    ]


def test_refresh_starts_new_accounts_stops_gone_ones_and_resubscribes_changed_symbols() -> None:
    broker_account(ACME, "alp-1")
    broker_account(GLOBEX, "bin-1", broker="ccxt:binance")
    deploy(ACME, "d1", "alp-1", ["AAPL"])
    hub = Hub()
    s1 = streamer(hub.factory("s1", orders_and_bars))

    async def scenario() -> None:
        async with running(s1):
            await until(lambda: hub.running() == {"orders:acme/alp-1", "bars:acme/alp-1:AAPL"}, "acme's streams")

            deploy(GLOBEX, "g1", "bin-1", ["BTC/USDT"])
            await until(lambda: "orders:globex/bin-1" in hub.running(), "the new account's streams")

            deploy(ACME, "d1", "alp-1", ["AAPL", "MSFT"])  # symbols changed
            await until(lambda: "bars:acme/alp-1:AAPL,MSFT" in hub.running(), "the re-subscribed market data")
            [old_bars] = hub.streams("bars:acme/alp-1:AAPL")
            assert not old_bars.active and old_bars.closes == 1
            orders, spare = hub.streams("orders:acme/alp-1")  # built again for the new target...
            assert orders.active and orders.runs == 1  # ...but trade updates kept their connection
            assert spare.runs == 0 and spare.closes == 1

            deploy(GLOBEX, "g1", "bin-1", ["BTC/USDT"], status=DeploymentStatus.STOPPED)
            await until(lambda: not any(n.startswith("orders:globex") for n in hub.running()), "globex stopped")
            assert hub.streams("orders:globex/bin-1")[0].closes == 1
            probe = LeaseStore("probe", 1, utc_now)
            # released at once: renewed every 0.4 s for 1.2 s, it would take at least 0.8 s to expire
            await until(lambda: probe.holder(GLOBEX, "bin-1") is None, "the lease released", timeout=0.5, io=True)

    run(scenario)
    assert hub.overlaps == []


def test_when_names_do_not_show_the_symbols_a_change_restarts_every_stream_of_the_account() -> None:
    broker_account(ACME, "alp-1")
    deploy(ACME, "d1", "alp-1", ["AAPL"])
    hub = Hub()
    s1 = streamer(hub.factory("s1", orders_only))

    async def scenario() -> None:
        async with running(s1):
            await until(lambda: hub.running() == {"orders:acme/alp-1"}, "the stream")
            deploy(ACME, "d1", "alp-1", ["AAPL", "MSFT"])
            await until(lambda: len(hub.streams("orders:acme/alp-1")) == 2, "the rebuilt stream")
            first, second = hub.streams("orders:acme/alp-1")
            await until(lambda: second.active and not first.active, "the restart")
            assert first.closes == 1
            assert s1.running[(ACME, "alp-1")].target.symbols == {"AAPL", "MSFT"}

    run(scenario)
    assert hub.overlaps == []


# --- leases -----------------------------------------------------------------------------------------


def test_two_instances_never_stream_one_account_at_once_and_the_second_takes_over_on_release() -> None:
    broker_account(ACME, "alp-1")
    deploy(ACME, "d1", "alp-1", ["AAPL"])
    hub = Hub()
    s1 = streamer(hub.factory("s1", orders_and_bars), "s1", lease_seconds=0.9)
    s2 = streamer(hub.factory("s2", orders_and_bars), "s2", lease_seconds=0.9)

    async def scenario() -> None:
        stop1, stop2 = asyncio.Event(), asyncio.Event()
        task1 = asyncio.create_task(s1.run(stop1))
        await until(lambda: len(hub.running("s1")) == 2, "s1 streaming")
        task2 = asyncio.create_task(s2.run(stop2))
        await asyncio.sleep(2.0)  # two lease lengths: s2 renews nothing, takes nothing
        assert hub.running("s2") == set()
        assert hub.streams("orders:acme/alp-1", "s2") == []  # never even built
        assert await asyncio.to_thread(s1.leases.holder, ACME, "alp-1") == "s1"

        stop1.set()  # a graceful stop releases the lease...
        await task1
        assert hub.running("s1") == set()
        taken = time.monotonic()
        await until(lambda: len(hub.running("s2")) == 2, "s2 taking over")
        assert time.monotonic() - taken < 0.9  # ...so s2 takes over within a renewal tick, not an expiry
        assert await asyncio.to_thread(s2.leases.holder, ACME, "alp-1") == "s2"
        stop2.set()
        await task2

    run(scenario)
    assert hub.overlaps == []


def test_an_expired_lease_is_taken_over_and_a_lost_lease_stops_the_streams_at_once() -> None:
    broker_account(ACME, "alp-1")
    deploy(ACME, "d1", "alp-1", ["AAPL"])
    ghost = LeaseStore("ghost", 1.0, utc_now)  # an instance that died holding the lease
    assert ghost.acquire(ACME, "alp-1")
    ghost_until = time.monotonic() + 1.0
    hub = Hub()
    s1 = streamer(hub.factory("s1", orders_only), "s1", lease_seconds=0.6)

    async def scenario() -> None:
        async with running(s1):
            await until(lambda: hub.running() == {"orders:acme/alp-1"}, "the takeover after expiry")
            assert time.monotonic() >= ghost_until - 0.05  # not before the ghost's lease ran out
            assert await asyncio.to_thread(s1.leases.holder, ACME, "alp-1") == "s1"

            # Another instance owns the item now (s1 stalled past its lease, say): s1 must stop at once.
            intruder = {
                **lease_key(ACME, "alp-1"),
                "owner": "intruder",
                "lease_until": "9999-12-31T00:00:00.000000Z",
                "expires_at": 4102444800,
            }
            await asyncio.to_thread(DynamoTable("stream_state").put, intruder)
            lost = time.monotonic()
            await until(lambda: hub.running() == set(), "s1 stopping")
            assert time.monotonic() - lost < 0.6  # at the next renewal, not at expiry
            assert s1.counters.leases_lost == 1
            await asyncio.sleep(0.5)
            assert hub.running() == set()  # and it does not come back while the intruder holds it
        item = await asyncio.to_thread(DynamoTable("stream_state").get, lease_key(ACME, "alp-1"))
        assert item is not None and item["owner"] == "intruder"  # s1's shutdown left it alone

    run(scenario)
    assert hub.overlaps == []


def test_a_holder_that_cannot_reach_dynamodb_stops_streaming_before_its_lease_runs_out() -> None:
    broker_account(ACME, "alp-1")
    deploy(ACME, "d1", "alp-1", ["AAPL"])
    hub = Hub()
    lease = 2.0
    s1 = streamer(hub.factory("s1", orders_only), "s1", lease_seconds=lease)
    renew, acquire = s1.leases.renew, s1.leases.acquire

    def unreachable(tenant_id: str, account_id: str) -> bool:
        raise EndpointConnectionError(endpoint_url="http://dynamodb.invalid")

    async def scenario() -> None:
        async with running(s1):
            await until(lambda: hub.running() == {"orders:acme/alp-1"}, "the stream")
            [stream] = hub.streams("orders:acme/alp-1")
            s1.leases.renew = unreachable  # type: ignore[method-assign]
            s1.leases.acquire = unreachable  # type: ignore[method-assign]
            confirmed = s1.running[(ACME, "alp-1")].lease_confirmed
            await until(lambda: not stream.active, "the streams stopping")
            held_for = stream.ended[-1] - confirmed
            # on while the lease lasted, off before its end (at 90 % of it, whatever the renewal rhythm)
            assert lease * 0.5 < held_for < lease * 0.95, held_for
            assert s1.counters.leases_lost == 1

            s1.leases.renew, s1.leases.acquire = renew, acquire  # type: ignore[method-assign]
            await until(lambda: len(hub.running()) == 1, "streaming again once DynamoDB answers")

    run(scenario)
    assert hub.overlaps == []


# --- the supervisor ---------------------------------------------------------------------------------


def test_the_watchdog_kills_a_silent_stream_and_reconnects_it_but_spares_a_quiet_one_that_pings() -> None:
    broker_account(ACME, "alp-1")
    broker_account(ACME, "alp-2")
    deploy(ACME, "d1", "alp-1", ["AAPL"])
    deploy(ACME, "d2", "alp-2", ["AAPL"])
    hub = Hub()
    s1 = streamer(hub.factory("s1", orders_only), silence_seconds=0.3)

    async def pings() -> None:
        while True:
            hub.send("orders:acme/alp-2", PING)
            await asyncio.sleep(0.1)

    async def scenario() -> None:
        pinger = asyncio.create_task(pings())
        async with running(s1):
            await until(lambda: hub.running() == {"orders:acme/alp-1", "orders:acme/alp-2"}, "both streams")
            [silent] = hub.streams("orders:acme/alp-1")
            await until(lambda: silent.runs >= 3, "two reconnections of the silent stream")
            assert silent.closes >= silent.runs - 1  # closed after every run
            lived = [end - start for start, end in zip(silent.started, silent.ended, strict=False)]
            assert all(0.25 <= span < 1.0 for span in lived), lived  # killed after ~0.3 s of silence
            [pinging] = hub.streams("orders:acme/alp-2")
            assert pinging.runs == 1 and pinging.active
            stats = {s.name: s for s in s1.stream_stats()}
            assert stats["orders:acme/alp-1"].silence_kills >= 2
            assert stats["orders:acme/alp-2"].silence_kills == 0
            assert s1.counters.silence_kills >= 2 and s1.counters.reconnects >= 2
        pinger.cancel()
        assert silent.closes == silent.runs

    run(scenario)


def test_a_stream_that_ends_or_fails_is_reconnected_after_a_backoff_that_grows_and_resets() -> None:
    broker_account(ACME, "alp-1")
    deploy(ACME, "d1", "alp-1", ["AAPL"])
    hub = Hub()
    attempts: list[int] = []

    def backoff(attempt: int) -> float:
        attempts.append(attempt)
        return 0.1 * (attempt + 1)

    s1 = streamer(hub.factory("s1", orders_only), backoff=backoff, healthy_seconds=0.5)
    name = "orders:acme/alp-1"

    async def scenario() -> None:
        async with running(s1):
            await until(lambda: hub.running() == {name}, "the stream")
            [stream] = hub.streams(name)
            hub.send(name, END)  # the broker closed the connection
            await until(lambda: stream.runs == 2 and stream.active, "the first reconnection")
            hub.send(name, RuntimeError("connection reset by peer"))
            await until(lambda: stream.runs == 3 and stream.active, "the second reconnection")
            assert attempts == [0, 1]
            gaps = [stream.started[i + 1] - stream.ended[i] for i in range(2)]
            assert gaps[0] >= 0.09 and gaps[1] >= 0.19, gaps  # the backoff was waited out
            await asyncio.sleep(0.6)  # a healthy run: the next failure starts a new incident
            hub.send(name, END)
            await until(lambda: stream.runs == 4, "the third reconnection")
            assert attempts == [0, 1, 0]
            [stats] = s1.stream_stats()
            assert (stats.reconnects, stats.failures) == (3, 1)
            assert stats.last_error == "RuntimeError: connection reset by peer"
            assert stream.closes == 3

    run(scenario)


# --- what the streams deliver -----------------------------------------------------------------------


def test_bars_are_closed_rolled_up_and_written_for_the_streaming_tenant_only() -> None:
    broker_account(ACME, "alp-1")
    broker_account(GLOBEX, "alp-9")
    deploy(ACME, "d1", "alp-1", ["AAPL"], "1m")
    deploy(ACME, "d2", "alp-1", ["AAPL"], "5m")
    deploy(GLOBEX, "g1", "alp-9", ["AAPL"], "1m")  # same symbol, another tenant: fed by its own stream
    hub = Hub()
    clock = Clock(T0 + timedelta(seconds=30))
    s1 = streamer(hub.factory("s1", orders_and_bars), clock=clock)
    feed = "bars:acme/alp-1:AAPL"
    bars_table = BarRepository()

    def latest(tenant: str, timeframe: str) -> list[Bar]:
        return bars_table.latest(tenant, "AAPL", timeframe, T0 + timedelta(hours=1), 20)

    async def scenario() -> None:
        async with running(s1):
            await until(lambda: feed in hub.running(), "the market-data stream")
            # the 14:30 bar forms three times (ccxt style), then 14:31 begins
            hub.send(feed, bar(0, "100"), bar(0, "100.5", high="101"), bar(0, "100.25", high="101.5"), bar(1, "101"))
            await until(lambda: len(latest(ACME, "1m")) == 1, "the first closed minute", io=True)
            [first] = latest(ACME, "1m")
            assert (first.ts, first.high, first.close) == (T0, Decimal("101.5"), Decimal("100.25"))
            hub.send(feed, bar(2, "102"), bar(3, "103"), bar(4, "104", volume="5"), bar(5, "105"))
            await until(lambda: len(latest(ACME, "5m")) == 1, "the 5m bar", io=True)
            [five] = latest(ACME, "5m")
            assert (five.ts, five.open, five.high, five.low, five.close, five.volume) == (
                T0,
                Decimal("100.25"),
                Decimal(104),
                Decimal("100.25"),
                Decimal(104),
                Decimal(45),
            )
            clock.now = T0 + timedelta(minutes=7)  # 14:35's minute ended: the clock closes it
            await until(lambda: len(latest(ACME, "1m")) == 6, "the minute closed by the clock", io=True)
            assert latest(ACME, "1m")[-1].close == Decimal(105)
        assert s1.counters.bars_written == 7
        assert await asyncio.to_thread(latest, GLOBEX, "1m") == []  # acme's data stays acme's

    run(scenario)


def _order_of_ten(coid: str) -> Order:
    return Order(
        tenant_id=ACME,
        account_id="alp-1",
        client_order_id=coid,
        signal_id=None,
        broker="alpaca",
        broker_order_id="bo-1",
        symbol="AAPL",
        side=OrderSide.BUY,
        quantity=Decimal(10),
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.DAY,
        status=OrderStatus.SUBMITTED,
        reserved_notional=Decimal(1000),
        reserved_open=True,
        created_at=T0,
        updated_at=T0,
    )


def _update(coid: str, status: OrderStatus, cumulative: str, average: str, at: int) -> BrokerOrder:
    """An order update as a trade-updates stream reports it: one running-total fill."""
    quantity = Decimal(cumulative)
    return BrokerOrder(
        client_order_id=coid,
        broker_order_id="bo-1",
        symbol="AAPL",
        side=OrderSide.BUY,
        quantity=Decimal(10),
        order_type=OrderType.MARKET,
        time_in_force=TimeInForce.DAY,
        status=status,
        filled_quantity=quantity,
        fills=[
            BrokerFill(
                ref=f"bo-1@{cumulative}",
                quantity=quantity,
                price=Decimal(average),
                ts=T0 + timedelta(seconds=at),
                cumulative_quantity=quantity,
                cumulative_average=Decimal(average),
            )
        ],
        submitted_at=T0,
        updated_at=T0 + timedelta(seconds=at),
    )


def test_order_updates_go_through_the_queue_to_the_ledger_and_a_fill_seen_twice_is_booked_once() -> None:
    broker_account(ACME, "alp-1")
    deploy(ACME, "d1", "alp-1", ["AAPL"])
    coid = client_order_id("sig_streamer_test")
    OrderRepository().create(_order_of_ten(coid))
    accounts = AccountRepository()
    account = accounts.get(ACME, "alp-1")
    assert account is not None  # risk's reservation for the order, as the risk function leaves it
    reserved = account.model_copy(update={"pending": {"AAPL": PendingExposure(quantity=10, notional=1000, opens=1)}})
    accounts.table.put(accounts.item(reserved))

    hub = Hub()
    s1 = streamer(hub.factory("s1", orders_only))
    name = "orders:acme/alp-1"
    partial_4 = _update(coid, OrderStatus.PARTIALLY_FILLED, "4", "100", 1)
    partial_7 = _update(coid, OrderStatus.PARTIALLY_FILLED, "7", "100.3", 2)
    filled = _update(coid, OrderStatus.FILLED, "10", "100.51", 3)  # executions at 100, 100.7, 101
    foreign = _update("web-order-77", OrderStatus.FILLED, "10", "100.5", 3)

    async def scenario() -> None:
        async with running(s1):
            await until(lambda: hub.running() == {name}, "the trade-updates stream")
            # the stream repeats itself (a replay after a reconnect), and reports an order not ours
            hub.send(name, partial_4, partial_7, partial_7, foreign, filled)
            await until(lambda: s1.counters.orders_reported == 4 and s1.counters.foreign_orders == 1, "the reports")

    run(scenario)

    messages = receive("orders")
    bodies = [json.loads(m["Body"]) for m in messages]
    # two partial fills differ only in their running total: both queued; the exact repeat dropped by SQS
    assert [(b["order"]["status"], b["order"]["filled_quantity"]) for b in bodies] == [
        ("partially_filled", "4"),
        ("partially_filled", "7"),
        ("filled", "10"),
    ]
    assert {b["order"]["client_order_id"] for b in bodies} == {coid}
    deliver("execution", "orders", messages)
    # the same updates once more, past the queue's deduplication (a redelivery, a second instance)
    for body in bodies:
        SqsQueues().send("orders", json.dumps(body), f"{ACME}#alp-1#AAPL", f"again-{body['order']['filled_quantity']}")
    deliver("execution", "orders", receive("orders"))

    fills = FillRepository().list(ACME, "alp-1")
    assert sorted((f.quantity, f.price) for f in fills) == [
        (Decimal(3), Decimal("100.7")),
        (Decimal(3), Decimal(101)),
        (Decimal(4), Decimal(100)),
    ]
    order = OrderRepository().get(ACME, coid)
    assert order is not None
    assert (order.status, order.filled_quantity, order.average_fill_price) == (
        OrderStatus.FILLED,
        Decimal(10),
        Decimal("100.51"),
    )
    assert PositionRepository().get(ACME, "alp-1", "AAPL").quantity == Decimal(10)
    after = accounts.get(ACME, "alp-1")
    assert after is not None
    assert after.cash == Decimal(100_000) - Decimal("1005.1")
    assert after.pending == {}  # the reservation fully released


def test_malformed_messages_are_counted_and_logged_without_secrets_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker_account(ACME, "alp-1")
    deploy(ACME, "d1", "alp-1", ["AAPL"])
    hub = Hub()
    clock = Clock(T0 + timedelta(seconds=30))
    s1 = streamer(hub.factory("s1", orders_and_bars), clock=clock)
    feed = "bars:acme/alp-1:AAPL"
    coid = client_order_id("sig_malformed_test")
    OrderRepository().create(_order_of_ten(coid))

    async def scenario() -> None:
        async with running(s1):
            await until(lambda: feed in hub.running(), "the stream")
            hub.send(
                feed,
                Garbage({"T": "b", "S": None, "key": "PKSECRET123", "secret": "shh-very-secret"}, "bar without symbol"),
                bar(0, "100").model_copy(update={"timeframe": "5m"}),  # streams must deliver 1m bars
                bar(0, "100"),
                bar(1, "101"),
            )
            hub.send("orders:acme/alp-1", Garbage(b'{"stream":"trade_updates","data":', "truncated JSON"))
            hub.send("orders:acme/alp-1", _update(coid, OrderStatus.PARTIALLY_FILLED, "4", "100", 1))
            await until(lambda: s1.counters.orders_reported == 1 and s1.counters.bars_written == 1, "the good ones")
            assert s1.counters.malformed == 3
            assert all(s.runs == 1 and s.active for s in hub.built)  # no stream was restarted

    with caplog.at_level(logging.WARNING, logger="tradeflow.streaming"):
        run(scenario)
    logged = caplog.text
    assert logged.count("malformed message skipped") == 3
    assert "bar without symbol" in logged and "truncated JSON" in logged
    assert "PKSECRET123" not in logged and "shh-very-secret" not in logged


# --- health -----------------------------------------------------------------------------------------


def _emf_documents(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        if line.startswith('{"_aws"'):
            yield json.loads(line)


def _total(documents: list[dict[str, Any]], metric: str) -> float:
    values = [d[metric] for d in documents]
    return sum(sum(v) if isinstance(v, list) else v for v in values)


def test_heartbeat_records_and_metrics_and_the_thread_stops_gracefully(capsys: pytest.CaptureFixture[str]) -> None:
    broker_account(ACME, "alp-1")
    deploy(ACME, "d1", "alp-1", ["AAPL"])
    hub = Hub()
    s1 = streamer(hub.factory("s1", orders_and_bars), "hb-1", silence_seconds=0.3)
    state = DynamoTable("stream_state")

    def platform() -> dict[str, Any] | None:
        return state.get({"pk": "_platform", "sk": "heartbeat#hb-1"})

    thread = StreamerThread(s1)  # how the local cloud runs it
    thread.start()
    try:
        deadline = time.monotonic() + 8
        while True:  # a beat after a silence kill, with both streams listed
            item = platform()
            streams = {s["name"]: s for s in (item or {}).get("streams", [])}
            if len(streams) == 2 and streams["orders:acme/alp-1"]["silence_kills"] >= 1:
                break
            assert time.monotonic() < deadline, item
            time.sleep(0.05)
    finally:
        thread.stop()
    assert not thread.is_alive() and thread.error is None

    assert item is not None
    assert item["leases"] == ["acme/alp-1"] and item["instance_id"] == "hb-1"
    assert item["expires_at"] > time.time()
    assert streams["orders:acme/alp-1"]["runs"] >= 2 and streams["orders:acme/alp-1"]["last_message_at"]
    account_item = state.get({"pk": ACME, "sk": "heartbeat#alp-1"})
    assert account_item is not None and account_item["instance_id"] == "hb-1"
    assert {s["name"] for s in account_item["streams"]} == set(streams)
    final = platform()
    assert final is not None and final["state"] == "stopped" and final["streams"] == [] and final["leases"] == []
    assert LeaseStore("probe", 1, utc_now).holder(ACME, "alp-1") is None

    documents = list(_emf_documents(capsys.readouterr().out))
    assert documents, "no EMF metrics on stdout"
    names = {m["Name"] for d in documents for directive in d["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]}
    assert {"StreamerHeartbeat", "StreamReconnects", "StreamSilenceKills", "MalformedStreamMessages"} <= names
    assert {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in documents} == {"tradeflow"}
    assert all(d["service"] == "tradeflow-streamer" for d in documents)
    assert _total(documents, "StreamSilenceKills") == s1.counters.silence_kills  # deltas add up
    assert _total(documents, "StreamerHeartbeat") == len(documents)  # one per beat


# --- the entry point --------------------------------------------------------------------------------


def _entry_point() -> Any:
    path = Path(__file__).resolve().parents[2] / "functions" / "streamer" / "main.py"
    spec = importlib.util.spec_from_file_location("streamer_main", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sigterm_stops_the_entry_point_gracefully_releasing_its_leases() -> None:
    broker_account(ACME, "alp-1")
    deploy(ACME, "d1", "alp-1", ["AAPL"])
    main = _entry_point()
    hub = Hub()
    s1 = streamer(hub.factory("s1", orders_only), "sig-1")

    async def scenario() -> None:
        serving = asyncio.create_task(main.serve(s1))
        await until(lambda: hub.running() == {"orders:acme/alp-1"}, "the stream")
        os.kill(os.getpid(), signal.SIGTERM)  # what ECS sends to stop the task
        await asyncio.wait_for(serving, timeout=10)

    run(scenario)
    [stream] = hub.built
    assert not stream.active and stream.closes == 1
    assert LeaseStore("probe", 1, utc_now).holder(ACME, "alp-1") is None


def test_settings_come_from_the_environment_and_bad_values_are_named() -> None:
    settings = StreamerSettings.from_env(
        {"TRADEFLOW_STREAMER_ID": "task-7", "TRADEFLOW_STREAMER_SILENCE_SECONDS": "45", "UNRELATED": "x"}
    )
    assert (settings.instance_id, settings.silence_seconds, settings.lease_seconds) == ("task-7", 45.0, 30.0)
    assert StreamerSettings.from_env({}).instance_id != StreamerSettings.from_env({}).instance_id  # unique
    with pytest.raises(ValidationError, match="lease_seconds"):
        StreamerSettings.from_env({"TRADEFLOW_STREAMER_LEASE_SECONDS": "0"})
