"""Deterministic ids: same inputs -> same id, any different input -> a different id."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tradeflow.domain.ids import CLIENT_ORDER_ID_MAX, client_order_id, entry_id, event_id, fill_id, signal_id

T0 = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
COID = re.compile(r"^[a-z0-9-]+$")
SIGNAL_ID = re.compile(r"^sig_[a-z2-7]{26}$")

# Inputs as the models allow them (TenantId, ResourceId, Symbol patterns).
tenants = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")
resources = st.from_regex(r"\A[A-Za-z0-9_.:-]{1,64}\Z")
symbols = st.from_regex(r"\A[A-Za-z0-9._/-]{1,32}\Z")
times = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
actions = st.sampled_from(["buy", "sell", "hold"])
signal_inputs = st.tuples(tenants, resources, symbols, times, actions)


def _sig(**overrides: object) -> str:
    fields: dict[str, object] = {
        "tenant_id": "t1",
        "deployment_id": "dep-1",
        "symbol": "GOOG",
        "bar_time": T0,
        "action": "buy",
    }
    fields.update(overrides)
    return signal_id(**fields)  # type: ignore[arg-type]


def test_signal_id_is_deterministic_and_shaped() -> None:
    assert _sig() == _sig()
    assert SIGNAL_ID.match(_sig())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tenant_id", "t2"),
        ("deployment_id", "dep-2"),
        ("symbol", "SPY"),
        ("bar_time", T0 + timedelta(minutes=1)),
        ("bar_time", T0 + timedelta(microseconds=1)),
        ("action", "sell"),
    ],
)
def test_every_input_of_a_signal_id_changes_it(field: str, value: object) -> None:
    assert _sig(**{field: value}) != _sig()


def test_the_same_instant_in_another_timezone_is_the_same_signal() -> None:
    new_york = timezone(timedelta(hours=-5))
    assert _sig(bar_time=T0.astimezone(new_york)) == _sig()


def test_fields_are_separated_so_boundaries_matter() -> None:
    assert _sig(tenant_id="t1", deployment_id="dep-1") != _sig(tenant_id="t1d", deployment_id="ep-1")
    assert fill_id("tf-a", "bc") != fill_id("tf-ab", "c")
    assert entry_id("a", "b") != entry_id("ab")
    assert event_id("a", "b") != event_id("b", "a")


def test_client_order_id_is_deterministic_short_and_broker_safe() -> None:
    coid = client_order_id(_sig())
    assert coid == client_order_id(_sig())
    assert coid.startswith("tf-")
    assert len(coid) == 35
    assert len(coid) <= CLIENT_ORDER_ID_MAX == 48
    assert COID.match(coid)
    assert client_order_id(_sig(action="sell")) != coid


def test_id_families_do_not_collide_on_the_same_parts() -> None:
    ids = {fill_id("x", "y"), entry_id("x", "y"), event_id("x", "y")}
    assert len(ids) == 3
    assert {i[:4] for i in ids} == {"fil_", "led_", "evt_"}


def test_fill_id_is_stable_for_the_same_execution_seen_twice() -> None:
    assert fill_id("tf-abc", "broker-fill-1") == fill_id("tf-abc", "broker-fill-1")
    assert fill_id("tf-abc", "broker-fill-1") != fill_id("tf-abc", "broker-fill-2")
    assert fill_id("tf-abc", "broker-fill-1") != fill_id("tf-abd", "broker-fill-1")


@settings(max_examples=200, deadline=None)
@given(signal_inputs)
def test_random_signals_give_valid_deterministic_ids(inputs: tuple[str, str, str, datetime, str]) -> None:
    sid = signal_id(*inputs)
    assert sid == signal_id(*inputs)
    assert SIGNAL_ID.match(sid)
    assert len(sid) <= 64  # Signal.signal_id max_length
    coid = client_order_id(sid)
    assert coid == client_order_id(sid)
    assert len(coid) <= CLIENT_ORDER_ID_MAX
    assert COID.match(coid)


@settings(max_examples=200, deadline=None)
@given(signal_inputs, signal_inputs)
def test_different_signals_give_different_ids(
    a: tuple[str, str, str, datetime, str], b: tuple[str, str, str, datetime, str]
) -> None:
    assume(a != b)
    assert signal_id(*a) != signal_id(*b)
    assert client_order_id(signal_id(*a)) != client_order_id(signal_id(*b))


@settings(max_examples=200, deadline=None)
@given(signal_inputs, st.sampled_from(["tenant", "deployment", "symbol", "time", "action"]), st.data())
def test_changing_any_one_field_changes_the_id(
    inputs: tuple[str, str, str, datetime, str], which: str, data: st.DataObject
) -> None:
    tenant, deployment, symbol, when, action = inputs
    if which == "tenant":
        tenant = data.draw(tenants.filter(lambda v: v != inputs[0]))
    elif which == "deployment":
        deployment = data.draw(resources.filter(lambda v: v != inputs[1]))
    elif which == "symbol":
        symbol = data.draw(symbols.filter(lambda v: v != inputs[2]))
    elif which == "time":
        when = when + timedelta(microseconds=data.draw(st.integers(min_value=1, max_value=10**12)))
    else:
        action = data.draw(actions.filter(lambda v: v != inputs[4]))
    assert signal_id(tenant, deployment, symbol, when, action) != signal_id(*inputs)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_client_order_id_of_any_text_is_broker_safe(text: str) -> None:
    coid = client_order_id(text)
    assert len(coid) <= CLIENT_ORDER_ID_MAX
    assert COID.match(coid)
