"""Position accounting: average cost, realized P&L, flips through zero, shorts and loss times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeflow.domain import Fill, OrderSide, Position

T0 = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
D = Decimal


def _flat() -> Position:
    return Position(tenant_id="t1", account_id="acc-1", symbol="GOOG")


def _fill(side: str, quantity: str | Decimal, price: str | Decimal, fee: str = "0", at: int = 0) -> Fill:
    return Fill(
        fill_id=f"fil_{side}_{quantity}_{price}_{at}",
        tenant_id="t1",
        account_id="acc-1",
        client_order_id="tf-1",
        symbol="GOOG",
        side=OrderSide(side),
        quantity=Decimal(quantity),
        price=Decimal(price),
        fee=Decimal(fee),
        ts=T0 + timedelta(minutes=at),
        broker_fill_ref=f"ref-{at}",
    )


def _run(*fills: Fill, start: Position | None = None) -> tuple[Position, list[Decimal]]:
    position = start or _flat()
    realized = []
    for fill in fills:
        position, pnl = position.apply(fill)
        realized.append(pnl)
    return position, realized


def test_opening_a_long_from_flat() -> None:
    position, (pnl,) = _run(_fill("buy", "10", "100", at=1))
    assert (position.quantity, position.average_price, pnl) == (D(10), D(100), D(0))
    assert position.realized_pnl == 0
    assert position.last_price == D(100)
    assert position.updated_at == T0 + timedelta(minutes=1)
    assert position.last_loss_at is None


def test_adding_re_weights_the_average_cost() -> None:
    position, realized = _run(_fill("buy", "10", "100"), _fill("buy", "30", "120"))
    assert position.quantity == D(40)
    assert position.average_price == D(115)  # (10*100 + 30*120) / 40
    assert realized == [0, 0]
    assert position.last_price == D(120)


def test_average_cost_is_rounded_to_ten_places() -> None:
    position, _ = _run(_fill("buy", "1", "1"), _fill("buy", "2", "2"))
    assert position.average_price == D("1.6666666667")  # 5/3


def test_reducing_realizes_against_the_average_and_keeps_it() -> None:
    position, realized = _run(_fill("buy", "10", "100"), _fill("buy", "10", "110"), _fill("sell", "5", "120"))
    assert realized[-1] == D(75)  # (120 - 105) * 5
    assert position.quantity == D(15)
    assert position.average_price == D(105)
    assert position.realized_pnl == D(75)


def test_closing_to_flat_resets_the_average() -> None:
    position, realized = _run(_fill("buy", "10", "100"), _fill("sell", "10", "90", at=5))
    assert position.quantity == 0
    assert position.average_price == 0
    assert realized[-1] == D(-100)
    assert position.realized_pnl == D(-100)
    assert position.last_loss_at == T0 + timedelta(minutes=5)
    assert position.unrealized_pnl == 0
    assert position.market_value == 0


def test_flip_from_long_to_short_realizes_the_closed_part_and_opens_the_rest_at_the_fill() -> None:
    position, realized = _run(_fill("buy", "10", "100"), _fill("sell", "15", "110"))
    assert realized[-1] == D(100)  # only the 10 held are closed
    assert position.quantity == D(-5)
    assert position.average_price == D(110)


def test_flip_from_short_to_long() -> None:
    position, realized = _run(_fill("sell", "4", "50"), _fill("buy", "10", "45"))
    assert realized[-1] == D(20)  # short 4 at 50 covered at 45
    assert position.quantity == D(6)
    assert position.average_price == D(45)


def test_shorts_gain_when_price_falls_and_lose_when_it_rises() -> None:
    short, _ = _run(_fill("sell", "10", "100"))
    assert (short.quantity, short.average_price) == (D(-10), D(100))
    added, realized = _run(_fill("sell", "10", "80"), start=short)
    assert (added.quantity, added.average_price, realized) == (D(-20), D(90), [D(0)])
    covered, realized = _run(_fill("buy", "5", "70"), start=added)
    assert realized == [D(100)]  # (90 - 70) * 5 on a short
    assert covered.quantity == D(-15)
    assert covered.average_price == D(90)
    squeezed, realized = _run(_fill("buy", "15", "95", at=9), start=covered)
    assert realized == [D(-75)]
    assert squeezed.quantity == 0
    assert squeezed.realized_pnl == D(25)
    assert squeezed.last_loss_at == T0 + timedelta(minutes=9)


def test_unrealized_pnl_and_market_value_follow_the_last_price() -> None:
    long, _ = _run(_fill("buy", "10", "100"), _fill("buy", "10", "104"))
    assert long.unrealized_pnl == D(40)  # (104 - 102) * 20
    assert long.market_value == D(2080)
    short, _ = _run(_fill("sell", "10", "100"), _fill("sell", "10", "104"))
    assert short.unrealized_pnl == D(-40)
    assert short.market_value == D(-2080)


def test_last_loss_time_is_set_by_losing_closes_only() -> None:
    position, _ = _run(_fill("buy", "10", "100"), _fill("sell", "5", "90", at=3))
    assert position.last_loss_at == T0 + timedelta(minutes=3)
    # a winning close and an opening fill keep the previous loss time
    position, _ = _run(_fill("sell", "2", "130", at=7), _fill("buy", "1", "50", at=8), start=position)
    assert position.last_loss_at == T0 + timedelta(minutes=3)
    assert position.average_price == D("87.5")  # 3 at 100 and 1 at 50
    # a gain smaller than its fee is a loss
    position, realized = _run(_fill("sell", "1", "88", fee="1", at=11), start=position)
    assert realized == [D("0.5")]
    assert position.last_loss_at == T0 + timedelta(minutes=11)


def test_an_opening_fill_with_a_fee_is_not_a_loss() -> None:
    position, realized = _run(_fill("buy", "10", "100", fee="5"))
    assert realized == [0]
    assert position.last_loss_at is None


def test_apply_does_not_mutate_and_accumulates_realized_pnl() -> None:
    start, _ = _run(_fill("buy", "10", "100"))
    snapshot = start.model_copy(deep=True)
    after, _ = _run(_fill("sell", "3", "110"), _fill("sell", "3", "90"), start=start)
    assert start == snapshot
    assert after.realized_pnl == D(30) + D(-30)


def test_fractional_quantities_stay_exact() -> None:
    position, realized = _run(_fill("buy", "0.1", "30000"), _fill("buy", "0.2", "30000"), _fill("sell", "0.3", "31000"))
    assert position.quantity == 0
    assert realized[-1] == D(300)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["buy", "sell"]),
            st.integers(min_value=1, max_value=50),
            st.integers(min_value=1, max_value=500),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_cash_conservation(trades: list[tuple[str, int, int]]) -> None:
    """Over any sequence of fills: realized P&L + unrealized P&L == cash flow + market value. This is the
    identity average-cost accounting must keep whatever the path (adds, partial closes, flips)."""
    position = _flat()
    cash = D(0)
    realized_total = D(0)
    for i, (side, quantity, price) in enumerate(trades):
        fill = _fill(side, D(quantity), D(price), at=i)
        position, realized = position.apply(fill)
        realized_total += realized
        cash -= fill.quantity * fill.price * fill.side.sign
        assert position.realized_pnl == realized_total
        if position.quantity == 0:
            assert position.average_price == 0
        else:
            assert position.average_price > 0
    assert position.quantity == sum(D(q) * (1 if s == "buy" else -1) for s, q, _ in trades)
    total = position.realized_pnl + position.unrealized_pnl
    assert abs(total - (cash + position.market_value)) <= D("1e-6")


@pytest.mark.parametrize(
    ("fills", "expected_qty", "expected_avg", "expected_pnl"),
    [
        ([("buy", "5", "10"), ("sell", "5", "10")], "0", "0", "0"),
        ([("buy", "5", "10"), ("sell", "2", "12"), ("sell", "6", "11")], "-3", "11", "7"),
        ([("sell", "5", "10"), ("buy", "7", "8")], "2", "8", "10"),
        ([("sell", "5", "10"), ("sell", "5", "20"), ("buy", "10", "10")], "0", "0", "50"),
    ],
)
def test_table_of_paths(
    fills: list[tuple[str, str, str]], expected_qty: str, expected_avg: str, expected_pnl: str
) -> None:
    position, _ = _run(*(_fill(s, q, p, at=i) for i, (s, q, p) in enumerate(fills)))
    assert position.quantity == D(expected_qty)
    assert position.average_price == D(expected_avg)
    assert position.realized_pnl == D(expected_pnl)


def test_opened_at_is_the_opening_fill_kept_when_adding_reset_when_flat_or_flipped() -> None:
    position, _ = _run(_fill("buy", "5", "100", at=1))
    assert position.opened_at == T0 + timedelta(minutes=1)
    position, _ = _run(_fill("buy", "5", "101", at=2), _fill("sell", "2", "102", at=3), start=position)
    assert position.opened_at == T0 + timedelta(minutes=1)  # added to, then reduced: same position
    flipped, _ = _run(_fill("sell", "12", "103", at=4), start=position)
    assert flipped.quantity == D(-4) and flipped.opened_at == T0 + timedelta(minutes=4)
    flat, _ = _run(_fill("buy", "4", "99", at=5), start=flipped)
    assert flat.quantity == 0 and flat.opened_at is None
