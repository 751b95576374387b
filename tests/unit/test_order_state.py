"""The order state machine: forward only, skips allowed, final states final."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeflow.domain import InvalidOrderTransition, Order, OrderSide, OrderStatus
from tradeflow.domain.orders import TRANSITIONS, can_transition

T0 = datetime(2024, 3, 1, tzinfo=UTC)
S = OrderStatus
FINAL = {S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}
LIVE = [S.NEW, S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED]

# The specification, written out independently of the implementation's table.
ALLOWED: dict[OrderStatus, set[OrderStatus]] = {
    S.NEW: {S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED},
    S.SUBMITTED: {S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED},
    S.ACCEPTED: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED},
    # once something filled, the broker can no longer reject the order
    S.PARTIALLY_FILLED: {S.FILLED, S.CANCELLED, S.EXPIRED},
    S.FILLED: set(),
    S.CANCELLED: set(),
    S.REJECTED: set(),
    S.EXPIRED: set(),
}
# Progress rank: a transition may never lower it.
RANK = {S.NEW: 0, S.SUBMITTED: 1, S.ACCEPTED: 2, S.PARTIALLY_FILLED: 3, **dict.fromkeys(FINAL, 4)}


def _order(status: OrderStatus = S.NEW) -> Order:
    return Order(
        symbol="GOOG",
        side=OrderSide.BUY,
        quantity=Decimal("10"),
        tenant_id="t1",
        account_id="acc-1",
        client_order_id="tf-abc",
        status=status,
        filled_quantity=Decimal("4"),
        created_at=T0,
        updated_at=T0,
        version=3,
    )


def test_final_flags() -> None:
    assert {s for s in OrderStatus if s.final} == FINAL
    assert set(TRANSITIONS) == set(OrderStatus)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(OrderStatus, OrderStatus)))
def test_can_transition_matches_the_specification(current: OrderStatus, target: OrderStatus) -> None:
    expected = current == target or target in ALLOWED[current]
    assert can_transition(current, target) is expected


@pytest.mark.parametrize("final", sorted(FINAL))
def test_final_states_have_no_exit(final: OrderStatus) -> None:
    assert TRANSITIONS[final] == frozenset()
    for target in OrderStatus:
        if target is final:
            continue
        assert not can_transition(final, target)
        with pytest.raises(InvalidOrderTransition) as exc:
            _order(final).transition(target)
        assert exc.value.current is final
        assert exc.value.target is target
        assert str(exc.value) == f"order cannot go from {final.value} to {target.value}"


@pytest.mark.parametrize(("current", "target"), [(c, t) for c in OrderStatus for t in OrderStatus if RANK[t] < RANK[c]])
def test_no_backwards_moves(current: OrderStatus, target: OrderStatus) -> None:
    assert not can_transition(current, target)
    with pytest.raises(InvalidOrderTransition):
        _order(current).transition(target)


@pytest.mark.parametrize("status", list(OrderStatus))
def test_staying_in_the_same_state_is_idempotent(status: OrderStatus) -> None:
    order = _order(status)
    assert order.transition(status) == order


def test_partial_fill_cannot_be_rejected_but_can_repeat() -> None:
    order = _order(S.PARTIALLY_FILLED)
    assert order.transition(S.PARTIALLY_FILLED).status is S.PARTIALLY_FILLED
    with pytest.raises(InvalidOrderTransition):
        order.transition(S.REJECTED)


@pytest.mark.parametrize(("current", "target"), [(c, t) for c in LIVE for t in sorted(ALLOWED[c])])
def test_transition_returns_a_new_order_with_only_the_status_changed(current: OrderStatus, target: OrderStatus) -> None:
    order = _order(current)
    moved = order.transition(target)
    assert moved.status is target
    assert order.status is current  # the original is untouched
    assert moved.model_dump(exclude={"status"}) == order.model_dump(exclude={"status"})


def test_remaining_and_side_sign() -> None:
    assert _order().remaining == Decimal("6")
    assert OrderSide.BUY.sign == 1
    assert OrderSide.SELL.sign == -1


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(list(OrderStatus)), max_size=12))
def test_any_sequence_of_reports_only_moves_forward(reports: list[OrderStatus]) -> None:
    """Apply a broker's reports in any order: accepted ones never lower the rank, and once final the
    order ignores (rejects) every other status."""
    order = _order()
    for report in reports:
        before = order.status
        try:
            order = order.transition(report)
        except InvalidOrderTransition:
            assert report is not before
            assert before.final or RANK[report] < RANK[before] or (before, report) == (S.PARTIALLY_FILLED, S.REJECTED)
            continue
        assert RANK[order.status] >= RANK[before]
        if before.final:
            assert order.status is before
