"""Backtests as jobs: what a backtest request is, running one with progress, and its lifecycle.

Every backtest the API runs is a job (`BacktestJob`, table `backtest_jobs`):

- Small runs (at most `SYNC_MAX_BARS` bars summed over the datasets, after the date window) run inside
  the request and are stored already `succeeded`; the caller gets the result at once.
- Larger ones, or any with `mode: async`, are stored `queued` and sent to the `backtests` queue (a
  standard queue: one `JobMessage` per job). The `backtest_worker` function takes it `running`
  (progress 0-100, written at most every `PROGRESS_INTERVAL_SECONDS`), then `succeeded` with the result
  or `failed` with the reason.
- A job is run from its own snapshot of the request (`BacktestSettings`: the strategy definition as it
  was when submitted, datasets, window, settings), so editing a saved strategy never changes a job.
- Redelivery is harmless: a job already succeeded or failed is not rerun; a job found `running` (its
  worker died) is run again from the start — the run is deterministic, so the result is the same.
- Results are kept whole (every bar of the equity curve, every trade) as compressed JSON in chunks of
  the job's table (see `storage/backtest_jobs.py`), so no DynamoDB item nears 400 KB.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ConfigDict, Field, ValidationError

from tradeflow.backtest.config import BacktestConfig
from tradeflow.backtest.results import BacktestResult, Metrics
from tradeflow.domain.base import Model
from tradeflow.domain.types import ResourceId, TenantId, UtcDatetime
from tradeflow.storage.strategies import DefinitionError, StrategyDefinition
from tradeflow.strategies.base import Decision, Strategy
from tradeflow.strategies.plan import TradePlan

if TYPE_CHECKING:
    from datetime import datetime as _dt

    import numpy as np
    import numpy.typing as npt

    from tradeflow.domain import Bar
    from tradeflow.storage.backtest_jobs import BacktestJobRepository

# Runs up to this many bars (summed over the datasets) answer synchronously: the slowest built-in
# (`pro`) backtests ~10,000 bars in under a second, well inside API Gateway's 29 s.
SYNC_MAX_BARS = 10_000
PROGRESS_INTERVAL_SECONDS = 3.0
JOB_RETENTION = timedelta(days=30)
FRACTIONAL_ASSETS = ("crypto", "fx")


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class BacktestSettings(Model):
    """A backtest as a job runs it: a snapshot of the definition, and what to run it over."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    definition: StrategyDefinition
    strategy_id: ResourceId | None = None  # the saved strategy it came from, if any
    strategy_version: int | None = None
    strategy_name: str = Field(description="the saved strategy's name, or the registered strategy's")
    datasets: list[str] = Field(min_length=1)
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    config: dict[str, Any] = Field(default_factory=dict, description="the BacktestConfig fields given")

    def backtest_config(self) -> BacktestConfig:
        """Only the fields given are set, so a strategy's own plan fills the rest
        (`BacktestConfig.resolve_plan` reads `model_fields_set`)."""
        return BacktestConfig.model_validate(self.config)


class BacktestJob(Model):
    job_id: ResourceId
    tenant_id: TenantId
    mode: Literal["sync", "async"]
    status: JobStatus
    progress: int = Field(ge=0, le=100)
    settings: BacktestSettings
    bars: int = Field(description="bars run over, summed over the datasets")
    created_at: UtcDatetime
    updated_at: UtcDatetime
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    created_by: str
    attempts: int = 0
    error: str | None = None
    metrics: Metrics | None = None
    result_chunks: int | None = None
    result_bytes: int | None = None  # uncompressed JSON size
    result_sha256: str | None = None


class JobMessage(Model):
    """The body of a `backtests` queue message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: TenantId
    job_id: ResourceId


class RunError(ValueError):
    """The request cannot run as given; `field` names it relative to the request (`datasets.1`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def new_job_id() -> str:
    """`btj_` + creation time (ms, hex: ids sort by creation) + randomness."""
    return f"btj_{int(time.time() * 1000):011x}{secrets.token_hex(5)}"


class PreparedRun:
    """A request checked and loaded: the strategy, each dataset's bars (windowed), the config."""

    def __init__(self, strategy: Strategy, series: dict[str, list[Bar]], config: BacktestConfig) -> None:
        self.strategy, self.series, self.config = strategy, series, config

    @property
    def bars(self) -> int:
        return sum(len(b) for b in self.series.values())


def prepare(settings: BacktestSettings) -> PreparedRun:
    """Build the strategy and load the data; `DefinitionError` / `RunError` name what is wrong."""
    from tradeflow.marketdata.catalog import DATASETS, load_dataset

    strategy = settings.definition.build()
    if settings.start and settings.end and settings.start >= settings.end:
        raise RunError("end", "must be after start")
    series: dict[str, list[Bar]] = {}
    for i, name in enumerate(settings.datasets):
        if name not in DATASETS:
            raise RunError(f"datasets.{i}", f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}")
        if name in series:
            raise RunError(f"datasets.{i}", f"{name} is given twice")
        bars = [
            b
            for b in load_dataset(name)
            if (settings.start is None or b.ts >= settings.start) and (settings.end is None or b.ts < settings.end)
        ]
        if len(bars) <= strategy.warmup:
            raise RunError(
                f"datasets.{i}",
                f"{settings.strategy_name} needs more than {strategy.warmup} bars to warm up; {name} has {len(bars)}"
                + (" in the start/end window" if settings.start or settings.end else ""),
            )
        series[name] = bars
    config = settings.config
    if "fractional" not in config:  # units by asset class, as the CLI's --units auto
        config = {**config, "fractional": all(DATASETS[s].asset_class in FRACTIONAL_ASSETS for s in series)}
    try:
        return PreparedRun(strategy, series, BacktestConfig.model_validate(config))
    except ValidationError as exc:  # checked by the API already; a stored job could predate a change
        error = exc.errors()[0]
        raise RunError(".".join(["config", *map(str, error["loc"])]), str(error["msg"])) from exc


class _Reporting(Strategy):
    """The strategy itself, telling `done()` each time the engine has computed a symbol's signals
    (the bulk of a run's time): the progress hook of a single run."""

    def __init__(self, inner: Strategy, done: Callable[[], None]) -> None:
        super().__init__(inner.params)
        self.inner, self.done = inner, done

    @property
    def warmup(self) -> int:
        return self.inner.warmup

    @property
    def plan(self) -> TradePlan | None:
        return self.inner.plan

    def evaluate(self, bars: Sequence[Bar]) -> Decision:
        return self.inner.evaluate(bars)

    def signals(
        self,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike,
        *,
        ts: Sequence[_dt] | None = None,
        symbol: str = "BACKTEST",
    ) -> np.ndarray:
        out = self.inner.signals(open, high, low, close, volume, ts=ts, symbol=symbol)
        self.done()
        return out


def execute(run: PreparedRun, progress: Callable[[int], None] | None = None) -> BacktestResult:
    """The backtest (a portfolio when several datasets), reporting progress 10-90 as symbols finish."""
    from tradeflow.backtest.engine import run_backtest, run_portfolio

    report = progress or (lambda _: None)
    done = [0]

    def symbol_done() -> None:
        done[0] += 1
        report(10 + 80 * done[0] // len(run.series))

    report(10)
    strategy = _Reporting(run.strategy, symbol_done)
    if len(run.series) == 1:
        (bars,) = run.series.values()
        result = run_backtest(bars, strategy, run.config)
    else:
        result = run_portfolio(run.series, strategy, run.config)
    report(90)
    return result


class Throttle:
    """Calls `write(progress)` at most once per `interval` seconds (on `clock`), and only forward."""

    def __init__(
        self, write: Callable[[int], None], interval: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.write, self.interval, self.clock = write, interval, clock
        self.last_at = clock()
        self.last = 0

    def __call__(self, progress: int) -> None:
        now = self.clock()
        if progress > self.last and now - self.last_at >= self.interval:
            self.write(progress)
            self.last, self.last_at = progress, now


class JobQueue:
    """Sends job messages to the standard `backtests` queue."""

    def send(self, message: JobMessage) -> None:
        from tradeflow.messaging.sqs import SqsQueues

        SqsQueues().send("backtests", message.model_dump_json())


RunOutcome = Literal["succeeded", "failed", "already_done", "unknown_job", "superseded"]


class BacktestJobs:
    """The job lifecycle: submit (API) and run (worker)."""

    def __init__(
        self,
        repository: BacktestJobRepository | None = None,
        queue: JobQueue | None = None,
        progress_interval: float = PROGRESS_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        from tradeflow.storage.backtest_jobs import BacktestJobRepository

        self.jobs = repository or BacktestJobRepository()
        self.queue = queue or JobQueue()
        self.progress_interval, self.clock, self.now = progress_interval, clock, now

    # -- the API side ------------------------------------------------------------------------------

    def submit(
        self,
        tenant_id: str,
        actor: str,
        settings: BacktestSettings,
        mode: Literal["auto", "sync", "async"] = "auto",
    ) -> tuple[BacktestJob, BacktestResult | None]:
        """Check the request (raising `DefinitionError` / `RunError`), then run it here (small, or
        `sync`) and store it succeeded, or store it queued and send it to the worker."""
        run = prepare(settings)
        if mode == "sync" and run.bars > SYNC_MAX_BARS:
            raise RunError("mode", f"{run.bars} bars is over the synchronous limit of {SYNC_MAX_BARS}: use async")
        now = self.now()
        job = BacktestJob(
            job_id=new_job_id(),
            tenant_id=tenant_id,
            mode="async" if mode == "async" or run.bars > SYNC_MAX_BARS else "sync",
            status=JobStatus.QUEUED,
            progress=0,
            settings=settings,
            bars=run.bars,
            created_at=now,
            updated_at=now,
            created_by=actor,
        )
        if job.mode == "async":
            self.jobs.put_new(job)
            try:
                self.queue.send(JobMessage(tenant_id=tenant_id, job_id=job.job_id))
            except Exception as exc:
                self.jobs.fail(tenant_id, job.job_id, f"could not be queued: {type(exc).__name__}", self.now())
                raise
            return job, None
        try:
            result = execute(run)
        except ValueError as exc:  # the engine refusing this data or these settings
            raise RunError("datasets", str(exc)) from exc
        done = self.now()
        job = job.model_copy(update={"status": JobStatus.RUNNING, "started_at": now, "attempts": 1})
        self.jobs.put_new(job)
        try:
            stored = self.jobs.succeed(job, result, done)
        except Exception as exc:  # never leave a synchronous job looking as if it still ran
            self.jobs.fail(tenant_id, job.job_id, f"the result could not be stored: {type(exc).__name__}", self.now())
            raise
        assert stored is not None, "a job of this request only"
        return stored, result

    # -- the worker side ---------------------------------------------------------------------------

    def run(self, tenant_id: str, job_id: str) -> RunOutcome:
        """Run a queued job to its end; transient failures (AWS) propagate, for the queue to retry."""
        job = self.jobs.get(tenant_id, job_id)
        if job is None:
            return "unknown_job"
        if job.status.final:
            return "already_done"
        job = self.jobs.start(job, self.now())
        if job is None:
            return "already_done"
        write = Throttle(
            lambda p: self.jobs.set_progress(tenant_id, job_id, p, self.now()), self.progress_interval, self.clock
        )
        try:
            prepared = prepare(job.settings)
            result = execute(prepared, write)
        except (DefinitionError, RunError, ValueError) as exc:  # deterministic: retrying cannot help
            self.jobs.fail(tenant_id, job_id, str(exc), self.now())
            return "failed"
        return "succeeded" if self.jobs.succeed(job, result, self.now()) is not None else "superseded"

    def fail(self, tenant_id: str, job_id: str, reason: str) -> None:
        """Record a job's failure (its last delivery failed, or it was dead-lettered)."""
        self.jobs.fail(tenant_id, job_id, reason, self.now())
