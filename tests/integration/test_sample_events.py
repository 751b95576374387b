"""Every sample event in events/ runs through its handler on moto with the demo seeded, as
`tradeflow invoke FUNCTION events/FILE.json` does against a running local cloud."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from tradeflow.cli import main
from tradeflow.local.demo import demo_feeds, seed_demo
from tradeflow.local.lambdas import repo_root
from tradeflow.local.replay import MarketReplay

from helpers import Context, handler, receive

EVENTS = repo_root() / "events"
ORIGIN = datetime(2026, 1, 5, 14, 31, tzinfo=UTC)


def _load(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((EVENTS / name).read_text())
    return loaded


def _seed() -> None:
    seed_demo(datetime(2026, 1, 5, 13, 0, tzinfo=UTC))
    MarketReplay(demo_feeds(), ORIGIN, warmup=40).publish_due(ORIGIN)


def test_every_function_has_a_sample_event() -> None:
    names = {p.name.split("-")[0] for p in EVENTS.glob("*.json")}
    assert names >= {"strategy", "risk", "execution", "paper_exchange", "broadcaster"}


def test_strategy_sample_evaluates(aws: object) -> None:
    _seed()
    out = handler("strategy")(_load("strategy-scheduled.json"), Context())
    assert out["status"] == "ok"


def test_invalid_strategy_sample_is_dead_lettered_with_the_field(aws: object) -> None:
    out = handler("strategy")(_load("strategy-invalid.json"), Context())
    assert out["status"] == "dead_lettered"
    assert "symbol" in out["reason"] and "scheduled_time" in out["reason"]
    dead = receive("dead_events")
    assert len(dead) == 1 and "symbol" in dead[0]["MessageAttributes"]["reason"]["StringValue"]


def test_risk_then_execution_samples(aws: object) -> None:
    _seed()
    assert handler("risk")(_load("risk-signals-batch.json"), Context()) == {"batchItemFailures": []}
    assert len(receive("orders")) == 1
    out = handler("execution")(_load("execution-orders-batch.json"), Context())
    assert out == {"batchItemFailures": []}
    # The broker update for the same order then records its fill once, however often it comes.
    for _ in range(2):
        assert handler("execution")(_load("execution-broker-update-batch.json"), Context()) == {"batchItemFailures": []}
    from tradeflow.storage.fills import FillRepository

    assert len(FillRepository().list("demo", "paper-main")) == 1


def test_poison_sample_goes_to_the_dlq_without_failing_the_batch(aws: object) -> None:
    _seed()
    assert handler("risk")(_load("risk-poison-batch.json"), Context()) == {"batchItemFailures": []}
    dead = receive("signals", dlq=True)
    assert len(dead) == 2
    reasons = sorted(m["MessageAttributes"]["reason"]["StringValue"] for m in dead)
    assert any("Invalid JSON" in r or "json" in r.lower() for r in reasons)
    assert any("deployment_id" in r for r in reasons)


def test_paper_exchange_sample(aws: object) -> None:
    _seed()
    out = handler("paper_exchange")(_load("paper_exchange-bars-stream.json"), Context())
    assert out == {"batchItemFailures": []}


def test_bars_archiver_sample_writes_its_parquet_object(aws: object) -> None:
    from tradeflow.catalogue import bucket_name
    from tradeflow.runtime.aws import client

    out = handler("bars_archiver")(_load("bars_archiver-bars-stream.json"), Context())
    assert out == {"batchItemFailures": []}
    keys = [o["Key"] for o in client("s3").list_objects_v2(Bucket=bucket_name("history"))["Contents"]]
    assert keys == [
        "bars/tenant=demo/symbol=GOOG/timeframe=1m/date=2026-01-05/"
        "20260105T143200000000Z_20260105T143200000000Z.parquet"
    ]


def test_cli_invoke_runs_a_sample_against_the_endpoint(aws: object, capsys: object) -> None:
    _seed()
    endpoint = aws.endpoint  # type: ignore[attr-defined]
    assert main(["invoke", "strategy", str(EVENTS / "strategy-scheduled.json"), "--aws-endpoint", endpoint]) == 0
    printed = capsys.readouterr().out  # type: ignore[attr-defined]
    assert json.loads(printed)["status"] == "ok"


def test_cli_invoke_names_an_unreadable_event(tmp_path: Path, capsys: object) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert main(["invoke", "risk", str(bad)]) == 2
    assert "bad.json" in capsys.readouterr().err  # type: ignore[attr-defined]


def test_broadcaster_sample(aws: object) -> None:
    """An order placed and filled: read, translated and fanned out (to nobody connected) without a dead letter."""
    out = handler("broadcaster")(_load("broadcaster-orders-stream.json"), Context())
    assert out == {"batchItemFailures": []}
    assert receive("dead_events") == []
