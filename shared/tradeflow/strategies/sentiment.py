"""The AI-analysis gate of the `pro` strategy: a pluggable judge of a setup's sentiment.

A `SentimentGate` is asked about one setup (symbol, bar time, side, context) and answers a
`SentimentVerdict`: pass, fail or neutral, an optional score in [-1, 1] (negative bearish, positive
bullish) and a reason. Only "fail" blocks a signal; "neutral" never does, so a gate that cannot
decide (no AI configured, a timeout, an error) changes nothing.

The default is `NeutralSentiment`, so backtests and live runs agree and stay deterministic. Another
gate is configured process-wide with `set_sentiment_gate` (read with `sentiment_gate`), or injected
into one strategy instance (`create("pro")` then `ProStrategy(params, sentiment=gate)`). A gate that
calls a remote model must be deterministic per (symbol, bar time) for replays to agree, e.g. by
caching its answers, and must import its SDK lazily (the strategy function's cold start).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

Verdict = Literal["pass", "fail", "neutral"]
Side = Literal["long", "short"]
VERDICTS: tuple[Verdict, ...] = ("pass", "fail", "neutral")


@dataclass(frozen=True, slots=True)
class SentimentVerdict:
    verdict: Verdict
    score: float | None
    reason: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {self.verdict!r}")
        if self.score is not None and not (math.isfinite(self.score) and -1.0 <= self.score <= 1.0):
            raise ValueError(f"score must be a number in [-1, 1] or None, got {self.score!r}")

    @property
    def blocks(self) -> bool:
        """Only a failing verdict blocks a signal."""
        return self.verdict == "fail"


@runtime_checkable
class SentimentGate(Protocol):
    def assess(self, symbol: str, ts: datetime, side: Side, context: Mapping[str, Any]) -> SentimentVerdict:
        """Judge the `side` setup on `symbol` at the bar opening at `ts`; `context` holds plain values
        (close, atr, stop, the other rules' verdicts)."""
        ...


class NeutralSentiment:
    """The default gate: no AI configured, so every setup is neutral and nothing is blocked."""

    def assess(self, symbol: str, ts: datetime, side: Side, context: Mapping[str, Any]) -> SentimentVerdict:
        return SentimentVerdict("neutral", None, "no AI configured: neutral")


_DEFAULT: SentimentGate = NeutralSentiment()
_configured: SentimentGate = _DEFAULT


def set_sentiment_gate(gate: SentimentGate | None) -> SentimentGate:
    """Configure the process-wide gate (None restores `NeutralSentiment`); returns the previous one."""
    global _configured
    if gate is not None and not isinstance(gate, SentimentGate):
        raise TypeError(f"a sentiment gate needs an assess(symbol, ts, side, context) method, got {gate!r}")
    previous, _configured = _configured, gate if gate is not None else _DEFAULT
    return previous


def sentiment_gate() -> SentimentGate:
    """The process-wide gate (`NeutralSentiment` unless configured)."""
    return _configured
