"""The resource catalogue: every table, queue, bucket, schedule group and function, declared once.

The local cloud provisions from it, the CDK app builds from it and tests read it (design rule 3), so
names, keys, indexes, TTL attributes, streams, dead-letter queues and event sources cannot drift apart.
Physical names are `tradeflow-<stage>-<name>`; FIFO queues end in `.fifo` as SQS requires.

Optional parts: a function with a `context_flag` (the Timestream writer) exists only where that flag is on
(`-c timestream=true` for CDK, `LocalCloudConfig.flags` for the local cloud); `enabled_functions(flags)`
is what every builder iterates.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

PREFIX = "tradeflow"
DEFAULT_STAGE = "local"
StreamView = Literal["NEW_IMAGE", "NEW_AND_OLD_IMAGES"]


def stage() -> str:
    return os.environ.get("TRADEFLOW_STAGE", DEFAULT_STAGE)


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    purpose: str
    partition_key: str = "pk"
    sort_key: str | None = "sk"
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None
    stream: StreamView | None = None

    def physical_name(self, stage_name: str | None = None) -> str:
        return f"{PREFIX}-{stage_name or stage()}-{self.name}"

    @property
    def key_attributes(self) -> tuple[str, ...]:
        names = [self.partition_key, *([self.sort_key] if self.sort_key else [])]
        for index in self.indexes:
            names.append(index.partition_key)
            if index.sort_key:
                names.append(index.sort_key)
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Queue:
    name: str
    purpose: str
    fifo: bool = True
    visibility_timeout_seconds: int = 60
    max_receive_count: int = 5  # deliveries before redrive to the dead-letter queue
    retention_seconds: int = 4 * 24 * 3600
    dlq_retention_seconds: int = 14 * 24 * 3600
    has_dlq: bool = True  # a dead-letter queue itself has none

    def dead_letter_target(self, stage_name: str | None = None) -> str:
        """Where a message of this queue goes when it is dead-lettered."""
        return self.dlq_physical_name(stage_name) if self.has_dlq else self.physical_name(stage_name)

    def physical_name(self, stage_name: str | None = None) -> str:
        return f"{PREFIX}-{stage_name or stage()}-{self.name}" + (".fifo" if self.fifo else "")

    def dlq_physical_name(self, stage_name: str | None = None) -> str:
        return f"{PREFIX}-{stage_name or stage()}-{self.name}-dlq" + (".fifo" if self.fifo else "")


@dataclass(frozen=True)
class ScheduleGroup:
    name: str
    purpose: str

    def physical_name(self, stage_name: str | None = None) -> str:
        return f"{PREFIX}-{stage_name or stage()}-{self.name}"


@dataclass(frozen=True)
class SecretSpace:
    """A family of Secrets Manager secrets, named `tradeflow-<stage>/<tenant>/<...>` (see `secrets.py`)."""

    name: str
    purpose: str
    recovery_days: int = 7  # the shortest window Secrets Manager allows: a mistaken delete can be undone

    def prefix(self, stage_name: str | None = None) -> str:
        return f"{PREFIX}-{stage_name or stage()}/"


@dataclass(frozen=True)
class Bucket:
    """An S3 bucket. S3 names are global across AWS accounts, so CDK names the deployed bucket
    `tradeflow-<stage>-<name>-<account>-<region>` and hands that name to the functions in `env_var`; the
    local cloud, which has only one account, uses the plain `physical_name`."""

    name: str
    purpose: str
    env_var: str  # the environment variable CDK sets to the deployed bucket's name

    def physical_name(self, stage_name: str | None = None) -> str:
        return f"{PREFIX}-{stage_name or stage()}-{self.name}"

    def deployed_name(self, stage_name: str, account: str, region: str) -> str:
        """The globally unique name CDK gives the bucket (tokens allowed for account and region)."""
        return f"{self.physical_name(stage_name)}-{account}-{region}"

    def actual_name(self) -> str:
        """The bucket this process writes to: CDK's name in AWS, the catalogue's name locally."""
        return os.environ.get(self.env_var) or self.physical_name()


@dataclass(frozen=True)
class ObjectPrefix:
    """Objects under one key prefix of a catalogue bucket (least-privilege S3 grants)."""

    bucket: str
    prefix: str  # ends with "/"


@dataclass(frozen=True)
class TimestreamTable:
    """The optional Timestream for LiveAnalytics table of market data (only with the `timestream` flag)."""

    database: str
    table: str
    memory_store_hours: int  # records older than this are rejected unless magnetic-store writes are on
    database_env_var: str = "TRADEFLOW_TIMESTREAM_DATABASE"
    table_env_var: str = "TRADEFLOW_TIMESTREAM_TABLE"

    def database_name(self, stage_name: str | None = None) -> str:
        return f"{PREFIX}-{stage_name or stage()}-{self.database}"


@dataclass(frozen=True)
class QueueSource:
    queue: str
    batch_size: int = 10
    max_batching_window_seconds: int = 0


@dataclass(frozen=True)
class StreamSource:
    table: str
    batch_size: int = 100
    starting_position: Literal["LATEST", "TRIM_HORIZON"] = "LATEST"
    max_batching_window_seconds: int = 0  # Lambda gathers records this long (at most 300) before invoking


@dataclass(frozen=True)
class Function:
    """A Lambda function: its folder under `functions/` and what triggers it."""

    name: str
    purpose: str
    queue_source: QueueSource | None = None
    stream_sources: tuple[StreamSource, ...] = ()  # DynamoDB streams it consumes, one event source each
    scheduled: bool = False  # invoked by EventBridge Scheduler schedules
    timeout_seconds: int = 30
    memory_mb: int = 512
    reads: tuple[str, ...] = ()  # tables read (for least-privilege IAM)
    writes: tuple[str, ...] = ()  # tables written
    sends_to: tuple[str, ...] = ()  # queues sent to (and their DLQs for dead-lettering)
    websocket_route: str | None = None  # an API Gateway WebSocket route ($connect, $disconnect, $default)
    manages_schedules: bool = False  # creates/updates/deletes the deployments' Scheduler schedules
    manages_secrets: tuple[str, ...] = ()  # secret spaces it creates, rotates and deletes (never reads)
    reads_secrets: tuple[str, ...] = ()  # secret spaces whose values it reads
    posts_to_connections: bool = False  # sends frames to WebSocket clients (execute-api:ManageConnections)
    rate: str | None = None  # a fixed EventBridge schedule of its own, e.g. "rate(5 minutes)"
    writes_objects: tuple[ObjectPrefix, ...] = ()  # S3 objects it puts (s3:PutObject on these prefixes only)
    timestream: bool = False  # writes records to the Timestream market-data table (TIMESTREAM)
    context_flag: str | None = None  # exists only where this flag is on (CDK context, local cloud flags)

    def enabled(self, flags: Collection[str] = ()) -> bool:
        return self.context_flag is None or self.context_flag in flags

    def physical_name(self, stage_name: str | None = None) -> str:
        return f"{PREFIX}-{stage_name or stage()}-{self.name}"

    @property
    def handler(self) -> str:
        return "handler.handler"


@dataclass(frozen=True)
class Service:
    """A long-running container task (ECS Fargate in AWS, a thread in the local cloud): its folder under
    `functions/` holds the entry point and the Dockerfile."""

    name: str
    purpose: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    sends_to: tuple[str, ...] = ()
    reads_secrets: tuple[str, ...] = ()
    cpu: int = 256
    memory_mb: int = 512

    def physical_name(self, stage_name: str | None = None) -> str:
        return f"{PREFIX}-{stage_name or stage()}-{self.name}"


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("deployments", "strategy deployments: pk=tenant, sk=deployment id"),
        Table(
            "bars",
            "recent OHLCV bars: pk=tenant#symbol#timeframe, sk=bar time",
            ttl_attribute="expires_at",
            stream="NEW_IMAGE",
        ),
        Table(
            "evaluations",
            "every strategy evaluation: pk=tenant#deployment#symbol, sk=evaluation time",
            ttl_attribute="expires_at",
            stream="NEW_IMAGE",  # the `signals` channel of the WebSocket API
        ),
        Table(
            "signals",
            "signal journal, one final outcome per signal: pk=tenant, sk=signal id",
            stream="NEW_AND_OLD_IMAGES",
        ),
        Table(
            "orders",
            "orders by client order id: pk=tenant, sk=client order id",
            indexes=(Index("by_account", "account_key", "created_key"),),
            stream="NEW_AND_OLD_IMAGES",
        ),
        Table(
            "fills",
            "fills, recorded once each: pk=tenant#account, sk=fill id",
            indexes=(Index("by_time", "pk", "ts"),),
            stream="NEW_IMAGE",
        ),
        Table(
            "positions",
            "positions: pk=tenant#account, sk=symbol",
            stream="NEW_AND_OLD_IMAGES",
        ),
        Table("accounts", "accounts with cash and reserved exposure: pk=tenant, sk=account id"),
        Table("ledger", "capital ledger: pk=tenant#account, sk=time#entry id"),
        Table("audit", "audit events: pk=tenant, sk=time#event id", ttl_attribute="expires_at"),
        Table("controls", "trading controls: pk=tenant (or _global), sk=scope#target", stream="NEW_AND_OLD_IMAGES"),
        Table("strategies", "saved strategy definitions (built-in name + params, or a rule spec): pk=tenant, sk=id"),
        Table(
            "backtest_jobs",
            "asynchronous backtests, their progress and results: pk=tenant, sk=job id",
            ttl_attribute="expires_at",
        ),
        Table(
            "idempotency",
            "first results of POSTs sent with an Idempotency-Key: pk=tenant, sk=route#key",
            ttl_attribute="expires_at",
        ),
        Table(
            "connections",
            "WebSocket connections and their subscriptions: pk=tenant, sk=connection id",
            indexes=(Index("by_connection", "connection_id"),),
            ttl_attribute="expires_at",
        ),
        Table("rate_limits", "request counts per tenant and minute: pk=tenant, sk=window", ttl_attribute="expires_at"),
        Table(
            "broker_health",
            "each broker account's circuit breaker: consecutive failures, open until, why: pk=tenant, sk=account",
        ),
        Table(
            "stream_state",
            "the streamer's leases (one holder per broker account) and heartbeats: pk=tenant (or _platform), "
            "sk=lease#account | heartbeat#stream",
            ttl_attribute="expires_at",
        ),
        Table(
            "paper_orders",
            "the simulated broker's own order book: pk=tenant#account, sk=client order id",
            indexes=(Index("open_by_symbol", "open_symbol", "sk"),),
        ),
    )
}

QUEUES: dict[str, Queue] = {
    q.name: q
    for q in (
        Queue("signals", "strategy signals to the risk function; group=tenant#account#symbol, dedup=signal id"),
        Queue(
            "orders",
            "order intents and broker fill reports to the execution function; dedup=client order id / fill id",
        ),
        Queue(
            "backtests",
            "asynchronous backtest jobs to the backtest worker (one job per message)",
            fifo=False,
            visibility_timeout_seconds=900,
            max_receive_count=2,
        ),
        Queue(
            "dead_events",
            "events of non-queue triggers (schedules, streams) that can never be processed, with the reason",
            fifo=False,
            has_dlq=False,
            retention_seconds=14 * 24 * 3600,
        ),
    )
}

BUCKETS: dict[str, Bucket] = {
    "history": Bucket(
        "history",
        "market-data history as Parquet, Hive-partitioned for Athena (bars/tenant=/symbol=/timeframe=/date=); "
        "Athena's query results under athena-results/",
        env_var="TRADEFLOW_HISTORY_BUCKET",
    ),
}

TIMESTREAM = TimestreamTable("marketdata", "bars", memory_store_hours=24)

SECRETS: dict[str, SecretSpace] = {
    "broker_credentials": SecretSpace("broker_credentials", "broker API keys: tradeflow-<stage>/<tenant>/<account>"),
}

SCHEDULE_GROUPS: dict[str, ScheduleGroup] = {
    "deployments": ScheduleGroup("deployments", "one schedule per deployed (strategy, symbol)"),
    "platform": ScheduleGroup("platform", "the platform's own fixed schedules: one per function with a `rate`"),
}

# The tables whose changes are pushed to WebSocket clients (see tradeflow.realtime.changes).
BROADCAST_TABLES: tuple[str, ...] = ("orders", "fills", "positions", "evaluations", "signals", "controls", "bars")

FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function(
            "strategy",
            "evaluates a deployment's strategy for one symbol at the scheduled time",
            scheduled=True,
            reads=("deployments", "bars", "signals", "positions"),  # positions: a plan's exits
            writes=("evaluations", "signals"),
            sends_to=("signals", "dead_events"),
            memory_mb=256,
        ),
        Function(
            "risk",
            "trading controls, limits and sizing: signal -> order intent or recorded rejection",
            queue_source=QueueSource("signals"),
            reads=("deployments", "controls", "positions", "accounts", "signals"),
            writes=("signals", "accounts", "audit"),
            sends_to=("orders",),
            memory_mb=256,
        ),
        Function(
            "execution",
            "idempotent broker submission and the books: orders, fills, positions, ledger, audit",
            queue_source=QueueSource("orders"),
            reads=("orders", "accounts", "positions", "signals", "bars", "paper_orders", "broker_health"),
            # broker_health: the account's circuit breaker; controls: halting an account whose
            # credentials the broker refuses
            writes=(
                "orders",
                "fills",
                "positions",
                "ledger",
                "accounts",
                "signals",
                "audit",
                "paper_orders",
                "broker_health",
                "controls",
            ),
            sends_to=("orders",),
            reads_secrets=("broker_credentials",),
        ),
        Function(
            "reconcile",
            "compares each broker account's orders, positions and fills with the ledger; repairs what is "
            "provably safe, halts the account on what is not; expires day orders and cancels stale ones",
            rate="rate(5 minutes)",
            timeout_seconds=300,
            # paper accounts are reconciled against the paper broker too (its order book, the last bars)
            reads=(
                "accounts",
                "orders",
                "fills",
                "positions",
                "ledger",
                "deployments",
                "signals",
                "broker_health",
                "controls",
                "paper_orders",
                "bars",
            ),
            writes=(
                "orders",
                "fills",
                "positions",
                "ledger",
                "accounts",
                "signals",
                "audit",
                "controls",
                "broker_health",
                "paper_orders",
            ),
            sends_to=("dead_events",),
            reads_secrets=("broker_credentials",),
        ),
        Function(
            "api",
            "the REST API: FastAPI behind API Gateway's HTTP API, through Mangum",
            timeout_seconds=29,  # API Gateway's integration limit
            memory_mb=1024,
            reads=(
                "deployments",
                "strategies",
                "backtest_jobs",
                "orders",
                "fills",
                "positions",
                "accounts",
                "ledger",
                "audit",
                "controls",
                "evaluations",
                "bars",
                "signals",
                "idempotency",
                "rate_limits",
                "paper_orders",
            ),
            # orders, positions, paper_orders: a paper account's reset cancels its orders and flattens it
            writes=(
                "deployments",
                "strategies",
                "backtest_jobs",
                "accounts",
                "ledger",
                "audit",
                "controls",
                "signals",
                "idempotency",
                "rate_limits",
                "orders",
                "positions",
                "paper_orders",
            ),
            sends_to=("signals", "orders", "backtests"),
            manages_schedules=True,
            manages_secrets=("broker_credentials",),
        ),
        Function(
            "ws_connect",
            "WebSocket $connect: authenticates the token query parameter and stores the connection",
            websocket_route="$connect",
            memory_mb=256,
            reads=("connections",),
            writes=("connections",),
        ),
        Function(
            "ws_disconnect",
            "WebSocket $disconnect: forgets the connection",
            websocket_route="$disconnect",
            memory_mb=256,
            reads=("connections",),
            writes=("connections",),
        ),
        Function(
            "ws_default",
            "WebSocket $default: subscribe / unsubscribe / ping; answers errors on the socket",
            websocket_route="$default",
            memory_mb=256,
            reads=("connections",),
            writes=("connections",),
            posts_to_connections=True,
        ),
        Function(
            "broadcaster",
            "live updates: the books' change streams -> the subscribed WebSocket connections of each tenant",
            stream_sources=tuple(StreamSource(table) for table in BROADCAST_TABLES),
            memory_mb=512,
            reads=("connections", "accounts", "bars", "signals"),  # bars, accounts: marking positions like REST
            writes=("connections",),  # per-connection sequence numbers; gone (410) connections deleted
            sends_to=("dead_events",),
            posts_to_connections=True,
        ),
        Function(
            "backtest_worker",
            "runs one queued backtest job and stores its progress and result",
            queue_source=QueueSource("backtests", batch_size=1),
            timeout_seconds=900,
            memory_mb=2048,
            reads=("backtest_jobs", "strategies"),
            writes=("backtest_jobs",),
            sends_to=("backtests",),  # its dead-letter queue, for poison jobs
        ),
        Function(
            "paper_exchange",
            "the simulated broker's matching engine: new bars fill resting paper orders",
            stream_sources=(StreamSource("bars"),),
            reads=("paper_orders", "accounts"),
            writes=("paper_orders",),
            sends_to=("orders", "dead_events"),
        ),
        Function(
            "bars_archiver",
            "market-data history: new bars -> Parquet objects in the history bucket, partitioned for Athena",
            # one object per tenant/symbol/timeframe/day and batch: gathering a minute of bars keeps the
            # objects fewer and larger (Athena reads few large files faster than many tiny ones)
            stream_sources=(StreamSource("bars", batch_size=1000, max_batching_window_seconds=60),),
            timeout_seconds=120,
            memory_mb=1024,  # pyarrow's import and the Parquet encoder; more memory is also more CPU
            writes_objects=(ObjectPrefix("history", "bars/"),),
            sends_to=("dead_events",),
        ),
        Function(
            "timestream_writer",
            "optional: new bars -> Timestream for LiveAnalytics (accounts that already use it)",
            stream_sources=(StreamSource("bars"),),
            timeout_seconds=60,
            memory_mb=256,
            timestream=True,
            sends_to=("dead_events",),
            context_flag="timestream",
        ),
    )
}


SERVICES: dict[str, Service] = {
    "streamer": Service(
        "streamer",
        "holds the persistent broker streams (market data, trade updates) of every broker account with "
        "active deployments: writes bars, reports order updates and fills to the orders queue",
        reads=("deployments", "accounts", "stream_state"),
        writes=("bars", "stream_state", "audit"),
        sends_to=("orders",),
        reads_secrets=("broker_credentials",),
        cpu=512,
        memory_mb=1024,
    ),
}


def table_name(name: str) -> str:
    return TABLES[name].physical_name()


def queue_name(name: str) -> str:
    return QUEUES[name].physical_name()


def dlq_name(name: str) -> str:
    return QUEUES[name].dlq_physical_name()


def schedule_group_name(name: str = "deployments") -> str:
    return SCHEDULE_GROUPS[name].physical_name()


def function_name(name: str) -> str:
    return FUNCTIONS[name].physical_name()


def enabled_functions(flags: Collection[str] = ()) -> dict[str, Function]:
    """The catalogue functions that exist with these flags on: every function without a `context_flag`,
    plus those whose flag is among `flags`."""
    return {name: spec for name, spec in FUNCTIONS.items() if spec.enabled(flags)}


def bucket_name(name: str) -> str:
    """The actual name of a catalogue bucket in this process (see `Bucket.actual_name`)."""
    return BUCKETS[name].actual_name()
