"""A first end-to-end pass through the three handlers on moto, without the local cloud's pollers."""

from __future__ import annotations

from datetime import timedelta

from tradeflow.storage.fills import FillRepository
from tradeflow.storage.orders import OrderRepository
from tradeflow.storage.signals import SignalRepository

from helpers import (
    T0,
    TENANT,
    Context,
    account,
    as_sqs_event,
    bars,
    deployment,
    handler,
    receive,
    scheduler_event,
)


def test_signal_flows_to_a_fill(aws: object) -> None:
    account()
    deployment(symbols=("XYZ",))
    # 20 flat bars then a jump: the 5-bar SMA crosses above the 20-bar SMA on the last bar.
    closes = [100.0] * 21 + [110.0]
    made = bars(TENANT, "XYZ", closes, start=T0 - timedelta(minutes=len(closes)))
    now = made[-1].ts + timedelta(minutes=1)

    out = handler("strategy")(scheduler_event("XYZ", now), Context())
    assert out["action"] == "buy", out
    signals = receive("signals")
    assert len(signals) == 1

    result = handler("risk")(as_sqs_event("signals", signals), Context())
    assert result == {"batchItemFailures": []}
    intents = receive("orders")
    assert len(intents) == 1

    result = handler("execution")(as_sqs_event("orders", intents), Context())
    assert result == {"batchItemFailures": []}
    fills = FillRepository().list(TENANT, "paper-1")
    assert len(fills) == 1 and fills[0].quantity == 10
    record = SignalRepository().get(TENANT, out["signal_id"])
    assert record is not None and record.outcome.value == "filled"
    order = OrderRepository().get(TENANT, fills[0].client_order_id)
    assert order is not None and order.broker_order_id == f"paper-{order.client_order_id}"
