"""Messages on the `signals` queue: strategy signals, and manual orders placed through the API.

A `Signal` has no `kind` field (it predates manual orders); a manual order says
`"kind": "manual_order"`. Anything else is invalid and dead-lettered by the consumer.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Tag, TypeAdapter

from tradeflow.domain import Signal
from tradeflow.manual.model import ManualOrder


def _kind(value: Any) -> str:
    kind = value.get("kind", "signal") if isinstance(value, dict) else getattr(value, "kind", "signal")
    return str(kind)


SignalsMessage = Annotated[
    Annotated[Signal, Tag("signal")] | Annotated[ManualOrder, Tag("manual_order")],
    Discriminator(_kind),
]
signals_message: TypeAdapter[Signal | ManualOrder] = TypeAdapter(SignalsMessage)


def parse_signals_message(body: str) -> Signal | ManualOrder:
    return signals_message.validate_json(body)
