"""The broadcaster on moto: real DynamoDB stream records of the books -> updates posted to connections.

Records are written as the repositories write them, read back from moto's DynamoDB Streams, and handed to
`broadcast_stream_batch` as the Lambda event source would; a recording poster stands in for the API
Gateway Management API (tests/e2e/test_live_updates.py runs the real gateway).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tradeflow.api.views import fill_view, order_view
from tradeflow.catalogue import TABLES
from tradeflow.domain import (
    Bar,
    Evaluation,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    Position,
    SignalAction,
    SignalOutcome,
    SignalRecord,
)
from tradeflow.domain.controls import GLOBAL_TENANT, ControlScope, TradingControl
from tradeflow.realtime.broadcast import Broadcaster, broadcast_stream_batch
from tradeflow.realtime.changes import ChangeTranslator
from tradeflow.realtime.connections import Connection, ConnectionRepository, expiry
from tradeflow.realtime.service import ConnectionGone
from tradeflow.runtime.aws import client
from tradeflow.storage.dynamo import DynamoTable, model_item
from tradeflow.storage.keys import tenant_account
from tradeflow.storage.orders import OrderRepository

from helpers import receive

NOW = datetime.now(UTC).replace(microsecond=0)
ENDPOINT = "http://gateway.invalid/local"


class RecordingPoster:
    """Keeps every frame per connection; `gone` answer 410, `broken` fail otherwise."""

    def __init__(self, gone: set[str] = frozenset(), broken: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.frames: dict[str, list[dict[str, Any]]] = {}
        self.gone, self.broken = set(gone), set(broken)
        self.lock = threading.Lock()

    def post(self, endpoint: str, connection_id: str, data: bytes) -> None:
        assert endpoint == ENDPOINT
        if connection_id in self.gone:
            raise ConnectionGone(connection_id)
        if connection_id in self.broken:
            raise TimeoutError("read timed out")
        with self.lock:
            self.frames.setdefault(connection_id, []).append(json.loads(data))

    def of(self, connection_id: str) -> list[dict[str, Any]]:
        return self.frames.get(connection_id, [])


def connect(tenant: str, connection_id: str, *channels: str, now: datetime = NOW) -> None:
    repo = ConnectionRepository()
    repo.put(
        Connection(tenant_id=tenant, connection_id=connection_id, user_id="u", connected_at=now, expires_at=expiry(now))
    )
    if channels:
        repo.subscribe(tenant, connection_id, channels, now)


def stream_records(*tables: str) -> list[dict[str, Any]]:
    """Everything moto's streams hold for these tables, oldest first, shaped like a Lambda stream event."""
    streams, out = client("dynamodbstreams"), []
    for table in tables:
        arn = client("dynamodb").describe_table(TableName=TABLES[table].physical_name())["Table"]["LatestStreamArn"]
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for record in streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]:
                record["eventSourceARN"] = arn
                created = record["dynamodb"].get("ApproximateCreationDateTime")
                if isinstance(created, datetime):
                    record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
                out.append(record)
    return out


def run(poster: RecordingPoster, *tables: str, records: list[dict[str, Any]] | None = None) -> Any:
    dead: list[tuple[Mapping[str, Any], str]] = []
    outcome = broadcast_stream_batch(
        records if records is not None else stream_records(*tables),
        NOW,
        ChangeTranslator(),
        Broadcaster(poster=poster, endpoint=ENDPOINT, workers=4),
        lambda record, reason: dead.append((record, reason)),
    )
    outcome.dead = dead
    return outcome


def order(tenant: str = "acme", coid: str = "tfs-1", **changes: Any) -> Order:
    fields: dict[str, Any] = {
        "tenant_id": tenant,
        "account_id": "paper-1",
        "client_order_id": coid,
        "signal_id": "sig-00001",
        "deployment_id": "dep-1",
        "symbol": "GOOG",
        "side": OrderSide.BUY,
        "quantity": Decimal(5),
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(changes)
    return Order(**fields)


def save_order(o: Order) -> None:
    DynamoTable("orders").put(OrderRepository.item(o))


def test_an_order_goes_to_its_tenants_subscribers_only_as_the_rest_view(aws: object) -> None:
    connect("acme", "a1", "orders")
    connect("acme", "a2", "fills")  # not subscribed to orders
    connect("globex", "g1", "orders", "fills", "positions", "alerts")
    poster = RecordingPoster()
    o = order()
    save_order(o)
    outcome = run(poster, "orders")
    assert [f["channel"] for f in poster.of("a1")] == ["orders"]
    frame = poster.of("a1")[0]
    assert frame["type"] == "update" and frame["seq"] == 1 and frame["data"] == order_view(o).model_dump(mode="json")
    assert poster.of("a2") == [] and poster.of("g1") == []
    assert outcome.report.delivered == 1 and outcome.dead == []


def test_sequence_numbers_continue_across_batches_and_skip_invisible_changes(aws: object) -> None:
    connect("acme", "a1", "orders", "alerts")
    poster = RecordingPoster()
    o = order()
    save_order(o)
    first = stream_records("orders")
    run(poster, records=first)
    save_order(o.model_copy(update={"version": 1, "reserved_notional": Decimal(10)}))  # bookkeeping only
    rejected = o.model_copy(
        update={"status": OrderStatus.REJECTED, "reject_reason": "insufficient buying power", "version": 2}
    )
    save_order(rejected)
    run(poster, records=stream_records("orders")[len(first) :])
    frames = poster.of("a1")
    assert [(f["channel"], f["seq"]) for f in frames] == [("orders", 1), ("orders", 2), ("alerts", 3)]
    assert frames[1]["data"]["status"] == "rejected"
    alert = frames[2]["data"]
    assert alert["kind"] == "order_rejected" and "insufficient buying power" in alert["message"]
    assert alert["client_order_id"] == "tfs-1"


def test_fills_positions_evaluations_journal_controls_and_quotes(aws: object) -> None:
    channels = ("fills", "positions", "signals", "alerts", "controls", "quotes:GOOG")
    connect("acme", "a1", *channels)
    fill = Fill(
        fill_id="f-1",
        tenant_id="acme",
        account_id="paper-1",
        client_order_id="tfs-1",
        symbol="GOOG",
        side=OrderSide.BUY,
        quantity=Decimal(5),
        price=Decimal("100.5"),
        ts=NOW,
        broker_fill_ref="b-1",
    )
    DynamoTable("fills").put(model_item(fill, pk=tenant_account("acme", "paper-1"), sk="f-1"))
    position = Position(
        tenant_id="acme", account_id="paper-1", symbol="GOOG", quantity=Decimal(5), average_price=Decimal("100.5"),
        last_price=Decimal("100.5"), opened_at=NOW, updated_at=NOW,
    )  # fmt: skip
    DynamoTable("positions").put(model_item(position, pk=tenant_account("acme", "paper-1"), sk="GOOG"))
    evaluation = Evaluation(
        tenant_id="acme", deployment_id="dep-1", symbol="GOOG", evaluated_at=NOW, bar_time=NOW,
        action=SignalAction.BUY, signal_id="sig-00001", reasons={"trend": "fast above slow"},
    )  # fmt: skip
    DynamoTable("evaluations").put(model_item(evaluation, pk="acme#dep-1#GOOG", sk=NOW.isoformat()))
    journal = SignalRecord(
        tenant_id="acme", signal_id="sig-00002", deployment_id="dep-1", account_id="paper-1", symbol="GOOG",
        action=SignalAction.BUY, bar_time=NOW, outcome=SignalOutcome.PENDING, updated_at=NOW, created_at=NOW,
    )  # fmt: skip
    DynamoTable("signals").put(model_item(journal, pk="acme", sk="sig-00002"))
    rejected = journal.model_copy(update={"outcome": SignalOutcome.REJECTED, "reason": "max open positions (3)"})
    DynamoTable("signals").put(model_item(rejected, pk="acme", sk="sig-00002"))
    control = TradingControl(tenant_id="acme", scope=ControlScope.KILL_SWITCH, active=True, reason="x", updated_at=NOW)
    DynamoTable("controls").put(model_item(control, pk="acme", sk=control.key))
    bar = Bar(symbol="GOOG", ts=NOW, open=Decimal(1), high=Decimal(2), low=Decimal(1), close=Decimal("1.5"))
    DynamoTable("bars").put(model_item(bar, pk="acme#GOOG#1m", sk=NOW.isoformat(), tenant_id="acme"))
    DynamoTable("bars").put(
        model_item(bar.model_copy(update={"symbol": "SPY"}), pk="acme#SPY#1m", sk="x", tenant_id="acme")
    )

    poster = RecordingPoster()
    outcome = run(poster, "fills", "positions", "evaluations", "signals", "controls", "bars")
    frames = poster.of("a1")
    by_channel: dict[str, list[dict[str, Any]]] = {}
    for f in frames:
        by_channel.setdefault(f["channel"], []).append(f["data"])
    assert by_channel["fills"] == [fill_view(fill).model_dump(mode="json")]
    [pos] = by_channel["positions"]
    assert pos["quantity"] == "5" and pos["mark_price"] == "1.5" and pos["mark_source"] == "bar"  # as REST marks it
    [ev] = by_channel["signals"]
    assert ev["reasons"] == {"trend": "fast above slow"} and ev["action"] == "buy" and "tenant_id" not in ev
    kinds = [a["kind"] for a in by_channel["alerts"]]
    assert kinds == ["signal_rejected", "control_changed"]
    assert "max open positions (3)" in by_channel["alerts"][0]["message"]
    assert by_channel["controls"][0]["scope"] == "kill_switch" and by_channel["controls"][0]["active"] is True
    assert [q["symbol"] for q in by_channel["quotes:GOOG"]] == ["GOOG"]  # not SPY: not subscribed
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert outcome.dead == []


def test_a_global_halt_reaches_every_tenant(aws: object) -> None:
    connect("acme", "a1", "controls")
    connect("globex", "g1", "controls")
    connect("initech", "i1")  # connected, subscribed to nothing
    halt = TradingControl(
        tenant_id=GLOBAL_TENANT, scope=ControlScope.GLOBAL_HALT, active=True, reason="exchange outage", set_by="ops",
        updated_at=NOW,
    )  # fmt: skip
    DynamoTable("controls").put(model_item(halt, pk=GLOBAL_TENANT, sk=halt.key))
    poster = RecordingPoster()
    run(poster, "controls")
    for connection_id in ("a1", "g1"):
        [frame] = poster.of(connection_id)
        assert frame["data"]["scope"] == "global_halt" and frame["data"]["reason"] == "exchange outage"
    assert poster.of("i1") == []


def test_gone_connections_are_deleted_and_a_broken_one_does_not_stop_the_others(aws: object) -> None:
    for connection_id in ("a1", "a2", "a3"):
        connect("acme", connection_id, "orders")
    poster = RecordingPoster(gone={"a2"}, broken={"a3"})
    save_order(order())
    outcome = run(poster, "orders")
    assert len(poster.of("a1")) == 1
    assert outcome.report.gone == 1 and outcome.report.failed == 1 and outcome.report.delivered == 1
    assert "a3: TimeoutError" in outcome.report.errors[0]
    repo = ConnectionRepository()
    assert repo.get("acme", "a2") is None  # 410: forgotten
    assert repo.get("acme", "a3") is not None  # a failure is not a disconnect


def test_expired_connections_are_not_served(aws: object) -> None:
    connect("acme", "old", "orders", now=NOW - timedelta(hours=3))  # TTL passed; DynamoDB deletes it lazily
    poster = RecordingPoster()
    save_order(order())
    run(poster, "orders")
    assert poster.of("old") == []


def test_an_unreadable_record_is_dead_lettered_and_the_rest_delivered(aws: object) -> None:
    connect("acme", "a1", "orders")
    save_order(order())
    records = stream_records("orders")
    poison = json.loads(json.dumps(records[0], default=str))
    poison["eventID"] = "poison-1"
    poison["dynamodb"]["NewImage"]["side"] = {"S": "sideways"}
    poster = RecordingPoster()
    outcome = run(poster, records=[poison, *records])
    assert len(poster.of("a1")) == 1
    [(record, reason)] = outcome.dead
    assert record["eventID"] == "poison-1" and "orders" in reason and "side" in reason


def test_the_handler_dead_letters_with_the_reason(aws: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers import Context, handler

    monkeypatch.setenv("TRADEFLOW_WS_MANAGEMENT_URL", ENDPOINT)
    save_order(order())
    poison = json.loads(json.dumps(stream_records("orders")[0], default=str))
    poison["dynamodb"]["NewImage"]["quantity"] = {"S": "-3"}
    assert handler("broadcaster")({"Records": [poison]}, Context()) == {"batchItemFailures": []}
    [dead] = receive("dead_events")
    assert "quantity" in dead["MessageAttributes"]["reason"]["StringValue"]
