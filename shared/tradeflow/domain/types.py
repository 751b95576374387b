"""Shared annotated types: UTC timestamps, exact decimals and identifiers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a timezone (UTC expected)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before the first representable instant
        raise ValueError("timestamp out of range") from None


def _decimal_in(value: object) -> object:
    # Floats would smuggle binary rounding into the ledger: go through their shortest repr instead.
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


def iso(value: datetime) -> str:
    """Render a UTC timestamp in the fixed-width form used in keys (sorts lexicographically)."""
    utc = value.astimezone(UTC)
    return f"{utc.year:04d}-" + utc.strftime("%m-%dT%H:%M:%S.%fZ")  # (strftime's %Y does not pad years < 1000)


def parse_iso(value: str) -> datetime:
    """Parse an ISO-8601 timestamp; naive values are rejected rather than guessed."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return _utc(parsed)


UtcDatetime = Annotated[
    datetime,
    AfterValidator(_utc),
    PlainSerializer(iso, return_type=str, when_used="json"),
]
Money = Annotated[
    Decimal,
    BeforeValidator(_decimal_in),
    AfterValidator(_finite),
    PlainSerializer(str, return_type=str, when_used="json"),
]
Quantity = Money
Price = Money
TenantId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ResourceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Symbol = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._/-]+$")]


def tidy(value: Decimal, places: int = 10) -> Decimal:
    """Round a computed decimal (e.g. an average price) to `places` and drop trailing zeros
    without switching to exponent notation, so stored values stay readable and stable."""
    quantized = value.quantize(Decimal(1).scaleb(-places))
    return Decimal(format(quantized.normalize(), "f"))
