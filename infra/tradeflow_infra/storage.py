"""Storage: the customer-managed KMS key, every DynamoDB table of the resource catalogue, the S3 bucket
for history (Parquet, Athena-queryable) and, only behind the `timestream` context flag, a Timestream
database for market data.

The tables are built by iterating `tradeflow.catalogue.TABLES`, so their physical names, keys, indexes,
TTL attributes and streams are exactly what the handlers and the local cloud use (design rule 3).
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_timestream as timestream
from constructs import Construct

from tradeflow.catalogue import BUCKETS, PREFIX, TABLES, TIMESTREAM
from tradeflow.catalogue import Table as TableSpec
from tradeflow_infra.config import StageConfig

_STREAM_VIEWS = {
    "NEW_IMAGE": dynamodb.StreamViewType.NEW_IMAGE,
    "NEW_AND_OLD_IMAGES": dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
}


def _string(name: str) -> dynamodb.Attribute:
    # Every key attribute of the catalogue is a string (tenant#account, ISO times, ids).
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class Storage(Construct):
    """`.key` (the stage's CMK, rotated yearly), `.tables` (catalogue name -> table), `.history_bucket`
    (also `.buckets["history"]`, by catalogue name), `.access_log_bucket`, and `.timestream_database` /
    `.timestream_table` (None unless enabled)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        # Grant S3 log delivery through the log bucket's policy, not the legacy LogDeliveryWrite ACL (ACLs
        # stay disabled); set here, before any child exists, so it holds whatever cdk.json says.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self.config = config
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{PREFIX}-{config.stage}",
            description=f"tradeflow {config.stage}: tables, queues and the history bucket",
            enable_key_rotation=True,
            removal_policy=config.removal_policy,
            # the shortest window: a dev stage's key goes quickly, a mistaken prod deletion can be cancelled
            pending_window=Duration.days(7 if not config.is_prod else 30),
        )
        self.tables: dict[str, dynamodb.TableV2 | dynamodb.Table] = {
            spec.name: self._table(spec) for spec in TABLES.values()
        }
        self.access_log_bucket, self.history_bucket = self._buckets()
        self.buckets: dict[str, s3.Bucket] = {BUCKETS["history"].name: self.history_bucket}
        self.timestream_database: timestream.CfnDatabase | None = None
        self.timestream_table: timestream.CfnTable | None = None
        if config.timestream:
            self._timestream()

    def table(self, name: str) -> dynamodb.TableV2 | dynamodb.Table:
        """The table of a catalogue name (KeyError naming it when the catalogue has no such table)."""
        return self.tables[name]

    def bucket(self, name: str) -> s3.Bucket:
        """The bucket of a catalogue name (KeyError naming it when the catalogue has no such bucket)."""
        return self.buckets[name]

    def _table(self, spec: TableSpec) -> dynamodb.Table:
        # `Table` rather than `TableV2`: DynamoEventSource (the stream consumers) takes an ITable.
        table = dynamodb.Table(
            self,
            f"{spec.name}Table",
            table_name=spec.physical_name(self.config.stage),
            partition_key=_string(spec.partition_key),
            sort_key=_string(spec.sort_key) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            time_to_live_attribute=spec.ttl_attribute,
            stream=_STREAM_VIEWS[spec.stream] if spec.stream else None,
            removal_policy=self.config.removal_policy,
            deletion_protection=self.config.is_prod,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_string(index.partition_key),
                sort_key=_string(index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table

    def _buckets(self) -> tuple[s3.Bucket, s3.Bucket]:
        # Both buckets are retained in every stage: CloudFormation cannot delete a non-empty bucket, so a
        # DESTROY policy would only make `cdk destroy` fail; an emptied dev bucket can be removed by hand.
        access_logs = s3.Bucket(
            self,
            "AccessLogs",
            # S3 server access logging delivers only to SSE-S3 buckets (not SSE-KMS)
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(365 if self.config.is_prod else 90),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
        )
        Validations.of(access_logs).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-S1",
                reason="This bucket is the destination of the history bucket's server access logs; logging "
                "it to itself would log its own log deliveries without end.",
            )
        )
        stack = Stack.of(self)
        history = s3.Bucket(
            self,
            "History",
            # the catalogue's name plus account and region (S3 names are global); the functions that use
            # it get this name in their environment (`Bucket.env_var`)
            bucket_name=BUCKETS["history"].deployed_name(self.config.stage, stack.account, stack.region),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,  # one data key per bucket, not per object: far fewer KMS calls
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="history/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="tier-history",
                    # Parquet history is queried rarely once older than a quarter, almost never after a year
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=Duration.days(90)
                        ),
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transition_after=Duration.days(365)
                        ),
                    ],
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
        )
        return access_logs, history

    def _timestream(self) -> None:
        """The optional Timestream for LiveAnalytics writer's database and market-data table.

        Off by default (`-c timestream=true` turns it on): Timestream for LiveAnalytics has been closed to
        new AWS customers since 2025-06-20 (CDK synth warns W3697, maintenance mode), so only accounts that
        already use it can deploy it. Market data otherwise lives in DynamoDB (`bars`, recent, with TTL)
        and the history bucket (Parquet, Athena-queryable).
        """
        self.timestream_database = timestream.CfnDatabase(
            self,
            "MarketData",
            database_name=TIMESTREAM.database_name(self.config.stage),
            kms_key_id=self.key.key_arn,
        )
        self.timestream_database.apply_removal_policy(self.config.removal_policy)
        self.timestream_table = timestream.CfnTable(
            self,
            "Bars",
            database_name=self.timestream_database.ref,
            table_name=TIMESTREAM.table,
            retention_properties={
                "MemoryStoreRetentionPeriodInHours": str(TIMESTREAM.memory_store_hours),
                "MagneticStoreRetentionPeriodInDays": str(3650 if self.config.is_prod else 365),
            },
            magnetic_store_write_properties={"EnableMagneticStoreWrites": True},
        )
        self.timestream_table.apply_removal_policy(self.config.removal_policy)
        reason = (
            "Timestream for LiveAnalytics is deployed only on request (-c timestream=true), for accounts that "
            "already use it; its maintenance mode is why it is off by default."
        )
        for resource in (self.timestream_database, self.timestream_table):
            Validations.of(resource).acknowledge(Acknowledgment(id="CloudFormation-Validate::W3697", reason=reason))
            resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3697"]}})
