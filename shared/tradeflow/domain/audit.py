"""Audit events: who or what did what, when; the trail a trader or auditor reads back."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tradeflow.domain.base import Model
from tradeflow.domain.types import TenantId, UtcDatetime


class AuditEvent(Model):
    event_id: str
    tenant_id: TenantId
    ts: UtcDatetime
    actor: str  # function or user that acted
    action: str  # e.g. signal.rejected, order.submitted, fill.recorded
    subject: str  # the id acted upon
    details: dict[str, Any] = Field(default_factory=dict)
