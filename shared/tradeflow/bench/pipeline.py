"""The local cloud under load: N symbols, one schedule each, evaluated every simulated minute.

- symbols per minute sustained: strategy evaluations completed per wall-clock minute while the replay
  clock runs faster than the machine can evaluate every symbol on time (the driver then evaluates
  late but in order, so this is the pipeline's ceiling on this machine);
- signal-to-fill latency: wall time from the strategy function logging a signal to the execution
  function logging its fill, with the paper broker filling market orders at the last price (the
  `next_open` model would add the wait for the next bar, which is market time, not pipeline time).

Symbols beyond the shipped datasets re-use them from different starting points: every price is a
recorded one.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradeflow.bench.seed import TENANT, seed_bench
from tradeflow.bench.stats import percentile
from tradeflow.local.cloud import LocalCloud, LocalCloudConfig
from tradeflow.local.console import tap_function_logs
from tradeflow.local.moto_server import free_port
from tradeflow.local.replay import Feed
from tradeflow.marketdata.catalog import DATASETS, load_dataset


def feeds(count: int) -> list[Feed]:
    names = sorted(DATASETS)
    made = []
    for i in range(count):
        dataset = names[i % len(names)]
        length = len(load_dataset(dataset))
        start = (i // len(names)) * 97 % max(1, length - 400)
        made.append(Feed(TENANT, f"{dataset.replace('.', '-')}-{i:03d}", dataset, start))
    return made


class _Timeline(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.signals: dict[str, float] = {}
        self.fills: dict[str, float] = {}
        self.evaluations = 0
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        get = record.__dict__.get
        with self._lock:
            if get("event") in ("signal", "evaluation"):
                self.evaluations += 1
            if get("event") == "signal" and get("signal_id"):
                self.signals.setdefault(str(get("signal_id")), record.created)
            elif get("event") == "fill" and get("signal_id"):
                self.fills.setdefault(str(get("signal_id")), record.created)


@dataclass
class PipelineResult:
    symbols: int
    wall_seconds: float
    evaluations: int
    evaluations_per_minute: float
    signals: int
    fills: int
    latencies_ms: list[float]
    lag_seconds: float  # how far the schedules' time fell behind the replay clock at the end


def run(symbols: int = 100, seconds: float = 60.0, speed: float = 60.0) -> PipelineResult:
    origin = datetime.now(UTC).replace(second=0, microsecond=0)
    chosen = feeds(symbols)

    def seed(origin: datetime) -> None:
        seed_bench(origin - timedelta(hours=2), [f.symbol for f in chosen], Decimal(1_000_000_000))

    cloud = LocalCloud(
        LocalCloudConfig(aws_port=free_port(), speed=speed, demo=False, feeds=chosen, start=origin, seed=seed)
    )
    timeline = _Timeline()
    try:
        cloud.start()
        tap_function_logs(timeline)  # the signal and fill records are INFO
        started = time.monotonic()
        cloud.config.duration = seconds
        cloud.run()
        wall = time.monotonic() - started
        lag = (cloud.clock.now() - cloud.last_fired).total_seconds() if cloud.last_fired else 0.0
        evaluations = timeline.evaluations
        cloud.drain(timeout=30)
        latencies = [(timeline.fills[s] - t) * 1000 for s, t in timeline.signals.items() if s in timeline.fills]
        return PipelineResult(
            symbols=symbols,
            wall_seconds=wall,
            evaluations=evaluations,
            evaluations_per_minute=evaluations / wall * 60,
            signals=len(timeline.signals),
            fills=len(timeline.fills),
            latencies_ms=latencies,
            lag_seconds=lag,
        )
    finally:
        cloud.shutdown()


def report(result: PipelineResult, speed: float) -> None:
    demanded = result.symbols * speed  # evaluations per wall minute the clock asks for
    print(f"\n== local cloud pipeline, {result.symbols} symbols, rate(1 minute) schedules, clock at {speed:g}x ==")
    print(
        f"  symbols per minute sustained  {result.evaluations_per_minute:8.0f} evaluations/min "
        f"({result.evaluations} in {result.wall_seconds:.0f} s; the clock asked for {demanded:.0f}/min: "
        f"{result.evaluations_per_minute / demanded:.2f}x; schedules {result.lag_seconds:.0f} simulated s behind)"
    )
    print(
        f"  signal-to-fill latency        p50 {percentile(result.latencies_ms, 50):7.0f} ms  "
        f"p99 {percentile(result.latencies_ms, 99):7.0f} ms  ({result.fills} fills of {result.signals} signals)"
    )
