"""Keeping one broker stream alive: reconnect with backoff, and a watchdog for silent connections.

A websocket can die without closing: the TCP connection stays up but nothing arrives (a half-open
connection, a broker that stopped publishing to us). Waiting for the socket to notice can take many
minutes, during which fills are missed. So the supervisor watches the messages themselves: every
message, data or heartbeat, calls `touch()`; a stream that has been silent for `silence_seconds` since
it started or last spoke is cancelled as dead-by-silence and reconnected. The silence budget must be
longer than the broker's own ping/heartbeat interval (Alpaca's and the exchanges' are well under 60 s).

When `run()` returns or raises, the stream is reconnected after a full-jitter exponential backoff
(`jittered`: base ~0.5 s doubling up to a cap of ~30 s), so a broker outage is not met by a storm of
reconnects from every account at once. A run that lasted `healthy_seconds` resets the backoff: the
next failure is treated as a new incident, not as the n-th retry of the old one. `close()` is called
after every run, however it ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tradeflow.brokers.port import BrokerOrder
from tradeflow.brokers.resilience import jittered
from tradeflow.domain import Bar
from tradeflow.streaming.source import BrokerStream, StreamHandler
from tradeflow.streaming.stats import Counters, StreamStats

log = logging.getLogger("tradeflow.streaming")

Clock = Callable[[], datetime]
Backoff = Callable[[int], float]  # attempt (0 = first retry of an incident) -> seconds to wait
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
CLOSE_TIMEOUT = 5.0  # seconds a stream gets to close or to finish after being cancelled


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], timeout: float) -> set[asyncio.Task[Any]]:
    """Cancel the tasks and wait for them to end; returns those still running after `timeout`.

    Cancellation is repeated until it takes: on Python 3.11 `asyncio.wait_for` can swallow a cancel that
    arrives as its inner call completes, and a stream task that ignored its cancel would go on streaming
    an account whose lease this instance may be giving up."""
    pending = {t for t in tasks if not t.done()}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(0.2, max(deadline - time.monotonic(), 0)))
    for task in pending:
        log.error("task %s did not stop within %.0fs", task.get_name(), timeout)
    return pending


def default_backoff(base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> Backoff:
    return lambda attempt: jittered(attempt, base, cap)


class RunEnd(StrEnum):
    ENDED = "ended"  # run() returned: the broker closed the connection
    FAILED = "failed"  # run() raised
    SILENT = "silent"  # the watchdog cancelled it


class _Watched:
    """The handler a stream is given: notes every message for the watchdog, then passes it on."""

    def __init__(self, supervisor: StreamSupervisor, inner: StreamHandler) -> None:
        self.supervisor = supervisor
        self.inner = inner

    def touch(self) -> None:
        self.supervisor.touched()
        self.inner.touch()

    async def on_bar(self, bar: Bar) -> None:
        self.supervisor.touched()
        await self.inner.on_bar(bar)

    async def on_order(self, order: BrokerOrder) -> None:
        self.supervisor.touched()
        await self.inner.on_order(order)

    def malformed(self, raw: object, reason: str) -> None:
        self.supervisor.touched()  # garbage, but the connection is alive
        self.inner.malformed(raw, reason)


class StreamSupervisor:
    def __init__(
        self,
        stream: BrokerStream,
        handler: StreamHandler,
        stats: StreamStats,
        counters: Counters,
        *,
        silence_seconds: float = 60.0,
        healthy_seconds: float = 60.0,
        backoff: Backoff | None = None,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.stream = stream
        self.handler = _Watched(self, handler)
        self.stats = stats
        self.counters = counters
        self.silence_seconds = silence_seconds
        self.healthy_seconds = healthy_seconds
        self.backoff = backoff or default_backoff()
        self.clock = clock
        self.stopping = False  # set by `stop()`: no run may begin after it
        self._last_message = time.monotonic()

    @property
    def name(self) -> str:
        return self.stream.name

    def touched(self) -> None:
        self._last_message = time.monotonic()
        self.stats.messages += 1
        self.stats.last_message_at = self.clock()

    def stop(self) -> None:
        """Mark the supervisor stopped; the caller then cancels its task (`cancel_and_wait`)."""
        self.stopping = True

    async def run(self) -> None:
        """Run the stream until stopped or cancelled, reconnecting whenever a run ends."""
        attempt = 0
        while not self.stopping:
            started = time.monotonic()
            end = await self.run_once()
            if self.stopping:
                return
            if time.monotonic() - started >= self.healthy_seconds:
                attempt = 0
            delay = self.backoff(attempt)
            attempt += 1
            log.warning(
                "stream %s %s after %.1fs; reconnecting in %.2fs (attempt %d)",
                self.name,
                "dead by silence" if end is RunEnd.SILENT else end.value,
                time.monotonic() - started,
                delay,
                attempt,
            )
            await asyncio.sleep(delay)
            if self.stopping:
                return
            self.stats.reconnects += 1
            self.counters.reconnects += 1

    async def run_once(self) -> RunEnd:
        """One connection: run the stream under the watchdog, then close it."""
        self.stats.runs += 1
        self.stats.running = True
        self._last_message = time.monotonic()
        task = asyncio.create_task(self.stream.run(self.handler), name=f"stream:{self.name}")
        try:
            while True:
                silent_for = time.monotonic() - self._last_message
                if silent_for >= self.silence_seconds:
                    log.error("stream %s silent for %.1fs: treated as dead", self.name, silent_for)
                    self.stats.silence_kills += 1
                    self.counters.silence_kills += 1
                    return RunEnd.SILENT  # the finally block cancels it
                done, _ = await asyncio.wait({task}, timeout=self.silence_seconds - silent_for)
                if done:
                    return self._outcome(task)
        finally:
            self.stats.running = False
            await cancel_and_wait([task], CLOSE_TIMEOUT)
            await self._close()

    def _outcome(self, task: asyncio.Task[None]) -> RunEnd:
        if task.cancelled():
            return RunEnd.ENDED
        error = task.exception()
        if error is None:
            return RunEnd.ENDED
        self.stats.failures += 1
        self.counters.stream_failures += 1
        self.stats.last_error = f"{type(error).__name__}: {error}"[:300]
        log.warning("stream %s failed: %s", self.name, self.stats.last_error)
        return RunEnd.FAILED

    async def _close(self) -> None:
        try:
            await asyncio.wait_for(self.stream.close(), timeout=CLOSE_TIMEOUT)
        except Exception as error:  # a failing close must not stop the reconnection
            log.warning("stream %s did not close cleanly: %s: %s", self.name, type(error).__name__, error)
