"""Market-data history in the template: the Glue table over the archiver's Parquet layout with partition
projection (no crawler), the Athena workgroup with encrypted, enforced results, the archiver's grants limited
to putting objects under bars/, and the optional Timestream writer absent by default and present (with
least-privilege grants) under `-c timestream=true`."""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from synth import ROOT, STAGE, resources, template_json

from tradeflow.catalogue import BUCKETS, FUNCTIONS, TIMESTREAM
from tradeflow.marketdata.history import BAR_COLUMNS, PARTITION_KEYS, TIMEFRAMES, glue_database

pytestmark = pytest.mark.xdist_group("infra")


@functools.cache
def timestream_template() -> dict[str, Any]:
    """The stage synthesised with the Timestream flag on (its own app and output folder)."""
    sys.path.insert(0, str(ROOT / "infra"))
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from app import build_app  # type: ignore[import-not-found]

    outdir = Path(tempfile.mkdtemp(prefix="cdk-out-timestream-"))
    saved_stage = os.environ.get("TRADEFLOW_STAGE")
    try:
        app, stack = build_app({"stage": STAGE, "layers": "placeholder", "timestream": "true"}, outdir=str(outdir))
        app.synth()
    finally:
        if saved_stage is None:
            os.environ.pop("TRADEFLOW_STAGE", None)
        else:
            os.environ["TRADEFLOW_STAGE"] = saved_stage
    loaded: dict[str, Any] = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return loaded


def _function(template: dict[str, Any], name: str) -> tuple[str, dict[str, Any]] | None:
    physical = FUNCTIONS[name].physical_name(STAGE)
    for lid, r in template["Resources"].items():
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("FunctionName") == physical:
            return lid, r["Properties"]
    return None


def _statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    found = _function(template, function)
    assert found is not None, f"{function} is not in the template"
    role = found[1]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _history_bucket_id(template: dict[str, Any]) -> str:
    (lid,) = [
        lid
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::S3::Bucket" and "LoggingConfiguration" in r.get("Properties", {})
    ]
    return lid


# -- Glue and Athena ----------------------------------------------------------------------------------


def test_the_glue_table_reads_the_archivers_parquet_layout_with_partition_projection() -> None:
    (database,) = resources("AWS::Glue::Database")
    assert database["DatabaseInput"]["Name"] == glue_database(STAGE) == f"tradeflow_{STAGE}"
    (table,) = resources("AWS::Glue::Table")
    assert table["DatabaseName"] == glue_database(STAGE)
    spec = table["TableInput"]
    assert spec["Name"] == "bars" and spec["TableType"] == "EXTERNAL_TABLE"
    assert [k["Name"] for k in spec["PartitionKeys"]] == list(PARTITION_KEYS)
    storage = spec["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == list(BAR_COLUMNS)
    assert storage["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert "Parquet" in storage["InputFormat"]
    location = json.dumps(storage["Location"])
    assert _history_bucket_id(template_json()) in location and "/bars/" in location
    params = spec["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params["projection.tenant.type"] == params["projection.symbol.type"] == "injected"
    assert params["projection.timeframe.type"] == "enum"
    assert params["projection.timeframe.values"].split(",") == list(TIMEFRAMES)
    assert params["projection.date.type"] == "date" and params["projection.date.format"] == "yyyy-MM-dd"
    assert params["projection.date.range"].endswith(",NOW")
    template = json.dumps(params["storage.location.template"])
    assert "bars/tenant=${tenant}/symbol=${symbol}/timeframe=${timeframe}/date=${date}/" in template


def test_the_athena_workgroup_enforces_encrypted_results_in_the_history_bucket() -> None:
    (workgroup,) = resources("AWS::Athena::WorkGroup")
    config = workgroup["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    results = config["ResultConfiguration"]
    assert results["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    assert "athena-results/" in json.dumps(results["OutputLocation"])
    assert _history_bucket_id(template_json()) in json.dumps(results["OutputLocation"])
    assert config["BytesScannedCutoffPerQuery"] > 0


def test_the_history_bucket_has_its_catalogue_name_and_expires_athena_results() -> None:
    template = template_json()
    bucket = template["Resources"][_history_bucket_id(template)]["Properties"]
    name = json.dumps(bucket["BucketName"])
    assert BUCKETS["history"].physical_name(STAGE) in name
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-athena-results"]["Prefix"] == "athena-results/"


# -- the archiver -------------------------------------------------------------------------------------


def test_the_archiver_consumes_the_bars_stream_and_may_only_put_objects_under_bars() -> None:
    template = template_json()
    found = _function(template, "bars_archiver")
    assert found is not None
    lid, function = found
    env = function["Environment"]["Variables"]
    assert env[BUCKETS["history"].env_var] == {"Ref": _history_bucket_id(template)}
    mappings = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping" and r["Properties"]["FunctionName"] == {"Ref": lid}
    ]
    assert len(mappings) == 1 and mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "bars" in json.dumps(mappings[0]["EventSourceArn"]).lower()
    (source,) = FUNCTIONS["bars_archiver"].stream_sources
    assert mappings[0]["BatchSize"] == source.batch_size
    assert mappings[0]["MaximumBatchingWindowInSeconds"] == source.max_batching_window_seconds > 0
    s3_statements = [s for s in _statements(template, "bars_archiver") if any(a.startswith("s3:") for a in _actions(s))]
    assert len(s3_statements) == 1
    (statement,) = s3_statements
    assert _actions(statement) == ["s3:PutObject"]
    resource = statement["Resource"]
    assert resource["Fn::Join"][1] == [{"Fn::GetAtt": [_history_bucket_id(template), "Arn"]}, "/bars/*"]
    # it reads and writes no table: its input is the stream event itself
    assert not [s for s in _statements(template, "bars_archiver") if any("dynamodb:PutItem" in a for a in _actions(s))]


def test_no_other_function_can_write_to_the_history_bucket() -> None:
    template = template_json()
    writers = {
        name
        for name in FUNCTIONS
        if _function(template, name) and any("s3:PutObject" in _actions(s) for s in _statements(template, name))
    }
    assert writers == {"bars_archiver"}


# -- Timestream -----------------------------------------------------------------------------------------


def test_the_timestream_writer_is_absent_by_default() -> None:
    template = template_json()
    assert _function(template, "timestream_writer") is None
    assert not [r for r in template["Resources"].values() if r["Type"].startswith("AWS::Timestream::")]


def test_the_timestream_writer_with_the_flag_writes_only_its_table() -> None:
    template = timestream_template()
    found = _function(template, "timestream_writer")
    assert found is not None
    lid, function = found
    env = function["Environment"]["Variables"]
    assert env[TIMESTREAM.database_env_var] == TIMESTREAM.database_name(STAGE)
    assert env[TIMESTREAM.table_env_var] == TIMESTREAM.table
    (table_id,) = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::Timestream::Table"]
    statements = _statements(template, "timestream_writer")
    writes = [s for s in statements if "timestream:WriteRecords" in _actions(s)]
    assert [s["Resource"] for s in writes] == [{"Fn::GetAtt": [table_id, "Arn"]}]
    endpoints = [s for s in statements if "timestream:DescribeEndpoints" in _actions(s)]
    assert [(_actions(s), s["Resource"]) for s in endpoints] == [(["timestream:DescribeEndpoints"], "*")]
    mappings = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping" and r["Properties"]["FunctionName"] == {"Ref": lid}
    ]
    assert len(mappings) == 1
    # and it is watched like every function of the stage
    alarms = {
        r["Properties"].get("AlarmName")
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert f"tradeflow-{STAGE}-errors-timestream_writer" in alarms
