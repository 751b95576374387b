"""The backtest worker on moto: a queued job runs to `succeeded` with its result stored (chunked and
compressed, read back whole), progress is written at most every few seconds, redelivery never reruns a
finished job, poison messages are dead-lettered with the reason, deterministic failures end `failed`
with the reason, transient ones are retried and recorded on the last delivery — and the local cloud's
SQS poller delivers the standard `backtests` queue to the function."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from tradeflow.backtest import BacktestConfig, run_backtest
from tradeflow.backtest.engine import run_portfolio
from tradeflow.backtest.jobs import (
    BacktestJob,
    BacktestJobs,
    BacktestSettings,
    JobStatus,
    Throttle,
)
from tradeflow.local.lambdas import LocalLambdas, repo_root
from tradeflow.local.sqs_delivery import SqsPoller
from tradeflow.marketdata import load_dataset
from tradeflow.storage.backtest_jobs import BacktestJobRepository
from tradeflow.storage.strategies import StrategyDefinition
from tradeflow.strategies import create

from helpers import Context, deliver, fake_message, handler, handler_globals, reason_of, receive

TENANT = "acme"
SMA = StrategyDefinition(strategy="sma_cross", params={"fast": 10, "slow": 30})
PORTFOLIO = ["SPY", "GOOG", "002032.SZ"]


def _settings(datasets: list[str] | None = None, definition: StrategyDefinition = SMA) -> BacktestSettings:
    return BacktestSettings(
        definition=definition, strategy_name="sma", datasets=datasets or PORTFOLIO, config={"commission": 0.001}
    )


def _submit(datasets: list[str] | None = None) -> BacktestJob:
    job, result = BacktestJobs().submit(TENANT, "user:u1", _settings(datasets), mode="async")
    assert result is None and job.status is JobStatus.QUEUED
    return job


def _job(job_id: str) -> BacktestJob:
    job = BacktestJobRepository().get(TENANT, job_id)
    assert job is not None
    return job


def _queued(count: int = 1) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = receive("backtests")
    assert len(messages) == count
    return messages


def test_a_queued_portfolio_job_runs_to_its_stored_result(aws: object) -> None:
    job = _submit()
    result = deliver("backtest_worker", "backtests", _queued())
    assert result == {"batchItemFailures": []}
    done = _job(job.job_id)
    assert done.status is JobStatus.SUCCEEDED and done.progress == 100 and done.attempts == 1 and done.error is None
    stored = BacktestJobRepository().result(done)
    expected = run_portfolio(
        {s: load_dataset(s) for s in PORTFOLIO}, create("sma_cross", SMA.params), BacktestConfig(commission=0.001)
    )
    assert stored == json.loads(json.dumps(expected.model_dump(mode="json")))
    assert len(stored["equity_curve"]) == len(stored["timestamps"])  # every bar kept, nothing downsampled
    assert done.metrics == expected.metrics
    assert receive("backtests") == [] and receive("backtests", dlq=True) == []


def test_a_large_result_is_stored_in_chunks(aws: object, monkeypatch: pytest.MonkeyPatch) -> None:
    import tradeflow.storage.backtest_jobs as storage

    monkeypatch.setattr(storage, "CHUNK_BYTES", 10_000)
    job = _submit(["SPY"])
    deliver("backtest_worker", "backtests", _queued())
    done = _job(job.job_id)
    assert done.result_chunks is not None and done.result_chunks > 3
    expected = run_backtest(load_dataset("SPY"), create("sma_cross", SMA.params), BacktestConfig(commission=0.001))
    assert BacktestJobRepository().result(done)["metrics"] == expected.metrics.model_dump(mode="json")


def test_progress_is_written_at_most_every_interval() -> None:
    writes: list[int] = []
    now = [0.0]
    throttle = Throttle(writes.append, interval=3.0, clock=lambda: now[0])
    for t, progress in [(1, 10), (3, 20), (3.5, 30), (6.9, 40), (7, 50), (20, 50), (21, 40)]:
        now[0] = t
        throttle(progress)
    assert writes == [20, 40, 50]  # at t = 3, 6.9 and 20: never twice within 3 s, never backwards


def test_progress_reaches_the_job_while_running(aws: object) -> None:
    seen: list[int] = []

    class Spy(BacktestJobRepository):
        def set_progress(self, tenant_id: str, job_id: str, progress: int, now: datetime) -> None:
            super().set_progress(tenant_id, job_id, progress, now)
            seen.append(_job(job_id).progress)

    job = _submit()
    assert BacktestJobs(Spy(), progress_interval=0).run(TENANT, job.job_id) == "succeeded"
    assert seen == [10, 36, 63, 90]  # data loaded, each symbol's signals, the engine done
    assert _job(job.job_id).progress == 100


def test_redelivery_of_a_finished_job_does_not_rerun_it(aws: object) -> None:
    job = _submit(["GOOG"])
    (message,) = _queued()
    deliver("backtest_worker", "backtests", [message])
    first = _job(job.job_id)
    again = handler("backtest_worker")({"Records": _records([message])}, Context())
    assert again == {"batchItemFailures": []}
    assert _job(job.job_id) == first  # untouched: same attempts, same times


def test_a_job_whose_worker_died_is_run_again(aws: object) -> None:
    job = _submit(["GOOG"])
    repository = BacktestJobRepository()
    repository.start(job, datetime.now(UTC))  # a worker took it, then vanished
    deliver("backtest_worker", "backtests", _queued())
    done = _job(job.job_id)
    assert done.status is JobStatus.SUCCEEDED and done.attempts == 2


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("{not json", "invalid backtests message"),
        ({"tenant_id": TENANT}, "job_id"),
        ({"tenant_id": TENANT, "job_id": "btj_nope"}, "unknown backtest job 'btj_nope'"),
        ({"tenant_id": "nobody", "job_id": "btj_nope"}, "of tenant 'nobody'"),
    ],
)
def test_poison_messages_are_dead_lettered_with_the_reason(aws: object, body: Any, why: str) -> None:
    out = handler("backtest_worker")(_event([fake_message(body)]), Context())
    assert out == {"batchItemFailures": []}
    (dead,) = receive("backtests", dlq=True)
    assert why in reason_of(dead)


def test_a_job_that_can_no_longer_run_fails_with_the_reason(aws: object) -> None:
    settings = _settings(["GOOG"], StrategyDefinition(strategy="not_registered"))
    job = _submit(["GOOG"])
    broken = job.model_copy(update={"job_id": "btj_broken", "settings": settings})
    BacktestJobRepository().put_new(broken)
    out = handler("backtest_worker")(_event([fake_message({"tenant_id": TENANT, "job_id": "btj_broken"})]), Context())
    assert out == {"batchItemFailures": []}
    failed = _job("btj_broken")
    assert failed.status is JobStatus.FAILED and failed.error is not None and "unknown strategy" in failed.error
    assert receive("backtests", dlq=True) == []


def test_transient_failures_are_retried_then_recorded(aws: object, monkeypatch: pytest.MonkeyPatch) -> None:
    job = _submit(["GOOG"])
    service: BacktestJobs = handler_globals("backtest_worker")["service"]

    def outage(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("dynamodb unreachable")

    monkeypatch.setattr(service.jobs, "succeed", outage)
    message = {"tenant_id": TENANT, "job_id": job.job_id}
    first = handler("backtest_worker")(_event([fake_message(message, receive_count=1)]), Context())
    assert [f["itemIdentifier"] for f in first["batchItemFailures"]] == ["m-1"]
    assert _job(job.job_id).status is JobStatus.RUNNING  # to be retried
    last = handler("backtest_worker")(_event([fake_message(message, receive_count=2)]), Context())
    assert [f["itemIdentifier"] for f in last["batchItemFailures"]] == ["m-1"]  # SQS redrives it to the DLQ
    failed = _job(job.job_id)
    assert failed.status is JobStatus.FAILED and failed.error == "ConnectionError: dynamodb unreachable"


def test_the_sample_event_runs_its_job(aws: object) -> None:
    event = json.loads((repo_root() / "events" / "backtest_worker-job.json").read_text())
    body = json.loads(event["Records"][0]["body"])
    job = _submit(["GOOG"]).model_copy(update={"job_id": body["job_id"], "tenant_id": body["tenant_id"]})
    BacktestJobRepository().put_new(job)
    assert handler("backtest_worker")(event, Context()) == {"batchItemFailures": []}
    stored = BacktestJobRepository().get(body["tenant_id"], body["job_id"])
    assert stored is not None and stored.status is JobStatus.SUCCEEDED


def test_the_local_clouds_poller_delivers_the_standard_queue(aws: object) -> None:
    job = _submit(["GOOG", "SPY"])
    stop = threading.Event()
    poller = SqsPoller("backtest_worker", LocalLambdas(["backtest_worker"]), stop, wait_seconds=1)
    poller.start()
    try:
        deadline = time.monotonic() + 60
        while _job(job.job_id).status is not JobStatus.SUCCEEDED and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        poller.join(10)
    assert _job(job.job_id).status is JobStatus.SUCCEEDED
    assert receive("backtests") == []  # deleted after success


def _records(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = _event(messages)["Records"]
    return records


def _event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    from helpers import as_sqs_event

    event: dict[str, Any] = as_sqs_event("backtests", messages)
    return event
