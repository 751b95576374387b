"""The paper broker on moto: fill models, slippage and fees, order types, time in force, crash safety,
funds, the broker port's reads, tenant isolation of matching, and the paper exchange's reports."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from tradeflow.brokers.paper import PaperBroker, PaperConfig
from tradeflow.brokers.paper_exchange import PaperExchange
from tradeflow.brokers.port import BrokerOrder, BrokerRejected, DuplicateClientOrderId, RejectCode
from tradeflow.domain import Bar, OrderStatus
from tradeflow.domain.types import iso
from tradeflow.execution.messages import BrokerUpdate
from tradeflow.messaging.sqs import SqsQueues

from helpers import (
    ACCOUNT,
    T0,
    TENANT,
    Clock,
    account,
    ohlc,
    paper_broker,
    paper_order,
    receive,
    store_bars,
)

SYMBOL = "XYZ"
M = timedelta(minutes=1)


def minute(n: int) -> datetime:
    return T0 + n * M


def flat(ts: datetime, price: float | str, symbol: str = SYMBOL) -> Bar:
    """A bar that trades at one price only (open = high = low = close)."""
    return ohlc(symbol, ts, price, price, price, price)


@pytest.fixture
def history(aws: object) -> Bar:
    """The last known bar before the clock (T0 + 1 minute): XYZ closed at 100 at T0."""
    return store_bars(TENANT, ohlc(SYMBOL, T0, 99, 101, 98, 100))[0]


class Reports:
    """Records what `match` reports; `fail` makes the next report raise (a crash before the save)."""

    def __init__(self) -> None:
        self.orders: list[BrokerOrder] = []
        self.fail = False

    def __call__(self, order: BrokerOrder) -> None:
        if self.fail:
            self.fail = False
            raise RuntimeError("died before saving")
        self.orders.append(order)


def match(broker: PaperBroker, bar: Bar) -> Reports:
    reports = Reports()
    broker.match(bar, reports)
    return reports


def status(broker: PaperBroker, client_order_id: str) -> BrokerOrder:
    found = broker.get_order_by_client_id(client_order_id)
    assert found is not None
    return found


# -- market orders ---------------------------------------------------------------------------------


def test_last_price_market_order_fills_at_once_at_last_close_with_slippage_and_fee(history: Bar) -> None:
    cases = [("buy", Decimal("100.1"), Decimal("1.001")), ("sell", Decimal("99.9"), Decimal("0.999"))]
    for side, price, fee in cases:
        broker = paper_broker(
            account_id=f"acct-{side}", fill_model="last_price", slippage_bps=Decimal(10), fee_rate=Decimal("0.001")
        )
        order = broker.submit(paper_order("m-1", side=side, quantity=10, account_id=f"acct-{side}"))

        assert order.status is OrderStatus.FILLED, side
        assert order.filled_quantity == 10
        assert [(f.quantity, f.price, f.fee) for f in order.fills] == [(Decimal(10), price, fee)], side
        assert order.fills[0].ts == T0 + M  # filled at the clock's now
        assert status(broker, "m-1") == order
        assert broker.open_orders() == []
        # cash moved by the notional and the fee, nothing else
        signed = 10 * price if side == "buy" else -10 * price
        assert broker.account().cash == Decimal(100_000) - signed - fee, side


def test_next_open_market_order_rests_and_fills_at_the_next_bars_open_only(history: Bar) -> None:
    broker = paper_broker(fill_model="next_open", slippage_bps=Decimal(20), fee_rate=Decimal("0.0005"))
    order = broker.submit(paper_order("m-1", quantity=4))
    assert order.status is OrderStatus.ACCEPTED and order.fills == []
    assert [o.client_order_id for o in broker.open_orders()] == ["m-1"]

    # The bar it was priced on, and older bars, never fill it (no look-ahead)...
    assert match(broker, history).orders == []
    assert match(broker, ohlc(SYMBOL, T0 - M, 50, 51, 49, 50)).orders == []
    # ...nor a bar of another symbol or timeframe at the right time.
    assert match(broker, ohlc("OTHER", minute(1), 50, 51, 49, 50)).orders == []
    assert match(broker, ohlc(SYMBOL, minute(1), 50, 51, 49, 50, timeframe="1h")).orders == []
    assert status(broker, "m-1").status is OrderStatus.ACCEPTED

    reports = match(broker, ohlc(SYMBOL, minute(1), 102, 110, 101, 109))
    assert len(reports.orders) == 1
    filled = reports.orders[0]
    assert filled.status is OrderStatus.FILLED
    # the open (102), not the close (109) nor the submission price (100), moved 20 bps against the buyer
    assert [(f.price, f.fee, f.ts, f.ref) for f in filled.fills] == [
        (Decimal("102.204"), Decimal("0.204408"), minute(1), f"paper-m-1:{iso(minute(1))}")
    ]
    assert status(broker, "m-1") == filled
    assert broker.open_orders() == []
    # a second delivery of the same bar changes nothing
    assert match(broker, ohlc(SYMBOL, minute(1), 102, 110, 101, 109)).orders == []


# -- limit and stop orders ------------------------------------------------------------------------


LIMIT_CASES: list[tuple[str, int, list[tuple[float, float, float, float]], Decimal]] = [
    # buy 95: a bar that stays above never fills; trading through fills at the limit...
    ("buy", 95, [(98, 99, 96, 97), (97, 98, 94, 96)], Decimal(95)),
    # ...or at a better open when the market gaps below it.
    ("buy", 95, [(98, 99, 96, 97), (93, 94, 90, 92)], Decimal(93)),
    ("sell", 105, [(103, 104.9, 102, 104), (103, 106, 102, 105)], Decimal(105)),
    ("sell", 105, [(103, 104.9, 102, 104), (107, 108, 106, 107)], Decimal(107)),
]


def test_limit_orders_fill_only_when_a_later_bar_trades_through(aws: object) -> None:
    broker = paper_broker(slippage_bps=Decimal(50))  # slippage never applies to limit fills
    for i, (side, limit, bars, price) in enumerate(LIMIT_CASES):
        symbol, case = f"L{i}", f"case {i}"
        store_bars(TENANT, ohlc(symbol, T0, 99, 101, 98, 100))
        placed = broker.submit(paper_order(f"l-{i}", side=side, order_type="limit", limit=limit, symbol=symbol))
        assert placed.status is OrderStatus.ACCEPTED, case

        # the bar at submission traded far through the limit: it must not count
        assert match(broker, ohlc(symbol, T0, 100, 200, 50, 100)).orders == [], case
        first, second = (ohlc(symbol, minute(n + 1), *b) for n, b in enumerate(bars))
        assert match(broker, first).orders == [], case
        assert status(broker, f"l-{i}").status is OrderStatus.ACCEPTED, case

        reports = match(broker, second)
        assert [(o.client_order_id, o.status, [(f.price, f.ts) for f in o.fills]) for o in reports.orders] == [
            (f"l-{i}", OrderStatus.FILLED, [(price, minute(2))])
        ], case
        assert status(broker, f"l-{i}").status is OrderStatus.FILLED, case


STOP_CASES: list[tuple[str, int, tuple[float, float, float, float], Decimal]] = [
    ("buy", 105, (103, 106, 102, 104), Decimal(105)),  # touched inside the bar: at the stop
    ("buy", 105, (108, 109, 107, 108), Decimal(108)),  # gapped through: at the (worse) open
    ("sell", 95, (97, 98, 94, 96), Decimal(95)),
    ("sell", 95, (92, 93, 91, 92), Decimal(92)),
]


def test_stop_orders_trigger_on_touch_and_fill_at_the_worse_of_open_and_stop_plus_slippage(aws: object) -> None:
    broker = paper_broker(slippage_bps=Decimal(100), fee_rate=Decimal("0.01"))
    for i, (side, stop, bar, touch) in enumerate(STOP_CASES):
        symbol, case = f"S{i}", f"case {i}"
        store_bars(TENANT, ohlc(symbol, T0, 99, 101, 98, 100))
        broker.submit(paper_order(f"s-{i}", side=side, quantity=2, order_type="stop", stop=stop, symbol=symbol))

        # a bar that comes close but does not touch leaves it resting
        near = (104.9, 104.99, 104, 104.5) if side == "buy" else (95.1, 96, 95.01, 95.5)
        assert match(broker, ohlc(symbol, minute(1), *near)).orders == [], case
        assert status(broker, f"s-{i}").status is OrderStatus.ACCEPTED, case

        reports = match(broker, ohlc(symbol, minute(2), *bar))
        expected = touch * Decimal("1.01") if side == "buy" else touch * Decimal("0.99")
        assert [o.status for o in reports.orders] == [OrderStatus.FILLED], case
        fill = reports.orders[0].fills[0]
        assert (fill.price, fill.quantity, fill.fee) == (expected, Decimal(2), 2 * expected / 100), case


def test_stop_limit_stays_triggered_across_bars_then_fills_as_a_limit(history: Bar) -> None:
    clock = Clock(T0 + M)
    broker = paper_broker(clock=clock)
    broker.submit(paper_order("sl-1", order_type="stop_limit", stop=105, limit=104))

    # triggered (high 106 >= 105) but the limit 104 is not reached (low 104.5): no fill, no report
    trigger = store_bars(TENANT, ohlc(SYMBOL, minute(1), 105.5, 106, 104.5, 105))[0]
    assert match(broker, trigger).orders == []
    assert status(broker, "sl-1").status is OrderStatus.ACCEPTED and status(broker, "sl-1").fills == []

    # a twin placed after the trigger bar has not been triggered
    clock.now = minute(2)
    broker.submit(paper_order("sl-2", order_type="stop_limit", stop=105, limit=104))

    # this bar never reaches the stop (high 104.9) but trades through the limit (low 103)
    reports = match(broker, ohlc(SYMBOL, minute(2), 104.5, 104.9, 103, 104))
    assert [(o.client_order_id, o.status, [f.price for f in o.fills]) for o in reports.orders] == [
        ("sl-1", OrderStatus.FILLED, [Decimal(104)])
    ]
    assert status(broker, "sl-2").status is OrderStatus.ACCEPTED and status(broker, "sl-2").fills == []


STOP_LIMIT_TRIGGER_CASES: list[tuple[str, int, int, tuple[float, float, float, float], Decimal]] = [
    # triggered at 105 inside a bar that opened at 100: the order did not exist at 100
    ("buy", 105, 106, (100, 107, 99, 106), Decimal(105)),
    ("sell", 95, 94, (100, 101, 93, 94), Decimal(95)),
    # gapped through the stop at the open: the open is the trigger price
    ("buy", 105, 110, (108, 109, 107, 108), Decimal(108)),
    ("sell", 95, 90, (92, 93, 91, 92), Decimal(92)),
]


def test_stop_limit_never_fills_better_than_its_trigger_on_the_trigger_bar(aws: object) -> None:
    broker = paper_broker()
    for i, (side, stop, limit, bar, price) in enumerate(STOP_LIMIT_TRIGGER_CASES):
        symbol = f"T{i}"
        store_bars(TENANT, ohlc(symbol, T0, 99, 101, 98, 100))
        order = paper_order(f"sl-{i}", side=side, order_type="stop_limit", stop=stop, limit=limit, symbol=symbol)
        broker.submit(order)
        reports = match(broker, ohlc(symbol, minute(1), *bar))
        assert [(o.status, o.fills[0].price) for o in reports.orders] == [(OrderStatus.FILLED, price)], f"case {i}"


# -- time in force --------------------------------------------------------------------------------


def test_day_order_expires_on_a_bar_of_a_later_utc_day_than_its_first_session(history: Bar) -> None:
    broker = paper_broker()
    broker.submit(paper_order("day-1", order_type="limit", limit=50, tif="day"))
    broker.submit(paper_order("gtc-1", order_type="limit", limit=50, tif="gtc"))

    same_day = ohlc(SYMBOL, T0.replace(hour=23, minute=59), 100, 101, 99, 100)
    assert match(broker, same_day).orders == []
    assert {o.client_order_id for o in broker.open_orders()} == {"day-1", "gtc-1"}

    next_day = ohlc(SYMBOL, T0 + timedelta(days=1), 100, 101, 99, 100)
    reports = match(broker, next_day)
    assert [(o.client_order_id, o.status, o.fills) for o in reports.orders] == [("day-1", OrderStatus.EXPIRED, [])]
    assert [o.client_order_id for o in broker.open_orders()] == ["gtc-1"]
    # an expired order never fills, even when a later bar trades through its limit
    assert [o.client_order_id for o in match(broker, ohlc(SYMBOL, minute(2000), 40, 41, 39, 40)).orders] == ["gtc-1"]
    assert status(broker, "day-1").status is OrderStatus.EXPIRED


def test_day_order_whose_first_bar_is_on_a_later_day_lives_through_that_day(history: Bar) -> None:
    broker = paper_broker()
    broker.submit(paper_order("day-1", order_type="limit", limit=50, tif="day"))
    tomorrow = T0.replace(hour=0, minute=0) + timedelta(days=1)

    assert match(broker, ohlc(SYMBOL, tomorrow + timedelta(hours=9), 100, 101, 99, 100)).orders == []
    assert match(broker, ohlc(SYMBOL, tomorrow + timedelta(hours=20), 100, 101, 99, 100)).orders == []
    assert status(broker, "day-1").status is OrderStatus.ACCEPTED
    reports = match(broker, ohlc(SYMBOL, tomorrow + timedelta(days=1), 100, 101, 99, 100))
    assert [o.status for o in reports.orders] == [OrderStatus.EXPIRED]


def test_ioc_limit_fills_when_marketable_else_is_cancelled(history: Bar) -> None:
    broker = paper_broker()
    cancelled = broker.submit(paper_order("ioc-1", order_type="limit", limit=99, tif="ioc"))
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.fills == []
    assert cancelled.reject_reason and "ioc" in cancelled.reject_reason

    filled = broker.submit(paper_order("ioc-2", order_type="limit", limit=101, tif="ioc"))
    assert filled.status is OrderStatus.FILLED
    assert [f.price for f in filled.fills] == [Decimal(100)]  # the last price, better than the limit

    sold = broker.submit(paper_order("ioc-3", side="sell", order_type="limit", limit=100.5, tif="ioc"))
    assert sold.status is OrderStatus.CANCELLED

    assert broker.open_orders() == []
    # a later bar through the limit does not revive the cancelled order
    assert match(broker, ohlc(SYMBOL, minute(1), 90, 91, 89, 90)).orders == []
    assert status(broker, "ioc-1").status is OrderStatus.CANCELLED


def test_gtc_limit_rests_across_days_until_filled(history: Bar) -> None:
    broker = paper_broker()
    broker.submit(paper_order("gtc-1", order_type="limit", limit=90, tif="gtc"))
    for day in range(1, 4):
        assert match(broker, ohlc(SYMBOL, T0 + timedelta(days=day), 100, 101, 95, 100)).orders == []
    assert [o.status for o in broker.open_orders()] == [OrderStatus.ACCEPTED]
    reports = match(broker, ohlc(SYMBOL, T0 + timedelta(days=5), 91, 92, 85, 86))
    assert [(o.status, o.fills[0].price) for o in reports.orders] == [(OrderStatus.FILLED, Decimal(90))]


# -- crash safety, duplicates, funds, market data -------------------------------------------------


def test_fill_is_reported_before_it_is_saved_and_reported_identically_after_a_crash(history: Bar) -> None:
    broker = paper_broker(fee_rate=Decimal("0.001"))
    broker.submit(paper_order("c-1", order_type="limit", limit=99))
    bar = ohlc(SYMBOL, minute(1), 99.5, 100, 98, 99)

    crashing = Reports()
    crashing.fail = True
    with pytest.raises(RuntimeError, match="died before saving"):
        broker.match(bar, crashing)
    # nothing was saved: the order still rests, unfilled
    assert status(broker, "c-1").status is OrderStatus.ACCEPTED
    assert status(broker, "c-1").fills == []

    redelivered = match(broker, bar)
    assert len(redelivered.orders) == 1
    fill = redelivered.orders[0].fills[0]
    assert (fill.ref, fill.price, fill.quantity) == (f"paper-c-1:{iso(minute(1))}", Decimal(99), Decimal(10))
    assert status(broker, "c-1").fills == [fill]

    # after the save, a third delivery reports nothing more
    assert match(broker, bar).orders == []


def test_duplicate_client_order_id_is_refused_and_the_original_kept(history: Bar) -> None:
    broker = paper_broker()
    first = broker.submit(paper_order("d-1", order_type="limit", limit=90))
    with pytest.raises(DuplicateClientOrderId):
        broker.submit(paper_order("d-1", order_type="limit", limit=95, quantity=3))
    assert status(broker, "d-1") == first
    # the same client order id in another account is another order
    other = paper_broker(account_id="paper-2")
    assert other.submit(paper_order("d-1", account_id="paper-2", order_type="limit", limit=95)).limit_price == 95


def test_insufficient_funds_counts_resting_buys_at_their_own_reference_price(history: Bar) -> None:
    clock = Clock(T0 + M)
    broker = paper_broker(clock=clock, fill_model="last_price", starting_cash=Decimal(10_000))

    with pytest.raises(BrokerRejected) as too_big:
        broker.submit(paper_order("f-0", quantity=101))  # 10,100 at 100
    assert too_big.value.code is RejectCode.INSUFFICIENT_FUNDS
    assert broker.get_order_by_client_id("f-0") is None

    # a resting limit buy commits 50 x 80 = 4,000
    broker.submit(paper_order("f-1", quantity=50, order_type="limit", limit=80))
    # the market moves to 120: the resting order still commits at its own price (80), not at 120
    store_bars(TENANT, ohlc(SYMBOL, minute(1), 120, 121, 119, 120))
    clock.now = minute(2)
    with pytest.raises(BrokerRejected) as refused:
        broker.submit(paper_order("f-2", quantity=51))  # 6,120 > 6,000 available
    assert refused.value.code is RejectCode.INSUFFICIENT_FUNDS
    assert broker.submit(paper_order("f-3", quantity=50)).status is OrderStatus.FILLED  # exactly 6,000
    # sells need no cash
    assert broker.submit(paper_order("f-4", side="sell", quantity=500)).status is OrderStatus.FILLED


def test_resting_market_buy_commits_cash_at_its_submission_price(history: Bar) -> None:
    clock = Clock(T0 + M)
    broker = paper_broker(clock=clock, fill_model="next_open", starting_cash=Decimal(10_000))
    broker.submit(paper_order("n-1", quantity=60))  # rests, commits 60 x 100
    store_bars(TENANT, ohlc(SYMBOL, minute(1), 50, 51, 49, 50))
    clock.now = minute(2)
    with pytest.raises(BrokerRejected) as refused:
        broker.submit(paper_order("n-2", quantity=81))  # 81 x 50 = 4,050 > 4,000
    assert refused.value.code is RejectCode.INSUFFICIENT_FUNDS
    assert broker.submit(paper_order("n-3", quantity=80)).status is OrderStatus.ACCEPTED


def test_no_market_data_is_a_rejection(aws: object) -> None:
    broker = paper_broker()
    with pytest.raises(BrokerRejected) as none_at_all:
        broker.submit(paper_order("x-1"))
    assert none_at_all.value.code is RejectCode.NO_MARKET_DATA

    # bars of another tenant, or only from after "now", are no market data either
    store_bars("other", ohlc(SYMBOL, T0, 99, 101, 98, 100))
    store_bars(TENANT, ohlc(SYMBOL, T0 + timedelta(minutes=5), 99, 101, 98, 100))
    with pytest.raises(BrokerRejected) as not_ours:
        broker.submit(paper_order("x-1"))
    assert not_ours.value.code is RejectCode.NO_MARKET_DATA
    assert broker.get_order_by_client_id("x-1") is None


# -- the port's reads -----------------------------------------------------------------------------


def test_positions_and_account_follow_the_fills(history: Bar) -> None:
    clock = Clock(T0 + M)
    broker = paper_broker(clock=clock, fill_model="last_price", fee_rate=Decimal("0.001"))
    broker.submit(paper_order("p-1", quantity=10))  # buy 10 @ 100, fee 1
    store_bars(TENANT, ohlc(SYMBOL, minute(1), 110, 111, 109, 110))
    clock.now = minute(2)
    broker.submit(paper_order("p-2", side="sell", quantity=4))  # sell 4 @ 110, fee 0.44

    [position] = broker.positions()
    # average cost: selling part of a position does not change the price the rest was bought at
    assert (position.symbol, position.quantity, position.average_price) == (SYMBOL, Decimal(6), Decimal(100))
    cash = Decimal(100_000) - 1000 - 1 + 440 - Decimal("0.44")
    snapshot = broker.account()
    assert snapshot.cash == cash == snapshot.buying_power
    assert snapshot.equity == cash + 6 * Decimal(110)  # marked at the last close


def test_a_closed_and_reopened_position_averages_only_the_new_fills(history: Bar) -> None:
    clock = Clock(T0 + M)
    broker = paper_broker(clock=clock, fill_model="last_price")
    broker.submit(paper_order("p-1", quantity=10))  # buy 10 @ 100
    store_bars(TENANT, flat(minute(1), 110))
    clock.now = minute(2)
    broker.submit(paper_order("p-2", side="sell", quantity=10))  # flat, 100 realised
    assert broker.positions() == []
    store_bars(TENANT, flat(minute(2), 120))
    clock.now = minute(3)
    broker.submit(paper_order("p-0", quantity=5))  # reopen at 120 (id sorts before the others)

    [position] = broker.positions()
    assert (position.quantity, position.average_price) == (Decimal(5), Decimal(120))
    assert broker.account().cash == Decimal(100_000) - 1000 + 1100 - 600


def test_open_orders_and_cancel(history: Bar) -> None:
    broker = paper_broker(fill_model="last_price")
    broker.submit(paper_order("o-1", order_type="limit", limit=90))
    broker.submit(paper_order("o-2", side="sell", order_type="stop", stop=80))
    broker.submit(paper_order("o-3", quantity=1))  # filled at once
    assert sorted(o.client_order_id for o in broker.open_orders()) == ["o-1", "o-2"]

    cancelled = broker.cancel("o-1")
    assert cancelled.status is OrderStatus.CANCELLED
    assert status(broker, "o-1").status is OrderStatus.CANCELLED
    assert [o.client_order_id for o in broker.open_orders()] == ["o-2"]
    assert broker.cancel("o-1").status is OrderStatus.CANCELLED  # idempotent
    assert broker.cancel("o-3").status is OrderStatus.FILLED  # a final order stays as it is
    with pytest.raises(BrokerRejected):
        broker.cancel("nope")
    # a cancelled order no longer matches, the other one still does
    reports = match(broker, ohlc(SYMBOL, minute(1), 85, 86, 70, 75))
    assert [(o.client_order_id, o.status) for o in reports.orders] == [("o-2", OrderStatus.FILLED)]
    assert status(broker, "o-1").fills == []


# -- matching across accounts and tenants ---------------------------------------------------------


def test_match_all_matches_only_the_tenants_orders_on_that_symbol(history: Bar) -> None:
    store_bars("beta", ohlc(SYMBOL, T0, 99, 101, 98, 100), ohlc("ABC", T0, 99, 101, 98, 100))
    store_bars(TENANT, ohlc("ABC", T0, 99, 101, 98, 100))
    mine = {a: paper_broker(account_id=a) for a in (ACCOUNT, "paper-2")}
    theirs = paper_broker(tenant="beta")  # same account id as ours
    mine[ACCOUNT].submit(paper_order("a-1", order_type="limit", limit=99))
    # the same client order id in two accounts: each is matched (and reported) once, by its own account
    mine["paper-2"].submit(paper_order("a-1", order_type="limit", limit=99, account_id="paper-2"))
    mine[ACCOUNT].submit(paper_order("a-3", order_type="limit", limit=99, symbol="ABC"))
    theirs.submit(paper_order("b-1", order_type="limit", limit=99, tenant="beta"))

    reported: list[tuple[str, str]] = []
    bar = ohlc(SYMBOL, minute(1), 98, 99, 97, 98)
    changed = PaperBroker.match_all(
        TENANT,
        bar,
        lambda account_id: paper_broker(account_id=account_id),
        lambda account_id, order: reported.append((account_id, order.client_order_id)),
    )
    assert changed == 2
    assert sorted(reported) == [(ACCOUNT, "a-1"), ("paper-2", "a-1")]
    assert status(mine[ACCOUNT], "a-3").status is OrderStatus.ACCEPTED  # other symbol
    beta = status(theirs, "b-1")
    assert (beta.status, beta.fills) == (OrderStatus.ACCEPTED, [])  # other tenant
    assert [o.client_order_id for o in theirs.open_orders()] == ["b-1"]


def test_paper_exchange_reports_one_update_per_changed_order_on_the_orders_queue(history: Bar) -> None:
    account(fill_model="next_open", slippage_bps="10")
    config = PaperConfig(fill_model="next_open", slippage_bps=Decimal(10))
    broker = PaperBroker(TENANT, ACCOUNT, config, clock=Clock(T0 + M))
    broker.submit(paper_order("e-1", quantity=3))  # resting market order
    broker.submit(paper_order("e-2", order_type="limit", limit=50))  # not reachable
    broker.submit(paper_order("e-3", side="sell", order_type="limit", limit=101, quantity=2))

    exchange = PaperExchange(SqsQueues())
    updates = exchange.on_bar(TENANT, ohlc(SYMBOL, minute(1), 100, 102, 99, 101))
    messages = receive("orders")
    assert len(updates) == len(messages) == 2
    bodies = [BrokerUpdate.model_validate(json.loads(m["Body"])) for m in messages]
    by_id = {b.order.client_order_id: b for b in bodies}
    assert set(by_id) == {"e-1", "e-3"}
    assert by_id["e-1"].order.fills[0].price == Decimal("100.1")  # the account's slippage applied
    assert by_id["e-3"].order.fills[0].price == Decimal(101)
    assert all(b.tenant_id == TENANT and b.account_id == ACCOUNT for b in bodies)
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {f"{TENANT}#{ACCOUNT}#{SYMBOL}"}
    assert status(broker, "e-2").status is OrderStatus.ACCEPTED

    # a bar that changes nothing sends nothing
    assert exchange.on_bar(TENANT, ohlc(SYMBOL, minute(2), 100, 101, 99, 100)) == []
    assert receive("orders") == []


def test_an_order_arriving_late_fills_at_the_first_bar_after_its_decision_bar(history: Bar) -> None:
    """Bars that closed while the order was in flight are matched at submission: the fill is the one
    it would have had on time (replays fill the same however slow the pipeline is)."""
    store_bars(TENANT, ohlc(SYMBOL, minute(1), 104, 106, 103, 105), ohlc(SYMBOL, minute(2), 108, 109, 107, 108))
    # decided at T0 + 1 minute (bar T0 had just closed); arrives after two more bars were published
    broker = paper_broker(fill_model="next_open")
    order = broker.submit(paper_order("late-1", quantity=2))
    assert order.status is OrderStatus.FILLED
    assert [(f.price, f.ts) for f in order.fills] == [(Decimal(104), minute(1))]
    # a sell limit that only the second later bar reaches fills there, at the better of open and limit
    limit = broker.submit(paper_order("late-2", side="sell", order_type="limit", limit=108.5, quantity=1))
    assert [(f.price, f.ts) for f in limit.fills] == [(Decimal("108.5"), minute(2))]


def test_a_bar_still_forming_at_the_decision_time_is_not_the_reference(history: Bar) -> None:
    """The bar opening at the decision time is not closed yet: it must not price the order."""
    store_bars(TENANT, ohlc(SYMBOL, minute(1), 150, 151, 149, 150))
    broker = paper_broker(fill_model="last_price")
    order = broker.submit(paper_order("ref-1", quantity=1))
    assert [f.price for f in order.fills] == [Decimal(100)]  # bar T0's close, not the forming bar's


def test_running_totals_match_the_order_history(history: Bar) -> None:
    """The simulated account's cash and committed cash are kept as running totals (an O(1) funds
    check); they must always equal what the orders themselves say."""
    broker = paper_broker(fill_model="next_open", fee_rate=Decimal("0.001"))
    broker.submit(paper_order("t-1", quantity=3))  # resting market buy
    broker.submit(paper_order("t-2", order_type="limit", limit=90, quantity=5))  # resting limit buy
    broker.submit(paper_order("t-3", side="sell", order_type="limit", limit=120, quantity=1))
    match(broker, ohlc(SYMBOL, minute(1), 101, 103, 99, 102))  # fills t-1 only
    broker.cancel("t-2")

    cash, committed = broker._balances()
    orders = broker._orders()
    expected_cash = Decimal(100_000) - sum(
        (f.quantity * f.price * o.side.sign + f.fee for o in orders for f in o.fills), Decimal(0)
    )
    expected_committed = sum(
        ((o.quantity - o.filled_quantity) * (o.limit_price or o.reference_price))
        for o in orders
        if o.side.value == "buy" and not o.status.final
    )
    assert cash == expected_cash
    assert committed == expected_committed == 0  # t-1 filled, t-2 cancelled, t-3 is a sell
    assert cash == Decimal(100_000) - Decimal(3) * Decimal(101) - Decimal("0.303")
