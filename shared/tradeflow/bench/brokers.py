"""Real brokers: what a broker account costs the execution function.

1. **Cold import** of the execution function (fresh interpreter, set up like Lambda's, median): on the
   paper path (the handler alone; it must import neither alpaca-py nor ccxt) and on each broker path
   (the handler plus the adapter module an Alpaca or ccxt account loads on its first order).
2. **Order round trip** through each adapter against its local stub (submit a resting limit order and
   get the broker's answer as a `BrokerOrder`; p50 of many), side by side with the reference: the same
   order POSTed to the same stub as one plain HTTP request (the floor any client pays on this machine).
   The ratio is what the SDK and our adapter add. ccxt is measured with its rate limiter on (as
   deployed: Binance's 50 ms between requests dominates) and off (the adapter's own cost).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import statistics
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from pydantic import SecretStr

from tradeflow.bench.cold_imports import handler_import, probe
from tradeflow.domain import Account, Bar, Order, OrderSide, OrderType, TimeInForce

BROKER_SDKS = ("alpaca", "ccxt")


def cold_imports(runs: int) -> list[dict[str, Any]]:
    paths = {
        "execution, paper path": handler_import("execution"),
        "execution + Alpaca adapter": handler_import("execution") + "\nimport tradeflow.brokers.alpaca",
        "execution + ccxt adapter": handler_import("execution") + "\nimport tradeflow.brokers.ccxt_exchange",
    }
    rows = []
    for label, body in paths.items():
        probe(body)  # compile the bytecode once, as a deployed package ships .pyc files
        samples = [probe(body) for _ in range(runs)]
        rows.append(
            {
                "path": label,
                "ms": statistics.median(float(str(s["ms"])) for s in samples),
                "sdks": sorted(set(map(str, samples[0]["heavy"])) & set(BROKER_SDKS)),  # type: ignore[call-overload]
            }
        )
    return rows


def _order(n: int, symbol: str, quantity: str, price: str) -> Order:
    now = datetime.now(UTC)
    return Order(
        tenant_id="bench",
        account_id="bench-acct",
        client_order_id=f"tf-bench-{n:06d}-{int(now.timestamp())}",
        broker="bench",
        symbol=symbol,
        side=OrderSide.BUY,
        quantity=Decimal(quantity),
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        limit_price=Decimal(price),
        created_at=now,
        updated_at=now,
    )


def _p50(call: Callable[[int], object], count: int) -> float:
    call(-1)  # warm: connections, markets loaded
    samples = []
    for n in range(count):
        started = time.perf_counter()
        call(n)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def _bar(symbol: str, price: str) -> Bar:
    ts = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    value = Decimal(price)
    return Bar(symbol=symbol, ts=ts, open=value, high=value, low=value, close=value, volume=Decimal(1))


def alpaca_round_trip(count: int) -> dict[str, Any]:
    from tradeflow.brokers.alpaca import AlpacaBroker
    from tradeflow.local.moto_server import free_port
    from tradeflow.local.stubs.alpaca import DEFAULT_KEY_ID, DEFAULT_SECRET, AlpacaStub

    with AlpacaStub(free_port(), cash=Decimal(10_000_000)) as stub:
        stub.publish_bar("AAPL", _bar("AAPL", "200"))
        broker = AlpacaBroker(DEFAULT_KEY_ID, DEFAULT_SECRET, paper=True, base_url=stub.base_url)
        adapter = _p50(lambda n: broker.submit(_order(n + 1, "AAPL", "1", "10")), count)
        headers = {
            "APCA-API-KEY-ID": DEFAULT_KEY_ID,
            "APCA-API-SECRET-KEY": DEFAULT_SECRET,
            "Content-Type": "application/json",
        }

        def raw(n: int) -> None:
            body = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "limit", "time_in_force": "gtc",
                    "limit_price": "10", "client_order_id": f"raw-{n}-{time.time_ns()}"}  # fmt: skip
            _post(f"{stub.base_url}/v2/orders", json.dumps(body).encode(), headers)

        reference = _p50(raw, count)
    return {"broker": "Alpaca (alpaca-py)", "adapter_ms": adapter, "reference_ms": reference}


def ccxt_round_trip(count: int, rate_limit: bool) -> dict[str, Any]:
    from tradeflow.accounts.credentials import CcxtCredentials
    from tradeflow.brokers.ccxt_exchange import CcxtBroker
    from tradeflow.brokers.endpoints import ENDPOINTS_ENV
    from tradeflow.local.moto_server import free_port
    from tradeflow.local.stubs.binance import DEFAULT_API_KEY, DEFAULT_SECRET, BinanceStub

    with BinanceStub(free_port(), balances={"USDT": Decimal(10_000_000)}) as stub:
        stub.publish_bar("BTC/USDT", _bar("BTC/USDT", "30000"))
        previous = os.environ.get(ENDPOINTS_ENV)
        os.environ[ENDPOINTS_ENV] = json.dumps({"binance": stub.base_url})
        try:
            now = datetime.now(UTC)
            account = Account(tenant_id="bench", account_id="bench-acct", broker="ccxt:binance", currency="USDT",
                              broker_config={"exchange": "binance", "sandbox": True}, created_at=now,
                              updated_at=now)  # fmt: skip
            credentials = CcxtCredentials(exchange="binance", api_key=DEFAULT_API_KEY,
                                          secret=SecretStr(DEFAULT_SECRET), sandbox=True)  # fmt: skip
            broker = CcxtBroker.connect(account, credentials)
            broker.exchange.enableRateLimit = rate_limit
            adapter = _p50(lambda n: broker.submit(_order(n + 1, "BTC/USDT", "0.001", "10000")), count)
        finally:
            if previous is None:
                os.environ.pop(ENDPOINTS_ENV, None)
            else:
                os.environ[ENDPOINTS_ENV] = previous

        def raw(n: int) -> None:
            params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
                      "price": "10000", "newClientOrderId": f"raw-{n}-{time.time_ns()}",
                      "timestamp": str(int(time.time() * 1000))}  # fmt: skip
            query = urlencode(params)
            signature = hmac.new(DEFAULT_SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
            _post(f"{stub.base_url}/api/v3/order?{query}&signature={signature}", b"", {"X-MBX-APIKEY": DEFAULT_API_KEY})

        reference = _p50(raw, count)
    label = "Binance (ccxt, rate limiter on)" if rate_limit else "Binance (ccxt, rate limiter off)"
    return {"broker": label, "adapter_ms": adapter, "reference_ms": reference}


def measure(runs: int, orders: int) -> dict[str, Any]:
    return {
        "cold": cold_imports(runs),
        "round_trips": [
            alpaca_round_trip(orders),
            ccxt_round_trip(orders, rate_limit=True),
            ccxt_round_trip(orders, rate_limit=False),
        ],
    }


def report(result: dict[str, Any]) -> None:
    print("\n== brokers: cold import of the execution function (fresh interpreter, median) ==")
    cold = result["cold"]
    paper = float(cold[0]["ms"])
    for row in cold:
        sdks = ", ".join(row["sdks"]) or "none"
        print(f"  {row['path']:<30} {row['ms']:7.1f} ms  {row['ms'] / paper:5.2f}x paper path  broker SDKs: {sdks}")
    print("== brokers: order round trip through the adapter vs one plain HTTP POST to the same stub (p50) ==")
    for row in result["round_trips"]:
        ratio = row["adapter_ms"] / row["reference_ms"]
        print(
            f"  {row['broker']:<34} adapter {row['adapter_ms']:7.2f} ms   plain POST {row['reference_ms']:6.2f} ms"
            f"   ratio {ratio:5.1f}x"
        )
