"""Reconciliation's settings: the platform's timings, and what an account may tune in `broker_config`."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic import Field, ValidationError

from tradeflow.domain.base import Model

log = logging.getLogger("tradeflow.reconcile")

# A `new` order may be on its way to the broker for as long as the execution function runs (30 s);
# this is far longer, so a submission in progress is never mistaken for one that never happened.
GRACE = timedelta(minutes=15)
# How far back the broker's recent orders are read when an account was never reconciled.
LOOKBACK = timedelta(hours=24)
# Re-read a little before the last run: brokers stamp updates with their own clocks.
OVERLAP = timedelta(minutes=10)


class ReconcilePolicy(Model):
    """Per-account settings, read from the account's `broker_config` (all optional)."""

    stale_order_hours: Decimal = Field(default=Decimal(24), gt=0, description="max age of day and IOC orders")
    stale_gtc_days: Decimal = Field(default=Decimal(30), gt=0, description="max age of good-till-cancelled orders")
    position_tolerance: Decimal = Field(
        default=Decimal(0), ge=0, description="position quantity differences up to this are not differences"
    )
    cash_tolerance: Decimal = Field(default=Decimal(0), ge=0, description="cash differences up to this are ignored")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ReconcilePolicy:
        """The settings found in `config`; an invalid one is logged and its default used instead, so a
        typo never stops an account from being reconciled."""
        chosen = {name: config[name] for name in cls.model_fields if name in config}
        try:
            return cls.model_validate(chosen)
        except ValidationError as invalid:
            bad = {str(error["loc"][0]) for error in invalid.errors() if error["loc"]}
            log.warning("invalid reconciliation settings %s in broker_config; using their defaults", sorted(bad))
            return cls.model_validate({k: v for k, v in chosen.items() if k not in bad})
