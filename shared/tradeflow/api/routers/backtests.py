"""`backtests`: run a strategy (saved, by `strategy_id`, or an inline `definition`) over shipped
datasets (several: a portfolio sharing one cash balance), with the backtester's settings (`config`,
the `BacktestConfig` model).

Every run is a job. Runs of at most `SYNC_MAX_BARS` (10,000) bars summed over the datasets answer at
once: 201 with the finished job and its result. Larger runs, or `"mode": "async"`, answer 202 with the
queued job and its URL (`Location`); poll `GET /v1/backtests/{job_id}` for status, progress (0-100)
and, once succeeded, the result — as the backtester produces it: metrics, equity curve and drawdown
per bar with their timestamps, and every trade.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradeflow.api.context import Caller
from tradeflow.api.errors import ApiError, field_error, not_found
from tradeflow.api.pagination import Cursor, Limit, Page, query_page
from tradeflow.api.routers.strategies import definition_errors
from tradeflow.backtest.config import BacktestConfig
from tradeflow.backtest.jobs import (
    SYNC_MAX_BARS,
    BacktestJob,
    BacktestJobs,
    BacktestSettings,
    JobStatus,
    RunError,
)
from tradeflow.backtest.results import BacktestResult, Metrics
from tradeflow.domain.types import UtcDatetime
from tradeflow.storage.backtest_jobs import BacktestJobRepository, ResultUnavailable, parse
from tradeflow.storage.strategies import DefinitionError, StrategyDefinition, StrategyRepository

router = APIRouter(prefix="/backtests", tags=["backtests"])

JobId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="a backtest job id")]


class BacktestIn(BaseModel):
    """What to backtest (`strategy_id` or `definition`), over what (`datasets`, `start`, `end`), how
    (`config`), and whether to wait for it (`mode`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"strategy_id": "stg_0123456789abcdef01234", "datasets": ["SPY"], "config": {"commission": 0.001}},
                {"definition": {"strategy": "sma_cross", "params": {"fast": 20, "slow": 50}}, "datasets": ["GOOG"]},
            ]
        },
    )

    strategy_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="a saved strategy")
    definition: StrategyDefinition | None = Field(default=None, description="or an unsaved definition")
    datasets: list[str] = Field(
        min_length=1, max_length=20, description="shipped datasets (GET /v1/backtests/datasets); several: a portfolio"
    )
    start: UtcDatetime | None = Field(default=None, description="only bars opening at or after this time")
    end: UtcDatetime | None = Field(default=None, description="only bars opening before this time")
    config: BacktestConfig = Field(default_factory=BacktestConfig, description="fills, costs, sizing, exits")
    mode: Literal["auto", "sync", "async"] = Field(
        default="auto", description=f"auto: synchronous up to {SYNC_MAX_BARS} bars (summed over the datasets)"
    )

    @model_validator(mode="after")
    def _one_strategy(self) -> BacktestIn:
        if (self.strategy_id is None) == (self.definition is None):
            raise ValueError("give exactly one of 'strategy_id' (a saved strategy) or 'definition'")
        return self


class BacktestJobOut(BaseModel):
    job_id: str
    status: JobStatus
    progress: int = Field(description="0-100")
    mode: Literal["sync", "async"]
    strategy: str = Field(description="the saved strategy's name, or the registered strategy's")
    strategy_id: str | None
    strategy_version: int | None
    definition: StrategyDefinition = Field(description="the definition run (a snapshot taken at submission)")
    datasets: list[str]
    start: UtcDatetime | None
    end: UtcDatetime | None
    config: dict[str, Any] = Field(description="the settings given (the rest: defaults or the strategy's plan)")
    bars: int
    created_at: UtcDatetime
    updated_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    created_by: str
    error: str | None = Field(description="why the job failed")
    metrics: Metrics | None
    url: str

    @classmethod
    def fields_of(cls, job: BacktestJob) -> dict[str, Any]:
        s = job.settings
        return {
            "job_id": job.job_id,
            "status": job.status,
            "progress": job.progress,
            "mode": job.mode,
            "strategy": s.strategy_name,
            "strategy_id": s.strategy_id,
            "strategy_version": s.strategy_version,
            "definition": s.definition,
            "datasets": s.datasets,
            "start": s.start,
            "end": s.end,
            "config": s.config,
            "bars": job.bars,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "created_by": job.created_by,
            "error": job.error,
            "metrics": job.metrics,
            "url": f"/v1/backtests/{job.job_id}",
        }

    @classmethod
    def of(cls, job: BacktestJob) -> BacktestJobOut:
        return cls(**cls.fields_of(job))


class BacktestOut(BacktestJobOut):
    result: BacktestResult | None = Field(
        description="once succeeded: config, metrics, trades, equity_curve and drawdown_pct (one value per"
        " bar, or per time of a portfolio's timeline), timestamps, symbols"
    )


class DatasetOut(BaseModel):
    symbol: str
    timeframe: str
    asset_class: str
    bars: int
    first: datetime
    last: datetime
    description: str


@lru_cache(maxsize=1)
def jobs() -> BacktestJobs:
    """The job service, built on first use."""
    return BacktestJobs()


@lru_cache(maxsize=1)
def _datasets() -> tuple[DatasetOut, ...]:
    from tradeflow.marketdata.catalog import DATASETS, load_dataset

    out = []
    for name, info in sorted(DATASETS.items()):
        bars = load_dataset(name)
        out.append(
            DatasetOut(
                symbol=name,
                timeframe=info.timeframe,
                asset_class=info.asset_class,
                bars=len(bars),
                first=bars[0].ts,
                last=bars[-1].ts,
                description=info.description,
            )
        )
    return tuple(out)


@router.get("/datasets", response_model=list[DatasetOut], summary="the shipped datasets a backtest can run over")
def datasets(caller: Caller) -> list[DatasetOut]:
    return list(_datasets())


@router.post(
    "",
    response_model=BacktestOut,
    status_code=status.HTTP_201_CREATED,
    summary="run a backtest: finished at once (201) when small, else queued (202)",
    responses={202: {"model": BacktestOut, "description": "queued: poll the job's URL (Location)"}},
)
def run_backtest(body: BacktestIn, caller: Caller, response: Response) -> BacktestOut:
    settings = _settings(body, caller.tenant_id)
    try:
        job, result = jobs().submit(caller.tenant_id, f"user:{caller.user_id}", settings, body.mode)
    except DefinitionError as exc:
        raise definition_errors(exc, "body.definition") from exc
    except RunError as exc:
        raise field_error(f"body.{exc.field}", exc.message) from exc
    response.headers["Location"] = f"/v1/backtests/{job.job_id}"
    if result is None:
        response.status_code = status.HTTP_202_ACCEPTED
    return BacktestOut(**BacktestJobOut.fields_of(job), result=result)


def _settings(body: BacktestIn, tenant_id: str) -> BacktestSettings:
    config = body.config.model_dump(mode="json", exclude_unset=True)
    if body.strategy_id is not None:
        saved = StrategyRepository().get(tenant_id, body.strategy_id)
        if saved is None:  # missing or another tenant's: the same answer
            raise field_error("body.strategy_id", f"strategy {body.strategy_id!r} not found")
        return BacktestSettings(
            definition=saved.definition,
            strategy_id=saved.strategy_id,
            strategy_version=saved.version,
            strategy_name=saved.name,
            datasets=body.datasets,
            start=body.start,
            end=body.end,
            config=config,
        )
    assert body.definition is not None
    return BacktestSettings(
        definition=body.definition,
        strategy_name=body.definition.name or "strategy",
        datasets=body.datasets,
        start=body.start,
        end=body.end,
        config=config,
    )


@router.get("", response_model=Page[BacktestJobOut], summary="the tenant's backtests, newest first")
def list_backtests(
    caller: Caller,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[JobStatus | None, Query(description="only jobs in this status")] = None,
) -> Page[BacktestJobOut]:
    repository = jobs().jobs
    return query_page(
        repository.table,
        caller.tenant_id,
        lambda item: BacktestJobOut.of(parse(item)),
        limit=limit,
        cursor=cursor,
        **BacktestJobRepository.list_query(status),
    )


@router.get("/{job_id}", response_model=BacktestOut, summary="a backtest: status, progress and result")
def get_backtest(job_id: JobId, caller: Caller) -> BacktestOut:
    repository = jobs().jobs
    job = repository.get(caller.tenant_id, job_id)
    if job is None:
        raise not_found("backtest", job_id)
    result = None
    if job.status is JobStatus.SUCCEEDED:
        try:
            result = BacktestResult.model_validate(repository.result(job))
        except ResultUnavailable as exc:
            raise ApiError(503, f"the result of backtest {job_id!r} is unavailable: {exc}") from exc
    return BacktestOut(**BacktestJobOut.fields_of(job), result=result)
