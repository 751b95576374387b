"""Asset classes and market sessions, for strategies that only act while a market is open.

Asset class of a symbol (`asset_class`), first match wins:
- fx: six letters (an optional '/', '-' or '_' between them) whose two halves are both fiat ISO
  currencies, e.g. EURUSD, EUR/USD, GBP-JPY;
- crypto: a '/' or '-' pair (ccxt's BTC/USD, ETH-USDT), or a known crypto base or stablecoin quote
  (BTCUSD, ETHUSDT, SOLUSDC);
- equity: everything else (GOOG, SPY, ASML.AS).

Sessions (`session_open`), for the bar opening at `ts` and lasting `bar_seconds`:
- bars of a day or longer always pass: a daily bar *is* a session;
- crypto trades around the clock;
- fx trades from Sunday 17:00 to Friday 17:00 America/New_York;
- equities trade in the US regular session, 09:30-16:00 America/New_York, Monday to Friday: a bar
  passes when it opens at or after 09:30 and before 16:00. Exchange holidays are not modelled (a bar
  is only recorded when the market traded), nor are other exchanges' hours.
New York local time comes from `zoneinfo`, so daylight-saving changes are honoured.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo

AssetClass = Literal["equity", "fx", "crypto"]

NEW_YORK = ZoneInfo("America/New_York")
DAY_SECONDS = 86_400
EQUITY_OPEN, EQUITY_CLOSE = time(9, 30), time(16, 0)
FX_ROLL = time(17, 0)  # the FX week opens Sunday 17:00 and closes Friday 17:00, New York time

FIAT = frozenset(
    {"USD", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD", "NZD", "SEK", "NOK", "DKK", "HKD", "SGD"}
    | {"CNH", "CNY", "MXN", "ZAR", "TRY", "PLN", "HUF", "CZK", "ILS", "KRW", "INR", "BRL"}
)
CRYPTO_BASES = frozenset(
    {"BTC", "XBT", "ETH", "SOL", "XRP", "ADA", "DOGE", "DOT", "LTC", "BCH", "LINK", "AVAX"}
    | {"MATIC", "POL", "UNI", "ATOM", "XLM", "TRX", "BNB", "SHIB", "ETC", "FIL", "NEAR"}
)
STABLE_QUOTES = ("USDT", "USDC", "BUSD", "DAI")
_SEPARATORS = "/-_"


def asset_class(symbol: str) -> AssetClass:
    """The asset class of `symbol` by the rules in the module docstring."""
    s = symbol.strip().upper()
    plain = s
    for sep in _SEPARATORS:
        plain = plain.replace(sep, "")
    if len(plain) == 6 and plain.isalpha() and plain[:3] in FIAT and plain[3:] in FIAT:
        return "fx"
    if "/" in s or ("-" in s and s.split("-", 1)[0] in CRYPTO_BASES):
        return "crypto"
    if any(plain.startswith(base) and len(plain) > len(base) for base in CRYPTO_BASES):
        return "crypto"
    if any(plain.endswith(quote) and len(plain) > len(quote) for quote in STABLE_QUOTES):
        return "crypto"
    return "equity"


def session_open(cls: AssetClass, ts: datetime, bar_seconds: float) -> tuple[bool, str]:
    """(is the market of `cls` open for the bar opening at `ts`, the reason in words)."""
    if bar_seconds >= DAY_SECONDS:
        return True, f"{cls}: {_span(bar_seconds)} bars are whole sessions"
    if cls == "crypto":
        return True, "crypto trades 24/7"
    local = (ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)).astimezone(NEW_YORK)
    stamp = local.strftime("%a %Y-%m-%d %H:%M %Z")
    clock, weekday = local.time(), local.weekday()  # Monday 0 .. Sunday 6
    if cls == "fx":
        is_open = weekday < 4 or (weekday == 4 and clock < FX_ROLL) or (weekday == 6 and clock >= FX_ROLL)
        window = "Sun 17:00 - Fri 17:00 New York"
        return is_open, f"fx bar at {stamp} is {'inside' if is_open else 'outside'} {window}"
    is_open = weekday < 5 and EQUITY_OPEN <= clock < EQUITY_CLOSE
    window = "the US regular session 09:30-16:00 New York, Mon-Fri"
    return is_open, f"equity bar at {stamp} is {'inside' if is_open else 'outside'} {window}"


def bar_seconds(times: list[datetime]) -> float:
    """The bar length of a window: the smallest positive gap between consecutive open times (gaps
    over nights and weekends are longer than a bar, never shorter). A single bar counts as daily."""
    gaps = [(b - a).total_seconds() for a, b in pairwise(times)]
    positive = [g for g in gaps if g > 0]
    return min(positive) if positive else float(DAY_SECONDS)


def _span(seconds: float) -> str:
    days = seconds / DAY_SECONDS
    return f"{days:g}-day" if days >= 1 else f"{seconds / 3600:g}-hour"
