"""Rule specs (`create("rules", spec)`): validation that names the field, live decisions that explain
themselves, warm-up, the trade plan, and the shipped example specs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tradeflow.backtest import run_backtest
from tradeflow.domain import SignalAction
from tradeflow.indicators import atr, convergence_lookback, rsi
from tradeflow.marketdata import load_dataset
from tradeflow.strategies import StrategyError, create, registered
from tradeflow.strategies.plan import TradePlan
from tradeflow.strategies.rules import RuleStrategy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "strategies"
RSI_DIP: dict[str, Any] = {
    "name": "rsi-dip",
    "entry": {
        "all": [
            {"indicator": "rsi", "params": {"period": 14}, "op": "<", "value": 40},
            {"indicator": "close", "op": ">", "other": {"indicator": "sma", "params": {"period": 200}}},
        ]
    },
    "exit": {"indicator": "rsi", "op": ">", "value": 55},
}


def _spec(**changes: Any) -> dict[str, Any]:
    return {**RSI_DIP, **changes}


def _error(spec: dict[str, Any]) -> str:
    with pytest.raises(StrategyError) as info:
        create("rules", spec)
    return str(info.value)


def test_rules_is_a_registered_strategy() -> None:
    assert "rules" in registered()
    assert create("rules", RSI_DIP).name == "rules"


# --- validation names the field ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {
                "entry": {
                    "all": [{"indicator": "rsi", "op": "<", "value": 30}, {"indicator": "rsi", "op": "<<", "value": 1}]
                }
            },
            "params.entry.all.1.op: Input should be '<'",
        ),
        (
            {"entry": {"indicator": "rsx", "op": "<", "value": 30}},
            "params.entry.indicator: Value error, unknown indicator 'rsx'; valid: close, open, high, low, volume, sma",
        ),
        (
            {"entry": {"indicator": "rsi", "params": {"length": 14}, "op": "<", "value": 30}},
            "params.entry.params: Value error, unknown parameter 'length' for rsi; valid parameters: period, source",
        ),
        (
            {"entry": {"indicator": "rsi", "params": {"period": 1}, "op": "<", "value": 30}},
            "params.entry.params: Value error, rsi: period: Input should be greater than or equal to 2",
        ),
        (
            {"entry": {"indicator": "macd", "params": {"fast": 30}, "op": ">", "value": 0}},
            "params.entry.params: Value error, macd: macd: Value error, fast must be smaller than slow",
        ),
        (
            {"entry": {"indicator": "macd", "output": "line", "op": ">", "value": 0}},
            "params.entry.output: Value error, unknown output 'line' of macd; valid outputs: macd, signal, histogram",
        ),
        (
            {"entry": {"indicator": "close", "op": ">", "other": {"indicator": "bbands"}}},
            "params.entry.other: Value error, bbands has several outputs: give 'output' (upper, middle, lower)",
        ),
        (
            {"entry": {"indicator": "rsi", "op": "<"}},
            "params.entry: Value error, a comparison takes exactly one of 'value'",
        ),
        (
            {"entry": {"indicator": "rsi", "op": "<", "value": 1, "other": {"indicator": "close"}}},
            "exactly one of 'value' (a number) or 'other'",
        ),
        ({"entry": {"any": []}}, "params.entry.any: List should have at least 1 item"),
        (
            {"entry": {"all": [{"indicator": "rsi", "op": "<", "value": 1}], "op": "<"}},
            "params.entry: Value error, a 'all' group takes no comparison fields (op)",
        ),
        ({"entry": {"all": [{"not": {}}]}}, "params.entry.all.0.not: Value error, give a comparison"),
        ({"entry": {"indicator": "rsi", "op": "<", "value": 1, "colour": "red"}}, "params.entry.colour: Extra inputs"),
        (
            {"side": "both", "short_entry": {"indicator": "rsi", "op": ">", "value": 70}},
            "'exit' is not allowed with side 'both': positions close by the opposite entry (a reversal)",
        ),
        ({"side": "both", "exit": None}, "side 'both' needs 'short_entry'"),
        ({"short_entry": {"indicator": "rsi", "op": ">", "value": 70}}, "'short_entry' is only for side 'both'"),
        (
            {"stop_loss": {"percent": 5, "atr": 2}},
            "params.stop_loss: Value error, give exactly one of 'percent' or 'atr'",
        ),
        ({"stop_loss": {"percent": 150}}, "stop_loss.percent must be below 100 for a long position"),
        (
            {"sizing": {"method": "atr_risk"}},
            "params.sizing: Value error, sizing method atr_risk requires 'risk_fraction'",
        ),
        ({"max_holding_bars": 0}, "params.max_holding_bars: Input should be greater than or equal to 1"),
    ],
)
def test_invalid_specs_name_the_field(change: dict[str, Any], expected: str) -> None:
    message = _error(_spec(**change))
    assert message.startswith("invalid parameters for 'rules': ")
    assert expected in message


def test_a_missing_name_and_entry_are_named() -> None:
    message = _error({"side": "long"})
    assert "params.name: Field required" in message and "params.entry: Field required" in message


def test_defaults_are_filled_in_and_the_spec_round_trips() -> None:
    strategy = create("rules", RSI_DIP)
    dumped = strategy.params.model_dump(by_alias=True, exclude_none=True)
    assert dumped["entry"]["all"][0]["params"] == {"period": 14, "source": "close"}
    assert create("rules", dumped).params == strategy.params
    assert json.loads(strategy.params.model_dump_json(by_alias=True, exclude_none=True))["entry"]["all"][1]["other"]


# --- warm-up and the plan ---------------------------------------------------------------------------


def test_warmup_is_the_longest_operand_lookback_plus_one_for_crossings() -> None:
    assert create("rules", RSI_DIP).warmup == convergence_lookback("rsi", 14)
    crossing = {"name": "x", "entry": {"indicator": "sma", "params": {"period": 20}, "op": "crosses_above",
                                       "other": {"indicator": "sma", "params": {"period": 50}}}}  # fmt: skip
    assert create("rules", crossing).warmup == 51
    macd = {"name": "m", "entry": {"indicator": "macd", "op": ">", "value": 0}}
    assert create("rules", macd).warmup == convergence_lookback("macd", 26, 9)
    short = {"name": "c", "entry": {"indicator": "close", "op": ">", "value": 0}, "atr_period": 30}
    assert create("rules", short).warmup == 31  # the decision's ATR needs atr_period + 1 bars


def test_plan_carries_side_sizing_and_exits() -> None:
    spec = _spec(
        sizing={"method": "atr_risk", "risk_fraction": 0.01, "atr_multiple": 2},
        stop_loss={"atr": 2},
        take_profit={"percent": 10},
        trailing_stop={"percent": 4},
        max_holding_bars=20,
        atr_period=10,
    )
    plan = create("rules", spec).plan
    assert isinstance(plan, TradePlan)
    assert plan.side == "long" and plan.max_holding_bars == 20 and plan.atr_period == 10
    assert plan.stop_loss is not None and plan.stop_loss.atr == 2
    assert plan.take_profit is not None and plan.take_profit.percent == 10
    assert plan.sizing is not None and plan.sizing.method.value == "atr_risk" and plan.uses_atr
    assert create("rules", RSI_DIP).plan == TradePlan()


# --- live decisions ---------------------------------------------------------------------------------


def _first(strategy: Any, bars: Any, action: SignalAction) -> tuple[int, Any]:
    columns = [[float(getattr(b, k)) for b in bars] for k in ("open", "high", "low", "close", "volume")]
    code = {SignalAction.BUY: 1, SignalAction.SELL: -1}[action]
    hits = [i for i, s in enumerate(strategy.signals(*columns).tolist()) if s == code]
    assert hits, f"no {action} on this data"
    end = hits[0] + 1
    decision = strategy.evaluate(bars[end - strategy.warmup : end])
    assert decision.action is action
    return end, decision


def test_decisions_explain_every_condition_with_the_values_used() -> None:
    bars = load_dataset("GOOG")
    strategy = create("rules", RSI_DIP)
    end, decision = _first(strategy, bars, SignalAction.BUY)
    window = bars[end - strategy.warmup : end]
    closes = [float(b.close) for b in window]
    reasons = decision.reasons
    assert reasons["strategy"] == "rsi-dip" and reasons["side"] == "long" and reasons["signal"] == "entry"
    assert reasons["entry"]["result"] is True and reasons["entry"]["rule"] == "rsi(14) < 40 all close > sma(200)"
    first, second = reasons["entry"]["all"]
    assert first == {"rule": "rsi(14) < 40", "result": True, "rsi(14)": round(rsi(closes, 14) or 0, 6)}
    assert second["rule"] == "close > sma(200)" and second["close"] == closes[-1] and second["sma(200)"] < closes[-1]
    assert reasons["exit"]["result"] is False
    json.dumps(reasons)  # plain JSON
    expected_atr = atr([float(b.high) for b in window], [float(b.low) for b in window], closes, 14)
    assert decision.atr == expected_atr
    assert strategy.evaluate(bars[:end]) == decision  # only the last `warmup` bars count


def test_crossings_show_the_previous_values_and_short_side_sells_on_entry() -> None:
    spec = {
        "name": "s",
        "side": "short",
        "entry": {"indicator": "close", "op": "crosses_below", "other": {"indicator": "sma", "params": {"period": 20}}},
        "exit": {"indicator": "close", "op": "crosses_above", "other": {"indicator": "sma", "params": {"period": 20}}},
    }
    strategy = create("rules", spec)
    bars = load_dataset("GOOG")
    _, sell = _first(strategy, bars, SignalAction.SELL)
    assert sell.reasons["signal"] == "entry"
    previous = sell.reasons["entry"]["previous"]
    assert (
        previous["close"] >= previous["sma(20)"] and sell.reasons["entry"]["close"] < sell.reasons["entry"]["sma(20)"]
    )
    _, buy = _first(strategy, bars, SignalAction.BUY)
    assert buy.reasons["signal"] == "exit"


def test_both_directions_true_is_a_documented_hold() -> None:
    spec = {"name": "c", "side": "both", "entry": {"indicator": "close", "op": ">", "value": 0},
            "short_entry": {"indicator": "volume", "op": ">=", "value": 0}}  # fmt: skip
    strategy = create("rules", spec)
    decision = strategy.evaluate(load_dataset("GOOG")[:100])
    assert decision.action is SignalAction.HOLD
    assert decision.reasons["signal"].startswith("conflict: entry and short_entry both true")


def test_too_few_bars_hold_with_the_warmup_reason() -> None:
    strategy = create("rules", RSI_DIP)
    decision = strategy.evaluate(load_dataset("GOOG")[: strategy.warmup - 1])
    assert decision.action is SignalAction.HOLD
    assert decision.reasons == {"warmup": f"{strategy.warmup - 1}/{strategy.warmup} bars"}


def test_live_evaluation_does_not_import_numpy() -> None:
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from tradeflow.marketdata import load_dataset\n"
        "from tradeflow.strategies import create\n"
        "bars = load_dataset('GOOG')\n"
        f"for path in sorted(Path({str(EXAMPLES)!r}).glob('*.json')):\n"
        "    s = create('rules', json.loads(path.read_text()))\n"
        "    s.evaluate(bars[: s.warmup])\n"
        "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_live_evaluate_is_fast_enough_for_the_strategy_function() -> None:
    strategy = create("rules", json.loads((EXAMPLES / "breakout_both.json").read_text()))
    bars = load_dataset("GOOG")
    w = strategy.warmup
    times = []
    for end in range(len(bars) - 50, len(bars)):
        start = time.perf_counter()
        strategy.evaluate(bars[end - w : end])
        times.append(time.perf_counter() - start)
    p50 = sorted(times)[len(times) // 2]
    print(f"breakout_both live evaluate p50 {p50 * 1000:.2f} ms ({w} bars)")
    assert p50 < 0.25


# --- the shipped examples ---------------------------------------------------------------------------


def test_there_are_example_specs() -> None:
    assert len(list(EXAMPLES.glob("*.json"))) >= 3


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_example_spec_is_valid_and_trades_on_a_shipped_dataset(path: Path) -> None:
    document = json.loads(path.read_text())
    strategy = create("rules", document)
    assert isinstance(strategy, RuleStrategy)
    assert strategy.params.name and strategy.params.description
    trades = {symbol: run_backtest(load_dataset(symbol), strategy).metrics.trades for symbol in ("GOOG", "EURUSD")}
    assert max(trades.values()) >= 3, trades
