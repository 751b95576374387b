"""When an open order has outlived its time: day orders after their session, any order past its age.

Sessions, kept simple on purpose:
- **US stocks at Alpaca** (broker `alpaca`, a symbol without "/"): the US/Eastern calendar date. An
  order placed at or after the 16:00 close, or on a weekend, belongs to the next weekday's session
  (Alpaca queues it for the next open). Exchange holidays are not modelled: Alpaca expires its day
  orders at the close itself (reconciliation then only records that), so this rule is a backstop; at
  worst it cancels an order queued over a holiday one session early. Eastern time follows the US rule
  in force since 2007 (daylight time from the second Sunday of March to the first Sunday of November,
  switching at 02:00 local), computed here so no time-zone database is needed in the Lambda runtime.
- **Everything else** (crypto at Alpaca or a ccxt exchange, the paper broker): the UTC date, the day
  the paper broker expires its day orders on.

Maximum ages (per account, `broker_config`; `ReconcilePolicy`):
- `stale_order_hours` (default 24): day and IOC orders. A day order's age counts from the start of its
  session, so an order queued on Friday evening for Monday is not cut short over the weekend; an IOC
  order should never rest at all.
- `stale_gtc_days` (default 30): good-till-cancelled orders are left alone until then.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from tradeflow.domain import Order, TimeInForce
from tradeflow.reconcile.differences import Difference, DifferenceKind, Remedy
from tradeflow.reconcile.policy import ReconcilePolicy

EASTERN_STANDARD = timedelta(hours=-5)
EASTERN_DAYLIGHT = timedelta(hours=-4)
US_STOCK_CLOSE = time(16, 0)
SATURDAY = 5


def _nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))


def eastern_offset(instant: datetime) -> timedelta:
    """US/Eastern's offset from UTC at a UTC instant."""
    utc = instant.astimezone(UTC)
    starts = datetime.combine(_nth_sunday(utc.year, 3, 2), time(7), UTC)  # 02:00 EST
    ends = datetime.combine(_nth_sunday(utc.year, 11, 1), time(6), UTC)  # 02:00 EDT
    return EASTERN_DAYLIGHT if starts <= utc < ends else EASTERN_STANDARD


def eastern(instant: datetime) -> datetime:
    """The Eastern wall-clock time of a UTC instant (naive)."""
    return (instant.astimezone(UTC) + eastern_offset(instant)).replace(tzinfo=None)


def _eastern_midnight(day: date) -> datetime:
    """The UTC instant at which an Eastern calendar day starts."""
    local = datetime.combine(day, time(0))
    standard = (local - EASTERN_STANDARD).replace(tzinfo=UTC)
    if eastern_offset(standard) == EASTERN_DAYLIGHT:
        return (local - EASTERN_DAYLIGHT).replace(tzinfo=UTC)
    return standard


def us_stock_session(account_broker: str, symbol: str) -> bool:
    return account_broker == "alpaca" and "/" not in symbol


def session_of(order: Order, account_broker: str) -> date:
    """The trading day a day order belongs to."""
    if not us_stock_session(account_broker, order.symbol):
        return order.created_at.astimezone(UTC).date()
    local = eastern(order.created_at)
    day = local.date()
    if local.time() >= US_STOCK_CLOSE:
        day += timedelta(days=1)
    while day.weekday() >= SATURDAY:
        day += timedelta(days=1)
    return day


def trading_day(now: datetime, account_broker: str, symbol: str) -> date:
    """Today's date in the order's session calendar."""
    if us_stock_session(account_broker, symbol):
        return eastern(now).date()
    return now.astimezone(UTC).date()


def session_start(day: date, account_broker: str, symbol: str) -> datetime:
    if us_stock_session(account_broker, symbol):
        return _eastern_midnight(day)
    return datetime.combine(day, time(0), UTC)


def expiry(order: Order, now: datetime, account_broker: str, policy: ReconcilePolicy) -> Difference | None:
    """Why `order` (open) should be cancelled now, as a `cancel` difference; None while it may rest."""
    created = order.created_at
    if order.time_in_force is TimeInForce.DAY:
        session = session_of(order, account_broker)
        today = trading_day(now, account_broker, order.symbol)
        if session < today:
            return _cancel(
                order,
                DifferenceKind.DAY_ORDER_EXPIRED,
                f"day order of the {session.isoformat()} session, still open on {today.isoformat()}",
            )
        age_from = max(created, session_start(session, account_broker, order.symbol))
        limit = timedelta(hours=float(policy.stale_order_hours))
    elif order.time_in_force is TimeInForce.GTC:
        age_from, limit = created, timedelta(days=float(policy.stale_gtc_days))
    else:
        age_from, limit = created, timedelta(hours=float(policy.stale_order_hours))
    age = now - age_from
    if age > limit:
        return _cancel(
            order,
            DifferenceKind.STALE_ORDER,
            f"{order.time_in_force.value} order open for {_hours(age)} h, longer than the {_hours(limit)} h allowed",
        )
    return None


def _hours(span: timedelta) -> str:
    return str(round(Decimal(span.total_seconds()) / 3600, 1))


def _cancel(order: Order, kind: DifferenceKind, reason: str) -> Difference:
    return Difference(
        kind=kind,
        remedy=Remedy.CANCEL,
        symbol=order.symbol,
        client_order_id=order.client_order_id,
        ledger=f"{order.status.value} since {order.created_at.isoformat()}",
        broker="open",
        detail=reason,
        order=order,
    )
