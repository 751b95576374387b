"""What reconciliation can find, and what it may do about it.

A `Difference` is one way the broker's state and our ledger's disagree (or, for expiry, one order that
has outlived its time). Each carries the values both sides hold, as text for the audit trail, and the
remedy reconciliation applies:

- `sync`: the broker knows more than we do about one of our orders (a fill we missed, a cancel or an
  expiry we never heard of, an acknowledgement): its report goes through the execution function's own
  ledger path, which records every fill exactly once.
- `close_unsubmitted`: an order still `new` in our ledger that the broker has never heard of, past the
  grace period: it never reached the broker, so it is closed as rejected and its reservation released.
- `cancel`: a day order past its session or an order past its maximum age is cancelled at the broker.
- `record`: nothing can or need be done but writing it down.

`halts` marks the differences nothing explains (the books may be wrong): the account is halted.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from tradeflow.brokers.port import BrokerOrder
from tradeflow.domain import Order
from tradeflow.domain.base import Model


class DifferenceKind(StrEnum):
    MISSED_FILL = "missed_fill"  # the broker filled more of an order than the ledger recorded
    CLOSED_AT_BROKER = "closed_at_broker"  # the broker closed an order the ledger has open
    STATUS_BEHIND = "status_behind"  # the broker acknowledged an order the ledger has at an earlier state
    NEVER_SUBMITTED = "never_submitted"  # `new` in the ledger, unknown to the broker, past the grace period
    FINAL_STATUS = "final_status"  # both closed the order, under different names (no fill differs)
    MANUAL_ORDER = "manual_order"  # an order placed at the broker by hand (no client order id of ours)
    UNKNOWN_TO_LEDGER = "unknown_to_ledger"  # the broker has an order with our id that the ledger lacks
    UNKNOWN_TO_BROKER = "unknown_to_broker"  # the ledger has an order past `new` the broker does not know
    ORDER_CONFLICT = "order_conflict"  # fills or states that no repair can reconcile
    POSITION = "position"  # a position quantity differs after the repairs
    POSITION_UNSETTLED = "position_unsettled"  # the broker's position moved while we compared
    CASH = "cash"  # cash differs (fees, interest and transfers at the broker move it legitimately)
    OPENING_BALANCE = "opening_balance"  # a new broker account's cash, recorded as its opening deposit
    DAY_ORDER_EXPIRED = "day_order_expired"  # a day order whose session is over
    STALE_ORDER = "stale_order"  # an open order past its maximum age


class Remedy(StrEnum):
    SYNC = "sync"
    CLOSE_UNSUBMITTED = "close_unsubmitted"
    CANCEL = "cancel"
    RECORD = "record"


class Difference(Model):
    kind: DifferenceKind
    remedy: Remedy = Remedy.RECORD
    halts: bool = False
    symbol: str | None = None
    client_order_id: str | None = None
    ledger: str | None = None  # what the ledger holds, e.g. "accepted, 0 filled"
    broker: str | None = None  # what the broker reports
    detail: str = ""
    # what a repair works on (kept out of the audit trail)
    order: Order | None = Field(default=None, exclude=True)
    broker_order: BrokerOrder | None = Field(default=None, exclude=True)

    @property
    def subject(self) -> str:
        return self.client_order_id or self.symbol or self.kind.value

    def describe(self) -> str:
        sides = f"ledger {self.ledger or '-'}, broker {self.broker or '-'}"
        return f"{self.kind.value} {self.subject}: {sides}" + (f" ({self.detail})" if self.detail else "")

    def audit_details(self, account_id: str, action: str) -> dict[str, Any]:
        details: dict[str, Any] = {
            "account_id": account_id,
            "kind": self.kind.value,
            "halts": self.halts,
            "action": action,
        }
        for name in ("symbol", "client_order_id", "ledger", "broker", "detail"):
            value = getattr(self, name)
            if value:
                details[name] = value
        return details
