"""What a change to the books means to a WebSocket client: DynamoDB stream records -> channel updates.

Why DynamoDB Streams rather than events emitted by the pipeline: every write to the books reaches
clients whoever made it — the execution function, the paper exchange, the API (a paper reset, the kill
switch), later the broker streamer and reconciliation — without any of them knowing WebSockets exist.
Nothing is added to the order path (no extra call, latency or failure mode between a broker fill and the
ledger), the stream keeps each item's changes in order, and Lambda retries a failed batch.

Per table (see `catalogue.BROADCAST_TABLES`), the data of each channel is what the REST API returns for
the record, so a client that detects a gap refetches and gets the same shapes:

| table       | channel         | data                                                        |
|-------------|-----------------|-------------------------------------------------------------|
| orders      | `orders`        | `OrderView` (GET /v1/orders/{id}); a new rejection -> `alerts` |
| fills       | `fills`         | `FillView` (GET /v1/fills)                                  |
| positions   | `positions`     | `PositionView`, marked like GET /v1/positions               |
| evaluations | `signals`       | the evaluation: action, status, signal id and rule reasons  |
| signals     | `alerts`        | a signal rejected by risk or dead-lettered                  |
| controls    | `controls`      | the control; switched on or off -> `alerts` as well         |
| bars        | `quotes:SYMBOL` | the bar                                                     |

Deletions (TTL expiry, a disconnect) and modifications that change nothing a client sees are not sent.
A record that cannot be read raises `ChangeError`; the broadcaster dead-letters it with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any, Final, Literal

from pydantic import ValidationError

from tradeflow.api.views import fill_view, order_view, position_view
from tradeflow.catalogue import BROADCAST_TABLES, TABLES, stage
from tradeflow.domain import Bar, Evaluation, Fill, Order, OrderStatus, Position, SignalOutcome, SignalRecord
from tradeflow.domain.controls import GLOBAL_TENANT, TradingControl
from tradeflow.domain.validation import describe
from tradeflow.portfolio.valuation import MarkedPosition
from tradeflow.realtime.protocol import QUOTES_PREFIX
from tradeflow.storage.dynamo import deserialize

Severity = Literal["info", "warning", "critical"]
EVERY_TENANT: Final = GLOBAL_TENANT  # a change for every tenant's connections (the admins' global halt)


class ChangeError(ValueError):
    """A stream record that cannot be turned into updates (it names what is wrong)."""


@dataclass(frozen=True)
class Change:
    """One update for one tenant's subscribers of one channel."""

    tenant_id: str  # EVERY_TENANT: all tenants
    channel: str
    data: dict[str, Any]  # JSON-ready
    at: datetime | None = None  # when the change was made: the update's `ts`


@dataclass(frozen=True)
class StreamChange:
    """A stream record, decoded: which table, what happened, the item before and after."""

    table: str  # the catalogue's logical name
    event: Literal["INSERT", "MODIFY", "REMOVE"]
    new: dict[str, Any] | None
    old: dict[str, Any] | None
    at: datetime  # when the change was made (the record's approximate creation time)


@cache
def _tables_by_physical_name(stage_name: str) -> dict[str, str]:
    return {TABLES[name].physical_name(stage_name): name for name in BROADCAST_TABLES}


def decode(record: Mapping[str, Any], now: datetime) -> StreamChange | None:
    """Decode a DynamoDB stream record; None for a table the broadcaster does not watch."""
    arn = str(record.get("eventSourceARN", ""))
    parts = arn.split(":table/", 1)
    if len(parts) != 2:
        raise ChangeError(f"eventSourceARN {arn!r} is not a DynamoDB stream ARN")
    table = _tables_by_physical_name(stage()).get(parts[1].split("/", 1)[0])
    if table is None:
        return None
    event = record.get("eventName")
    if event not in ("INSERT", "MODIFY", "REMOVE"):
        raise ChangeError(f"eventName {event!r} is not INSERT, MODIFY or REMOVE")
    body = record.get("dynamodb") or {}
    created = body.get("ApproximateCreationDateTime")
    at = datetime.fromtimestamp(float(created), UTC) if isinstance(created, int | float | Decimal) else now
    new, old = body.get("NewImage"), body.get("OldImage")
    try:
        return StreamChange(
            table=table,
            event=event,
            new=deserialize(new) if new else None,
            old=deserialize(old) if old else None,
            at=at,
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ChangeError(f"{table}: the record's images are not DynamoDB JSON: {exc}") from exc


def _public(data: dict[str, Any], *drop: str) -> dict[str, Any]:
    for name in ("tenant_id", "pk", "sk", "version", "expires_at", *drop):
        data.pop(name, None)
    return data


def _alert(tenant_id: str, kind: str, severity: Severity, message: str, at: datetime, **refs: str | None) -> Change:
    data: dict[str, Any] = {"kind": kind, "severity": severity, "message": message, "ts": at.isoformat()}
    data.update({k: v for k, v in refs.items() if v is not None})
    return Change(tenant_id, "alerts", data)


class ChangeTranslator:
    """Turns decoded stream changes into channel updates. The lookups it needs (marks for positions, the
    journal's reason for an order ended without a fill) are injected so unit tests can do without tables."""

    def __init__(
        self,
        mark: Callable[[Position, datetime], MarkedPosition] | None = None,
        journal: Callable[[str, str], SignalRecord | None] | None = None,
    ) -> None:
        self._mark = mark
        self._journal = journal

    def mark(self, position: Position, now: datetime) -> MarkedPosition:
        if self._mark is None:
            from tradeflow.portfolio.valuation import Valuation, timeframe_of
            from tradeflow.storage.accounts import AccountRepository

            valuation, accounts = Valuation(), AccountRepository()

            def mark(p: Position, at: datetime) -> MarkedPosition:
                account = accounts.get(p.tenant_id, p.account_id)
                return valuation.mark(p, timeframe_of(account) if account else "1m", at)

            self._mark = mark
        return self._mark(position, now)

    def journal(self, tenant_id: str, signal_id: str) -> SignalRecord | None:
        if self._journal is None:
            from tradeflow.storage.signals import SignalRepository

            self._journal = SignalRepository().get
        return self._journal(tenant_id, signal_id)

    def changes(self, change: StreamChange) -> list[Change]:
        if change.event == "REMOVE" or change.new is None:
            return []  # TTL expiry and deletions are nothing a client acts on
        translate = getattr(self, f"_{change.table}")
        try:
            result: list[Change] = translate(change)
        except ValidationError as exc:
            raise ChangeError(f"{change.table}: invalid record: {describe(exc)}") from exc
        except KeyError as exc:
            raise ChangeError(f"{change.table}: the record has no {exc}") from exc
        return [replace(c, at=change.at) for c in result]

    # -- one method per table ------------------------------------------------------------------------

    def _orders(self, change: StreamChange) -> list[Change]:
        order = Order.model_validate(change.new)
        before = Order.model_validate(change.old) if change.old else None
        journal = None
        if order.status.final and order.status is not OrderStatus.FILLED and not order.reject_reason:
            journal = self.journal(order.tenant_id, order.signal_id) if order.signal_id else None
        view = order_view(order, journal=journal)
        if before is not None and order_view(before, journal=journal) == view:
            return []  # bookkeeping only (a version bump, reservations): nothing a client sees
        out = [Change(order.tenant_id, "orders", view.model_dump(mode="json"))]
        if order.status is OrderStatus.REJECTED and (before is None or before.status is not OrderStatus.REJECTED):
            reason = view.reason or "no reason given"
            message = f"{order.side} {order.quantity} {order.symbol} rejected by the broker: {reason}"
            out.append(
                _alert(
                    order.tenant_id,
                    "order_rejected",
                    "warning",
                    message,
                    change.at,
                    account_id=order.account_id,
                    symbol=order.symbol,
                    client_order_id=order.client_order_id,
                    deployment_id=order.deployment_id,
                )
            )
        return out

    def _fills(self, change: StreamChange) -> list[Change]:
        if change.event != "INSERT":
            return []  # a fill is written once; anything else is not news
        fill = Fill.model_validate(change.new)
        return [Change(fill.tenant_id, "fills", fill_view(fill).model_dump(mode="json"))]

    def _positions(self, change: StreamChange) -> list[Change]:
        position = Position.model_validate(change.new)
        if change.old is not None:
            before = Position.model_validate(change.old)
            seen = ("quantity", "average_price", "realized_pnl", "opened_at")
            if all(getattr(before, f) == getattr(position, f) for f in seen):
                return []
        view = position_view(self.mark(position, change.at))
        return [Change(position.tenant_id, "positions", view.model_dump(mode="json"))]

    def _evaluations(self, change: StreamChange) -> list[Change]:
        evaluation = Evaluation.model_validate(change.new)
        return [Change(evaluation.tenant_id, "signals", _public(evaluation.model_dump(mode="json")))]

    def _signals(self, change: StreamChange) -> list[Change]:
        record = SignalRecord.model_validate(change.new)
        before = SignalRecord.model_validate(change.old) if change.old else None
        if before is not None and before.outcome is record.outcome:
            return []
        refs = {
            "account_id": record.account_id,
            "symbol": record.symbol,
            "signal_id": record.signal_id,
            "deployment_id": record.deployment_id,
            "client_order_id": record.client_order_id,
        }
        what = f"{record.action} {record.symbol}"
        if record.outcome is SignalOutcome.REJECTED:
            message = f"{what} rejected: {record.reason or 'no reason given'}"
            return [_alert(record.tenant_id, "signal_rejected", "warning", message, change.at, **refs)]
        if record.outcome is SignalOutcome.DEAD_LETTERED:
            message = f"{what} dead-lettered: {record.reason or 'no reason given'}"
            return [_alert(record.tenant_id, "signal_dead_lettered", "critical", message, change.at, **refs)]
        return []

    def _controls(self, change: StreamChange) -> list[Change]:
        control = TradingControl.model_validate(change.new)
        before = TradingControl.model_validate(change.old) if change.old else None
        if before is not None and before.model_dump() == control.model_dump():
            return []
        out = [Change(control.tenant_id, "controls", _public(control.model_dump(mode="json")))]
        if before is None or before.active != control.active:
            target = "" if control.target == "*" else f" {control.target}"
            state = "on" if control.active else "off"
            message = f"{control.scope}{target} switched {state} by {control.set_by}"
            if control.reason:
                message += f": {control.reason}"
            severity: Severity = "critical" if control.active else "info"
            out.append(_alert(control.tenant_id, "control_changed", severity, message, change.at))
        return out

    def _bars(self, change: StreamChange) -> list[Change]:
        assert change.new is not None
        tenant_id = str(change.new["tenant_id"])
        bar = Bar.model_validate(change.new)
        data = _public(bar.model_dump(mode="json"), "source_ts")
        return [Change(tenant_id, f"{QUOTES_PREFIX}{bar.symbol}", data)]
