"""Warm, in-process latency of each handler against moto's server (p50/p99 per invocation).

Events are realistic: scheduled evaluations over real replayed bars, fresh signals, the intents risk
produced, and bar-insert stream records. The reference printed beside each figure is the cost of one
DynamoDB GetItem round trip to the same server: handler latency is mostly such round trips.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

from tradeflow.bench.seed import ACCOUNT, DEPLOYMENT, TENANT, seed_bench
from tradeflow.bench.stats import describe, percentile
from tradeflow.catalogue import QUEUES
from tradeflow.domain import Signal, SignalAction
from tradeflow.domain.ids import signal_id
from tradeflow.local.clock import floor_minute
from tradeflow.local.environment import use_local_cloud
from tradeflow.local.lambdas import LambdaContext, load_handler
from tradeflow.local.moto_server import MotoServer, free_port
from tradeflow.local.provision import provision
from tradeflow.local.replay import Feed, MarketReplay
from tradeflow.local.sqs_delivery import sqs_event
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.aws import client
from tradeflow.storage.dynamo import DynamoTable, serialize


def _timed(call: Any, *args: Any) -> float:
    started = time.perf_counter()
    call(*args)
    return (time.perf_counter() - started) * 1000


def _receive_all(queue: str) -> list[dict[str, Any]]:
    url = SqsQueues().url(QUEUES[queue].physical_name())
    found: list[dict[str, Any]] = []
    while True:
        page = client("sqs").receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageSystemAttributeNames=["All"]
        )
        if not page.get("Messages"):
            return found
        found.extend(page["Messages"])
        # Delete as we go: a FIFO group hands out nothing more while messages of it are in flight.
        client("sqs").delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(page["Messages"])],
        )


def measure(n: int = 200) -> dict[str, list[float]]:
    server = MotoServer(free_port())
    server.start()
    try:
        use_local_cloud(server.endpoint)
        provision()
        from datetime import UTC, datetime

        origin = floor_minute(datetime(2026, 1, 5, 14, 30, tzinfo=UTC))
        seed_bench(origin, ["GOOG"], Decimal(10_000_000))
        replay = MarketReplay([Feed(TENANT, "GOOG", "GOOG")], origin, warmup=40)
        replay.publish_due(origin + timedelta(minutes=n + 1))
        handlers = {name: load_handler(name) for name in ("strategy", "risk", "execution", "paper_exchange")}
        ctx = {name: LambdaContext(f"tradeflow-bench-{name}", 256, 30) for name in handlers}
        results: dict[str, list[float]] = {}

        table = DynamoTable("deployments")
        results["reference: one GetItem"] = [_timed(table.get, {"pk": TENANT, "sk": DEPLOYMENT}) for _ in range(n)]
        results["strategy"] = [
            _timed(
                handlers["strategy"],
                {
                    "tenant_id": TENANT,
                    "deployment_id": DEPLOYMENT,
                    "symbol": "GOOG",
                    "scheduled_time": (origin + timedelta(minutes=i + 1)).isoformat(),
                },
                ctx["strategy"],
            )
            for i in range(n)
        ]
        _receive_all("signals")  # drop what the strategy emitted: risk gets a controlled stream
        risk_samples = []
        for i in range(n):
            action = SignalAction.BUY if i % 2 == 0 else SignalAction.SELL
            bar_time = origin + timedelta(minutes=i)
            signal = Signal(
                signal_id=signal_id(TENANT, DEPLOYMENT, "GOOG", bar_time, action.value),
                tenant_id=TENANT,
                deployment_id=DEPLOYMENT,
                account_id=ACCOUNT,
                symbol="GOOG",
                action=action,
                bar_time=bar_time,
                generated_at=bar_time + timedelta(minutes=1),
                price=Decimal("100"),
                strategy="sma_cross",
            )
            message = {
                "MessageId": f"m{i}",
                "ReceiptHandle": f"r{i}",
                "Body": signal.model_dump_json(),
                "Attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": signal.group_id},
            }
            event = sqs_event("arn:aws:sqs:us-east-1:123456789012:signals", [message])
            risk_samples.append(_timed(handlers["risk"], event, ctx["risk"]))
        results["risk"] = risk_samples
        intents = _receive_all("orders")
        results["execution"] = [
            _timed(handlers["execution"], sqs_event("arn:aws:sqs:us-east-1:123456789012:orders", [m]), ctx["execution"])
            for m in intents
        ]
        bars = list(DynamoTable("bars").scan())[:n]
        results["paper_exchange"] = [
            _timed(
                handlers["paper_exchange"],
                {
                    "Records": [
                        {
                            "eventID": str(i),
                            "eventName": "INSERT",
                            "eventSource": "aws:dynamodb",
                            "dynamodb": {
                                "NewImage": serialize(item),
                                "SequenceNumber": str(i),
                                "StreamViewType": "NEW_IMAGE",
                            },
                        }
                    ]
                },
                ctx["paper_exchange"],
            )
            for i, item in enumerate(bars)
        ]
        return results
    finally:
        server.stop()


def report(results: dict[str, list[float]]) -> None:
    print("\n== warm handler latency, in-process against moto's server ==")
    reference = percentile(results["reference: one GetItem"], 50)
    for name, samples in results.items():
        ratio = percentile(samples, 50) / reference if reference else float("nan")
        print(f"  {name:<24} {describe(samples)}   {ratio:5.1f}x one GetItem")
