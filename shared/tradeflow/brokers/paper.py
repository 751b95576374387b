"""The paper broker: a deterministic simulated exchange with its own order book in DynamoDB.

Orders are matched against the bars that follow the bar the decision was taken on (the last bar at
the order's decision time): bars already published when the order arrives are matched at submission,
later ones as they arrive.

Fill model (per paper account, `broker_config`):
- `fill_model="next_open"` (default): market orders rest until the next bar and fill at its open;
  `"last_price"`: market orders fill at once at the last bar's close.
- limit orders fill when a later bar trades through the limit, at the better of the bar's open and the
  limit; stop orders trigger when a later bar touches the stop and fill at the worse of open and stop;
  stop-limit orders trigger like stops, then fill like limits (a triggered, unfilled stop-limit rests as
  a limit order).
- `slippage_bps` moves market and stop fills against the trader; `fee_rate` is a fraction of notional
  charged per fill; `starting_cash` is the simulated account's opening balance.
- time in force: `day` orders expire when a bar of a later UTC day arrives; `ioc` limit/stop orders
  that cannot fill at once are cancelled; `gtc` rest until filled or cancelled.

Matching happens in `match(bar)`, which the `paper_exchange` function calls for every new bar (the
paper equivalent of a broker's trade-updates stream). Everything is a pure function of the orders and
the bars, so a replay fills identically every time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pydantic import Field

from tradeflow.brokers.port import (
    BrokerAccount,
    BrokerFill,
    BrokerOrder,
    BrokerPosition,
    BrokerRejected,
    DuplicateClientOrderId,
    RejectCode,
)
from tradeflow.domain import Bar, Order, OrderSide, OrderStatus, OrderType, TimeInForce
from tradeflow.domain.base import Model
from tradeflow.domain.timeframes import last_closed_open_time
from tradeflow.domain.types import iso, tidy
from tradeflow.storage.bars import BarRepository
from tradeflow.storage.dynamo import ConditionFailed, DynamoTable, TransactionConflict, Write, model_item, transact
from tradeflow.storage.keys import tenant_account

PRICE_PLACES = 8
ACCOUNT_SK = "#account"  # the simulated account's running totals, beside its orders


class PaperConfig(Model):
    fill_model: str = Field(default="next_open", pattern="^(next_open|last_price)$")
    slippage_bps: Decimal = Field(default=Decimal(0), ge=0)
    fee_rate: Decimal = Field(default=Decimal(0), ge=0)
    starting_cash: Decimal = Field(default=Decimal(100_000), ge=0)
    timeframe: str = "1m"
    allow_margin: bool = False


class _Stored(BrokerOrder):
    tenant_id: str
    account_id: str
    timeframe: str
    after: str  # only bars opened after this instant may fill the order (no look-ahead)
    reference_price: Decimal  # last price at submission: what a resting market order commits
    triggered: bool = False
    session: str | None = None  # UTC date of the first bar that could fill the order (DAY expiry)
    version: int = 0


class PaperBroker:
    name = "paper"

    def __init__(
        self,
        tenant_id: str,
        account_id: str,
        config: PaperConfig,
        clock: Callable[[], datetime],
        bars: BarRepository | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.account_id = account_id
        self.config = config
        self.clock = clock
        self.bars = bars or BarRepository()
        self.table = DynamoTable("paper_orders")

    # -- the broker port -------------------------------------------------------------------------

    def submit(self, order: Order) -> BrokerOrder:
        now = self.clock()
        last = self._last_bar(order.symbol, now)
        if last is None:
            raise BrokerRejected(RejectCode.NO_MARKET_DATA, f"no market data for {order.symbol} at {iso(now)}")
        if order.quantity <= 0:
            raise BrokerRejected(RejectCode.INVALID_QUANTITY, f"quantity {order.quantity} must be positive")
        self._check_funds(order, last.close)
        stored = _Stored(
            tenant_id=self.tenant_id,
            account_id=self.account_id,
            timeframe=self.config.timeframe,
            client_order_id=order.client_order_id,
            broker_order_id=f"paper-{order.client_order_id}",
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            order_type=order.order_type,
            time_in_force=order.time_in_force,
            limit_price=order.limit_price,
            stop_price=order.stop_price,
            status=OrderStatus.ACCEPTED,
            submitted_at=now,
            updated_at=now,
            after=iso(last.ts),
            reference_price=last.close,
        )
        if order.order_type is OrderType.MARKET and self.config.fill_model == "last_price":
            stored = self._fill(stored, self._slipped(last.close, order.side), now, "1")
        elif order.time_in_force is TimeInForce.IOC and order.order_type is not OrderType.MARKET:
            stored = self._immediate_or_cancel(stored, last, now)
        else:
            # Bars that closed while the order was on its way (a slow pipeline, a replay running
            # ahead of the decisions) are matched at once, in order: the order gets the fill it would
            # have had on time, so a replay fills identically however fast the machine is.
            for bar in self.bars.after(self.tenant_id, order.symbol, self.config.timeframe, last.ts, 500):
                if stored.status.final:
                    break
                stored = self._against(stored, bar) or stored
        try:
            self._commit(None, stored)
        except ConditionFailed:
            raise DuplicateClientOrderId(f"client order id {order.client_order_id} already used") from None
        return _public(stored)

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        item = self.table.get({"pk": self._pk, "sk": client_order_id})
        return _public(_Stored.model_validate(item)) if item else None

    def cancel(self, client_order_id: str) -> BrokerOrder:
        item = self.table.get({"pk": self._pk, "sk": client_order_id})
        if item is None:
            raise BrokerRejected(RejectCode.REJECTED, f"order {client_order_id} not found")
        stored = _Stored.model_validate(item)
        if stored.status.final:
            return _public(stored)
        cancelled = stored.model_copy(update={"status": OrderStatus.CANCELLED, "updated_at": self.clock()})
        self._save(stored, cancelled)
        return _public(cancelled)

    def open_orders(self) -> list[BrokerOrder]:
        return [_public(o) for o in self._orders() if not o.status.final]

    def recent_orders(self, since: datetime) -> list[BrokerOrder]:
        return [_public(o) for o in self._orders() if o.updated_at >= since or not o.status.final]

    def positions(self) -> list[BrokerPosition]:
        """Net quantity per symbol at its average entry price (average cost, fills in time order):
        reducing a position keeps its average, crossing through zero starts a new one."""
        fills = sorted(
            (
                (fill.ts, order.submitted_at, order.client_order_id, order, fill)
                for order in self._orders()
                for fill in order.fills
            ),
            key=lambda entry: entry[:3],
        )
        books: dict[str, tuple[Decimal, Decimal]] = {}
        for *_, order, fill in fills:
            qty, avg = books.get(order.symbol, (Decimal(0), Decimal(0)))
            signed = fill.quantity * order.side.sign
            new_qty = qty + signed
            if new_qty == 0:
                avg = Decimal(0)
            elif qty == 0 or (qty > 0) == (signed > 0):
                avg = (abs(qty) * avg + abs(signed) * fill.price) / abs(new_qty)
            elif (new_qty > 0) != (qty > 0):
                avg = fill.price
            books[order.symbol] = (new_qty, avg)
        return [
            BrokerPosition(symbol=s, quantity=q, average_price=tidy(a)) for s, (q, a) in sorted(books.items()) if q != 0
        ]

    def account(self) -> BrokerAccount:
        cash = self._cash()
        equity = cash
        for position in self.positions():
            last = self._last_bar(position.symbol, self.clock())
            equity += position.quantity * (last.close if last else position.average_price)
        return BrokerAccount(cash=cash, equity=equity, buying_power=cash)

    # -- the matching engine ---------------------------------------------------------------------

    def match(self, bar: Bar, report: Callable[[BrokerOrder], None]) -> list[BrokerOrder]:
        """Fill, trigger or expire this account's resting orders against a new bar; returns the
        orders that changed.

        Each change is reported *before* it is saved: if we die in between, the redelivered bar
        matches again and reports the identical change (same fill reference), which the books
        deduplicate; saving first would lose the fill instead."""
        changed = []
        for stored in self._resting(bar.symbol):
            if stored.timeframe != bar.timeframe or iso(bar.ts) <= stored.after:
                continue
            updated = self._against(stored, bar)
            if updated is None:
                continue
            public = _public(updated)
            if public.status != stored.status or public.fills != stored.fills:
                report(public)
            try:
                self._save(stored, updated)
            except ConditionFailed:
                continue  # matched concurrently by another delivery of the same bar
            changed.append(public)
        return changed

    @classmethod
    def match_all(
        cls,
        tenant_id: str,
        bar: Bar,
        broker_for: Callable[[str], PaperBroker],
        report: Callable[[str, BrokerOrder], None],
    ) -> int:
        """Match a bar for every paper account of the tenant with orders resting on its symbol;
        `report(account_id, order)` is called for each change. Returns how many orders changed."""
        table = DynamoTable("paper_orders")
        accounts = sorted({i["account_id"] for i in table.query(f"{tenant_id}#{bar.symbol}", index="open_by_symbol")})
        changed = 0
        for account_id in accounts:
            changed += len(broker_for(account_id).match(bar, functools.partial(report, account_id)))
        return changed

    def _against(self, order: _Stored, bar: Bar) -> _Stored | None:
        if order.order_type is OrderType.MARKET:
            # A market order fills at the first bar after it was placed, whatever its time in force.
            return self._fill(order, self._slipped(bar.open, order.side), bar.ts, iso(bar.ts))
        day = bar.ts.date().isoformat()
        if order.time_in_force is TimeInForce.DAY and order.session is not None and day > order.session:
            return order.model_copy(update={"status": OrderStatus.EXPIRED, "updated_at": bar.ts})
        first_session = order.session is None
        order = order.model_copy(update={"session": order.session or day})
        matched = self._price_action(order, bar)
        if matched is None and first_session:
            return order.model_copy(update={"updated_at": bar.ts})
        return matched

    def _price_action(self, order: _Stored, bar: Bar) -> _Stored | None:
        buy = order.side is OrderSide.BUY
        triggered = order.triggered
        if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and not triggered:
            assert order.stop_price is not None
            triggered = bar.high >= order.stop_price if buy else bar.low <= order.stop_price
            if not triggered:
                return None
            if order.order_type is OrderType.STOP:
                touch = max(bar.open, order.stop_price) if buy else min(bar.open, order.stop_price)
                return self._fill(order, self._slipped(touch, order.side), bar.ts, iso(bar.ts))
        # limit, or a triggered stop-limit
        assert order.limit_price is not None
        limit = order.limit_price
        reachable = bar.low <= limit if buy else bar.high >= limit
        if not reachable:
            if triggered != order.triggered:
                return order.model_copy(update={"triggered": True, "updated_at": bar.ts})
            return None
        start = bar.open
        if triggered != order.triggered:
            # Triggered inside this bar: the order only exists from the trigger price on, never at an
            # earlier, better open.
            assert order.stop_price is not None
            start = max(bar.open, order.stop_price) if buy else min(bar.open, order.stop_price)
        price = min(start, limit) if buy else max(start, limit)
        return self._fill(order.model_copy(update={"triggered": triggered}), price, bar.ts, iso(bar.ts))

    def _immediate_or_cancel(self, order: _Stored, last: Bar, now: datetime) -> _Stored:
        price = last.close
        buy = order.side is OrderSide.BUY
        limit_ok = order.limit_price is None or (price <= order.limit_price if buy else price >= order.limit_price)
        stop_ok = order.stop_price is None or (price >= order.stop_price if buy else price <= order.stop_price)
        if limit_ok and stop_ok:
            return self._fill(order, price, now, "ioc")
        return order.model_copy(update={"status": OrderStatus.CANCELLED, "reject_reason": "ioc: not marketable"})

    def _fill(self, order: _Stored, price: Decimal, ts: datetime, ref: str) -> _Stored:
        quantity = order.quantity - order.filled_quantity
        fee = (quantity * price * self.config.fee_rate).quantize(Decimal("0.00000001"), ROUND_HALF_EVEN)
        fill = BrokerFill(
            ref=f"{order.broker_order_id}:{ref}", quantity=quantity, price=price, fee=tidy(fee, PRICE_PLACES), ts=ts
        )
        return order.model_copy(
            update={
                "status": OrderStatus.FILLED,
                "filled_quantity": order.quantity,
                "fills": [*order.fills, fill],
                "updated_at": ts,
            }
        )

    def _slipped(self, price: Decimal, side: OrderSide) -> Decimal:
        factor = self.config.slippage_bps / Decimal(10_000)
        moved = price * (1 + factor) if side is OrderSide.BUY else price * (1 - factor)
        return tidy(moved, PRICE_PLACES)

    def _check_funds(self, order: Order, last_price: Decimal) -> None:
        if order.side is not OrderSide.BUY or self.config.allow_margin:
            return
        reference = order.limit_price or order.stop_price or last_price
        needed = order.quantity * self._slipped(reference, OrderSide.BUY) * (1 + self.config.fee_rate)
        cash, committed = self._balances()
        available = cash - committed
        if needed > available:
            raise BrokerRejected(
                RejectCode.INSUFFICIENT_FUNDS,
                f"order needs {tidy(needed, 2)} but {tidy(available, 2)} is available",
            )

    # -- storage ---------------------------------------------------------------------------------

    @property
    def _pk(self) -> str:
        return tenant_account(self.tenant_id, self.account_id)

    def _item(self, order: _Stored) -> dict[str, Any]:
        item = model_item(order, pk=self._pk, sk=order.client_order_id)
        if not order.status.final:
            item["open_symbol"] = f"{self.tenant_id}#{order.symbol}"  # sparse index of resting orders
        return item

    def _save(self, before: _Stored, after: _Stored) -> None:
        """Replace `before` (as read) by `after`; ConditionFailed if it changed in between."""
        self._commit(before, after)

    def _commit(self, before: _Stored | None, after: _Stored) -> None:
        """Write the order and, in the same transaction, what it changes in the simulated account:
        cash moved by its new fills, and cash committed to a resting buy (released when it fills or
        ends). Keeping these running totals makes a funds check O(1) however long the history."""
        stored = after.model_copy(update={"version": before.version + 1 if before else 0})
        cash_delta = -sum(
            (f.quantity * f.price * after.side.sign + f.fee for f in after.fills[len(before.fills) if before else 0 :]),
            Decimal(0),
        )
        committed_delta = _committed(after) - (_committed(before) if before else Decimal(0))
        if before is None:
            order_write = Write("paper_orders", "Put", item=self._item(stored), condition="attribute_not_exists(pk)")
        else:
            order_write = Write(
                "paper_orders", "Put", item=self._item(stored), condition="version = :v", values={":v": before.version}
            )
        account_write = Write(
            "paper_orders",
            "Update",
            key={"pk": self._pk, "sk": ACCOUNT_SK},
            update="ADD cash_delta :c, committed :k",
            values={":c": cash_delta, ":k": committed_delta},
        )
        try:
            transact([order_write, account_write])
        except TransactionConflict as conflict:
            raise ConditionFailed(f"order {after.client_order_id} changed concurrently: {conflict.reasons}") from None

    def _balances(self) -> tuple[Decimal, Decimal]:
        """(cash, cash committed to resting buys) of the simulated account."""
        item = self.table.get({"pk": self._pk, "sk": ACCOUNT_SK}) or {}
        cash = self.config.starting_cash + Decimal(item.get("cash_delta", 0))
        return cash, Decimal(item.get("committed", 0))

    def _orders(self) -> list[_Stored]:
        items = self.table.query(self._pk)
        return [_Stored.model_validate(i) for i in items if not str(i["sk"]).startswith("#")]

    def _resting(self, symbol: str) -> list[_Stored]:
        items = self.table.query(f"{self.tenant_id}#{symbol}", index="open_by_symbol")
        resting = []
        for item in items:
            if item["account_id"] != self.account_id:
                continue
            # The index may lag; re-read the order itself before acting on it.
            fresh = self.table.get({"pk": self._pk, "sk": item["sk"]})
            if fresh is not None:
                stored = _Stored.model_validate(fresh)
                if not stored.status.final:
                    resting.append(stored)
        return sorted(resting, key=lambda o: (o.submitted_at, o.client_order_id))

    def _cash(self) -> Decimal:
        return self._balances()[0]

    def _last_bar(self, symbol: str, now: datetime) -> Bar | None:
        """The last bar that had closed by `now` (a bar's ts is its open time)."""
        until = last_closed_open_time(now, self.config.timeframe)
        found = self.bars.latest(self.tenant_id, symbol, self.config.timeframe, until, 1)
        return found[-1] if found else None


def _committed(order: _Stored) -> Decimal:
    """Cash a resting buy holds back from new orders (nothing once it is final, or for sells)."""
    if order.side is not OrderSide.BUY or order.status.final:
        return Decimal(0)
    price = order.limit_price or order.stop_price or order.reference_price
    return (order.quantity - order.filled_quantity) * price


def _public(stored: _Stored) -> BrokerOrder:
    return BrokerOrder.model_validate(stored.model_dump(include=set(BrokerOrder.model_fields)))
