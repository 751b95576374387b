"""The indicators a rule spec can compare: each with its own parameter model, its outputs, the bars it
needs, a live form (plain lists, no numpy) and a series form (numpy) that agree bit for bit on any
window at least `lookback` bars long — except the recursive ones (EMA, RSI, MACD, ADX), which agree
to 1e-9 relative once the window is `convergence_lookback` bars long (the vectorised signals recompute
the bars where that could matter; see `vectorised.py`).

Two operands differ from the plain indicator on purpose:

- `donchian` is the channel of the `period` bars BEFORE the current one (a breakout is the close
  leaving the previous bars' range; the current bar's own high is never above a channel that
  includes it).
- `obv` is the on-balance volume *accumulated over the last `period` bars* (the sum of the signed
  volumes). OBV itself is a running sum anchored at the first bar given, so its level in a bounded
  live window is meaningless; its change over a period is the same in any window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradeflow.indicators import (
    adx_series,
    atr,
    atr_series,
    bollinger,
    bollinger_series,
    convergence_lookback,
    rolling_max,
    rolling_max_series,
    rolling_min,
    rolling_min_series,
    sma,
    sma_series,
    stochastic,
    stochastic_series,
    vwap,
    vwap_series,
    wma,
    wma_series,
)
from tradeflow.indicators.momentum import macd_values, rsi_values
from tradeflow.indicators.moving_average import ema_values
from tradeflow.indicators.trend import adx_values

if TYPE_CHECKING:
    import numpy as np

PRICE_FIELDS = ("close", "open", "high", "low", "volume")
Source = Literal["close", "open", "high", "low", "volume"]
NAN = math.nan

# Live: the columns of a window (open/high/low/close/volume, oldest first) -> per output, the value at
# the previous bar and at the last bar (NaN where undefined).
Columns = Mapping[str, Sequence[float]]
LiveFn = Callable[[Columns, Any], dict[str, tuple[float, float]]]
SeriesFn = Callable[[Mapping[str, "np.ndarray"], Any], dict[str, "np.ndarray"]]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(_Params):
    pass


class PeriodParams(_Params):
    period: int = Field(default=14, ge=1, le=2000)


class SourcePeriodParams(_Params):
    period: int = Field(default=14, ge=1, le=2000)
    source: Source = "close"


class RsiParams(_Params):
    period: int = Field(default=14, ge=2, le=500)
    source: Source = "close"


class AdxParams(_Params):
    period: int = Field(default=14, ge=2, le=500)


class MacdParams(_Params):
    fast: int = Field(default=12, ge=1, le=200)
    slow: int = Field(default=26, ge=2, le=400)
    signal: int = Field(default=9, ge=1, le=200)
    source: Source = "close"

    @model_validator(mode="after")
    def _ordered(self) -> MacdParams:
        if self.fast >= self.slow:
            raise ValueError("fast must be smaller than slow")
        return self


class BbandsParams(_Params):
    period: int = Field(default=20, ge=1, le=2000)
    dev_up: float = Field(default=2.0, ge=0, le=20)
    dev_down: float = Field(default=2.0, ge=0, le=20)
    source: Source = "close"


class StochParams(_Params):
    fastk_period: int = Field(default=5, ge=1, le=500)
    slowk_period: int = Field(default=3, ge=1, le=500)
    slowd_period: int = Field(default=3, ge=1, le=500)


class WindowParams(_Params):
    period: int = Field(default=20, ge=1, le=2000)


@dataclass(frozen=True)
class Indicator:
    name: str
    Params: type[_Params]
    outputs: tuple[str, ...]
    default_output: str | None  # None: a multi-output indicator whose output must be named
    lookback: Callable[[Any], int]  # bars needed for a value at the last bar
    live: LiveFn
    series: SeriesFn
    # "exact": any window of `lookback` bars gives the series value bit for bit. Otherwise the scale
    # of the window-vs-history difference: "price" (relative to the source price) or "oscillator"
    # (0..100).
    precision: Literal["exact", "price", "oscillator"] = "exact"

    def label(self, params: Any, output: str) -> str:
        values = [str(v) for k, v in params.model_dump().items() if not (k == "source" and v == "close")]
        source = getattr(params, "source", "close")
        if source != "close":
            values.append(f"source={source}")
        text = f"{self.name}({', '.join(values)})" if values else self.name
        return text if len(self.outputs) == 1 else f"{text}.{output}"


def _last2(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    current = values[-1] if n >= 1 else NAN
    previous = values[-2] if n >= 2 else NAN
    return previous, current


def _opt(value: float | None) -> float:
    return NAN if value is None else value


def _both(fn: Callable[[int], float | None], n: int) -> tuple[float, float]:
    """(fn at the previous bar, fn at the last bar) where fn(end) evaluates on the first `end` bars."""
    return (_opt(fn(n - 1)) if n >= 2 else NAN), _opt(fn(n))


# --- price fields ---------------------------------------------------------------------------------


def _price(field: str) -> Indicator:
    def live(cols: Columns, p: Any) -> dict[str, tuple[float, float]]:
        return {"value": _last2(cols[field])}

    def series(cols: Mapping[str, np.ndarray], p: Any) -> dict[str, np.ndarray]:
        return {"value": cols[field]}

    return Indicator(field, NoParams, ("value",), "value", lambda p: 1, live, series)


# --- moving averages ------------------------------------------------------------------------------


def _sma_live(cols: Columns, p: Any) -> dict[str, tuple[float, float]]:
    values = cols[p.source]
    return {"value": _both(lambda end: sma(values, p.period, end=end), len(values))}


def _sma_series(cols: Mapping[str, np.ndarray], p: Any) -> dict[str, np.ndarray]:
    return {"value": sma_series(cols[p.source], p.period)}


def _wma_live(cols: Columns, p: Any) -> dict[str, tuple[float, float]]:
    values = cols[p.source]
    tail = list(values[max(0, len(values) - p.period - 1) :])
    return {"value": _both(lambda end: wma(tail[:end], p.period), len(tail))}


def _wma_series(cols: Mapping[str, np.ndarray], p: Any) -> dict[str, np.ndarray]:
    return {"value": wma_series(cols[p.source], p.period)}


def _ema_live(cols: Columns, p: Any) -> dict[str, tuple[float, float]]:
    return {"value": _last2(ema_values(cols[p.source], p.period))}


def _ema_series(cols: Mapping[str, np.ndarray], p: Any) -> dict[str, np.ndarray]:
    import numpy as np

    return {"value": np.asarray(ema_values(cols[p.source].tolist(), p.period))}


# --- oscillators ----------------------------------------------------------------------------------


def _rsi_live(cols: Columns, p: Any) -> dict[str, tuple[float, float]]:
    return {"value": _last2(rsi_values(cols[p.source], p.period))}


def _rsi_series(cols: Mapping[str, np.ndarray], p: Any) -> dict[str, np.ndarray]:
    import numpy as np

    return {"value": np.asarray(rsi_values(cols[p.source].tolist(), p.period))}


_MACD_OUTPUTS = ("macd", "signal", "histogram")


def _macd_live(cols: Columns, p: Any) -> dict[str, tuple[float, float]]:
    lines = macd_values(cols[p.source], p.fast, p.slow, p.signal)
    return {name: _last2(line) for name, line in zip(_MACD_OUTPUTS, lines, strict=True)}


def _macd_series(cols: Mapping[str, np.ndarray], p: Any) -> dict[str, np.ndarray]:
    import numpy as np

    lines = macd_values(cols[p.source].tolist(), p.fast, p.slow, p.signal)
    return {name: np.asarray(line) for name, line in zip(_MACD_OUTPUTS, lines, strict=True)}


def _stoch_live(cols: Columns, p: Any) -> dict[str, tuple[float, float]]:
    h, lo, c = cols["high"], cols["low"], cols["close"]
    periods = (p.fastk_period, p.slowk_period, p.slowd_period)
    previous = stochastic(h[:-1], lo[:-1], c[:-1], *periods) if len(c) >= 2 else None
    current = stochastic(h, lo, c, *periods)
    return {
        "k": (NAN if previous is None else previous.k, NAN if current is None else current.k),
        "d": (NAN if previous is None else previous.d, NAN if current is None else current.d),
    }


def _stoch_series(cols: Mapping[str, np.ndarray], p: Any) -> dict[str, np.ndarray]:
    k, d = stochastic_series(cols["high"], cols["low"], cols["close"], p.fastk_period, p.slowk_period, p.slowd_period)
    return {"k": k, "d": d}


_ADX_OUTPUTS = ("adx", "plus_di", "minus_di")


def _adx_live(cols: Columns, p: Any) -> dict[str, tuple[float, float]]:
    lines = adx_values(cols["high"], cols["low"], cols["close"], p.period)
    return {name: _last2(line) for name, line in zip(_ADX_OUTPUTS, lines, strict=True)}


def _adx_series(cols: Mapping[str, np.ndarray], p: Any) -> dict[str, np.ndarray]:
    lines = adx_series(cols["high"], cols["low"], cols["close"], p.period)
    return dict(zip(_ADX_OUTPUTS, lines, strict=True))


# --- volatility, bands, channels ------------------------------------------------------------------


def _atr_live(cols: Columns, p: Any) -> dict[str, tuple[float, float]]:
    h, lo, c = cols["high"], cols["low"], cols["close"]
    return {"value": _both(lambda end: atr(h[:end], lo[:end], c[:end], p.period), len(c))}


def _atr_series(cols: Mapping[str, np.ndarray], p: Any) -> dict[str, np.ndarray]:
    return {"value": atr_series(cols["high"], cols["low"], cols["close"], p.period)}


_BANDS_OUTPUTS = ("upper", "middle", "lower")


def _bbands_live(cols: Columns, p: Any) -> dict[str, tuple[float, float]]:
    values = cols[p.source]
    previous = bollinger(values[:-1], p.period, p.dev_up, p.dev_down) if len(values) >= 2 else None
    current = bollinger(values, p.period, p.dev_up, p.dev_down)
    return {
        name: (NAN if previous is None else getattr(previous, name), NAN if current is None else getattr(current, name))
        for name in _BANDS_OUTPUTS
    }


def _bbands_series(cols: Mapping[str, np.ndarray], p: Any) -> dict[str, np.ndarray]:
    middle, upper, lower = bollinger_series(cols[p.source], p.period, p.dev_up, p.dev_down)
    return {"upper": upper, "middle": middle, "lower": lower}


def _donchian_at(h: Sequence[float], lo: Sequence[float], end: int, period: int) -> tuple[float, float, float]:
    """(upper, middle, lower) of the `period` bars before bar `end - 1` (NaN while too few)."""
    if end < 1:
        return NAN, NAN, NAN
    upper, lower = rolling_max(h[: end - 1], period), rolling_min(lo[: end - 1], period)
    if upper is None or lower is None:
        return NAN, NAN, NAN
    return upper, (upper + lower) / 2, lower


def _donchian_live(cols: Columns, p: Any) -> dict[str, tuple[float, float]]:
    h, lo = cols["high"], cols["low"]
    n = len(h)
    start = max(0, n - p.period - 2)
    h, lo = h[start:], lo[start:]
    n = len(h)
    previous = _donchian_at(h, lo, n - 1, p.period) if n >= 2 else (NAN, NAN, NAN)
    current = _donchian_at(h, lo, n, p.period)
    return {name: (previous[i], current[i]) for i, name in enumerate(_BANDS_OUTPUTS)}


def _donchian_series(cols: Mapping[str, np.ndarray], p: Any) -> dict[str, np.ndarray]:
    import numpy as np

    upper = np.full(cols["high"].shape, np.nan)
    lower = np.full(cols["low"].shape, np.nan)
    upper[1:] = rolling_max_series(cols["high"], p.period)[:-1]
    lower[1:] = rolling_min_series(cols["low"], p.period)[:-1]
    return {"upper": upper, "middle": (upper + lower) / 2, "lower": lower}


# --- volume ---------------------------------------------------------------------------------------


def _vwap_live(cols: Columns, p: Any) -> dict[str, tuple[float, float]]:
    h, lo, c, v = cols["high"], cols["low"], cols["close"], cols["volume"]
    return {"value": _both(lambda end: vwap(h[:end], lo[:end], c[:end], v[:end], p.period), len(c))}


def _vwap_series(cols: Mapping[str, np.ndarray], p: Any) -> dict[str, np.ndarray]:
    return {"value": vwap_series(cols["high"], cols["low"], cols["close"], cols["volume"], p.period)}


def _signed_volume(c: Sequence[float], v: Sequence[float], t: int) -> float:
    return v[t] if c[t] > c[t - 1] else (-v[t] if c[t] < c[t - 1] else 0.0)


def _obv_change(c: Sequence[float], v: Sequence[float], end: int, period: int) -> float:
    if end < period + 1:
        return NAN
    return math.fsum([_signed_volume(c, v, t) for t in range(end - period, end)])


def _obv_live(cols: Columns, p: Any) -> dict[str, tuple[float, float]]:
    c, v = cols["close"], cols["volume"]
    n = len(c)
    return {"value": ((_obv_change(c, v, n - 1, p.period) if n >= 2 else NAN), _obv_change(c, v, n, p.period))}


def _obv_series(cols: Mapping[str, np.ndarray], p: Any) -> dict[str, np.ndarray]:
    import numpy as np

    c, v = cols["close"], cols["volume"]
    signed = np.zeros(c.shape)
    signed[1:] = np.where(c[1:] > c[:-1], v[1:], np.where(c[1:] < c[:-1], -v[1:], 0.0))
    out = np.full(c.shape, np.nan)
    if c.size >= p.period + 1:
        windows = np.lib.stride_tricks.sliding_window_view(signed[1:], p.period)
        out[p.period :] = [math.fsum(w) for w in windows.tolist()]
    return {"value": out}


INDICATORS: dict[str, Indicator] = {
    **{field: _price(field) for field in PRICE_FIELDS},
    "sma": Indicator("sma", SourcePeriodParams, ("value",), "value", lambda p: p.period, _sma_live, _sma_series),
    "ema": Indicator(
        "ema",
        SourcePeriodParams,
        ("value",),
        "value",
        lambda p: max(p.period, convergence_lookback("ema", p.period)),
        _ema_live,
        _ema_series,
        "price",
    ),
    "wma": Indicator("wma", SourcePeriodParams, ("value",), "value", lambda p: p.period, _wma_live, _wma_series),
    "rsi": Indicator(
        "rsi",
        RsiParams,
        ("value",),
        "value",
        lambda p: max(p.period + 1, convergence_lookback("rsi", p.period)),
        _rsi_live,
        _rsi_series,
        "oscillator",
    ),
    "macd": Indicator(
        "macd",
        MacdParams,
        _MACD_OUTPUTS,
        "macd",
        lambda p: max(p.slow + p.signal - 1, convergence_lookback("macd", p.slow, p.signal)),
        _macd_live,
        _macd_series,
        "price",
    ),
    "atr": Indicator("atr", PeriodParams, ("value",), "value", lambda p: p.period + 1, _atr_live, _atr_series),
    "bbands": Indicator("bbands", BbandsParams, _BANDS_OUTPUTS, None, lambda p: p.period, _bbands_live, _bbands_series),
    "stoch": Indicator(
        "stoch",
        StochParams,
        ("k", "d"),
        "k",
        lambda p: p.fastk_period + p.slowk_period + p.slowd_period - 2,
        _stoch_live,
        _stoch_series,
    ),
    "adx": Indicator(
        "adx",
        AdxParams,
        _ADX_OUTPUTS,
        "adx",
        lambda p: max(2 * p.period, convergence_lookback("adx", p.period)),
        _adx_live,
        _adx_series,
        "oscillator",
    ),
    "vwap": Indicator("vwap", WindowParams, ("value",), "value", lambda p: p.period, _vwap_live, _vwap_series),
    "obv": Indicator("obv", WindowParams, ("value",), "value", lambda p: p.period + 1, _obv_live, _obv_series),
    "donchian": Indicator(
        "donchian", WindowParams, _BANDS_OUTPUTS, None, lambda p: p.period + 1, _donchian_live, _donchian_series
    ),
}


def valid_params(indicator: Indicator) -> str:
    return ", ".join(indicator.Params.model_fields) or "none"
