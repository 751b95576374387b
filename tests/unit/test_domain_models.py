"""Domain models: validation that names the field, UTC-only timestamps, exact decimals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from tradeflow.domain import (
    Account,
    Bar,
    ControlScope,
    Deployment,
    Fill,
    OrderIntent,
    OrderSide,
    OrderType,
    RiskProfile,
    Signal,
    SignalOutcome,
    SizingMethod,
    SizingRule,
    TradingControl,
)
from tradeflow.domain.orders import OrderTerms
from tradeflow.domain.types import iso, parse_iso, tidy

T0 = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)


def _errors(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[tuple[Any, ...], str]]:
    return [(tuple(e["loc"]), str(e["msg"])) for e in exc.value.errors()]


def _bar(**overrides: Any) -> Bar:
    fields: dict[str, Any] = {
        "symbol": "GOOG",
        "timeframe": "1d",
        "ts": T0,
        "open": "10",
        "high": "12",
        "low": "9",
        "close": "11",
        "volume": "100",
    }
    fields.update(overrides)
    return Bar(**fields)


def _deployment(**overrides: Any) -> Deployment:
    fields: dict[str, Any] = {
        "tenant_id": "t1",
        "deployment_id": "dep-1",
        "strategy": "sma_cross",
        "symbols": ["GOOG", "SPY"],
        "account_id": "acc-1",
        "created_at": T0,
        "updated_at": T0,
    }
    fields.update(overrides)
    return Deployment(**fields)


# --- Bar ------------------------------------------------------------------------------------------


def test_bar_accepts_a_consistent_bar_and_keeps_exact_values() -> None:
    bar = _bar()
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        Decimal("10"),
        Decimal("12"),
        Decimal("9"),
        Decimal("11"),
        Decimal("100"),
    )
    assert bar.ts == T0


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("open", 0.1, "0.1"),
        ("close", 0.3, "0.3"),
        ("high", 1.1, "1.1"),
        ("volume", 1e-7, "1E-7"),
        ("low", 0.07, "0.07"),
    ],
)
def test_floats_are_converted_through_their_shortest_repr_not_their_binary_value(
    field: str, value: float, expected: str
) -> None:
    prices = {"open": 0.08, "high": 2.0, "low": 0.05, "close": 0.09}
    prices[field] = value
    bar = _bar(**prices)
    converted = getattr(bar, field)
    assert isinstance(converted, Decimal)
    assert converted == Decimal(expected)
    assert converted != Decimal(value)  # the binary expansion would not be equal


def test_float_arithmetic_on_converted_values_is_exact() -> None:
    bar = _bar(open=0.1, high=0.3, low=0.1, close=0.2)
    assert bar.open + bar.close == bar.high  # 0.1 + 0.2 == 0.3 exactly, unlike with floats
    assert 0.1 + 0.2 != 0.3


@pytest.mark.parametrize(
    "prices",
    [
        {"high": "8"},  # high below low
        {"high": "10.5"},  # high below close
        {"low": "10.5"},  # low above open
        {"low": "11.5", "high": "12"},  # low above open and close
        {"open": "12.5"},  # open above high
        {"close": "8.5"},  # close below low
    ],
)
def test_high_low_must_bound_open_and_close(prices: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as exc:
        _bar(**prices)
    (_, msg), *_ = _errors(exc)
    assert "high/low" in msg


@pytest.mark.parametrize("field", ["open", "high", "low", "close"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_non_positive_prices_are_rejected_naming_the_price(field: str, value: str) -> None:
    prices = {"open": "1", "high": "1", "low": "1", "close": "1", field: value}
    with pytest.raises(ValidationError) as exc:
        _bar(**prices)
    messages = " ".join(msg for _, msg in _errors(exc))
    assert "positive" in messages
    assert field in messages


def test_negative_volume_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        _bar(volume="-1")
    assert "volume" in " ".join(msg for _, msg in _errors(exc))


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", float("nan"), float("inf")])
def test_non_finite_numbers_are_rejected_with_the_field_location(value: object) -> None:
    with pytest.raises(ValidationError) as exc:
        _bar(close=value)
    assert any(loc == ("close",) for loc, _ in _errors(exc))


def test_booleans_are_not_numbers() -> None:
    with pytest.raises(ValidationError) as exc:
        _bar(open=True)
    assert [loc for loc, _ in _errors(exc)] == [("open",)]


@pytest.mark.parametrize("field", ["ts", "source_ts"])
def test_naive_datetimes_are_rejected_naming_the_field(field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _bar(**{field: datetime(2024, 3, 1, 14, 30)})
    errors = _errors(exc)
    assert [loc for loc, _ in errors] == [(field,)]
    assert "timezone" in errors[0][1]


def test_aware_datetimes_are_normalised_to_utc_keeping_the_instant() -> None:
    paris = timezone(timedelta(hours=2))
    bar = _bar(ts=datetime(2024, 3, 1, 16, 30, tzinfo=paris))
    assert bar.ts.utcoffset() == timedelta(0)
    assert bar.ts.tzinfo is UTC
    assert bar.ts == T0
    assert (bar.ts.hour, bar.ts.minute) == (14, 30)


def test_iso_strings_with_z_are_parsed_as_utc() -> None:
    bar = _bar(ts="2024-03-01T14:30:00Z")
    assert bar.ts == T0


def test_bars_are_immutable() -> None:
    bar = _bar()
    with pytest.raises(ValidationError):
        bar.close = Decimal(5)  # type: ignore[misc]


def test_bar_json_keeps_decimals_as_strings_and_times_fixed_width() -> None:
    data = json.loads(_bar(close=0.1, low=0.05, open=0.1, high=0.2).model_dump_json())
    assert data["close"] == "0.1"
    assert data["ts"] == "2024-03-01T14:30:00.000000Z"
    assert Bar.model_validate_json(_bar().model_dump_json()) == _bar()


@pytest.mark.parametrize("symbol", ["", "GO OG", "GOOG;DROP", "x" * 33])
def test_bad_symbols_are_rejected(symbol: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _bar(symbol=symbol)
    assert [loc for loc, _ in _errors(exc)] == [("symbol",)]


# --- time helpers ---------------------------------------------------------------------------------


def test_iso_is_fixed_width_utc_and_round_trips() -> None:
    moment = datetime(2024, 3, 1, 16, 30, 5, 7, tzinfo=timezone(timedelta(hours=2)))
    text = iso(moment)
    assert text == "2024-03-01T14:30:05.000007Z"
    assert parse_iso(text) == moment
    assert iso(datetime(2024, 1, 1, tzinfo=UTC)) < iso(datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC))


def test_parse_iso_rejects_naive_timestamps() -> None:
    with pytest.raises(ValueError, match="timezone"):
        parse_iso("2024-03-01T14:30:00")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1") / Decimal("3"), "0.3333333333"),
        (Decimal("2.50000"), "2.5"),
        (Decimal("100"), "100"),
        (Decimal("1E+2"), "100"),
        (Decimal("0.00000000004"), "0"),
    ],
)
def test_tidy_rounds_and_drops_trailing_zeros_without_exponents(value: Decimal, expected: str) -> None:
    assert str(tidy(value)) == expected


# --- OrderTerms / OrderIntent -------------------------------------------------------------------


def _terms(**overrides: Any) -> OrderTerms:
    fields: dict[str, Any] = {"symbol": "GOOG", "side": "buy", "quantity": "5"}
    fields.update(overrides)
    return OrderTerms(**fields)


@pytest.mark.parametrize(
    ("order_type", "prices"),
    [
        (OrderType.MARKET, {}),
        (OrderType.LIMIT, {"limit_price": "10"}),
        (OrderType.STOP, {"stop_price": "9"}),
        (OrderType.STOP_LIMIT, {"limit_price": "10", "stop_price": "9"}),
    ],
)
def test_order_terms_accept_the_prices_their_type_needs(order_type: OrderType, prices: dict[str, str]) -> None:
    terms = _terms(order_type=order_type, **prices)
    assert terms.order_type is order_type
    assert terms.limit_price == (Decimal(prices["limit_price"]) if "limit_price" in prices else None)
    assert terms.stop_price == (Decimal(prices["stop_price"]) if "stop_price" in prices else None)


@pytest.mark.parametrize(
    ("order_type", "prices", "field", "word"),
    [
        (OrderType.LIMIT, {}, "limit_price", "required"),
        (OrderType.STOP, {}, "stop_price", "required"),
        (OrderType.STOP_LIMIT, {"limit_price": "10"}, "stop_price", "required"),
        (OrderType.STOP_LIMIT, {"stop_price": "9"}, "limit_price", "required"),
        (OrderType.MARKET, {"limit_price": "10"}, "limit_price", "not allowed"),
        (OrderType.MARKET, {"stop_price": "10"}, "stop_price", "not allowed"),
        (OrderType.LIMIT, {"limit_price": "10", "stop_price": "9"}, "stop_price", "not allowed"),
        (OrderType.STOP, {"stop_price": "9", "limit_price": "10"}, "limit_price", "not allowed"),
        (OrderType.LIMIT, {"limit_price": "0"}, "limit_price", "positive"),
        (OrderType.STOP, {"stop_price": "-3"}, "stop_price", "positive"),
    ],
)
def test_order_terms_reject_prices_inconsistent_with_the_type(
    order_type: OrderType, prices: dict[str, str], field: str, word: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        _terms(order_type=order_type, **prices)
    (_, msg), *_ = _errors(exc)
    assert field in msg
    assert word in msg


@pytest.mark.parametrize("quantity", ["0", "-1"])
def test_order_quantity_must_be_positive(quantity: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _terms(quantity=quantity)
    assert [loc for loc, _ in _errors(exc)] == [("quantity",)]


def test_order_terms_forbid_unknown_fields() -> None:
    with pytest.raises(ValidationError) as exc:
        _terms(price="10")
    assert [loc for loc, _ in _errors(exc)] == [("price",)]


def _intent(**overrides: Any) -> OrderIntent:
    fields: dict[str, Any] = {
        "symbol": "GOOG",
        "side": "buy",
        "quantity": "5",
        "tenant_id": "t1",
        "account_id": "acc-1",
        "client_order_id": "tf-abc",
        "signal_id": "sig_abc",
        "reference_price": "100.5",
        "decided_at": T0,
    }
    fields.update(overrides)
    return OrderIntent(**fields)


def test_order_intent_group_and_round_trip() -> None:
    intent = _intent(reserved_notional=502.5)
    assert intent.group_id == "t1#acc-1#GOOG"
    assert intent.reserved_notional == Decimal("502.5")
    assert OrderIntent.model_validate_json(intent.model_dump_json()) == intent


@pytest.mark.parametrize(("field", "value"), [("client_order_id", "x" * 49), ("client_order_id", "")])
def test_order_intent_client_order_id_length_is_bounded(field: str, value: str) -> None:
    assert _intent(client_order_id="x" * 48).client_order_id == "x" * 48
    with pytest.raises(ValidationError) as exc:
        _intent(**{field: value})
    assert [loc for loc, _ in _errors(exc)] == [(field,)]


def test_order_intent_rejects_negative_reservation_and_naive_decision_time() -> None:
    with pytest.raises(ValidationError) as exc:
        _intent(reserved_notional="-1", decided_at=datetime(2024, 1, 1))
    assert sorted(loc for loc, _ in _errors(exc)) == [("decided_at",), ("reserved_notional",)]


# --- SizingRule / RiskProfile ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "required"),
    [
        (SizingMethod.FIXED_QUANTITY, "quantity"),
        (SizingMethod.PERCENT_OF_EQUITY, "percent"),
        (SizingMethod.ATR_RISK, "risk_fraction"),
    ],
)
def test_sizing_rule_requires_the_parameter_of_its_method(method: SizingMethod, required: str) -> None:
    with pytest.raises(ValidationError) as exc:
        SizingRule(method=method)
    (_, msg), *_ = _errors(exc)
    assert f"'{required}'" in msg
    assert method.value in msg
    rule = SizingRule(method=method, **{required: Decimal("0.5")})
    assert getattr(rule, required) == Decimal("0.5")


def test_sizing_rule_default_method_is_percent_and_needs_percent() -> None:
    with pytest.raises(ValidationError):
        SizingRule()
    assert SizingRule(percent=5).method is SizingMethod.PERCENT_OF_EQUITY
    assert RiskProfile().sizing == SizingRule(percent=Decimal(10))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"percent": "0"}, "percent"),
        ({"percent": "100.01"}, "percent"),
        ({"method": "atr_risk", "risk_fraction": "1.5"}, "risk_fraction"),
        ({"method": "atr_risk", "risk_fraction": "0"}, "risk_fraction"),
        ({"method": "fixed_quantity", "quantity": "-2"}, "quantity"),
        ({"percent": "5", "atr_multiple": "0"}, "atr_multiple"),
        ({"percent": "5", "quantity_step": "0"}, "quantity_step"),
        ({"method": "martingale", "percent": "5"}, "method"),
    ],
)
def test_sizing_rule_bounds_name_the_field(fields: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        SizingRule(**fields)
    assert (field,) in [loc for loc, _ in _errors(exc)]


@pytest.mark.parametrize(
    "field",
    ["max_position_quantity", "max_position_notional", "max_open_positions", "max_gross_exposure", "daily_loss_limit"],
)
def test_risk_limits_must_be_positive_when_set(field: str) -> None:
    assert getattr(RiskProfile(), field) is None
    with pytest.raises(ValidationError) as exc:
        RiskProfile(**{field: 0})
    assert [loc for loc, _ in _errors(exc)] == [(field,)]


def test_risk_profile_cooldown_cannot_be_negative_and_short_is_off_by_default() -> None:
    assert RiskProfile().allow_short is False
    with pytest.raises(ValidationError) as exc:
        RiskProfile(cooldown_after_loss_seconds=-1)
    assert [loc for loc, _ in _errors(exc)] == [("cooldown_after_loss_seconds",)]


# --- Deployment -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    ["rate(1 minute)", "rate(5 minutes)", "cron(0/5 * * * ? *)", "at(2024-03-01T14:30:00)"],
)
def test_deployment_accepts_scheduler_expressions(schedule: str) -> None:
    assert _deployment(schedule=schedule).schedule == schedule


@pytest.mark.parametrize(
    "schedule",
    ["every 5 minutes", "rate(5 minutes", "5 minutes)", "", "*/5 * * * *", "RATE(1 minute)", " rate(1 minute)"],
)
def test_deployment_rejects_other_schedule_strings_naming_the_field(schedule: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _deployment(schedule=schedule)
    errors = _errors(exc)
    assert [loc for loc, _ in errors] == [("schedule",)]
    assert "rate(" in errors[0][1]


def test_deployment_symbols_must_be_unique_and_non_empty() -> None:
    with pytest.raises(ValidationError) as exc:
        _deployment(symbols=["GOOG", "SPY", "GOOG"])
    errors = _errors(exc)
    assert [loc for loc, _ in errors] == [("symbols",)]
    assert "unique" in errors[0][1]
    with pytest.raises(ValidationError) as exc:
        _deployment(symbols=[])
    assert [loc for loc, _ in _errors(exc)] == [("symbols",)]


def test_deployment_defaults_and_nested_errors_carry_the_path() -> None:
    deployment = _deployment()
    assert deployment.symbols == ["GOOG", "SPY"]
    assert deployment.status.value == "active"
    assert deployment.risk.sizing.percent == Decimal(10)
    with pytest.raises(ValidationError) as exc:
        _deployment(risk={"sizing": {"method": "fixed_quantity"}})
    assert [loc for loc, _ in _errors(exc)] == [("risk", "sizing")]
    with pytest.raises(ValidationError) as exc:
        _deployment(symbols=["GOOG", "bad symbol"])
    assert [loc for loc, _ in _errors(exc)] == [("symbols", 1)]


@pytest.mark.parametrize("field", ["created_at", "updated_at"])
def test_deployment_timestamps_must_be_aware(field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _deployment(**{field: datetime(2024, 1, 1)})
    assert [loc for loc, _ in _errors(exc)] == [(field,)]


# --- Signal, Fill, Account, controls --------------------------------------------------------------


def _signal(**overrides: Any) -> Signal:
    fields: dict[str, Any] = {
        "signal_id": "sig_abcdef",
        "tenant_id": "t1",
        "deployment_id": "dep-1",
        "account_id": "acc-1",
        "symbol": "GOOG",
        "action": "buy",
        "bar_time": T0,
        "generated_at": T0,
        "price": 101.25,
        "strategy": "sma_cross",
    }
    fields.update(overrides)
    return Signal(**fields)


def test_signal_is_frozen_strict_and_grouped_per_account_symbol() -> None:
    signal = _signal()
    assert signal.price == Decimal("101.25")
    assert signal.group_id == "t1#acc-1#GOOG"
    with pytest.raises(ValidationError):
        signal.price = Decimal(1)  # type: ignore[misc]
    with pytest.raises(ValidationError) as exc:
        _signal(quantity=3)
    assert [loc for loc, _ in _errors(exc)] == [("quantity",)]
    with pytest.raises(ValidationError) as exc:
        _signal(action="short")
    assert [loc for loc, _ in _errors(exc)] == [("action",)]


def test_signal_outcome_final_states() -> None:
    finals = {o for o in SignalOutcome if o.final}
    assert finals == {
        SignalOutcome.FILLED,
        SignalOutcome.REJECTED,
        SignalOutcome.CANCELLED,
        SignalOutcome.DEAD_LETTERED,
    }


def test_fill_notional_is_exact_and_quantity_price_must_be_positive() -> None:
    fields: dict[str, Any] = {
        "fill_id": "fil_1",
        "tenant_id": "t1",
        "account_id": "acc-1",
        "client_order_id": "tf-1",
        "symbol": "EURUSD",
        "side": OrderSide.BUY,
        "quantity": 0.3,
        "price": 1.1,
        "ts": T0,
        "broker_fill_ref": "b1",
    }
    assert Fill(**fields).notional == Decimal("0.33")
    for field in ("quantity", "price"):
        with pytest.raises(ValidationError) as exc:
            Fill(**{**fields, field: 0})
        assert [loc for loc, _ in _errors(exc)] == [(field,)]
    with pytest.raises(ValidationError) as exc:
        Fill(**{**fields, "fee": -0.01})
    assert [loc for loc, _ in _errors(exc)] == [("fee",)]


def test_account_realized_today_only_counts_the_matching_day() -> None:
    account = Account(
        tenant_id="t1",
        account_id="acc-1",
        cash=1000,
        trading_day="2024-03-01",
        day_realized_pnl=Decimal("-12.5"),
        created_at=T0,
        updated_at=T0,
    )
    assert account.realized_today("2024-03-01") == Decimal("-12.5")
    assert account.realized_today("2024-03-02") == 0
    assert account.pending == {}


def test_trading_control_key_is_scope_and_target() -> None:
    control = TradingControl(
        tenant_id="t1", scope=ControlScope.DEPLOYMENT_PAUSED, target="dep-1", active=True, updated_at=T0
    )
    assert control.key == "deployment_paused#dep-1"
    halt = TradingControl(tenant_id="_global", scope=ControlScope.GLOBAL_HALT, active=True, updated_at=T0)
    assert halt.key == "global_halt#*"
