"""The local cloud end to end, on real market data: the demo trades, and the books balance.

`test_demo_books_balance` runs the local cloud in this process (accelerated replay), drains it, and
checks the books independently of the code that wrote them. `test_cli_done_when` runs the exact
command of the issue's definition of done in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tradeflow.brokers.paper import PaperBroker, PaperConfig
from tradeflow.domain import Fill, Order, Position, SignalRecord
from tradeflow.local.cloud import LocalCloud, LocalCloudConfig
from tradeflow.local.demo import DEMO_ACCOUNT, DEMO_TENANT, STARTING_CASH
from tradeflow.local.moto_server import free_port, free_ports
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.bars import BarRepository
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.ledger import LedgerRepository

pytestmark = pytest.mark.e2e
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


@pytest.fixture
def drained_cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCloud]:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    cloud = LocalCloud(
        LocalCloudConfig(aws_port=free_port(), speed=240, duration=20, start=datetime(2026, 3, 2, 14, 0, tzinfo=UTC))
    )
    cloud.start()
    try:
        cloud.run()
        assert cloud.drain(timeout=60), "the pipeline did not drain within 60 s"
        yield cloud
    finally:
        cloud.shutdown()


def test_demo_books_balance(drained_cloud: LocalCloud) -> None:
    summary = drained_cloud.summary()
    assert summary.fills > 0
    assert summary.dead_letters == 0
    assert summary.signals > 0

    # Every signal has exactly one final outcome, and a filled one has exactly one order.
    signals = [SignalRecord.model_validate(i) for i in DynamoTable("signals").scan()]
    assert all(s.outcome.final for s in signals), {s.signal_id: s.outcome for s in signals if not s.outcome.final}
    orders = [Order.model_validate(i) for i in DynamoTable("orders").scan()]
    by_signal = defaultdict(list)
    for order in orders:
        by_signal[order.signal_id].append(order)
    assert all(len(v) == 1 for v in by_signal.values())
    for s in signals:
        if s.outcome.value == "filled":
            assert len(by_signal[s.signal_id]) == 1

    # Fills add up per order and per position.
    fills = [Fill.model_validate(i) for i in DynamoTable("fills").scan()]
    assert len(fills) == summary.fills
    filled_by_order: dict[str, Decimal] = defaultdict(Decimal)
    signed_by_symbol: dict[str, Decimal] = defaultdict(Decimal)
    for fill in fills:
        filled_by_order[fill.client_order_id] += fill.quantity
        signed_by_symbol[fill.symbol] += fill.quantity * fill.side.sign
    for order in orders:
        assert order.filled_quantity == filled_by_order[order.client_order_id]
    positions = {
        p.symbol: p for p in (Position.model_validate(i) for i in DynamoTable("positions").scan()) if p.quantity
    }
    assert {s: p.quantity for s, p in positions.items()} == {s: q for s, q in signed_by_symbol.items() if q}

    # Cash is the sum of the ledger, and equals starting cash less what fills paid and fees.
    account = AccountRepository().get(DEMO_TENANT, DEMO_ACCOUNT)
    assert account is not None
    ledger = LedgerRepository().list(DEMO_TENANT, DEMO_ACCOUNT)
    assert account.cash == sum((e.amount for e in ledger), Decimal(0))
    paid = sum((f.quantity * f.price * f.side.sign for f in fills), Decimal(0))
    fees = sum((f.fee for f in fills), Decimal(0))
    assert account.cash == STARTING_CASH - paid - fees
    assert account.pending == {}, "reservations must all be released once the orders are final"

    # cash + position value = equity, and equity = start + realized + unrealized - fees.
    bars = BarRepository()
    marks = {s: bars.latest(DEMO_TENANT, s, "1m", FAR_FUTURE, 1)[-1].close for s in positions}
    value = sum((p.quantity * marks[s] for s, p in positions.items()), Decimal(0))
    equity = Decimal(summary.equity[f"{DEMO_TENANT}/{DEMO_ACCOUNT}"])
    assert equity == (account.cash + value).quantize(Decimal("0.01"))
    realized = sum((Position.model_validate(i).realized_pnl for i in DynamoTable("positions").scan()), Decimal(0))
    unrealized = sum(((marks[s] - p.average_price) * p.quantity for s, p in positions.items()), Decimal(0))
    assert abs((STARTING_CASH + realized + unrealized - fees) - (account.cash + value)) < Decimal("0.0001")

    # The simulated broker's own books agree with ours (what reconciliation will check live).
    account_config = PaperConfig.model_validate(account.broker_config)
    broker = PaperBroker(DEMO_TENANT, DEMO_ACCOUNT, account_config, clock=lambda: FAR_FUTURE)
    assert {p.symbol: p.quantity for p in broker.positions()} == {s: p.quantity for s, p in positions.items()}
    assert broker.open_orders() == []


def test_cli_done_when(tmp_path: Path) -> None:
    """`tradeflow local up --speed 60 --duration 60 --summary-json s.json` ends by itself with fills
    and no dead letters."""
    summary_path = tmp_path / "s.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    aws_port, api_port, ws_port = free_ports(3)
    command = [
        sys.executable,
        "-m",
        "tradeflow.cli",
        "local",
        "up",
        "--speed",
        "60",
        "--duration",
        "60",
        "--summary-json",
        str(summary_path),
        "--aws-port",
        str(aws_port),
        "--api-port",
        str(api_port),
        "--ws-port",
        str(ws_port),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    assert set(summary) >= {"signals", "orders", "fills", "rejections", "dead_letters", "equity"}
    assert summary["fills"] > 0, done.stdout[-3000:]
    assert summary["dead_letters"] == 0
    assert "FILL" in done.stdout and "SIGNAL" in done.stdout
    assert "REST API http://127.0.0.1:" in done.stdout and "export TOKEN=" in done.stdout
