"""Strategy.signals: the vectorised signal step equals the live path's bar-by-bar walk on real data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from pydantic import BaseModel

from tradeflow.domain import Bar, SignalAction
from tradeflow.marketdata import load_dataset
from tradeflow.strategies import Decision, Strategy, create


def _columns(bars: Sequence[Bar]) -> list[np.ndarray]:
    return [np.array([float(getattr(b, k)) for b in bars]) for k in ("open", "high", "low", "close", "volume")]


@pytest.mark.parametrize(
    ("symbol", "params"),
    [
        ("GOOG", {"fast": 10, "slow": 20}),
        ("GOOG", {"fast": 5, "slow": 10, "atr_period": 14}),  # warm-up set by the ATR, not the averages
        ("GOOG", {"fast": 20, "slow": 50}),
        ("EURUSD", {"fast": 10, "slow": 20}),
        ("EURUSD", {"fast": 12, "slow": 48, "atr_period": 24}),
    ],
)
def test_sma_cross_override_equals_the_bar_by_bar_walk(symbol: str, params: dict[str, int]) -> None:
    bars = load_dataset(symbol)
    strategy = create("sma_cross", params)
    columns = _columns(bars)
    fast = strategy.signals(*columns)
    walked = Strategy.signals(strategy, *columns, ts=[b.ts for b in bars], symbol=symbol)
    assert fast.dtype == np.int8 and walked.dtype == np.int8
    np.testing.assert_array_equal(fast, walked)
    assert (fast == 1).sum() >= 5 and (fast == -1).sum() >= 5
    assert not fast[: strategy.warmup - 1].any()


def test_the_default_walk_is_the_live_path_on_windows_of_warmup_bars() -> None:
    bars = load_dataset("GOOG")[:400]
    strategy = create("sma_cross", {"fast": 5, "slow": 10})
    walked = Strategy.signals(strategy, *_columns(bars), ts=[b.ts for b in bars])
    codes = {SignalAction.BUY: 1, SignalAction.SELL: -1, SignalAction.HOLD: 0}
    w = strategy.warmup
    expected = [0] * (w - 1) + [codes[strategy.evaluate(bars[i + 1 - w : i + 1]).action] for i in range(w - 1, 400)]
    assert walked.tolist() == expected


class _Params(BaseModel):
    pass


class _UpDay(Strategy):
    """Buys a close above the previous one, sells one below; no override of `signals`."""

    name = "up_day"
    Params = _Params

    @property
    def warmup(self) -> int:
        return 2

    def evaluate(self, bars: Sequence[Bar]) -> Decision:
        prev, last = bars[-2].close, bars[-1].close
        action = SignalAction.BUY if last > prev else SignalAction.SELL if last < prev else SignalAction.HOLD
        return Decision(action=action)


def test_a_strategy_without_override_gets_signals_from_evaluate() -> None:
    closes = np.array([10.0, 11.0, 11.0, 10.5, 12.0])
    signals = _UpDay(_Params()).signals(closes, closes + 1, closes - 1, closes, np.zeros(5))
    assert signals.tolist() == [0, 1, 0, -1, 1]


def test_columns_of_different_lengths_are_refused() -> None:
    strategy = _UpDay(_Params())
    with pytest.raises(ValueError, match="same length"):
        strategy.signals([1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [1.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="one timestamp per bar"):
        strategy.signals([1.0], [1.0], [1.0], [1.0], [0.0], ts=[])


def test_sma_cross_override_is_exact_around_ties() -> None:
    """Flat stretches make fast == slow exactly; tiny moves make the difference a few ulps. There the
    fast path defers to the live `sma`, so it still equals the bar-by-bar walk."""
    import numpy as np

    from tradeflow.strategies import create

    base = [100.0] * 40 + [100.0 + 1e-12, 100.0 - 1e-12] * 10 + [100.0] * 10 + [100.1, 99.9] * 15
    close = np.array(base)
    strategy = create("sma_cross", {"fast": 3, "slow": 7})
    fast = strategy.signals(close, close, close, close, np.zeros_like(close))
    walked = type(strategy).__mro__[1].signals(strategy, close, close, close, close, np.zeros_like(close))
    assert fast.tolist() == walked.tolist()
    assert (fast != 0).any()
