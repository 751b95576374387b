"""What a broker stream delivers to the streamer, and how the streamer drives one.

A `BrokerStream` is one websocket connection to a broker (Alpaca's trade updates for one account,
Alpaca's market data for a set of symbols, a ccxt exchange's `watch_ohlcv` / `watch_orders` ...).
The streamer's supervisor owns its life: it calls `run(handler)`, which connects, authenticates,
subscribes and then delivers until the connection ends (it returns or raises; the supervisor reconnects
with jittered backoff) or the task is cancelled (the watchdog cancels a connected-but-silent stream).
Every message received, data or heartbeat, calls `handler.touch()` so the watchdog can tell a quiet
market from a dead connection; a malformed message calls `handler.malformed(...)` and is skipped
without ending the stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from tradeflow.brokers.port import BrokerOrder
from tradeflow.domain import Bar


class StreamHandler(Protocol):
    def touch(self) -> None:
        """Any message arrived (data, subscription ack, heartbeat/ping)."""

    async def on_bar(self, bar: Bar) -> None:
        """A 1-minute bar of a subscribed symbol; the same bar may arrive several times while it is
        still forming (ccxt's watch_ohlcv): the last one before a newer bar wins."""

    async def on_order(self, order: BrokerOrder) -> None:
        """An order update of the stream's account, with cumulative fills (see `BrokerFill`)."""

    def malformed(self, raw: object, reason: str) -> None:
        """A message that could not be understood: logged and counted, the stream goes on."""


class BrokerStream(Protocol):
    name: str  # for logs and metrics, e.g. "alpaca:trade_updates:<tenant>/<account>"

    async def run(self, handler: StreamHandler) -> None:
        """Connect, subscribe and deliver until the connection ends or the task is cancelled."""

    async def close(self) -> None:
        """Release the connection (called after `run` ended or was cancelled)."""


@dataclass(frozen=True)
class AccountTarget:
    """A broker account with active deployments, and the symbols they trade (what to stream)."""

    tenant_id: str
    account_id: str
    broker: str  # alpaca | ccxt:<exchange>
    symbols: frozenset[str] = field(default_factory=frozenset)
    timeframes: frozenset[str] = field(default_factory=frozenset)  # the deployments' bar timeframes
