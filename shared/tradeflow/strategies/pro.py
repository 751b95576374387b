"""Pro: a seven-rule pipeline whose every decision explains itself.

The trend rule picks the side; the next five rules are checked for that side; the AI gate is asked
only about a complete setup. Every rule reports a verdict (pass / fail / neutral) and a reason with
the numbers it used, and all seven are reported on every bar (none is skipped in the explanation):

1. trend: EMA(trend_fast) vs EMA(trend_slow) of closes. Long bias when fast > slow and the close is
   above the slow EMA, short bias when fast < slow and the close is below it; the side is that of
   fast vs slow (long on an exact tie), and the rule fails when the close disagrees with it.
2. session: the market of the symbol's asset class is open for the bar (`sessions.session_open`):
   US equities 09:30-16:00 New York on weekdays, fx Sunday 17:00 - Friday 17:00 New York, crypto
   always; bars of a day or longer always pass. The bar length comes from `timeframe` or else from
   the smallest gap between the window's bar times.
3. zone: support/resistance zones (`indicators.zones`) of the last `zone_lookback` bars. Long: the
   nearest zone whose low is at or below the close (support) is within `zone_atr` x ATR of the bar's
   low; short: the nearest zone whose high is at or above the close (resistance) is within `zone_atr`
   x ATR of the bar's high.
4. momentum: RSI(rsi_period) in [rsi_min, rsi_max] and rising on the previous bar for long; in
   [100 - rsi_max, 100 - rsi_min] and falling for short.
5. trigger: an EMA(trigger_ema) reclaim (the previous close at or below its EMA, this close above it;
   mirrored for short) or an engulfing bar (the previous bar bearish, this one bullish with its body
   covering the previous body: open <= previous close and close >= previous open; mirrored).
6. risk: a stop `atr_stop` x ATR(atr_period) from the close. Fails when the ATR is missing or not
   positive, or the stop is more than `max_stop_pct` % of the price away (or at/below zero for a
   long). The decision carries the ATR (`Decision.atr`) for the risk function's ATR sizing.
7. ai: the configured `SentimentGate` (default `NeutralSentiment`: "no AI configured: neutral"),
   consulted only when rules 1-6 pass, so a paid model is never asked about non-setups; otherwise
   it reports neutral, "not consulted". An error in the gate is a neutral verdict with the error.

BUY when the side is long, rules 1-6 pass and the gate does not fail; SELL when the side is short and
the mirrored rules pass likewise; else HOLD. As everywhere in the platform, signals are target
positions: SELL closes a long, and opens a short only where the deployment allows shorting.
`Decision.reasons` is plain JSON: {"side", "summary", "close", "rules": [{"rule", "verdict",
"reason", "values"}, ...]} with the seven rules in order.

The trend EMAs are recursive, so `warmup` covers their convergence lookback (the slow EMA's 12 x
period bars, plus one for the previous bar's values): the defaults (EMA 20/50) need 601 bars, the
classic 50/200 pair 2401 (more than the shipped GOOG history holds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from tradeflow.domain import Bar, SignalAction, SizingMethod, SizingRule
from tradeflow.domain.base import Model
from tradeflow.domain.timeframes import TIMEFRAME_SECONDS
from tradeflow.indicators import atr, convergence_lookback, zones
from tradeflow.indicators.momentum import rsi_values
from tradeflow.indicators.moving_average import ema_values
from tradeflow.strategies.base import _EPOCH, Decision, Strategy, register
from tradeflow.strategies.plan import ExitDistance, TradePlan
from tradeflow.strategies.sentiment import SentimentGate, SentimentVerdict, Side, Verdict, sentiment_gate
from tradeflow.strategies.sessions import asset_class, bar_seconds, session_open

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

RULES = ("trend", "session", "zone", "momentum", "trigger", "risk", "ai")

# A `warmup`-bar window gives the EMAs within 1e-9 of the price, and RSI within 1e-9 relative, of
# their full-history values (see convergence.py). The vectorised pre-filter relaxes every comparison
# involving them by these margins, so it keeps every bar the live rules could act on; each kept bar
# is then decided by the live rules themselves on its own window.
_PRICE_SLACK = 1e-6  # x |close|
_RSI_SLACK = 1e-4  # RSI points


class ProParams(Model):
    model_config = ConfigDict(extra="forbid")

    trend_fast: int = Field(default=20, ge=2, le=200, description="fast trend EMA period")
    trend_slow: int = Field(default=50, ge=3, le=400, description="slow trend EMA period")
    trigger_ema: int = Field(default=10, ge=2, le=200, description="EMA whose reclaim triggers an entry")
    rsi_period: int = Field(default=14, ge=2, le=100)
    rsi_min: float = Field(default=40.0, ge=0, le=100, description="lowest RSI confirming a long")
    rsi_max: float = Field(default=70.0, ge=0, le=100, description="highest RSI confirming a long")
    atr_period: int = Field(default=14, ge=1, le=200)
    atr_stop: float = Field(default=2.0, gt=0, le=20, description="stop distance in ATRs")
    max_stop_pct: float = Field(default=10.0, gt=0, le=100, description="widest usable stop, % of price")
    risk_pct: float = Field(default=1.0, gt=0, le=100, description="equity risked over the ATR stop, %")
    zone_lookback: int = Field(default=120, ge=10, le=2000, description="bars the zones are found in")
    zone_width: int = Field(default=3, ge=1, le=50, description="bars each side of a pivot")
    zone_tolerance: float = Field(default=0.01, ge=0, le=0.2, description="zone width, fraction of its low")
    zone_min_touches: int = Field(default=2, ge=1, le=20)
    zone_atr: float = Field(default=1.0, ge=0, le=20, description="how near a zone, in ATRs")
    asset_class: Literal["auto", "equity", "fx", "crypto"] = "auto"
    timeframe: str | None = Field(default=None, description="bar length; None: from the bar times")

    @field_validator("timeframe")
    @classmethod
    def _known_timeframe(cls, value: str | None) -> str | None:
        if value is not None and value not in TIMEFRAME_SECONDS:
            raise ValueError(f"unknown timeframe {value!r}; known: {', '.join(TIMEFRAME_SECONDS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ProParams:
        if self.trend_fast >= self.trend_slow:
            raise ValueError("trend_fast must be smaller than trend_slow")
        if self.rsi_min >= self.rsi_max:
            raise ValueError("rsi_min must be smaller than rsi_max")
        if self.zone_lookback <= 2 * self.zone_width:
            raise ValueError("zone_lookback must be more than 2 x zone_width (a pivot needs zone_width bars each side)")
        return self


def _n(x: float) -> str:
    return f"{x:.6g}"


def _rule(name: str, verdict: Verdict, reason: str, **values: float | str | None) -> dict[str, Any]:
    """One rule's entry in `Decision.reasons["rules"]`: plain JSON values (floats rounded to 8 places)."""
    plain = {k: (round(v, 8) if isinstance(v, float) else v) for k, v in values.items()}
    return {"rule": name, "verdict": verdict, "reason": reason, "values": plain}


Rule = dict[str, Any]


def trend_rule(c: Sequence[float], p: ProParams) -> tuple[Side, Rule]:
    """Rule 1 on closes `c`: the side (that of fast vs slow; long on a tie) and the verdict."""
    close = c[-1]
    fast = ema_values(c, p.trend_fast)[-1]
    slow = ema_values(c, p.trend_slow)[-1]
    ef, es = f"ema{p.trend_fast}", f"ema{p.trend_slow}"
    side: Side = "short" if fast < slow else "long"
    if fast > slow:
        ok = close > slow
        text = f"{ef} {_n(fast)} > {es} {_n(slow)}, close {_n(close)} {'>' if ok else '<='} {es}"
        text += ": long bias" if ok else ": close at or below the slow EMA, no bias"
    elif fast < slow:
        ok = close < slow
        text = f"{ef} {_n(fast)} < {es} {_n(slow)}, close {_n(close)} {'<' if ok else '>='} {es}"
        text += ": short bias" if ok else ": close at or above the slow EMA, no bias"
    else:
        ok, text = False, f"{ef} {_n(fast)} = {es} {_n(slow)}: no bias"
    return side, _rule("trend", "pass" if ok else "fail", text, fast=fast, slow=slow, close=close)


def session_rule(times: Sequence[datetime], symbol: str, p: ProParams) -> Rule:
    """Rule 2 for the last of `times` (bar open times; their gaps give the bar length)."""
    cls = asset_class(symbol) if p.asset_class == "auto" else p.asset_class
    seconds = float(TIMEFRAME_SECONDS[p.timeframe]) if p.timeframe else bar_seconds(list(times))
    is_open, text = session_open(cls, times[-1], seconds)
    return _rule("session", "pass" if is_open else "fail", text, asset_class=cls, bar_seconds=seconds)


def usable(vol: float | None) -> bool:
    return vol is not None and math.isfinite(vol) and vol > 0


def zone_rule(
    h: Sequence[float], low: Sequence[float], close: float, vol: float | None, side: Side, p: ProParams
) -> Rule:
    """Rule 3 on the last bar: zones of the last `zone_lookback` highs/lows, ATR `vol`."""
    long = side == "long"
    kind = "support" if long else "resistance"
    if vol is None or not usable(vol):
        return _rule("zone", "fail", f"ATR{p.atr_period} unusable ({vol}): no distance to a {kind} zone", atr=vol)
    found = zones(h[-p.zone_lookback :], low[-p.zone_lookback :], p.zone_width, p.zone_tolerance, p.zone_min_touches)
    near = [z for z in found if z.low <= close] if long else [z for z in found if z.high >= close]
    if not near:
        where = "at or below" if long else "at or above"
        text = f"no {kind} zone in the last {p.zone_lookback} bars ({len(found)} zones, none {where} the close)"
        return _rule("zone", "fail", text, zones=len(found))
    zone = max(near, key=lambda z: (z.high, z.low)) if long else min(near, key=lambda z: (z.low, z.high))
    edge, price = (zone.high, low[-1]) if long else (zone.low, h[-1])
    distance = max(0.0, price - edge) if long else max(0.0, edge - price)
    limit = p.zone_atr * vol
    ok = distance <= limit
    text = (
        f"bar {'low' if long else 'high'} {_n(price)} is {_n(distance)} ({_n(distance / vol)} ATR) from {kind} zone "
        f"{_n(zone.low)}-{_n(zone.high)} ({zone.touches} touches); limit {_n(p.zone_atr)} ATR = {_n(limit)}"
    )
    values = {"zone_low": zone.low, "zone_high": zone.high, "distance": distance, "limit": limit}
    return _rule("zone", "pass" if ok else "fail", text, **values)


def momentum_rule(c: Sequence[float], side: Side, p: ProParams) -> Rule:
    """Rule 4 on closes `c`: RSI in the side's band and moving the side's way since the previous bar."""
    rv = rsi_values(c, p.rsi_period)
    now, before = rv[-1], rv[-2]
    long = side == "long"
    lo, hi = (p.rsi_min, p.rsi_max) if long else (100.0 - p.rsi_max, 100.0 - p.rsi_min)
    in_band = lo <= now <= hi
    ok = in_band and (now > before if long else now < before)
    text = (
        f"rsi{p.rsi_period} {_n(now)} {'in' if in_band else 'outside'} the band and "
        f"{'rising' if now > before else 'falling' if now < before else 'flat'} from {_n(before)} "
        f"(a {side} needs [{_n(lo)}, {_n(hi)}] and {'rising' if long else 'falling'})"
    )
    return _rule("momentum", "pass" if ok else "fail", text, rsi=now, prev_rsi=before)


def trigger_rule(o: Sequence[float], c: Sequence[float], side: Side, p: ProParams) -> Rule:
    """Rule 5 on the last two bars: an EMA(trigger_ema) reclaim/loss or an engulfing bar."""
    ev = ema_values(c, p.trigger_ema)
    e_now, e_prev = ev[-1], ev[-2]
    close, et = c[-1], f"ema{p.trigger_ema}"
    fired: list[str] = []
    if side == "long":
        if c[-2] <= e_prev and close > e_now:
            fired.append(f"close {_n(close)} reclaimed {et} {_n(e_now)} (prev close {_n(c[-2])} <= {_n(e_prev)})")
        if o[-2] > c[-2] and close > o[-1] and o[-1] <= c[-2] and close >= o[-2]:
            fired.append(
                f"bullish engulfing (open {_n(o[-1])} <= prev close {_n(c[-2])}, close >= prev open {_n(o[-2])})"
            )
        missing = f"no {et} reclaim (close {_n(close)} vs {_n(e_now)}) and no bullish engulfing"
    else:
        if c[-2] >= e_prev and close < e_now:
            fired.append(f"close {_n(close)} lost {et} {_n(e_now)} (prev close {_n(c[-2])} >= {_n(e_prev)})")
        if o[-2] < c[-2] and close < o[-1] and o[-1] >= c[-2] and close <= o[-2]:
            fired.append(
                f"bearish engulfing (open {_n(o[-1])} >= prev close {_n(c[-2])}, close <= prev open {_n(o[-2])})"
            )
        missing = f"no {et} loss (close {_n(close)} vs {_n(e_now)}) and no bearish engulfing"
    text = " and ".join(fired) if fired else missing
    return _rule("trigger", "pass" if fired else "fail", text, ema=e_now, prev_ema=e_prev)


def risk_rule(close: float, vol: float | None, side: Side, p: ProParams) -> tuple[float | None, Rule]:
    """Rule 6: the stop `atr_stop` x ATR from the close (None when it cannot be sized)."""
    if vol is None or not usable(vol):
        return None, _rule("risk", "fail", f"ATR{p.atr_period} unusable ({vol}): no stop can be sized", atr=vol)
    long = side == "long"
    distance = p.atr_stop * vol
    stop = close - distance if long else close + distance
    pct = 100.0 * distance / close if close > 0 else math.inf
    ok = pct <= p.max_stop_pct and stop > 0
    text = (
        f"stop {_n(stop)} = close {_n(close)} {'-' if long else '+'} {_n(p.atr_stop)} x ATR{p.atr_period} "
        f"{_n(vol)} ({_n(pct)}% of price, max {_n(p.max_stop_pct)}%)"
    )
    return stop, _rule("risk", "pass" if ok else "fail", text, atr=vol, stop=stop, stop_pct=pct if close > 0 else None)


def ai_rule(
    rules: Sequence[Rule], symbol: str, ts: datetime, side: Side, context: Mapping[str, Any], gate: SentimentGate
) -> SentimentVerdict:
    """Rule 7: the gate's verdict on a setup that passed rules 1-6 (else neutral, not consulted)."""
    failed = [r["rule"] for r in rules if r["verdict"] != "pass"]
    if failed:
        return SentimentVerdict("neutral", None, f"not consulted: {', '.join(failed)} failed")
    try:
        verdict = gate.assess(symbol, ts, side, context)
    except Exception as exc:  # a gate that cannot answer is neutral, never a crash
        return SentimentVerdict("neutral", None, f"sentiment gate error: {type(exc).__name__}: {exc}")
    if not isinstance(verdict, SentimentVerdict):
        return SentimentVerdict("neutral", None, f"sentiment gate answered {type(verdict).__name__}, not a verdict")
    return verdict


def _decide(
    o: Sequence[float],
    h: Sequence[float],
    low: Sequence[float],
    c: Sequence[float],
    times: Sequence[datetime],
    symbol: str,
    p: ProParams,
    gate: SentimentGate,
) -> tuple[int, dict[str, Any], float | None]:
    """(+1 buy / -1 sell / 0 hold, the reasons, the ATR) on the last bar of a `warmup`-bar window."""
    close = c[-1]
    side, trend = trend_rule(c, p)
    vol = atr(h, low, c, p.atr_period)
    stop, risk = risk_rule(close, vol, side, p)
    rules = [
        trend,
        session_rule(times, symbol, p),
        zone_rule(h, low, close, vol, side, p),
        momentum_rule(c, side, p),
        trigger_rule(o, c, side, p),
        risk,
    ]
    context = {"close": close, "atr": vol, "stop": stop, "rules": [dict(r) for r in rules]}
    ai = ai_rule(rules, symbol, times[-1], side, context, gate)
    rules.append(_rule("ai", ai.verdict, ai.reason, score=ai.score))
    failed = [r["rule"] for r in rules[:6] if r["verdict"] != "pass"]
    code = 0 if failed or ai.blocks else 1 if side == "long" else -1
    if code:
        summary = f"{'BUY' if code > 0 else 'SELL'}: {side} setup, rules 1-6 pass, ai {ai.verdict}"
    elif failed:
        summary = f"HOLD: {', '.join(failed)} failed for a {side} setup"
    else:
        summary = f"HOLD: ai failed the {side} setup"
    return code, {"side": side, "summary": summary, "close": close, "rules": rules}, vol


@register("pro")
class ProStrategy(Strategy):
    """See the module docstring. `evaluate` always uses exactly the last `warmup` bars it is given;
    `sentiment` injects an AI gate into this instance (default: the process-wide `sentiment_gate()`,
    itself `NeutralSentiment` unless configured)."""

    Params = ProParams
    params: ProParams

    def __init__(self, params: ProParams, sentiment: SentimentGate | None = None) -> None:
        super().__init__(params)
        self.sentiment = sentiment

    @property
    def gate(self) -> SentimentGate:
        return self.sentiment if self.sentiment is not None else sentiment_gate()

    @property
    def plan(self) -> TradePlan:
        """Rule 6 as the trade plan: a stop `atr_stop` x ATR from the entry, sized so that hitting it loses
        `risk_pct` % of equity (the live risk function sizes alike from the signal's ATR)."""
        p = self.params
        return TradePlan(
            sizing=SizingRule(
                method=SizingMethod.ATR_RISK,
                risk_fraction=Decimal(repr(p.risk_pct)) / 100,
                atr_multiple=Decimal(repr(p.atr_stop)),
            ),
            stop_loss=ExitDistance(atr=p.atr_stop),
            atr_period=p.atr_period,
        )

    @property
    def warmup(self) -> int:
        p = self.params
        lookback = max(
            convergence_lookback("ema", p.trend_slow),
            convergence_lookback("ema", p.trigger_ema),
            convergence_lookback("rsi", p.rsi_period),
        )
        return max(lookback + 1, p.zone_lookback, p.atr_period + 2)

    def evaluate(self, bars: Sequence[Bar]) -> Decision:
        w = self.warmup
        if len(bars) < w:
            return Decision(action=SignalAction.HOLD, reasons={"warmup": f"{len(bars)}/{w} bars"})
        window = bars[len(bars) - w :]
        o = [float(b.open) for b in window]
        h = [float(b.high) for b in window]
        lo = [float(b.low) for b in window]
        c = [float(b.close) for b in window]
        times = [b.ts for b in window]
        code, reasons, vol = _decide(o, h, lo, c, times, window[-1].symbol, self.params, self.gate)
        action = {1: SignalAction.BUY, -1: SignalAction.SELL}.get(code, SignalAction.HOLD)
        return Decision(action=action, reasons=reasons, atr=vol)

    def signals(
        self,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
        *,
        ts: Sequence[datetime] | None = None,
        symbol: str = "BACKTEST",
    ) -> np.ndarray:
        """Exactly the bar-by-bar walk, fast. Full-history indicator series (EMAs, RSI, ATR) and the
        engulfing pattern select candidate bars: those where the trend, momentum, trigger and ATR
        conditions of either side hold with every EMA/RSI comparison relaxed by the convergence slack.
        Each candidate is decided by the live rules on the same `warmup`-bar window as `evaluate`
        (which adds the session, zone, stop width and AI checks); all other bars hold."""
        import numpy as np

        from tradeflow.indicators import atr_series, ema_series, rsi_series

        p = self.params
        arrays = [np.asarray(a, dtype=float) for a in (open, high, low, close, volume)]
        o, h, lo, c = arrays[:4]
        n, w = c.size, self.warmup
        if any(a.shape != (n,) for a in arrays):
            raise ValueError("open, high, low, close and volume must be 1-d arrays of the same length")
        if ts is not None and len(ts) != n:
            raise ValueError("ts must have one timestamp per bar")
        out = np.zeros(n, dtype=np.int8)
        if n < w:
            return out
        s = slice(w - 1, n)
        prev = slice(w - 2, n - 1)
        slack = _PRICE_SLACK * np.abs(c[s])
        fast, slow, trig = (ema_series(c, k) for k in (p.trend_fast, p.trend_slow, p.trigger_ema))
        r = rsi_series(c, p.rsi_period)
        vol = atr_series(h, lo, c, p.atr_period)[s]
        cur, last = c[s], c[prev]
        usable = np.isfinite(vol) & (vol > 0)

        long_ok = (fast[s] - slow[s] > -slack) & (cur - slow[s] > -slack)
        long_ok &= (r[s] >= p.rsi_min - _RSI_SLACK) & (r[s] <= p.rsi_max + _RSI_SLACK) & (r[s] - r[prev] > -_RSI_SLACK)
        reclaim = (last - trig[prev] < slack) & (cur - trig[s] > -slack)
        engulf = (o[prev] > last) & (cur > o[s]) & (o[s] <= last) & (cur >= o[prev])
        long_ok &= reclaim | engulf

        short_ok = (fast[s] - slow[s] < slack) & (cur - slow[s] < slack)
        low_band, high_band = 100.0 - p.rsi_max, 100.0 - p.rsi_min
        short_ok &= (r[s] >= low_band - _RSI_SLACK) & (r[s] <= high_band + _RSI_SLACK) & (r[s] - r[prev] < _RSI_SLACK)
        reclaim = (last - trig[prev] > -slack) & (cur - trig[s] < slack)
        engulf = (o[prev] < last) & (cur < o[s]) & (o[s] >= last) & (cur <= o[prev])
        short_ok &= reclaim | engulf

        candidates = np.flatnonzero((long_ok | short_ok) & usable)
        if candidates.size == 0:
            return out
        times = list(ts) if ts is not None else [_EPOCH + timedelta(days=i) for i in range(n)]
        ol, hl, ll, cl = (a.tolist() for a in (o, h, lo, c))
        gate = self.gate
        for j in candidates:
            i = int(j) + w - 1
            a, b = i + 1 - w, i + 1
            out[i] = _decide(ol[a:b], hl[a:b], ll[a:b], cl[a:b], times[a:b], symbol, p, gate)[0]
        return out
