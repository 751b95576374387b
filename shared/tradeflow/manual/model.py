"""The manual-order message on the `signals` queue, its identifiers and its journal entry.

A manual order travels the strategy path: the API journals it in the `signals` table (outcome
`pending`, like a strategy signal) and queues a `ManualOrder` on the `signals` FIFO queue in the same
message group as the account's strategy signals for that symbol (`tenant#account#symbol`), so risk
sees strategy and manual orders of one symbol in the order they were sent. Risk checks it against the
trading controls, the position and buying power, and turns it into an `OrderIntent` with the caller's
own quantity, type, prices and time in force (no strategy sizing); execution then treats it like any
other intent, and records its single final outcome in the journal.

Identifiers are deterministic (design rule 4): from the tenant and the request's `Idempotency-Key`
(or a generated request id when there is none) come the journal id `man_<h>` and the client order id
`tfm-<h>`, where `<h>` is the same 32-character hash, so either one names the other.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Literal

from pydantic import ConfigDict, Field

from tradeflow.domain.orders import OrderTerms
from tradeflow.domain.types import Price, ResourceId, TenantId, UtcDatetime

MANUAL_DEPLOYMENT = "manual"  # the journal's deployment id of a manual order (it has none)
MANUAL_STRATEGY = "manual"
SIGNAL_PREFIX = "man_"
ORDER_PREFIX = "tfm-"


def _digest(*parts: str) -> str:
    raw = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return base64.b32encode(raw).decode().rstrip("=").lower()[:32]


def manual_ids(tenant_id: str, request_key: str, *, from_idempotency_key: bool) -> tuple[str, str]:
    """(journal id, client order id) of a manual order: a function of the tenant and the request's
    idempotency key (or generated request id), so a retried request names the same order."""
    digest = _digest("manual", tenant_id, "key" if from_idempotency_key else "request", request_key)
    return SIGNAL_PREFIX + digest, ORDER_PREFIX + digest


def journal_id(client_order_id: str) -> str | None:
    """The journal id of a manual order's client order id (None for any other client order id)."""
    if not client_order_id.startswith(ORDER_PREFIX) or len(client_order_id) != len(ORDER_PREFIX) + 32:
        return None
    return SIGNAL_PREFIX + client_order_id.removeprefix(ORDER_PREFIX)


class ManualOrder(OrderTerms):
    """A manual order on the `signals` queue (`kind` tells it from a strategy `Signal`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["manual_order"] = "manual_order"
    signal_id: str = Field(min_length=5, max_length=64)  # the journal id, `man_<h>`
    client_order_id: str = Field(min_length=1, max_length=48)
    tenant_id: TenantId
    account_id: ResourceId
    reference_price: Price  # the last price the API knew when the order was placed
    requested_at: UtcDatetime  # "now" for every decision about this order (design rule 6)
    requested_by: str = Field(min_length=1, max_length=200)
    client_tag: str | None = Field(default=None, max_length=64)

    @property
    def group_id(self) -> str:
        """The same FIFO lane as the account's strategy signals for this symbol."""
        return f"{self.tenant_id}#{self.account_id}#{self.symbol}"

    @property
    def generated_at(self) -> UtcDatetime:
        return self.requested_at
