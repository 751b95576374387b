"""The risk decision: controls, target-position semantics, sizing, limits and clamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tradeflow.domain import (
    Account,
    ControlScope,
    Deployment,
    DeploymentStatus,
    OrderSide,
    Position,
    RiskProfile,
    Signal,
    SizingRule,
    TradingControl,
)
from tradeflow.domain.accounts import PendingExposure
from tradeflow.risk.engine import Approved, Book, Rejected, decide
from tradeflow.risk.sizing import SizingError, round_quantity, size

NOW = datetime(2024, 3, 1, 15, 0, tzinfo=UTC)
TODAY = "2024-03-01"
D = Decimal


def _account(cash: str = "100000", pending: dict[str, PendingExposure] | None = None, **extra: Any) -> Account:
    return Account(
        tenant_id="t1",
        account_id="acc-1",
        cash=D(cash),
        starting_cash=D(cash),
        pending=pending or {},
        created_at=NOW,
        updated_at=NOW,
        **extra,
    )


def _position(symbol: str, quantity: str, average: str = "100", last: str | None = None, **extra: Any) -> Position:
    return Position(
        tenant_id="t1",
        account_id="acc-1",
        symbol=symbol,
        quantity=D(quantity),
        average_price=D(average),
        last_price=D(last) if last is not None else None,
        **extra,
    )


def _deployment(status: DeploymentStatus = DeploymentStatus.ACTIVE, **risk: Any) -> Deployment:
    risk.setdefault("sizing", SizingRule(percent=D(10)))
    return Deployment(
        tenant_id="t1",
        deployment_id="dep-1",
        strategy="sma_cross",
        symbols=["GOOG", "SPY", "MSFT"],
        account_id="acc-1",
        risk=RiskProfile(**risk),
        status=status,
        created_at=NOW,
        updated_at=NOW,
    )


def _signal(action: str, symbol: str = "GOOG", price: str = "100", atr: str | None = None) -> Signal:
    return Signal(
        signal_id="sig_test01",
        tenant_id="t1",
        deployment_id="dep-1",
        account_id="acc-1",
        symbol=symbol,
        action=action,
        bar_time=NOW - timedelta(minutes=1),
        generated_at=NOW,
        price=D(price),
        atr=D(atr) if atr is not None else None,
        strategy="sma_cross",
    )


def _decide(
    action: str,
    *,
    symbol: str = "GOOG",
    price: str = "100",
    atr: str | None = None,
    account: Account | None = None,
    positions: list[Position] | None = None,
    controls: list[TradingControl] | None = None,
    deployment: Deployment | None = None,
    now: datetime = NOW,
    **risk: Any,
) -> Approved | Rejected:
    signal = _signal(action, symbol, price, atr)
    book = Book(
        account or _account(),
        {p.symbol: p for p in positions or []},
        {symbol: signal.price},  # as the risk service builds it
    )
    return decide(signal, deployment or _deployment(**risk), controls or [], book, now)


def _approved(decision: Approved | Rejected) -> Approved:
    assert isinstance(decision, Approved), decision
    return decision


def _rejected(decision: Approved | Rejected) -> str:
    assert isinstance(decision, Rejected), decision
    return decision.reason


def _control(scope: ControlScope, active: bool = True, target: str = "*", reason: str = "") -> TradingControl:
    tenant = "_global" if scope is ControlScope.GLOBAL_HALT else "t1"
    return TradingControl(tenant_id=tenant, scope=scope, target=target, active=active, reason=reason, updated_at=NOW)


# --- controls and deployment status -----------------------------------------------------------------

_TARGETS = {ControlScope.DEPLOYMENT_PAUSED: "dep-1", ControlScope.ACCOUNT_HALTED: "acc-1"}


def test_a_halt_of_another_account_does_not_block() -> None:
    halted = _control(ControlScope.ACCOUNT_HALTED, target="acc-2", reason="credentials refused")
    assert _approved(_decide("buy", controls=[halted])).quantity == 100


@pytest.mark.parametrize("scope", list(ControlScope))
@pytest.mark.parametrize("action", ["buy", "sell"])
def test_every_active_trading_control_blocks_opening_and_closing(scope: ControlScope, action: str) -> None:
    target = _TARGETS.get(scope, "*")
    long = [_position("GOOG", "10")]
    reason = _rejected(_decide(action, positions=long, controls=[_control(scope, target=target, reason="ops")]))
    assert reason == f"trading control {scope.value} is active: ops"
    assert _rejected(_decide(action, controls=[_control(scope, target=target)])).startswith(
        f"trading control {scope.value} is active"
    )


@pytest.mark.parametrize("scope", list(ControlScope))
def test_inactive_controls_do_not_block(scope: ControlScope) -> None:
    target = _TARGETS.get(scope, "*")
    assert _approved(_decide("buy", controls=[_control(scope, active=False, target=target)])).quantity == 100


def test_pausing_another_deployment_does_not_block_this_one() -> None:
    other = _control(ControlScope.DEPLOYMENT_PAUSED, target="dep-2")
    assert _approved(_decide("buy", controls=[other])).quantity == 100
    mine = _control(ControlScope.DEPLOYMENT_PAUSED, target="dep-1")
    assert "deployment_paused" in _rejected(_decide("buy", controls=[other, mine]))


@pytest.mark.parametrize("status", [DeploymentStatus.PAUSED, DeploymentStatus.STOPPED])
def test_inactive_deployments_do_not_trade(status: DeploymentStatus) -> None:
    reason = _rejected(_decide("buy", deployment=_deployment(status)))
    assert reason == f"deployment dep-1 is {status.value}"
    reason = _rejected(_decide("sell", positions=[_position("GOOG", "5")], deployment=_deployment(status)))
    assert reason == f"deployment dep-1 is {status.value}"


def test_hold_carries_no_order() -> None:
    assert _rejected(_decide("hold")) == "hold signals carry no order"


# --- target-position semantics -------------------------------------------------------------------


def test_buy_when_flat_opens_sized_by_percent_of_equity() -> None:
    approved = _approved(_decide("buy"))
    assert approved.side is OrderSide.BUY
    assert approved.quantity == D(100)  # 10% of 100000 at 100
    assert str(approved.quantity) == "100"  # plain notation: this reaches brokers and audits
    assert approved.notional == D(10000)
    assert str(approved.notional) == "10000"
    assert approved.opens is True
    assert approved.notes == ["sized percent_of_equity: 100 at 100"]


def test_equity_includes_positions_marked_at_their_last_price() -> None:
    spy = _position("SPY", "100", average="400", last="500")  # worth 50000
    approved = _approved(_decide("buy", account=_account("50000"), positions=[spy]))
    assert approved.quantity == D(100)  # 10% of (50000 + 50000)
    unmarked = _position("SPY", "100", average="400")  # no last price: marked at cost
    assert _approved(_decide("buy", account=_account("50000"), positions=[unmarked])).quantity == D(90)


def test_buy_sized_by_fixed_quantity() -> None:
    approved = _approved(_decide("buy", sizing=SizingRule(method="fixed_quantity", quantity=D(7))))
    assert (approved.quantity, approved.notional) == (D(7), D(700))
    assert approved.notes[0] == "sized fixed_quantity: 7 at 100"


def test_buy_sized_by_atr_risk() -> None:
    rule = SizingRule(method="atr_risk", risk_fraction=D("0.01"), atr_multiple=D(2))
    approved = _approved(_decide("buy", atr="2.5", sizing=rule))
    assert approved.quantity == D(200)  # risk 1000 over a stop 5 away
    wider = _approved(_decide("buy", atr="5", sizing=rule))
    assert wider.quantity == D(100)


@pytest.mark.parametrize("atr", [None, "0"])
def test_atr_risk_without_atr_rejects(atr: str | None) -> None:
    rule = SizingRule(method="atr_risk", risk_fraction=D("0.01"))
    reason = _rejected(_decide("buy", atr=atr, sizing=rule))
    assert reason.startswith("sizing failed: ")
    assert "ATR" in reason


def test_buy_when_already_long_rejects() -> None:
    reason = _rejected(_decide("buy", positions=[_position("GOOG", "10")]))
    assert reason == "already long 10 GOOG"
    pending = _account(pending={"GOOG": PendingExposure(quantity=D(4), notional=D(400), opens=1)})
    assert _rejected(_decide("buy", account=pending)) == "already long 4 GOOG"


def test_sell_when_long_closes_the_full_effective_quantity() -> None:
    account = _account(pending={"GOOG": PendingExposure(quantity=D(5), notional=D(500))})
    approved = _approved(_decide("sell", account=account, positions=[_position("GOOG", "10")]))
    assert approved.side is OrderSide.SELL
    assert approved.quantity == D(15)
    assert approved.notional == 0
    assert approved.opens is False
    assert approved.notes == ["closes long position"]


def test_sell_when_the_close_is_already_pending_does_not_sell_twice() -> None:
    account = _account(pending={"GOOG": PendingExposure(quantity=D(-10))})
    reason = _rejected(_decide("sell", account=account, positions=[_position("GOOG", "10")]))
    assert "short selling is not allowed" in reason


def test_sell_when_flat_rejects_unless_shorting_is_allowed() -> None:
    reason = _rejected(_decide("sell"))
    assert reason == "no long position in GOOG to close and short selling is not allowed"
    approved = _approved(_decide("sell", allow_short=True))
    assert (approved.side, approved.quantity, approved.notional, approved.opens) == (
        OrderSide.SELL,
        D(100),
        D(10000),
        True,
    )


def test_short_sales_are_not_limited_by_cash_but_by_exposure() -> None:
    fixed = SizingRule(method="fixed_quantity", quantity=D(50))
    approved = _approved(_decide("sell", account=_account("0"), allow_short=True, sizing=fixed))
    assert approved.quantity == D(50)
    capped = _approved(
        _decide("sell", account=_account("0"), allow_short=True, sizing=fixed, max_gross_exposure=D(2000))
    )
    assert capped.quantity == D(20)


def test_buy_when_short_covers_and_sell_when_short_rejects() -> None:
    short = [_position("GOOG", "-12")]
    approved = _approved(_decide("buy", positions=short, allow_short=True))
    assert (approved.side, approved.quantity, approved.notional, approved.opens) == (OrderSide.BUY, D(12), D(0), False)
    assert approved.notes == ["closes short position"]
    assert _rejected(_decide("sell", positions=short, allow_short=True)) == "already short 12 GOOG"


def test_closing_orders_ignore_every_exposure_limit() -> None:
    held = _position("GOOG", "1000", last_loss_at=NOW - timedelta(seconds=1))
    others = [_position("SPY", "10"), _position("MSFT", "10")]
    account = _account("0", trading_day=TODAY, day_realized_pnl=D(-10_000))
    approved = _approved(
        _decide(
            "sell",
            account=account,
            positions=[held, *others],
            max_position_quantity=D(1),
            max_position_notional=D(1),
            max_gross_exposure=D(1),
            max_open_positions=1,
            daily_loss_limit=D(100),
            cooldown_after_loss_seconds=3600,
        )
    )
    assert approved.quantity == D(1000)
    short = _position("GOOG", "-1000", last_loss_at=NOW)
    covered = _approved(_decide("buy", account=account, positions=[short], max_gross_exposure=D(1), allow_short=True))
    assert covered.quantity == D(1000)  # covering a short is not limited by cash either


# --- loss limits ------------------------------------------------------------------------------------


def test_daily_loss_limit_rejects_opening_orders_once_reached() -> None:
    hit = _account(trading_day=TODAY, day_realized_pnl=D(-500))
    reason = _rejected(_decide("buy", account=hit, daily_loss_limit=D(500)))
    assert reason == "daily loss limit 500 reached (realized today -500)"
    near = _account(trading_day=TODAY, day_realized_pnl=D("-499.99"))
    assert _approved(_decide("buy", account=near, daily_loss_limit=D(500))).quantity == 100
    yesterday = _account(trading_day="2024-02-29", day_realized_pnl=D(-5000))
    assert _approved(_decide("buy", account=yesterday, daily_loss_limit=D(500))).quantity == 100
    assert _approved(_decide("buy", account=hit)).quantity == 100  # no limit configured


def test_daily_loss_limit_uses_the_utc_day_of_now() -> None:
    account = _account(trading_day=TODAY, day_realized_pnl=D(-500))
    next_day = datetime(2024, 3, 2, 0, 0, 1, tzinfo=UTC)
    assert _approved(_decide("buy", account=account, daily_loss_limit=D(500), now=next_day)).quantity == 100


def test_cooldown_after_a_loss_on_the_symbol() -> None:
    lost = _position("GOOG", "0", last_loss_at=NOW - timedelta(seconds=30))
    reason = _rejected(_decide("buy", positions=[lost], cooldown_after_loss_seconds=60))
    assert reason == "cooldown after a loss on GOOG: 30s of 60s elapsed"
    earlier = _position("GOOG", "0", last_loss_at=NOW - timedelta(seconds=60))
    assert _approved(_decide("buy", positions=[earlier], cooldown_after_loss_seconds=60)).quantity == 100
    assert _approved(_decide("buy", positions=[lost])).quantity == 100  # no cooldown configured
    other = _position("SPY", "0", last_loss_at=NOW)
    assert _approved(_decide("buy", positions=[other], cooldown_after_loss_seconds=60)).quantity == 100


# --- open positions ---------------------------------------------------------------------------------


def test_max_open_positions_counts_held_positions() -> None:
    held = [_position("SPY", "10"), _position("MSFT", "-3")]
    assert _rejected(_decide("buy", positions=held, max_open_positions=2)) == "max open positions 2 reached (2 open)"
    assert _approved(_decide("buy", positions=held, max_open_positions=3)).quantity > 0
    closed = [_position("SPY", "10"), _position("MSFT", "0")]
    assert _approved(_decide("buy", positions=closed, max_open_positions=2)).quantity > 0


def test_max_open_positions_counts_pending_opens() -> None:
    pending = {"MSFT": PendingExposure(quantity=D(5), notional=D(500), opens=1)}
    account = _account(pending=pending)
    reason = _rejected(_decide("buy", account=account, positions=[_position("SPY", "10")], max_open_positions=2))
    assert reason == "max open positions 2 reached (2 open)"
    released = _account(pending={"MSFT": PendingExposure()})
    assert _approved(_decide("buy", account=released, max_open_positions=1)).quantity > 0


def test_a_flat_position_in_the_symbol_itself_does_not_count() -> None:
    own = _position("GOOG", "0")
    assert _approved(_decide("buy", positions=[own, _position("SPY", "1")], max_open_positions=2)).quantity > 0


# --- clamping ---------------------------------------------------------------------------------------


def test_clamped_by_max_position_quantity() -> None:
    approved = _approved(_decide("buy", max_position_quantity=D(30)))
    assert approved.quantity == D(30)
    assert approved.notional == D(3000)
    assert approved.notes[-1] == "clamped by max_position_quantity"


def test_clamped_by_max_position_notional() -> None:
    approved = _approved(_decide("buy", max_position_notional=D(2550)))
    assert approved.quantity == D(25)  # 25.5 rounded down: never above the limit
    assert approved.notional <= D(2550)
    assert approved.notes[-1] == "clamped by max_position_notional"


def test_clamped_by_gross_exposure_counting_positions_and_reservations() -> None:
    account = _account(pending={"MSFT": PendingExposure(quantity=D(10), notional=D(5000), opens=1)})
    spy = _position("SPY", "400", average="90", last="100")  # 40000 at its mark
    approved = _approved(_decide("buy", account=account, positions=[spy], max_gross_exposure=D(50000)))
    assert approved.quantity == D(50)  # room 5000 at 100
    assert approved.notes[-1] == "clamped by max_gross_exposure"
    short = _position("SPY", "-400", average="90", last="100")  # shorts count by absolute value
    approved = _approved(_decide("buy", account=account, positions=[short], max_gross_exposure=D(50000)))
    assert approved.quantity == D(50)


def test_no_room_left_rejects_naming_the_limit() -> None:
    spy = _position("SPY", "500", last="100")
    reason = _rejected(_decide("buy", positions=[spy], max_gross_exposure=D(50000)))
    assert reason.startswith("no quantity left within max_gross_exposure")
    over = _position("SPY", "600", last="100")  # already beyond: negative room is no room
    assert _rejected(_decide("buy", positions=[over], max_gross_exposure=D(50000))).startswith(
        "no quantity left within max_gross_exposure"
    )


def test_clamped_by_available_cash_net_of_reserved_cash() -> None:
    approved = _approved(_decide("buy", account=_account("3000")))
    assert approved.quantity == D(3)  # 10% of 3000 at 100 -> 3; cash is not binding
    fixed = SizingRule(method="fixed_quantity", quantity=D(100))
    approved = _approved(_decide("buy", account=_account("3000"), sizing=fixed))
    assert approved.quantity == D(30)
    assert approved.notes[-1] == "clamped by available cash"
    reserved = _account("3000", pending={"SPY": PendingExposure(quantity=D(10), notional=D(1000), opens=1)})
    assert _approved(_decide("buy", account=reserved, sizing=fixed)).quantity == D(20)
    # a pending short sale reserves exposure, not cash
    short_sale = _account("3000", pending={"SPY": PendingExposure(quantity=D(-10), notional=D(1000), opens=1)})
    assert _approved(_decide("buy", account=short_sale, sizing=fixed)).quantity == D(30)


def test_less_cash_than_one_unit_rejects() -> None:
    fixed = SizingRule(method="fixed_quantity", quantity=D(5))
    reason = _rejected(_decide("buy", account=_account("99.99"), sizing=fixed))
    assert reason == "no quantity left within available cash (equity 99.99)"
    reason = _rejected(_decide("buy", account=_account("0"), sizing=fixed))
    assert reason.startswith("no quantity left within available cash")


def test_the_tightest_limit_wins_whatever_the_order() -> None:
    fixed = SizingRule(method="fixed_quantity", quantity=D(1000))
    approved = _approved(
        _decide(
            "buy",
            account=_account("5000"),
            sizing=fixed,
            max_position_quantity=D(40),
            max_position_notional=D(4500),
            max_gross_exposure=D(6000),
        )
    )
    assert approved.quantity == D(40)
    assert "clamped by max_position_quantity" in approved.notes
    approved = _approved(
        _decide("buy", account=_account("2000"), sizing=fixed, max_position_quantity=D(40), max_gross_exposure=D(6000))
    )
    assert approved.quantity == D(20)
    assert approved.notes[-1] == "clamped by available cash"


def test_sizing_too_small_for_one_unit_rejects_naming_sizing() -> None:
    reason = _rejected(_decide("buy", price="2000", account=_account("10000")))  # 10% = 1000 < one unit
    assert reason == "no quantity left within sizing (equity 10000.00)"


def test_whole_units_unless_fractional() -> None:
    assert _approved(_decide("buy", price="300")).quantity == D(33)  # 33.33 -> 33
    fractional = SizingRule(percent=D(10), fractional=True)
    approved = _approved(_decide("buy", price="300", sizing=fractional))
    assert approved.quantity == D("33.3333")
    assert approved.notional == D("9999.99")
    coarse = SizingRule(percent=D(10), fractional=True, quantity_step=D("0.25"))
    assert _approved(_decide("buy", price="300", sizing=coarse)).quantity == D("33.25")
    tiny = SizingRule(percent=D(10), fractional=True, quantity_step=D("0.001"))
    assert _approved(_decide("buy", symbol="BTC", price="65000", sizing=tiny)).quantity == D("0.153")


def test_notional_is_exact_quantity_times_signal_price() -> None:
    approved = _approved(_decide("buy", price="123.45"))
    assert approved.quantity == D(81)
    assert approved.notional == D("9999.45")


def test_signal_price_overrides_the_stored_mark_for_its_symbol() -> None:
    # The GOOG position is flat, its stale last price must not be used for sizing.
    stale = _position("GOOG", "0", last="1")
    assert _approved(_decide("buy", price="200", positions=[stale])).quantity == D(50)


# --- sizing and rounding helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "rule", "expected"),
    [
        ("100.999", SizingRule(percent=D(1)), "100"),
        ("0.999", SizingRule(percent=D(1)), "0"),
        ("-5", SizingRule(percent=D(1)), "0"),
        ("1.23456", SizingRule(percent=D(1), fractional=True), "1.2345"),
        ("7.9", SizingRule(percent=D(1), fractional=True, quantity_step=D("0.5")), "7.5"),
        ("120", SizingRule(percent=D(1), fractional=True, quantity_step=D(10)), "120"),
    ],
)
def test_round_quantity_rounds_down_in_plain_notation(quantity: str, rule: SizingRule, expected: str) -> None:
    rounded = round_quantity(D(quantity), rule)
    assert rounded == D(expected)
    assert str(rounded) == expected
    assert rounded <= max(D(quantity), D(0))


def test_size_rejects_non_positive_prices() -> None:
    with pytest.raises(SizingError, match="must be positive"):
        size(SizingRule(percent=D(10)), D(1000), D(0), None)
    assert size(SizingRule(percent=D(10)), D(1000), D(4), None) == D(25)
    assert size(SizingRule(method="atr_risk", risk_fraction=D("0.02"), atr_multiple=D(3)), D(1000), D(4), D(2)) == (
        D(20) / D(6)
    )


def test_a_pending_close_does_not_free_the_cash_of_a_pending_buy() -> None:
    """CCC: a buy of 10 at 6 is pending, and a close of it is queued behind it (net pending quantity 0).
    The buy will still spend its 60 before the close returns anything: only 40 of 100 are available."""
    fixed = SizingRule(method="fixed_quantity", quantity=D(100))
    netted = _account("100", pending={"CCC": PendingExposure(quantity=D(0), notional=D(60), opens=1)})
    assert _approved(_decide("buy", price="1", account=netted, sizing=fixed)).quantity == D(40)
    # the same with a held position being closed and a new, smaller buy queued behind the close
    held = _position("CCC", "10", last="6")
    reopen = _account("100", pending={"CCC": PendingExposure(quantity=D(-5), notional=D(30), opens=1)})
    assert _approved(_decide("buy", price="1", account=reopen, positions=[held], sizing=fixed)).quantity == D(70)
