"""Rule specs: the vectorised signals equal the live bar-by-bar walk exactly, on whole real datasets."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradeflow.marketdata import load_dataset
from tradeflow.strategies import Strategy, create

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "strategies"


@cache
def _columns(symbol: str) -> tuple[np.ndarray, ...]:
    bars = load_dataset(symbol)
    return tuple(np.array([float(getattr(b, k)) for b in bars]) for k in ("open", "high", "low", "close", "volume"))


def _cmp(
    indicator: str, op: str, value: float | None = None, other: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    condition: dict[str, Any] = {"indicator": indicator, "op": op, **kw}
    if other is not None:
        condition["other"] = other
    else:
        condition["value"] = value
    return condition


SPECS: dict[str, dict[str, Any]] = {
    "rsi_threshold": {
        "name": "rsi",
        "entry": _cmp("rsi", "<", 30, params={"period": 14}),
        "exit": _cmp("rsi", ">", 60, params={"period": 14}),
    },
    "sma_cross": {
        "name": "sma-cross",
        "entry": _cmp(
            "sma", "crosses_above", other={"indicator": "sma", "params": {"period": 30}}, params={"period": 10}
        ),
        "exit": _cmp(
            "sma", "crosses_below", other={"indicator": "sma", "params": {"period": 30}}, params={"period": 10}
        ),
    },
    "nested_any_all_ema_stoch": {
        "name": "nested",
        "entry": {
            "any": [
                {
                    "all": [
                        _cmp("stoch", "crosses_above", 20, output="k"),
                        _cmp("close", ">", other={"indicator": "ema", "params": {"period": 50}}),
                    ]
                },
                {
                    "all": [
                        _cmp("wma", ">", other={"indicator": "vwap", "params": {"period": 20}}, params={"period": 10}),
                        _cmp("obv", ">", 0, params={"period": 10}),
                        _cmp("rsi", "crosses_above", 50, params={"period": 7}),
                    ]
                },
            ]
        },
        "exit": {
            "any": [
                _cmp("stoch", "crosses_below", 80, output="d"),
                {"not": _cmp("close", ">", other={"indicator": "ema", "params": {"period": 50}})},
            ]
        },
    },
    "macd_outputs": {
        "name": "macd",
        "entry": _cmp("macd", "crosses_above", other={"indicator": "macd", "output": "signal"}, output="macd"),
        "exit": _cmp("macd", "crosses_below", 0, output="histogram"),
    },
    "bbands_short": {
        "name": "bb-short",
        "side": "short",
        "entry": _cmp("close", "crosses_above", other={"indicator": "bbands", "output": "upper"}),
        "exit": _cmp("close", "<=", other={"indicator": "bbands", "output": "middle"}),
    },
    "both_donchian_adx_atr": {
        "name": "both",
        "side": "both",
        "entry": {
            "all": [
                _cmp("close", ">", other={"indicator": "donchian", "output": "upper", "params": {"period": 10}}),
                _cmp("adx", ">", 20),
            ]
        },
        "short_entry": {
            "all": [
                _cmp("close", "<", other={"indicator": "donchian", "output": "lower", "params": {"period": 10}}),
                _cmp("adx", "crosses_above", other={"indicator": "adx", "output": "plus_di"}, output="minus_di"),
            ]
        },
    },
    "ema_cross_volume_source": {
        "name": "ema-vol",
        "side": "both",
        "entry": _cmp(
            "ema", "crosses_above", other={"indicator": "ema", "params": {"period": 26}}, params={"period": 12}
        ),
        "short_entry": {
            "all": [
                _cmp(
                    "ema", "crosses_below", other={"indicator": "ema", "params": {"period": 26}}, params={"period": 12}
                ),
                _cmp("volume", ">", other={"indicator": "sma", "params": {"period": 20, "source": "volume"}}),
            ]
        },
    },
}


@pytest.mark.parametrize("symbol", ["GOOG", "EURUSD"])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_vectorised_signals_equal_the_bar_by_bar_walk(name: str, symbol: str) -> None:
    strategy = create("rules", SPECS[name])
    columns = _columns(symbol)
    fast = strategy.signals(*columns)
    walked = Strategy.signals(strategy, *columns)
    assert fast.dtype == np.int8 and walked.dtype == np.int8
    np.testing.assert_array_equal(fast, walked)
    assert (fast == 1).sum() >= 3 and (fast == -1).sum() >= 3, "the spec must trade on this data"
    assert not fast[: strategy.warmup - 1].any()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_example_specs_signals_equal_the_walk_on_goog(path: Path) -> None:
    strategy = create("rules", json.loads(path.read_text()))
    columns = _columns("GOOG")
    np.testing.assert_array_equal(strategy.signals(*columns), Strategy.signals(strategy, *columns))


def test_short_data_gives_no_signals() -> None:
    strategy = create("rules", SPECS["rsi_threshold"])
    columns = [c[: strategy.warmup - 1] for c in _columns("GOOG")]
    assert not strategy.signals(*columns).any()
    assert strategy.signals(*columns).size == strategy.warmup - 1


def test_conflicting_directions_on_one_bar_hold() -> None:
    spec = {"name": "conflict", "entry": _cmp("close", ">", 0), "exit": _cmp("volume", ">=", 0)}
    strategy = create("rules", spec)
    columns = _columns("GOOG")
    assert not strategy.signals(*columns).any()
    assert not Strategy.signals(strategy, *[c[:50] for c in columns]).any()
