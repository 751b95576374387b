"""The streamer: holds the broker streams of every broker account with active deployments.

Four periodic loops on one asyncio event loop do the bookkeeping:
- every `refresh_seconds`: re-read the targets (`targets.read_targets`): stop the streams of accounts
  that no longer trade, re-subscribe accounts whose symbols changed, and start new ones;
- every quarter of `lease_seconds`: renew the leases held (a lost lease stops that account's streams at
  once) and try to take the leases of wanted accounts not streamed yet (held elsewhere, or expired);
- every second or so: close the bars whose time is up and write them;
- every `heartbeat_seconds`: the heartbeat records and metrics.
Each stream runs in its own task under a `StreamSupervisor` (reconnect with backoff, silence watchdog).
Their messages come back here: 1-minute bars into the `BarAggregator`, order updates to the `orders`
queue (`OrderReporter`), malformed messages logged and counted. Blocking AWS calls run in worker
threads so a slow DynamoDB call never stalls the streams' reading.

Streams are identified by their `name`. When an account's symbols change, the factory is asked for the
account's streams again: a stream whose name is unchanged keeps running (e.g. trade updates), a stream
whose name changed (a market-data stream naming its symbols) is replaced. When no name changed at all,
the names cannot tell which stream carries the symbols, so every stream of the account is restarted.

On stop (SIGTERM in Fargate), every stream is closed, every lease released (so another instance can
take over at once instead of after expiry), the due bars written and a last heartbeat sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aws_lambda_powertools.metrics import EphemeralMetrics

from tradeflow.brokers.port import BrokerOrder
from tradeflow.domain import Bar
from tradeflow.messaging.sqs import MessageQueue, SqsQueues
from tradeflow.streaming.bar_writer import BarWriter, bar_key, split_bar_key
from tradeflow.streaming.bars import BarAggregator, ClosedBar, NotOneMinute
from tradeflow.streaming.heartbeat import Heartbeat
from tradeflow.streaming.lease import LeaseStore
from tradeflow.streaming.redact import safe_excerpt
from tradeflow.streaming.reporter import OrderReporter
from tradeflow.streaming.settings import default_instance_id
from tradeflow.streaming.source import AccountTarget, BrokerStream
from tradeflow.streaming.stats import Counters, StreamStats
from tradeflow.streaming.supervisor import Backoff, StreamSupervisor, cancel_and_wait
from tradeflow.streaming.targets import AccountKey, TargetChanges, key_of, read_targets

log = logging.getLogger("tradeflow.streaming")

T = TypeVar("T")
Clock = Callable[[], datetime]
StreamFactory = Callable[[AccountTarget], list[BrokerStream]]
TargetReader = Callable[[], list[AccountTarget]]

BAR_TICK_SECONDS = 1.0
START_RETRY_CAP = 300.0  # seconds between attempts to start an account whose streams cannot be built
STOP_TIMEOUT = 10.0
FACTORY_TIMEOUT = 30.0
LEASE_TRUST = 0.9  # the part of a confirmed lease this instance streams on without a renewal


def utc_now() -> datetime:
    return datetime.now(UTC)


class _AccountHandler:
    """What one stream of one account delivers to, tagged with the account and the stream's name."""

    def __init__(self, streamer: Streamer, key: AccountKey, stream_name: str) -> None:
        self.streamer = streamer
        self.key = key
        self.stream_name = stream_name

    def touch(self) -> None:
        """Liveness is noted by the supervisor's wrapper; nothing more to do."""

    async def on_bar(self, bar: Bar) -> None:
        await self.streamer.on_bar(self.key, self.stream_name, bar)

    async def on_order(self, order: BrokerOrder) -> None:
        await self.streamer.on_order(self.key, order)

    def malformed(self, raw: object, reason: str) -> None:
        self.streamer.on_malformed(self.key, self.stream_name, raw, reason)


@dataclass
class _Running:
    """An account being streamed by this instance: its target, lease and supervised streams."""

    target: AccountTarget
    lease_confirmed: float  # monotonic time at which the last successful acquire/renew was sent
    supervisors: dict[str, StreamSupervisor] = field(default_factory=dict)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)


class Streamer:
    def __init__(
        self,
        factory: StreamFactory,
        *,
        instance_id: str | None = None,
        refresh_seconds: float = 30.0,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float = 15.0,
        silence_seconds: float = 60.0,
        clock: Clock = utc_now,
        targets: TargetReader = read_targets,
        queue: MessageQueue | None = None,
        bar_grace_seconds: float = 5.0,
        bar_tick_seconds: float = BAR_TICK_SECONDS,
        healthy_seconds: float = 60.0,
        backoff: Backoff | None = None,
        metrics: EphemeralMetrics | None = None,
    ) -> None:
        self.factory = factory
        self.instance_id = instance_id or default_instance_id()
        self.refresh_seconds = refresh_seconds
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.silence_seconds = silence_seconds
        self.clock = clock
        self.read_targets = targets
        self.bar_tick_seconds = bar_tick_seconds
        self.healthy_seconds = healthy_seconds
        self.backoff = backoff
        # Renewing every quarter of the lease, with calls cut off at a quarter too, leaves room for two
        # failed attempts and a last one that still ends before the lease does.
        self.renew_every = lease_seconds / 4
        self.counters = Counters()
        self.leases = LeaseStore(self.instance_id, lease_seconds, clock)
        self.aggregator = BarAggregator(self._timeframes_for, timedelta(seconds=bar_grace_seconds))
        self.writer = BarWriter()
        self.reporter = OrderReporter(queue or SqsQueues())
        self.heartbeat = Heartbeat(self.instance_id, clock, metrics)
        self.wanted: dict[AccountKey, AccountTarget] = {}
        self.running: dict[AccountKey, _Running] = {}
        self._start_failures: dict[AccountKey, tuple[int, float]] = {}  # failures in a row, next attempt
        self._lock = asyncio.Lock()  # one change to the running accounts at a time (made anew by run())
        self._stopping = False

    # --- the control loop ---------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Stream until `stop` is set, then close every stream and release every lease."""
        log.info("streamer %s starting", self.instance_id)
        self._lock = asyncio.Lock()
        self._stopping = False
        # Lease renewal has a loop of its own: a slow scan of the deployments must never delay it.
        loops = [
            asyncio.create_task(self._every(self.refresh_seconds, self._refresh), name="streamer:refresh"),
            asyncio.create_task(self._every(self._lease_pause, self._tend_leases), name="streamer:leases"),
            asyncio.create_task(self._every(self.bar_tick_seconds, self._close_due_bars), name="streamer:bars"),
            asyncio.create_task(self._every(self.heartbeat_seconds, self._beat), name="streamer:heartbeat"),
        ]
        try:
            await stop.wait()
        finally:
            self._stopping = True
            await cancel_and_wait(loops, STOP_TIMEOUT)
            await self._shutdown()

    async def _every(self, pause: float | Callable[[], float], step: Callable[[], Awaitable[None]]) -> None:
        while not self._stopping:
            try:
                await step()
            except Exception:  # one failed step must not end the loop that keeps the streams alive
                log.exception("streamer step %s failed", getattr(step, "__name__", step))
            await asyncio.sleep(pause() if callable(pause) else pause)

    async def _shutdown(self) -> None:
        log.info("streamer %s stopping: closing %d accounts' streams", self.instance_id, len(self.running))
        async with self._lock:
            for key in list(self.running):
                await self._stop_account(key, "shutdown", release=True)
            # a lease taken while the loops were being cancelled, never used: give it back too
            for key in self.wanted:
                await self._release(key)
        await self._close_due_bars()
        await self._beat(state="stopped")

    async def _close_due_bars(self) -> None:
        await self._write(self.aggregator.due(self.clock()))

    async def _io(self, call: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """A blocking AWS call in a worker thread, so the streams keep being read meanwhile."""
        return await asyncio.wait_for(asyncio.to_thread(call, *args), timeout=timeout)

    # --- targets --------------------------------------------------------------------------------

    async def _refresh(self) -> None:
        try:
            targets = await self._io(self.read_targets, timeout=max(self.refresh_seconds, 10.0))
        except Exception:
            log.exception("could not read the targets; keeping the current ones")
            return
        async with self._lock:
            await self._apply(targets)

    async def _apply(self, targets: list[AccountTarget]) -> None:
        changes = TargetChanges.between(self.wanted, targets)
        self.wanted = {key_of(t): t for t in targets}
        if changes:
            log.info(
                "targets changed: %d new, %d gone, %d re-subscribed, %d re-tuned",
                len(changes.added),
                len(changes.removed),
                len(changes.resubscribed),
                len(changes.retuned),
            )
        for target in changes.removed:
            self._start_failures.pop(key_of(target), None)
            if key_of(target) in self.running:
                await self._stop_account(key_of(target), "no active deployment any more", release=True)
        for target in changes.retuned:
            if (running := self.running.get(key_of(target))) is not None:
                running.target = target  # new timeframes: the aggregator reads them from here
        for target in changes.resubscribed:
            if key_of(target) in self.running:
                await self._resubscribe(target)
        await self._start_missing()

    async def _start_missing(self) -> None:
        for key, target in self.wanted.items():
            if key not in self.running:
                await self._start_account(target)

    # --- leases -----------------------------------------------------------------------------------

    async def _tend_leases(self) -> None:
        # Renewal takes no lock: a slow change to other accounts (a stream slow to close) must not make
        # a lease run out while its streams are up. Stopping an account is safe without it (the account
        # leaves `running` before anything is awaited); starting one is not (two starts of one account),
        # and is left to the next round, or to the refresh, when a change is under way.
        await self._renew_all()
        if not self._lock.locked():
            async with self._lock:
                await self._start_missing()

    def _lease_pause(self) -> float:
        """Until the next renewal round, or sooner: the moment a lease that failed to renew runs out."""
        now = time.monotonic()
        ends = [r.lease_confirmed + self.lease_seconds * LEASE_TRUST - now for r in self.running.values()]
        return max(0.01, min([self.renew_every, *ends]))

    async def _renew_all(self) -> None:
        trusted = self.lease_seconds * LEASE_TRUST
        for key in list(self.running):
            running = self.running.get(key)
            if running is None:
                continue
            # Never stream past the lease we last confirmed: after that another instance may hold it.
            remaining = running.lease_confirmed + trusted - time.monotonic()
            error: Exception | None = None
            if remaining > 0:
                sent = time.monotonic()
                try:
                    held = await self._io(self.leases.renew, *key, timeout=min(self.renew_every, remaining))
                except Exception as failed:
                    error = failed
                else:
                    if held:
                        running.lease_confirmed = sent
                        continue
                    self.counters.leases_lost += 1
                    await self._stop_account(key, "lease lost to another instance", release=False)
                    continue
            if time.monotonic() - running.lease_confirmed >= trusted:
                log.error("lease of %s/%s could not be renewed in time (%s): stopping", *key, error)
                self.counters.leases_lost += 1
                await self._stop_account(key, "lease could not be renewed", release=False)
            else:
                log.warning("lease renewal of %s/%s failed (%s); will retry", *key, error)

    # --- accounts -------------------------------------------------------------------------------

    async def _start_account(self, target: AccountTarget) -> None:
        key = key_of(target)
        failures, next_attempt = self._start_failures.get(key, (0, 0.0))
        if time.monotonic() < next_attempt:
            return
        sent = time.monotonic()
        try:
            acquired = await self._io(self.leases.acquire, *key, timeout=self.renew_every)
        except Exception:
            log.exception("could not take the lease of %s/%s", *key)
            return
        if not acquired:
            log.debug("%s/%s is streamed by another instance", *key)
            return
        try:
            streams = await self._build(target)
        except Exception as error:
            wait = min(START_RETRY_CAP, self.refresh_seconds * 2**failures)
            self._start_failures[key] = (failures + 1, time.monotonic() + wait)
            log.error(
                "cannot build the streams of %s/%s (%s): %s; next attempt in %.0fs",
                *key,
                target.broker,
                f"{type(error).__name__}: {error}"[:300],
                wait,
            )
            await self._release(key)
            return
        self._start_failures.pop(key, None)
        running = _Running(target=target, lease_confirmed=sent)
        self.running[key] = running
        for stream in streams:
            self._launch(running, stream)
        log.info("streaming %s/%s (%s): %s", *key, target.broker, ", ".join(running.supervisors) or "no streams")

    async def _build(self, target: AccountTarget) -> list[BrokerStream]:
        """The factory, in a worker thread: it reads the account and its credentials (blocking calls).
        Streams only keep their settings when built; their connections are made by `run()`."""
        return await self._io(self.factory, target, timeout=FACTORY_TIMEOUT)

    def _launch(self, running: _Running, stream: BrokerStream) -> None:
        key = key_of(running.target)
        name = stream.name
        if name in running.supervisors:
            log.error("%s/%s: two streams named %r; the second one is not started", *key, name)
            return
        supervisor = StreamSupervisor(
            stream,
            _AccountHandler(self, key, name),
            StreamStats(name=name, tenant_id=key[0], account_id=key[1]),
            self.counters,
            silence_seconds=self.silence_seconds,
            healthy_seconds=self.healthy_seconds,
            backoff=self.backoff,
            clock=self.clock,
        )
        running.supervisors[name] = supervisor
        running.tasks[name] = asyncio.create_task(supervisor.run(), name=f"supervisor:{name}")

    async def _halt_streams(self, running: _Running, names: Iterable[str]) -> None:
        names = list(names)
        for name in names:
            if (supervisor := running.supervisors.pop(name, None)) is not None:
                supervisor.stop()
        await cancel_and_wait([running.tasks.pop(name) for name in names if name in running.tasks], STOP_TIMEOUT)

    async def _stop_account(self, key: AccountKey, why: str, *, release: bool) -> None:
        running = self.running.pop(key, None)
        if running is None:
            return
        log.info("stopping the streams of %s/%s: %s", *key, why)
        await self._halt_streams(running, list(running.supervisors))
        if release:
            await self._release(key)

    async def _release(self, key: AccountKey) -> None:
        try:
            await self._io(self.leases.release, *key, timeout=self.renew_every)
        except Exception as error:  # it will expire on its own
            log.warning("could not release the lease of %s/%s: %s", *key, error)

    async def _resubscribe(self, target: AccountTarget) -> None:
        key = key_of(target)
        running = self.running[key]
        try:
            streams = await self._build(target)
        except Exception as error:
            log.error("cannot rebuild the streams of %s/%s (%s); keeping the old ones", *key, error)
            return
        fresh = {s.name: s for s in streams}
        kept = set(running.supervisors) & set(fresh)
        if kept == set(running.supervisors) == set(fresh):
            kept = set()  # names do not show the subscription: restart them all
        await self._halt_streams(running, [n for n in running.supervisors if n not in kept])
        for name in kept:
            await _discard(fresh[name])  # the running one already carries this subscription
        new = [stream for name, stream in fresh.items() if name not in kept]
        if self.running.get(key) is not running:  # the lease was lost meanwhile: start nothing
            for stream in new:
                await _discard(stream)
            return
        running.target = target
        for stream in new:
            self._launch(running, stream)
        log.info("re-subscribed %s/%s to %s", *key, ", ".join(sorted(target.symbols)))

    # --- what the streams deliver ---------------------------------------------------------------

    def _timeframes_for(self, key: str, symbol: str) -> set[str]:
        tenant_id, broker = split_bar_key(key)
        found: set[str] = set()
        for (tenant, _account), running in self.running.items():
            target = running.target
            if tenant == tenant_id and target.broker == broker and symbol in target.symbols:
                found |= target.timeframes
        return found

    async def on_bar(self, key: AccountKey, stream_name: str, bar: Bar) -> None:
        running = self.running.get(key)
        if running is None:
            return  # the account was stopped while this message was on its way
        late = self.aggregator.late
        try:
            closed = self.aggregator.add(bar_key(key[0], running.target.broker), bar)
        except NotOneMinute as wrong:
            self.on_malformed(key, stream_name, bar.model_dump(mode="json"), str(wrong))
            return
        self.counters.late_bars += self.aggregator.late - late
        await self._write(closed)

    async def _write(self, closed: list[ClosedBar]) -> None:
        if not closed:
            return
        try:
            self.counters.bars_written += await self._io(self.writer.write, closed, timeout=30.0)
        except Exception:
            self.counters.bar_write_failures += 1
            log.exception("could not write %d bars (e.g. %s %s)", len(closed), closed[0].bar.symbol, closed[0].bar.ts)

    async def on_order(self, key: AccountKey, order: BrokerOrder) -> None:
        try:
            update = await self._io(self.reporter.report, *key, order, timeout=30.0)
        except Exception:
            self.counters.report_failures += 1
            log.exception(
                "order update of %s (%s) for %s/%s could not be queued; reconciliation will repair the books",
                order.client_order_id,
                order.status.value,
                *key,
            )
            return
        if update is None:
            self.counters.foreign_orders += 1
        else:
            self.counters.orders_reported += 1

    def on_malformed(self, key: AccountKey, stream_name: str, raw: object, reason: str) -> None:
        self.counters.malformed += 1
        log.warning(
            "malformed message skipped on %s (%s/%s): %s; message: %s",
            stream_name,
            *key,
            reason[:300],
            safe_excerpt(raw),
        )

    # --- health -----------------------------------------------------------------------------------

    def stream_stats(self) -> list[StreamStats]:
        return [s.stats for running in self.running.values() for s in running.supervisors.values()]

    async def _beat(self, state: str = "running") -> None:
        try:
            await self._io(
                self.heartbeat.beat, self.stream_stats(), list(self.running), self.counters, state, timeout=30.0
            )
        except Exception:
            log.exception("heartbeat failed")


async def _discard(stream: BrokerStream) -> None:
    """A stream built but not needed: let it free whatever its constructor took."""
    try:
        await asyncio.wait_for(stream.close(), timeout=STOP_TIMEOUT)
    except Exception as error:
        log.debug("closing an unused stream %s: %s", stream.name, error)


class StreamerThread(threading.Thread):
    """The streamer on an event loop of its own in a background thread (how the local cloud runs it);
    `stop()` ends it gracefully (streams closed, leases released) and waits for it."""

    def __init__(self, streamer: Streamer) -> None:
        super().__init__(name=f"streamer-{streamer.instance_id}", daemon=True)
        self.streamer = streamer
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:
            self.error = error
            log.exception("the streamer thread died")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        self._ready.set()
        await self.streamer.run(self._stop_requested)

    def stop(self, timeout: float = 30.0) -> None:
        self._ready.wait(timeout)
        loop, stop = self._loop, self._stop_requested
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        self.join(timeout)
