"""Manual orders in the signal journal (`signals` table: pk=tenant, sk=`man_<h>`).

The entry is a `SignalRecord` (so risk, execution and the dead-letter paths record its outcomes exactly
as for a strategy signal, one final outcome each) with the order's own terms beside it: `source`
("manual"), `order` (the `ManualOrder` as queued), `request_hash` (to tell a retry from a different
order under the same key) and `requested_by`.
"""

from __future__ import annotations

import json
from typing import Any

from tradeflow.domain import SignalAction, SignalOutcome, SignalRecord
from tradeflow.manual.model import MANUAL_DEPLOYMENT, ManualOrder
from tradeflow.storage.dynamo import DynamoTable, model_item

SOURCE = "manual"


class ManualJournal:
    def __init__(self) -> None:
        self.table = DynamoTable("signals")

    def record_new(self, order: ManualOrder, request_hash: str = "") -> bool:
        """Journal the order as pending; False when that journal id exists already."""
        record = SignalRecord(
            tenant_id=order.tenant_id,
            signal_id=order.signal_id,
            deployment_id=MANUAL_DEPLOYMENT,
            account_id=order.account_id,
            symbol=order.symbol,
            action=SignalAction(order.side.value),
            bar_time=order.requested_at,
            outcome=SignalOutcome.PENDING,
            client_order_id=order.client_order_id,
            quantity=order.quantity,
            created_at=order.requested_at,
            updated_at=order.requested_at,
        )
        item = model_item(record, pk=order.tenant_id, sk=order.signal_id)
        item.update(
            source=SOURCE,
            order=json.loads(order.model_dump_json()),
            request_hash=request_hash,
            requested_by=order.requested_by,
        )
        return self.table.put_new(item)

    def get(self, tenant_id: str, signal_id: str) -> tuple[SignalRecord, ManualOrder, dict[str, Any]] | None:
        """The journal entry, the order as queued, and the raw item; None if absent or not manual."""
        item = self.table.get({"pk": tenant_id, "sk": signal_id})
        if not item or item.get("source") != SOURCE or "order" not in item:
            return None
        return SignalRecord.model_validate(item), ManualOrder.model_validate(item["order"]), item
