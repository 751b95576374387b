"""The local cloud: starts moto, provisions the catalogue, loads the functions, seeds the demo,
replays market data on the local clock and delivers schedules, queue messages and stream records to
the same handlers that run in AWS."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from tradeflow.catalogue import QUEUES, enabled_functions
from tradeflow.local.api_server import ApiServer
from tradeflow.local.brokers import LocalBrokers, market_feeds
from tradeflow.local.clock import LocalClock
from tradeflow.local.console import install_console
from tradeflow.local.demo import demo_feeds, seed_demo
from tradeflow.local.environment import use_local_cloud
from tradeflow.local.lambdas import LocalLambdas
from tradeflow.local.moto_server import MotoServer
from tradeflow.local.provision import provision
from tradeflow.local.replay import Feed, MarketReplay
from tradeflow.local.scheduler import LocalScheduler
from tradeflow.local.sqs_delivery import SqsPoller
from tradeflow.local.status import account_lines
from tradeflow.local.stream_delivery import StreamPoller
from tradeflow.local.summary import Summary, summarize
from tradeflow.local.ws_gateway import WsGateway, export_management_url
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.runtime.aws import client
from tradeflow.scheduling.platform import create_platform_schedules
from tradeflow.streaming.broker_streams import streams_for
from tradeflow.streaming.service import Streamer, StreamerThread

log = logging.getLogger("tradeflow.local")
WARMUP_BARS = 40


@dataclass
class LocalCloudConfig:
    aws_port: int = 5000
    speed: float = 60.0
    duration: float | None = None  # wall seconds; None = until stopped
    start: datetime | None = None  # replay clock origin; default: now, floored to the minute
    demo: bool = True
    feeds: list[Feed] | None = None  # default: the demo feeds
    demo_symbols: list[str] | None = None
    console: bool = False  # readable lines instead of the functions' JSON logs
    seed: Callable[[datetime], None] | None = None  # creates accounts/deployments instead of the demo
    status_seconds: float | None = None  # print each account's status this often (wall seconds)
    drain_seconds: float = 20.0
    api_port: int | None = None  # serve the REST API on 127.0.0.1:<port> (the CLI's default: 8000)
    ws_port: int | None = None  # serve the WebSocket API on 127.0.0.1:<port> (the CLI's default: 8001)
    brokers: bool = True  # the Alpaca and Binance stubs, the streamer and reconciliation (local/brokers.py)
    # optional catalogue parts to run, as CDK's context flags deploy them (e.g. {"timestream"}: the Timestream
    # table and the timestream_writer function); off by default, like in AWS
    flags: frozenset[str] = frozenset()
    extra: dict[str, object] = field(default_factory=dict)


class LocalCloud:
    def __init__(self, config: LocalCloudConfig) -> None:
        self.config = config
        self.server = MotoServer(config.aws_port)
        self.stop_event = threading.Event()
        self.halt_schedules = threading.Event()
        self.clock = LocalClock(config.start, config.speed)
        self.threads: list[threading.Thread] = []
        self.lambdas: LocalLambdas | None = None
        self.scheduler: LocalScheduler | None = None
        self.replay: MarketReplay | None = None
        self.started_at = 0.0
        self.last_fired: datetime | None = None  # scheduled time of the last schedule fired
        self.api: ApiServer | None = None
        self.ws: WsGateway | None = None
        self.brokers: LocalBrokers | None = None
        self.streamer: StreamerThread | None = None

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def start(self) -> None:
        self.server.start()
        use_local_cloud(self.server.endpoint)
        provision(self.config.flags)
        create_platform_schedules()  # reconciliation's rate, fired on the local clock like the deployments'
        if self.config.ws_port is not None:
            # up (and its @connections URL exported) before the handlers are loaded; it refuses
            # connections (503) until it has the handlers below
            self.ws = WsGateway(port=self.config.ws_port)
            self.ws.start()
            export_management_url(self.ws)
        self.lambdas = LocalLambdas()
        if self.ws is not None:
            self.ws.lambdas = self.lambdas
        if self.config.console:
            install_console()  # after the handlers' Powertools loggers exist
        origin = self.clock.start
        feeds = self.config.feeds
        if self.config.seed is not None:
            self.config.seed(origin)
        if self.config.demo:
            deployment = seed_demo(origin - timedelta(minutes=WARMUP_BARS + 1), self.config.demo_symbols)
            feeds = feeds or [f for f in demo_feeds() if f.symbol in deployment.symbols]
        if self.config.brokers:
            self.brokers = LocalBrokers([f.symbol for f in feeds or []], self.clock.now)
            self.brokers.start()
            feeds = [*(feeds or []), *market_feeds()]
        self.replay = MarketReplay(feeds or [], origin, WARMUP_BARS) if feeds else None
        if self.replay:
            if self.brokers is not None:
                self.replay.listeners.append(self.brokers.publish)
            self.replay.publish_due(origin)
        self.scheduler = LocalScheduler(self.lambdas)
        self.scheduler.refresh(origin, force=True)
        for name, spec in enabled_functions(self.config.flags).items():
            if spec.queue_source:
                self.threads.append(SqsPoller(name, self.lambdas, self.stop_event))
            for source in spec.stream_sources:
                self.threads.append(StreamPoller(name, source, self.lambdas, self.stop_event))
        for thread in self.threads:
            thread.start()
        if self.brokers is not None:
            # the Fargate task's process, as a thread: streams every broker account with deployments;
            # it re-reads the deployments every 2 s (30 s in AWS) so a new deployment streams at once.
            # Its clock is the wall clock: leases and heartbeats are real time even in a fast replay.
            streamer = Streamer(streams_for, instance_id="local-streamer", refresh_seconds=2.0)
            self.streamer = StreamerThread(streamer)
            self.streamer.start()
        if self.config.api_port is not None:
            self.api = ApiServer(self.config.api_port)
            self.api.start()
        self.clock.restart()
        self.started_at = time.monotonic()
        log.info(
            "local cloud up: AWS APIs at %s, clock %s at %gx, %d replay feed(s)",
            self.server.endpoint,
            origin.isoformat(),
            self.config.speed,
            len(feeds or []),
        )

    def tick(self, deadline: float | None = None) -> None:
        """Fire the schedules that are due, in time order, each after publishing exactly the bars
        closed by its time; then the bars closed by now. The market never runs ahead of schedules
        that are late (an overloaded machine slows the replay down instead of skipping bars), and a
        late evaluation sees what it would have seen on time. Stops early once the wall-clock
        `deadline` has passed."""
        assert self.scheduler is not None
        now = self.clock.now()
        if not self.halt_schedules.is_set():
            self.scheduler.refresh(now)
            for at, schedule in self.scheduler.due(now):
                if self.stop_event.is_set() or (deadline is not None and time.monotonic() >= deadline):
                    return
                if self.replay:
                    self.replay.publish_due(at)
                self.scheduler.fire(at, schedule)
                self.last_fired = at
        if self.replay:
            self.replay.publish_due(self.clock.now() if self.halt_schedules.is_set() else now)

    def next_event(self) -> datetime | None:
        assert self.scheduler is not None
        candidates = [self.replay.next_due() if self.replay else None]
        if not self.halt_schedules.is_set():
            candidates.append(self.scheduler.next_due())
        found = [c for c in candidates if c is not None]
        return min(found) if found else None

    def run(self) -> None:
        """Drive the clock until stopped or the duration is over (printing account status lines
        every `status_seconds` of wall time when set)."""
        deadline = self.started_at + self.config.duration if self.config.duration else None
        next_status = time.monotonic() + (self.config.status_seconds or 0)
        while not self.stop_event.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if self.config.status_seconds and time.monotonic() >= next_status:
                next_status = time.monotonic() + self.config.status_seconds
                for line in account_lines(self.clock.now()):
                    log.info(line)
            upcoming = self.next_event()
            if upcoming is None:  # nothing scheduled yet: look again for new schedules shortly
                self.stop_event.wait(0.25)
                if self.scheduler is not None and not self.halt_schedules.is_set():
                    self.scheduler.refresh(self.clock.now())
                continue
            if self.clock.wait_until(upcoming, self.stop_event):
                self.tick(deadline)

    def drain(self, timeout: float | None = None, market: bool = True) -> bool:
        """Stop deciding, let the market run one more bar (so resting market orders fill; `market`),
        and wait until every queue is empty and every poller idle. True when fully drained."""
        self.halt_schedules.set()
        limit = time.monotonic() + (timeout if timeout is not None else self.config.drain_seconds)
        if self.replay and market:
            target = self.clock.now() + self.replay.interval
            while self.clock.now() < target and time.monotonic() < limit:
                self.stop_event.wait(0.05)
            self.replay.publish_due(self.clock.now())
        quiet_since = None
        while time.monotonic() < limit:
            if self.queues_empty() and all(getattr(t, "idle", threading.Event()).is_set() for t in self.threads):
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 0.5:
                    return True
            else:
                quiet_since = None
            time.sleep(0.1)
        return False

    def queues_empty(self) -> bool:
        sqs = client("sqs")
        queues = SqsQueues()
        for spec in QUEUES.values():
            if not spec.has_dlq:
                continue
            attrs = sqs.get_queue_attributes(
                QueueUrl=queues.url(spec.physical_name()),
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if int(attrs["ApproximateNumberOfMessages"]) or int(attrs["ApproximateNumberOfMessagesNotVisible"]):
                return False
        return True

    def summary(self) -> Summary:
        return summarize()

    def stop_workers(self) -> None:
        """Stop the clock and the pollers (in-flight invocations finish); moto keeps serving."""
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def shutdown(self) -> None:
        if self.api is not None:
            self.api.stop()
        if self.ws is not None:
            self.ws.stop()
        if self.streamer is not None:
            self.streamer.stop()
        self.stop_workers()
        if self.brokers is not None:
            self.brokers.stop()
        self.server.stop()


def write_summary(summary: Summary, path: str | Path) -> None:
    Path(path).write_text(json.dumps(summary.public(), indent=2) + "\n")
