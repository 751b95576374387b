"""Builders shared by integration and e2e tests."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradeflow.brokers.paper import PaperBroker, PaperConfig
from tradeflow.catalogue import FUNCTIONS, QUEUES, schedule_group_name
from tradeflow.domain import (
    Bar,
    Deployment,
    Order,
    OrderSide,
    OrderType,
    RiskProfile,
    SizingMethod,
    SizingRule,
    TimeInForce,
)
from tradeflow.execution.accounts import open_account
from tradeflow.local.cloud import LocalCloud, LocalCloudConfig
from tradeflow.local.lambdas import load_handler
from tradeflow.local.moto_server import free_ports
from tradeflow.local.replay import Feed, MarketReplay
from tradeflow.local.sqs_delivery import sqs_event
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.aws import client
from tradeflow.scheduling.deployments import DeploymentService
from tradeflow.scheduling.schedules import SCHEDULED_TIME, scheduler_role_arn, strategy_target_arn
from tradeflow.storage.bars import BarRepository

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
TENANT = "acme"
ACCOUNT = "paper-1"
DEPLOYMENT = "dep-1"

_handlers: dict[str, Any] = {}


def handler(name: str) -> Any:
    """A function's handler, loaded once per test session like a warm Lambda."""
    if name not in _handlers:
        _handlers[name] = load_handler(name)
    return _handlers[name]


class Context:
    function_name = "test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def account(
    tenant: str = TENANT,
    account_id: str = ACCOUNT,
    cash: Decimal = Decimal(100_000),
    fill_model: str = "last_price",
    **config: Any,
) -> None:
    open_account(tenant, account_id, cash, T0 - timedelta(days=1), broker_config={"fill_model": fill_model, **config})


def deployment(
    tenant: str = TENANT,
    deployment_id: str = DEPLOYMENT,
    account_id: str = ACCOUNT,
    symbols: tuple[str, ...] = ("GOOG",),
    risk: RiskProfile | None = None,
    params: dict[str, Any] | None = None,
    strategy: str = "sma_cross",
) -> Deployment:
    dep = Deployment(
        tenant_id=tenant,
        deployment_id=deployment_id,
        strategy=strategy,
        params=params or {"fast": 5, "slow": 20},
        symbols=list(symbols),
        account_id=account_id,
        risk=risk or RiskProfile(sizing=SizingRule(method=SizingMethod.FIXED_QUANTITY, quantity=Decimal(10))),
        created_at=T0 - timedelta(days=1),
        updated_at=T0 - timedelta(days=1),
    )
    DeploymentService().deploy(dep)
    return dep


def replay(tenant: str, symbols: tuple[str, ...], origin: datetime = T0, warmup: int = 40) -> MarketReplay:
    """Real bars re-based onto 1-minute bars ending at `origin` (warm-up published)."""
    feeds = [Feed(tenant, s, s) for s in symbols]
    market = MarketReplay(feeds, origin, warmup)
    market.publish_due(origin)
    return market


def bars(tenant: str, symbol: str, closes: list[float], start: datetime = T0, timeframe: str = "1m") -> list[Bar]:
    made = [
        Bar(
            symbol=symbol,
            timeframe=timeframe,
            ts=start + timedelta(minutes=i),
            open=Decimal(str(c)),
            high=Decimal(str(c)) * Decimal("1.01"),
            low=Decimal(str(c)) * Decimal("0.99"),
            close=Decimal(str(c)),
            volume=Decimal(1000),
        )
        for i, c in enumerate(closes)
    ]
    BarRepository().put_many(tenant, made)
    return made


def receive(queue: str, dlq: bool = False, max_messages: int = 100) -> list[dict[str, Any]]:
    """Every message currently visible in a catalogue queue (or its DLQ), with attributes."""
    spec = QUEUES[queue]
    url = SqsQueues().url(spec.dead_letter_target() if dlq else spec.physical_name())
    found: list[dict[str, Any]] = []
    while len(found) < max_messages:
        page = client("sqs").receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = page.get("Messages", [])
        if not messages:
            break
        found.extend(messages)
    return found


def as_sqs_event(queue: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return sqs_event(f"arn:aws:sqs:us-east-1:123456789012:{QUEUES[queue].physical_name()}", messages)


def fake_message(body: Any, group: str = "g", message_id: str = "m-1", receive_count: int = 1) -> dict[str, Any]:
    """A received-message shape for a body we craft (e.g. poison)."""
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"rh-{message_id}",
        "Body": body if isinstance(body, str) else json.dumps(body),
        "Attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1767623400000",
            "MessageGroupId": group,
            "MessageDeduplicationId": message_id,
            "SequenceNumber": "1",
            "SenderId": "test",
            "ApproximateFirstReceiveTimestamp": "1767623400000",
        },
        "MD5OfBody": "",
    }


def scheduler_event(symbol: str, at: datetime, tenant: str = TENANT, dep: str = DEPLOYMENT) -> dict[str, Any]:
    return {"tenant_id": tenant, "deployment_id": dep, "symbol": symbol, "scheduled_time": at.isoformat()}


# --- builders for the broker, storage, scheduler and replay tests ---------------------------------


class Clock:
    """A settable clock for code that takes `clock: Callable[[], datetime]`."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def dec(value: float | str | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def ohlc(
    symbol: str,
    ts: datetime,
    open_: float | str,
    high: float | str,
    low: float | str,
    close: float | str,
    timeframe: str = "1m",
) -> Bar:
    """One bar with exactly these prices (not stored)."""
    return Bar(
        symbol=symbol,
        timeframe=timeframe,
        ts=ts,
        open=dec(open_),
        high=dec(high),
        low=dec(low),
        close=dec(close),
        volume=Decimal(1000),
    )


def store_bars(tenant: str, *made: Bar) -> list[Bar]:
    BarRepository().put_many(tenant, list(made))
    return list(made)


def paper_order(
    client_order_id: str,
    side: str = "buy",
    quantity: float | str = 10,
    order_type: str = "market",
    tif: str = "gtc",
    limit: float | str | None = None,
    stop: float | str | None = None,
    symbol: str = "XYZ",
    tenant: str = TENANT,
    account_id: str = ACCOUNT,
) -> Order:
    return Order(
        tenant_id=tenant,
        account_id=account_id,
        client_order_id=client_order_id,
        symbol=symbol,
        side=OrderSide(side),
        quantity=dec(quantity),
        order_type=OrderType(order_type),
        time_in_force=TimeInForce(tif),
        limit_price=None if limit is None else dec(limit),
        stop_price=None if stop is None else dec(stop),
        created_at=T0,
        updated_at=T0,
    )


def paper_broker(
    tenant: str = TENANT, account_id: str = ACCOUNT, clock: Clock | None = None, **config: Any
) -> PaperBroker:
    return PaperBroker(tenant, account_id, PaperConfig(**config), clock=clock or Clock(T0 + timedelta(minutes=1)))


class FakeLambdas:
    """Stands in for `LocalLambdas`: knows the catalogue's functions by ARN, records every invocation
    and fails the first `failures` of them (or all, with failures=-1)."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def by_arn(self, arn: str) -> str | None:
        function = arn.rsplit(":", 1)[-1]
        return next((n for n in FUNCTIONS if FUNCTIONS[n].physical_name() == function), None)

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        self.calls.append((name, event))
        if self.failures < 0 or len(self.calls) <= self.failures:
            raise RuntimeError(f"boom #{len(self.calls)}")
        return {"ok": True}


def create_schedule(
    name: str,
    expression: str,
    *,
    state: str = "ENABLED",
    payload: str | None = None,
    retries: int = 0,
    target_arn: str | None = None,
) -> str:
    """A schedule in the catalogue's group, created straight through boto3 (as the API would)."""
    out = client("scheduler").create_schedule(
        Name=name,
        GroupName=schedule_group_name(),
        ScheduleExpression=expression,
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        State=state,
        Target={
            "Arn": target_arn or strategy_target_arn(),
            "RoleArn": scheduler_role_arn(),
            "Input": payload if payload is not None else json.dumps({"name": name, "at": SCHEDULED_TIME}),
            "RetryPolicy": {"MaximumRetryAttempts": retries, "MaximumEventAgeInSeconds": 300},
        },
    )
    arn: str = out["ScheduleArn"]
    return arn


# -- added for the integration tests of the handlers' failure paths ------------------------------


def handler_globals(name: str) -> dict[str, Any]:
    """The module namespace of a loaded handler (its `service`, `queues` ...), for monkeypatching."""
    import inspect

    namespace: dict[str, Any] = inspect.unwrap(handler(name)).__globals__
    return namespace


def make_signal(
    symbol: str = "GOOG",
    action: str = "buy",
    price: Decimal = Decimal(100),
    at: datetime = T0,
    tenant: str = TENANT,
    dep: str = DEPLOYMENT,
    account_id: str = ACCOUNT,
) -> Any:
    """A signal as the strategy function emits it for the bar closing at `at` (decided at `at`)."""
    from tradeflow.domain import Signal, SignalAction
    from tradeflow.domain.ids import signal_id

    bar_time = at - timedelta(minutes=1)
    return Signal(
        signal_id=signal_id(tenant, dep, symbol, bar_time, SignalAction(action)),
        tenant_id=tenant,
        deployment_id=dep,
        account_id=account_id,
        symbol=symbol,
        action=SignalAction(action),
        bar_time=bar_time,
        generated_at=at,
        price=price,
        strategy="sma_cross",
    )


def emit(signal: Any) -> None:
    """What the strategy function does with a signal: journal it (pending), then queue it."""
    from tradeflow.storage.signals import SignalRepository

    SignalRepository().record_new(signal)
    SqsQueues().send("signals", signal.model_dump_json(), signal.group_id, signal.signal_id)


def deliver(function: str, queue: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """One batch through a function as an SQS event source mapping delivers it: invoke, delete the
    messages that succeeded, and make the failed ones visible again at once (standing in for the
    visibility timeout), so the next `receive` is their redelivery."""
    result: dict[str, Any] = handler(function)(as_sqs_event(queue, messages), Context())
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    url = SqsQueues().url(QUEUES[queue].physical_name())
    sqs = client("sqs")
    for m in messages:
        if m["MessageId"] in failed:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        else:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return result


def failed_ids(result: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


def reason_of(message: dict[str, Any]) -> str:
    reason: str = message["MessageAttributes"]["reason"]["StringValue"]
    return reason


def broker_order_count(tenant: str = TENANT, account_id: str = ACCOUNT) -> int:
    """How many orders the paper broker holds for the account (its own order book)."""
    from tradeflow.storage.dynamo import DynamoTable

    items = DynamoTable("paper_orders").query(f"{tenant}#{account_id}")
    return sum(1 for i in items if not str(i["sk"]).startswith("#"))  # "#account": running totals


def assert_books_consistent(tenant: str = TENANT, account_id: str = ACCOUNT) -> None:
    """The books' invariants: cash is the sum of the ledger; each position is the signed sum of its
    fills; each order's filled quantity is the sum of its fills; and our positions agree with the
    paper broker's own book."""
    from tradeflow.brokers.factory import broker_for
    from tradeflow.storage.accounts import AccountRepository
    from tradeflow.storage.fills import FillRepository
    from tradeflow.storage.ledger import LedgerRepository
    from tradeflow.storage.orders import OrderRepository
    from tradeflow.storage.positions import PositionRepository

    acct = AccountRepository().get(tenant, account_id)
    assert acct is not None, f"account {account_id} missing"
    ledger = LedgerRepository().list(tenant, account_id)
    assert acct.cash == sum((e.amount for e in ledger), Decimal(0)), (acct.cash, [e.amount for e in ledger])
    fills = FillRepository().list(tenant, account_id)
    by_symbol: dict[str, Decimal] = {}
    by_order: dict[str, Decimal] = {}
    for f in fills:
        by_symbol[f.symbol] = by_symbol.get(f.symbol, Decimal(0)) + f.quantity * f.side.sign
        by_order[f.client_order_id] = by_order.get(f.client_order_id, Decimal(0)) + f.quantity
    positions = {p.symbol: p.quantity for p in PositionRepository().list(tenant, account_id)}
    for symbol in set(positions) | set(by_symbol):
        assert positions.get(symbol, Decimal(0)) == by_symbol.get(symbol, Decimal(0)), (symbol, positions, by_symbol)
    orders = OrderRepository().list_for_account(tenant, account_id)
    for order in orders:
        assert order.filled_quantity == by_order.get(order.client_order_id, Decimal(0)), order
    assert set(by_order) <= {o.client_order_id for o in orders}, "a fill of an order we have no record of"
    if acct.broker == "paper":
        broker = broker_for(acct, T0)
        theirs = {p.symbol: p.quantity for p in broker.positions()}
        ours = {s: q for s, q in positions.items() if q != 0}
        assert theirs == ours, (theirs, ours)


def chromium_path(needed_by: str) -> str:
    """Debian's chromium, required (never skipped): `make test` installs it when missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            f"chromium is not on PATH: {needed_by} needs it. Install it with "
            "`apt-get install -y --no-install-recommends chromium` (`make test` does this when it is missing)."
        )
    return found


REPLAY_START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


@contextmanager
def running_cloud(
    key_dir: Path, symbols: list[str], speed: float = 120, websocket: bool = True
) -> Iterator[LocalCloud]:
    """The local cloud as `make run` starts it — the demo trading, the REST API and (with `websocket`) the
    WebSocket gateway — on free ports and a fast replay clock driven by a thread; tokens from a dev issuer
    keyed in `key_dir`. The environment the cloud exports is restored afterwards."""
    saved = dict(os.environ)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    os.environ["TRADEFLOW_DEV_KEY_FILE"] = str(key_dir / "dev-issuer.pem")
    aws_port, api_port, ws_port = free_ports(3)
    cloud = LocalCloud(
        LocalCloudConfig(
            aws_port=aws_port,
            api_port=api_port,
            ws_port=ws_port if websocket else None,
            speed=speed,
            start=REPLAY_START,
            demo_symbols=symbols,
        )
    )
    clock: threading.Thread | None = None
    try:
        cloud.start()
        clock = threading.Thread(target=cloud.run, name="clock", daemon=True)
        clock.start()
        yield cloud
    finally:
        cloud.stop_event.set()
        if clock is not None:
            clock.join(timeout=10)
        cloud.shutdown()
        os.environ.clear()
        os.environ.update(saved)
