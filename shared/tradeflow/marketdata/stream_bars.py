"""Bars from the `bars` table's change stream: what the history writers (the Parquet archiver and the
optional Timestream writer) take from each stream record's new image.

The handlers hand over the deserialised new image (Powertools' stream data classes do the DynamoDB JSON);
this module knows nothing of Lambda events (design rule 1). An image that is not a valid bar of a tenant
raises `InvalidBar` naming the field, for the handler to dead-letter with that reason (design rule 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from tradeflow.domain import Bar
from tradeflow.domain.validation import describe


class InvalidBar(ValueError):
    """A stream record whose image is not a bar of a tenant; the message is the reason."""


@dataclass(frozen=True)
class TenantBar:
    tenant_id: str
    bar: Bar


def tenant_bar(image: Mapping[str, Any]) -> TenantBar:
    """The tenant's bar a `bars` item holds (the item carries `tenant_id` beside the bar's fields)."""
    tenant_id = image.get("tenant_id")
    if not isinstance(tenant_id, str) or not tenant_id:
        raise InvalidBar("invalid bar in stream: tenant_id: missing")
    try:
        bar = Bar.model_validate(dict(image))
    except ValidationError as exc:
        raise InvalidBar(f"invalid bar in stream: {describe(exc)}") from None
    return TenantBar(tenant_id, bar)
