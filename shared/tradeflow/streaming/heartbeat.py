"""The streamer's heartbeat: a record per instance and per account, and CloudWatch metrics.

Every beat writes, in `stream_state`:
- `pk=_platform, sk=heartbeat#<instance>`: the instance's streams (last message, runs, reconnects,
  silence kills, last error), the leases it holds and its running totals — what an operator reads;
- `pk=<tenant>, sk=heartbeat#<account>`: the same for one account's streams — what the tenant's API and
  dashboard may show as "stream healthy, last message 3 s ago".
Both carry `expires_at`, so the records of a stopped instance disappear by TTL.

And it emits, through Powertools' embedded metric format (a JSON line on stdout, which Fargate's
awslogs driver ships to CloudWatch Logs, where it becomes metrics): `StreamerHeartbeat` (1 per beat: an
alarm on its absence catches a dead task), and what grew since the last beat: `StreamReconnects`,
`StreamSilenceKills`, `MalformedStreamMessages`, `StreamFailures`, `BarsWritten`, `OrderUpdatesReported`,
`OrderReportFailures`, `StreamLeasesLost`; plus the gauges `StreamsRunning` and `StreamLeasesHeld`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from tradeflow.domain.types import iso
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.streaming.stats import Counters, StreamStats

PLATFORM = "_platform"
SERVICE = "tradeflow-streamer"  # the `service` dimension, like the functions' `tradeflow-<name>`
DEFAULT_NAMESPACE = "tradeflow"
RECORD_TTL = timedelta(hours=1)

# counter -> metric name, published as the increase since the previous beat
DELTA_METRICS = {
    "reconnects": "StreamReconnects",
    "silence_kills": "StreamSilenceKills",
    "malformed": "MalformedStreamMessages",
    "stream_failures": "StreamFailures",
    "bars_written": "BarsWritten",
    "orders_reported": "OrderUpdatesReported",
    "report_failures": "OrderReportFailures",
    "leases_lost": "StreamLeasesLost",
}

Clock = Callable[[], datetime]
AccountKey = tuple[str, str]


def heartbeat_key(partition: str, name: str) -> dict[str, str]:
    return {"pk": partition, "sk": f"heartbeat#{name}"}


def streamer_metrics() -> EphemeralMetrics:
    """Metrics of their own (not Powertools' process-wide set): in the local cloud the streamer is a
    thread among the functions."""
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE)
    return EphemeralMetrics(namespace=namespace, service=SERVICE)


class Heartbeat:
    def __init__(self, instance_id: str, clock: Clock, metrics: EphemeralMetrics | None = None) -> None:
        self.instance_id = instance_id
        self.clock = clock
        self.metrics = metrics or streamer_metrics()
        self.table = DynamoTable("stream_state")
        self._published: dict[str, int] = {}

    def beat(
        self, streams: Sequence[StreamStats], leases: Iterable[AccountKey], counters: Counters, state: str = "running"
    ) -> None:
        """Write the records and flush the metrics (blocking)."""
        now = self.clock()
        held = sorted(leases)
        totals = counters.as_dict()
        expires = int((now + RECORD_TTL).timestamp())
        self.table.put(
            {
                **heartbeat_key(PLATFORM, self.instance_id),
                "instance_id": self.instance_id,
                "state": state,
                "at": iso(now),
                "streams": [s.record() for s in streams],
                "leases": [f"{tenant}/{account}" for tenant, account in held],
                "totals": totals,
                "expires_at": expires,
            }
        )
        for tenant_id, account_id in held:
            mine = [s for s in streams if (s.tenant_id, s.account_id) == (tenant_id, account_id)]
            last = max((s.last_message_at for s in mine if s.last_message_at), default=None)
            self.table.put(
                {
                    **heartbeat_key(tenant_id, account_id),
                    "tenant_id": tenant_id,
                    "account_id": account_id,
                    "instance_id": self.instance_id,
                    "state": state,
                    "at": iso(now),
                    "last_message_at": iso(last) if last else None,
                    "streams": [s.record() for s in mine],
                    "expires_at": expires,
                }
            )
        self._emit(streams, len(held), totals)

    def _emit(self, streams: Sequence[StreamStats], leases: int, totals: dict[str, int]) -> None:
        self.metrics.add_metric(name="StreamerHeartbeat", unit=MetricUnit.Count, value=1)
        for counter, metric in DELTA_METRICS.items():
            grown = totals[counter] - self._published.get(counter, 0)
            self.metrics.add_metric(name=metric, unit=MetricUnit.Count, value=grown)
        self._published = totals
        self.metrics.add_metric(name="StreamsRunning", unit=MetricUnit.Count, value=sum(s.running for s in streams))
        self.metrics.add_metric(name="StreamLeasesHeld", unit=MetricUnit.Count, value=leases)
        self.metrics.flush_metrics()
