"""Performance metrics of an equity curve and a trade list (floats: vectorised analytics, rule 7).

Per-bar returns r are the equity curve's simple returns; with P periods per year:
volatility = std(r, ddof=1) * sqrt(P); Sharpe = mean(r) / std(r, ddof=1) * sqrt(P) (risk-free 0);
Sortino = mean(r) * P / (sqrt(mean(min(r, 0)^2)) * sqrt(P)); CAGR over (bars - 1) / P years;
Calmar = CAGR / |max drawdown|. Drawdown at a bar is equity over its running peak, minus one; its
duration is the longest run of consecutive bars below the running peak. Trade statistics use each
trade's `return_pct` (net of commissions); profit factor is gross profit / gross loss in money.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tradeflow.backtest.results import Metrics, Trade


def drawdown_pct(equity: np.ndarray) -> np.ndarray:
    """Per bar: percent below the running peak (<= 0)."""
    peak = np.maximum.accumulate(equity)
    return np.asarray((equity / peak - 1.0) * 100.0, dtype=float)


def max_drawdown_duration(equity: np.ndarray) -> int:
    """Longest run of consecutive bars whose equity is below the running peak."""
    below = equity < np.maximum.accumulate(equity)
    if not below.any():
        return 0
    edges = np.diff(np.concatenate(([0], below.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return int((ends - starts).max())


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def compute_metrics(
    equity: np.ndarray,
    close: np.ndarray,
    trades: Sequence[Trade],
    exposed: np.ndarray,
    periods_per_year: float,
    drawdown: np.ndarray | None = None,
) -> Metrics:
    """`drawdown`: `drawdown_pct(equity)` when the caller has it already (it keeps it for the result)."""
    n = int(equity.size)
    returns = equity[1:] / equity[:-1] - 1.0 if n > 1 else np.zeros(0)
    total = equity[-1] / equity[0] - 1.0
    years = (n - 1) / periods_per_year
    cagr = (equity[-1] / equity[0]) ** (1.0 / years) - 1.0 if years > 0 and equity[-1] > 0 else math.nan
    std = float(returns.std(ddof=1)) if returns.size > 1 else math.nan
    mean = float(returns.mean()) if returns.size else math.nan
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2))) if returns.size else math.nan
    sharpe = mean / std * math.sqrt(periods_per_year) if std > 0 else math.nan
    sortino = mean * periods_per_year / (downside * math.sqrt(periods_per_year)) if downside > 0 else math.nan
    dd = drawdown if drawdown is not None else drawdown_pct(equity)
    max_dd = float(dd.min())
    calmar = (cagr * 100.0) / abs(max_dd) if max_dd < 0 else math.nan

    rets = np.array([t.return_pct for t in trades], dtype=float)
    pnls = np.array([t.pnl for t in trades], dtype=float)
    wins, losses = rets[pnls > 0], rets[pnls < 0]
    gross_win, gross_loss = float(pnls[pnls > 0].sum()), float(-pnls[pnls < 0].sum())
    has = rets.size > 0
    return Metrics(
        total_return_pct=float(total * 100.0),
        cagr_pct=_finite(cagr * 100.0),
        volatility_pct=_finite(std * math.sqrt(periods_per_year) * 100.0),
        sharpe=_finite(sharpe),
        sortino=_finite(sortino),
        calmar=_finite(calmar),
        max_drawdown_pct=max_dd,
        max_drawdown_duration_bars=max_drawdown_duration(equity),
        win_rate_pct=float(wins.size / rets.size * 100.0) if has else None,
        profit_factor=gross_win / gross_loss if gross_loss > 0 else None,
        expectancy_pct=float(rets.mean()) if has else None,
        avg_win_pct=float(wins.mean()) if wins.size else None,
        avg_loss_pct=float(losses.mean()) if losses.size else None,
        best_trade_pct=float(rets.max()) if has else None,
        worst_trade_pct=float(rets.min()) if has else None,
        trades=int(rets.size),
        exposure_pct=float(exposed.mean() * 100.0),
        buy_hold_return_pct=float((close[-1] / close[0] - 1.0) * 100.0),
        final_equity=float(equity[-1]),
        bars=n,
    )
