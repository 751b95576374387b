"""Market-data history, Athena-queryable: the Glue database and `bars` table over the Parquet objects the
`bars_archiver` function writes, and the Athena workgroup to query them.

- Glue database `tradeflow_<stage>`, external table `bars` over `s3://<history bucket>/bars/` (Parquet
  SerDe), its columns and partitions from `tradeflow.marketdata.history` (the archiver's own definition).
- Partition projection, so no crawler and no `MSCK REPAIR`: `tenant` and `symbol` are open sets, so they
  are `injected` (a query must name them: `WHERE tenant = 'acme' AND symbol = 'GOOG'`, which also keeps a
  query inside one tenant); `timeframe` is the enum of known timeframes; `date` is a date range from
  2000-01-01 to today.
- Athena workgroup `tradeflow-<stage>-history`: engine v3, results under `athena-results/` of the history
  bucket encrypted with the stage key, the configuration enforced (clients cannot send results elsewhere
  or unencrypted), per-query scan limit. Results expire after `RESULTS_DAYS`.

The archiver itself (function, stream source, `s3:PutObject` on `bars/*` only) is a catalogue function
built by the pipeline like every stream consumer; the optional Timestream writer likewise, behind the
`timestream` context flag.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from constructs import Construct

from tradeflow.marketdata.history import (
    ATHENA_DATE_FORMAT,
    ATHENA_RESULTS_PREFIX,
    BAR_COLUMNS,
    BARS_PREFIX,
    BARS_TABLE,
    PARTITION_KEYS,
    PROJECTION_FIRST_DATE,
    TIMEFRAMES,
    athena_workgroup,
    glue_database,
)
from tradeflow_infra.config import StageConfig
from tradeflow_infra.storage import Storage

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
RESULTS_DAYS = 30  # query results are re-runnable: kept a month
SCAN_LIMIT_BYTES = 10 * 1024**3  # 10 GB per query: a query without partition filters stops, not the bill


def projection_parameters(location: str) -> dict[str, str]:
    """The Glue table parameters of partition projection over `location` (`s3://bucket/bars/`)."""
    template = location + "".join(f"{key}=${{{key}}}/" for key in PARTITION_KEYS)
    return {
        "projection.enabled": "true",
        "projection.tenant.type": "injected",
        "projection.symbol.type": "injected",
        "projection.timeframe.type": "enum",
        "projection.timeframe.values": ",".join(TIMEFRAMES),
        "projection.date.type": "date",
        "projection.date.format": ATHENA_DATE_FORMAT,
        "projection.date.range": f"{PROJECTION_FIRST_DATE},NOW",
        "projection.date.interval": "1",
        "projection.date.interval.unit": "DAYS",
        "storage.location.template": template,
    }


class History(Construct):
    """`.database`, `.bars_table` (Glue), `.workgroup` (Athena)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, storage: Storage) -> None:
        super().__init__(scope, construct_id)
        account = Stack.of(self).account
        bucket = storage.bucket("history")
        database_name = glue_database(config.stage)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database_name, description=f"tradeflow {config.stage}: market-data history (Parquet in S3)"
            ),
        )
        self.database.apply_removal_policy(config.removal_policy)
        location = f"s3://{bucket.bucket_name}/{BARS_PREFIX}"
        self.bars_table = glue.CfnTable(
            self,
            "BarsTable",
            catalog_id=account,
            database_name=database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=BARS_TABLE,
                description="OHLCV bars archived by the bars_archiver function; tenant and symbol must be named",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "EXTERNAL": "TRUE",
                    "classification": "parquet",
                    "parquet.compression": "SNAPPY",
                    **projection_parameters(location),
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name=key, type="string") for key in PARTITION_KEYS],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    columns=[glue.CfnTable.ColumnProperty(name=name, type=kind) for name, kind in BAR_COLUMNS],
                    input_format=PARQUET_INPUT,
                    output_format=PARQUET_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=PARQUET_SERDE, parameters={"serialization.format": "1"}
                    ),
                ),
            ),
        )
        self.bars_table.node.add_dependency(self.database)
        self.bars_table.apply_removal_policy(config.removal_policy)
        bucket.add_lifecycle_rule(
            id="expire-athena-results",
            prefix=ATHENA_RESULTS_PREFIX,
            expiration=Duration.days(RESULTS_DAYS),
            noncurrent_version_expiration=Duration.days(1),
        )
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=athena_workgroup(config.stage),
            description=f"tradeflow {config.stage}: queries over the market-data history",
            state="ENABLED",
            recursive_delete_option=not config.is_prod,  # a dev stage's saved queries go with it
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=SCAN_LIMIT_BYTES,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{bucket.bucket_name}/{ATHENA_RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=storage.key.key_arn
                    ),
                ),
            ),
        )
        self.workgroup.apply_removal_policy(config.removal_policy)
