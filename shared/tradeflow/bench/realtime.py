"""Live updates: fan-out throughput to 1,000 WebSocket connections, and fill-to-client latency.

Everything is real except AWS itself: moto's server, the local WebSocket gateway, the ws_* handlers
(every client connects with a JWT and subscribes through $default), and real WebSocket clients (asyncio,
in their own thread).

- Fan-out: the broadcaster publishes a batch of order updates to 1,000 connections subscribed to `orders`
  through boto3's `apigatewaymanagementapi` client (HTTP to the gateway's @connections endpoint, one post
  per update and connection, as in AWS) after one connections query and 1,000 sequence reservations in
  DynamoDB. Messages/s counts frames *received by the clients*. Side by side, the reference: the same
  frames queued straight into the gateway from Python (no HTTP, no DynamoDB) — the ceiling of this
  gateway and these clients, so the ratio is what the management API path and the bookkeeping cost.
- Latency: a fill written to the fills table (as the execution function writes it) until a subscribed
  client holds its update: DynamoDB Streams polling (every 50 ms, like Lambda's poller), the broadcaster
  function, the management API and the socket. p50/p99 over fills written one at a time.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradeflow.bench.stats import percentile

TENANT, ACCOUNT = "bench", "paper-bench"


@dataclass
class Clients:
    """N asyncio WebSocket clients on a loop of their own; counts update frames and their arrival times."""

    url: str
    token: str
    count: int
    channels: list[str]
    received: int = 0
    arrivals: dict[str, float] = field(default_factory=dict)  # key in the update's data -> arrival
    key: str = "fill_id"
    loop: asyncio.AbstractEventLoop | None = None
    sockets: list[Any] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, timeout: float = 120.0) -> None:
        threading.Thread(target=self._run, name="bench-clients", daemon=True).start()
        if not self.ready.wait(timeout):
            raise RuntimeError(f"{self.count} clients did not connect and subscribe within {timeout} s")

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.create_task(self._main())
        self.loop.run_forever()  # until close(): the readers end before close()'s own coroutine does

    async def _main(self) -> None:
        from websockets.asyncio.client import connect

        gate = asyncio.Semaphore(50)  # connect in waves: $connect is a handler call each

        async def one(i: int) -> Any:
            async with gate:
                ws = await connect(f"{self.url}/?token={self.token}", open_timeout=60)
                await ws.send(json.dumps({"action": "subscribe", "channels": self.channels, "id": str(i)}))
                reply = json.loads(await ws.recv())
                if reply.get("type") != "subscribed":
                    raise RuntimeError(f"subscribe failed: {reply}")
                return ws

        self.sockets = list(await asyncio.gather(*(one(i) for i in range(self.count))))
        readers = [asyncio.create_task(self._read(ws)) for ws in self.sockets]
        self.ready.set()
        for result in await asyncio.gather(*readers, return_exceptions=True):
            if isinstance(result, Exception):
                print(f"a bench client stopped: {type(result).__name__}: {result}")

    async def _read(self, ws: Any) -> None:
        async for raw in ws:
            now = time.perf_counter()
            frame = json.loads(raw)
            if frame.get("type") != "update":
                continue
            with self.lock:
                self.received += 1
                ref = frame["data"].get(self.key)
                if ref is not None:
                    self.arrivals.setdefault(str(ref), now)

    def wait_for(self, total: int, timeout: float) -> float:
        """Seconds (perf_counter) at which `received` reached `total`."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self.lock:
                if self.received >= total:
                    return time.perf_counter()
            time.sleep(0.001)
        raise RuntimeError(f"clients received {self.received} of {total} updates within {timeout} s")

    def close(self) -> None:
        if self.loop is None:
            return

        async def close_all() -> None:
            await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.loop = None


def _order_update(i: int) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {
        "client_order_id": f"tfs-bench-{i:06d}", "account_id": ACCOUNT, "source": "strategy",
        "deployment_id": "dep-bench", "symbol": "GOOG", "side": "buy", "quantity": "5", "type": "market",
        "time_in_force": "day", "limit_price": None, "stop_price": None, "status": "filled", "reason": None,
        "filled_quantity": "5", "average_fill_price": "185.02", "fees": "0.93", "broker": "paper",
        "broker_order_id": f"paper-{i}", "client_tag": None, "created_at": now, "updated_at": now,
    }  # fmt: skip


def measure(connections: int = 1000, updates: int = 10, fills: int = 100) -> dict[str, Any]:
    from tradeflow.api.dev_issuer import DevIssuer
    from tradeflow.local.environment import use_local_cloud
    from tradeflow.local.lambdas import LocalLambdas
    from tradeflow.local.moto_server import MotoServer, free_port
    from tradeflow.local.provision import provision
    from tradeflow.local.stream_delivery import StreamPoller
    from tradeflow.local.ws_gateway import WsGateway, export_management_url
    from tradeflow.realtime.broadcast import Broadcaster
    from tradeflow.realtime.changes import Change
    from tradeflow.realtime.protocol import Update

    server = MotoServer(free_port())
    server.start()
    saved = {k: os.environ.get(k) for k in ("TRADEFLOW_DEV_KEY_FILE",)}
    out: dict[str, Any] = {"connections": connections, "updates": updates}
    stop = threading.Event()
    gateway: WsGateway | None = None
    clients: Clients | None = None
    try:
        use_local_cloud(server.endpoint)
        provision()
        os.environ["TRADEFLOW_DEV_KEY_FILE"] = str(Path(tempfile.mkdtemp(prefix="tradeflow-bench-")) / "dev.pem")
        token = DevIssuer().issue(TENANT, "bench-user")
        gateway = WsGateway(port=0)
        gateway.start()
        export_management_url(gateway)
        lambdas = LocalLambdas()
        gateway.lambdas = lambdas

        # -- fill -> client latency ------------------------------------------------------------------
        from tradeflow.catalogue import FUNCTIONS
        from tradeflow.domain import Fill, OrderSide
        from tradeflow.storage.dynamo import DynamoTable, model_item
        from tradeflow.storage.keys import tenant_account

        source = next(s for s in FUNCTIONS["broadcaster"].stream_sources if s.table == "fills")
        poller = StreamPoller("broadcaster", source, lambdas, stop)
        poller.start()
        poller.idle.wait(30)  # reading from the stream's end (LATEST): a fill written before that is not seen
        clients = Clients(gateway.url, token, 1, ["fills"], key="fill_id")
        clients.start()
        table, written = DynamoTable("fills"), {}
        for i in range(fills):
            fill = Fill(
                fill_id=f"f-{i:05d}", tenant_id=TENANT, account_id=ACCOUNT, client_order_id=f"tfs-{i}",
                symbol="GOOG", side=OrderSide.BUY, quantity=Decimal(1), price=Decimal("185.02"),
                ts=datetime.now(UTC), broker_fill_ref=f"b-{i}",
            )  # fmt: skip
            written[fill.fill_id] = time.perf_counter()
            table.put(model_item(fill, pk=tenant_account(TENANT, ACCOUNT), sk=fill.fill_id))
            clients.wait_for(i + 1, 30)
        out["latency_ms"] = [(clients.arrivals[k] - t) * 1000 for k, t in written.items()]
        clients.close()
        clients = None

        # -- fan-out --------------------------------------------------------------------------------
        started = time.perf_counter()
        clients = Clients(gateway.url, token, connections, ["orders"], key="client_order_id")
        clients.start()
        out["connect_s"] = time.perf_counter() - started
        total = connections * updates

        ids = gateway.connection_ids()
        frames = [Update(channel="orders", data=_order_update(i), ts=datetime.now(UTC), seq=i + 1).to_bytes()
                  for i in range(updates)]  # fmt: skip
        t0 = time.perf_counter()
        for frame in frames:
            for connection_id in ids:
                gateway.post(connection_id, frame)
        out["reference_rate"] = total / (clients.wait_for(total, 300) - t0)

        broadcaster = Broadcaster()
        changes = [Change(TENANT, "orders", _order_update(updates + i)) for i in range(updates)]
        t0 = time.perf_counter()
        report = broadcaster.publish(changes, datetime.now(UTC))
        done = clients.wait_for(2 * total, 600)
        out["publish_s"] = time.perf_counter() - t0
        out["broadcast_rate"] = total / (done - t0)
        out["delivered"], out["failed"], out["gone"] = report.delivered, report.failed, report.gone

        # Tear down without 1,000 $disconnect handler calls: moto answers each index query by scanning the
        # table, so they would take minutes; the handlers' disconnect path is not what is measured here.
        gateway.lambdas = None
        return out
    finally:
        stop.set()
        if clients is not None:
            clients.close()
        if gateway is not None:
            gateway.stop()
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def report(out: dict[str, Any]) -> None:
    n, u = out["connections"], out["updates"]
    ratio = out["broadcast_rate"] / out["reference_rate"]
    latency = out["latency_ms"]
    print(f"\n== live updates: fan-out to {n:,} WebSocket connections on the local gateway ==")
    print(f"{n:,} clients connected (JWT) and subscribed in {out['connect_s']:.1f} s")
    print(
        f"broadcaster ({u} updates x {n:,} connections; boto3 @connections posts, seq reserved in DynamoDB): "
        f"{out['broadcast_rate']:,.0f} msgs/s  ({out['delivered']:,} delivered, {out['failed']} failed, "
        f"{out['gone']} gone)"
    )
    print(f"reference (the same frames queued into the gateway directly): {out['reference_rate']:,.0f} msgs/s")
    print(f"ratio broadcaster / reference: {ratio:.2f}")
    print(
        f"fill -> client latency (fills table write -> update on the socket; stream polled every 50 ms): "
        f"p50 {percentile(latency, 50):.1f} ms  p99 {percentile(latency, 99):.1f} ms  (n={len(latency)})"
    )
