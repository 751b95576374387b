"""What a backtest produces: trades, per-bar equity and drawdown, and metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import ConfigDict, PlainSerializer, PlainValidator, WithJsonSchema

from tradeflow.backtest.config import BacktestConfig
from tradeflow.domain.base import Model


def _series(value: Any) -> npt.NDArray[np.float64]:
    array = np.asarray(value, dtype=float)
    if array.ndim != 1:
        raise ValueError("expected a 1-d series of numbers")
    return array


# A per-bar series held as a float array: a million-bar run would spend a third of its time turning
# arrays into Python lists and validating them. It is a list of numbers in JSON and in the schema.
FloatSeries = Annotated[
    npt.NDArray[np.float64],
    PlainValidator(_series),
    PlainSerializer(lambda a: a.tolist(), return_type=list[float]),
    WithJsonSchema({"type": "array", "items": {"type": "number"}}),
]

ExitReason = Literal["signal", "stop_loss", "trailing_stop", "take_profit", "max_holding", "end_of_data"]


class Trade(Model):
    """One round trip. `pnl` is net of both commissions; `return_pct` is `pnl` over the entry notional."""

    model_config = ConfigDict(frozen=True)

    side: Literal["long", "short"]
    size: float
    entry_bar: int
    exit_bar: int
    entry_time: datetime | None
    exit_time: datetime | None
    entry_price: float
    exit_price: float
    commission: float
    pnl: float
    return_pct: float
    bars_held: int
    exit_reason: ExitReason
    symbol: str | None = None


class Metrics(Model):
    """Percentages are in percent. Ratios that would divide by zero are None (e.g. profit factor with no
    losing trade). `max_drawdown_pct` is negative (or 0), as backtesting.py reports it."""

    model_config = ConfigDict(frozen=True)

    total_return_pct: float
    cagr_pct: float | None
    volatility_pct: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown_pct: float
    max_drawdown_duration_bars: int
    win_rate_pct: float | None
    profit_factor: float | None
    expectancy_pct: float | None
    avg_win_pct: float | None
    avg_loss_pct: float | None
    best_trade_pct: float | None
    worst_trade_pct: float | None
    trades: int
    exposure_pct: float
    buy_hold_return_pct: float
    final_equity: float
    bars: int


class BacktestResult(Model):
    """`equity_curve` (cash plus positions at every bar's close) and `drawdown_pct` are float arrays,
    one value per bar (per timeline time in a portfolio); `model_dump` gives lists."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    config: BacktestConfig
    metrics: Metrics
    trades: list[Trade]
    equity_curve: FloatSeries
    drawdown_pct: FloatSeries
    timestamps: list[datetime] | None = None
    symbols: list[str] | None = None  # a portfolio run's symbols; its trades name theirs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BacktestResult):
            return NotImplemented
        same = ("config", "metrics", "trades", "timestamps", "symbols")
        return all(getattr(self, k) == getattr(other, k) for k in same) and all(
            np.array_equal(getattr(self, k), getattr(other, k)) for k in ("equity_curve", "drawdown_pct")
        )

    __hash__ = None  # type: ignore[assignment]  # compared by value and mutable: unhashable, as BaseModel
