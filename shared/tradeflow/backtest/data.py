"""OHLCV columns as float arrays, the backtester's input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from tradeflow.domain import Bar


@dataclass(frozen=True)
class Ohlcv:
    """Columns of equal length, oldest first; `ts` (bar open times) is optional."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    ts: Sequence[datetime] | None = None
    symbol: str = "BACKTEST"

    def __post_init__(self) -> None:
        n = self.close.shape[0] if self.close.ndim == 1 else -1
        columns = (self.open, self.high, self.low, self.close, self.volume)
        if n < 1 or any(c.shape != (n,) for c in columns):
            raise ValueError("open, high, low, close and volume must be non-empty 1-d arrays of one length")
        if not all(np.isfinite(c).all() for c in columns[:4]) or (self.close <= 0).any():
            raise ValueError("prices must be finite and positive")
        if self.ts is not None and len(self.ts) != n:
            raise ValueError("ts must have one timestamp per bar")

    @classmethod
    def from_arrays(
        cls,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike | None = None,
        ts: Sequence[datetime] | None = None,
        symbol: str = "BACKTEST",
    ) -> Ohlcv:
        c = np.asarray(close, dtype=float)
        v = np.zeros_like(c) if volume is None else np.asarray(volume, dtype=float)
        return cls(
            np.asarray(open, dtype=float), np.asarray(high, dtype=float), np.asarray(low, dtype=float), c, v, ts, symbol
        )

    @classmethod
    def from_bars(cls, bars: Sequence[Bar]) -> Ohlcv:
        if not bars:
            raise ValueError("no bars")
        return cls(
            np.array([float(b.open) for b in bars]),
            np.array([float(b.high) for b in bars]),
            np.array([float(b.low) for b in bars]),
            np.array([float(b.close) for b in bars]),
            np.array([float(b.volume) for b in bars]),
            [b.ts for b in bars],
            bars[0].symbol,
        )

    def __len__(self) -> int:
        return int(self.close.shape[0])
