"""Backtest jobs and their results (table `backtest_jobs`, pk = tenant).

- `job#<job id>`: the job (`BacktestJob`): status, progress and the rest as attributes, its request
  snapshot and metrics as JSON text (a DynamoDB map would return numbers as decimals, and drop nulls).
- `result#<job id>#<nnnn>`: the result, `BacktestResult.model_dump(mode="json")` as JSON, zlib
  compressed, cut into chunks of `CHUNK_BYTES`. Chunks are written before the job turns `succeeded`,
  and the job records their count, the JSON's size and its SHA-256, which reading checks.

Why chunks in this table and not S3: the catalogue has no bucket yet, and the shipped datasets bound a
result (every dataset at once: ~18,000 bars, ~1 MB of JSON, ~0.4 MB compressed: two chunks). Nothing is
downsampled: every point of the equity curve and drawdown, every trade is kept. Should results grow
(user data, intraday history), the chunks are the piece to move to S3 (one object per result).
Jobs and their chunks expire (`expires_at`, TTL) `JOB_RETENTION` after creation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import zlib
from datetime import datetime
from typing import Any

from tradeflow.backtest.jobs import JOB_RETENTION, BacktestJob, BacktestSettings, JobStatus
from tradeflow.backtest.results import BacktestResult, Metrics
from tradeflow.domain.types import iso
from tradeflow.storage.dynamo import ConditionFailed, DynamoTable, model_item

JOB_PREFIX = "job#"
CHUNK_BYTES = 300_000  # under DynamoDB's 400 KB item limit with room for the key and attributes
_UNFINISHED = {":queued": JobStatus.QUEUED.value, ":running": JobStatus.RUNNING.value}


class ResultUnavailable(Exception):
    """A succeeded job's stored result is missing or does not match its checksum."""


def _update(
    table: DynamoTable, key: dict[str, str], update: str, condition: str, values: dict[str, Any]
) -> dict[str, Any]:
    """`table.update` with every attribute written as a #placeholder (`status`, `metrics` and others are
    reserved words), the placeholders named from the expressions (DynamoDB refuses unused ones)."""
    names = {f"#{n}": n for n in re.findall(r"#(\w+)", f"{update} {condition}")}
    return table.update(key, update, condition=condition, names=names, values=values)


def job_sk(job_id: str) -> str:
    return JOB_PREFIX + job_id


def chunk_prefix(job_id: str) -> str:
    return f"result#{job_id}#"


class BacktestJobRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("backtest_jobs")

    @staticmethod
    def _key(tenant_id: str, job_id: str) -> dict[str, str]:
        return {"pk": tenant_id, "sk": job_sk(job_id)}

    def put_new(self, job: BacktestJob) -> None:
        item = model_item(
            job,
            pk=job.tenant_id,
            sk=job_sk(job.job_id),
            expires_at=int((job.created_at + JOB_RETENTION).timestamp()),
        )
        item["settings"] = job.settings.model_dump_json(exclude_none=True)
        if job.metrics is not None:
            item["metrics"] = job.metrics.model_dump_json()
        self.table.put(item, condition="attribute_not_exists(pk)")

    def get(self, tenant_id: str, job_id: str) -> BacktestJob | None:
        item = self.table.get(self._key(tenant_id, job_id))
        return parse(item) if item else None

    def start(self, job: BacktestJob, now: datetime) -> BacktestJob | None:
        """Take a queued job (or one whose worker died while running) as running; None if it has
        ended meanwhile."""
        try:
            item = _update(
                self.table,
                self._key(job.tenant_id, job.job_id),
                "SET #status = :running, #progress = :zero, #attempts = if_not_exists(#attempts, :zero) + :one,"
                " #started_at = :now, #updated_at = :now",
                condition="#status IN (:queued, :running)",
                values={**_UNFINISHED, ":zero": 0, ":one": 1, ":now": iso(now)},
            )
        except ConditionFailed:
            return None
        return parse(item)

    def set_progress(self, tenant_id: str, job_id: str, progress: int, now: datetime) -> None:
        with contextlib.suppress(ConditionFailed):  # finished or failed meanwhile: progress no longer matters
            _update(
                self.table,
                self._key(tenant_id, job_id),
                "SET #progress = :progress, #updated_at = :now",
                condition="#status = :running AND #progress < :progress",
                values={":running": JobStatus.RUNNING.value, ":progress": progress, ":now": iso(now)},
            )

    def succeed(self, job: BacktestJob, result: BacktestResult, now: datetime) -> BacktestJob | None:
        """Store the result, then mark the job succeeded; None when the job was no longer running
        (another delivery finished it first: its result is the same one)."""
        document = json.dumps(result.model_dump(mode="json"), separators=(",", ":"), allow_nan=False).encode()
        packed = zlib.compress(document, 6)
        chunks = [packed[i : i + CHUNK_BYTES] for i in range(0, len(packed), CHUNK_BYTES)] or [b""]
        expires = int((job.created_at + JOB_RETENTION).timestamp())
        prefix = chunk_prefix(job.job_id)
        self.table.batch_put(
            [
                {"pk": job.tenant_id, "sk": f"{prefix}{i:04d}", "data": chunk, "expires_at": expires}
                for i, chunk in enumerate(chunks)
            ]
        )
        try:
            item = _update(
                self.table,
                self._key(job.tenant_id, job.job_id),
                "SET #status = :succeeded, #progress = :done, #metrics = :metrics, #result_chunks = :chunks,"
                " #result_bytes = :bytes, #result_sha256 = :sha, #finished_at = :now, #updated_at = :now"
                " REMOVE #error",
                condition="#status = :running",
                values={
                    ":succeeded": JobStatus.SUCCEEDED.value,
                    ":running": JobStatus.RUNNING.value,
                    ":done": 100,
                    ":metrics": result.metrics.model_dump_json(),
                    ":chunks": len(chunks),
                    ":bytes": len(document),
                    ":sha": hashlib.sha256(document).hexdigest(),
                    ":now": iso(now),
                },
            )
        except ConditionFailed:
            return None
        return parse(item)

    def fail(self, tenant_id: str, job_id: str, reason: str, now: datetime) -> None:
        """Mark an unfinished job failed with `reason` (a finished one is left as it is)."""
        with contextlib.suppress(ConditionFailed):  # finished meanwhile: it stays as it ended
            _update(
                self.table,
                self._key(tenant_id, job_id),
                "SET #status = :failed, #error = :reason, #finished_at = :now, #updated_at = :now",
                condition="#status IN (:queued, :running)",
                values={**_UNFINISHED, ":failed": JobStatus.FAILED.value, ":reason": reason[:2000], ":now": iso(now)},
            )

    def result(self, job: BacktestJob) -> dict[str, Any]:
        """A succeeded job's result document (`BacktestResult` as JSON)."""
        items = self.table.query(
            job.tenant_id, sk_condition="begins_with(#sk, :prefix)", values={":prefix": chunk_prefix(job.job_id)}
        )
        items.sort(key=lambda i: str(i["sk"]))
        if job.result_chunks is None or len(items) != job.result_chunks:
            raise ResultUnavailable(f"job {job.job_id}: expected {job.result_chunks} result chunks, found {len(items)}")
        packed = b"".join(bytes(getattr(i["data"], "value", i["data"])) for i in items)
        document = zlib.decompress(packed)
        if hashlib.sha256(document).hexdigest() != job.result_sha256:
            raise ResultUnavailable(f"job {job.job_id}: stored result does not match its checksum")
        loaded: dict[str, Any] = json.loads(document)
        return loaded

    @staticmethod
    def list_query(status: JobStatus | None = None) -> dict[str, Any]:
        """`DynamoTable.page` arguments listing a tenant's jobs, newest first, optionally by status."""
        query: dict[str, Any] = {
            "sk_condition": "begins_with(#sk, :prefix)",
            "values": {":prefix": JOB_PREFIX},
            "forward": False,
        }
        if status is not None:
            query["values"][":status"] = status.value
            query["filter_expression"] = "#status = :status"
            query["names"] = {"#status": "status"}
        return query


def parse(item: dict[str, Any]) -> BacktestJob:
    data = {k: v for k, v in item.items() if k not in ("pk", "sk", "expires_at")}
    data["settings"] = BacktestSettings.model_validate_json(data["settings"])
    if "metrics" in data:
        data["metrics"] = Metrics.model_validate_json(data["metrics"])
    return BacktestJob.model_validate(data)
