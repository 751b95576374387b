"""Fan-out of live updates: each change to the subscribed connections of its own tenant only.

For a batch of changes (one stream batch), per tenant: one query reads the tenant's listening
connections; each connection gets, in order, the updates of the channels it subscribed to. Before
posting, one atomic counter update reserves that many sequence numbers on the connection item, so every
connection sees `seq` 1, 2, 3 ... across batches and broadcasters; a number the client never receives
(a failed post) shows up as a gap, and the client refetches over REST. Connections are served in
parallel (a thread pool), the updates of one connection in order; a slow or failing client holds up
only its own thread. A 410 Gone deletes the connection. Delivery to a connection is at most once: a
failed post is counted and logged, never retried by failing the stream batch, because a retry would
deliver the whole batch again to every other connection.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from tradeflow.realtime.changes import EVERY_TENANT, Change, ChangeError, ChangeTranslator, decode
from tradeflow.realtime.connections import Connection, ConnectionRepository
from tradeflow.realtime.protocol import Update
from tradeflow.realtime.service import ConnectionGone, ManagementApiPoster, Poster, management_endpoint

log = logging.getLogger("tradeflow.realtime")

WORKERS_ENV: Final = "TRADEFLOW_BROADCAST_WORKERS"
DEFAULT_WORKERS: Final = 16


@dataclass
class FanOutReport:
    """What one fan-out did, for the handler's metrics and logs."""

    changes: int = 0
    connections: int = 0  # connections that had something to receive
    delivered: int = 0  # updates posted
    gone: int = 0  # connections found gone (410, or deleted meanwhile) and forgotten
    failed: int = 0  # connections whose posting failed otherwise (their client sees a gap)
    errors: list[str] = field(default_factory=list)  # the first few failures, for the log

    def add(self, other: FanOutReport) -> None:
        self.connections += other.connections
        self.delivered += other.delivered
        self.gone += other.gone
        self.failed += other.failed
        self.errors.extend(other.errors[: max(0, 5 - len(self.errors))])


def _audience(changes: Sequence[Change], tenants_listening: Iterable[str]) -> dict[str, list[Change]]:
    """Changes per tenant, in order; a change for every tenant goes to each tenant listening."""
    per_tenant: dict[str, list[Change]] = {}
    every = [c for c in changes if c.tenant_id == EVERY_TENANT]
    for change in changes:
        if change.tenant_id != EVERY_TENANT:
            per_tenant.setdefault(change.tenant_id, []).append(change)
    if every:
        for tenant in tenants_listening:
            # order: a tenant's own changes, then the global ones (a global change is rare and standalone)
            per_tenant.setdefault(tenant, []).extend(every)
    return per_tenant


class Broadcaster:
    def __init__(
        self,
        connections: ConnectionRepository | None = None,
        poster: Poster | None = None,
        endpoint: str | None = None,
        workers: int | None = None,
    ) -> None:
        self.connections = connections or ConnectionRepository()
        self.poster: Poster = poster or ManagementApiPoster()
        self._endpoint = endpoint
        self.workers = workers or int(os.environ.get(WORKERS_ENV, DEFAULT_WORKERS))
        self._pool: ThreadPoolExecutor | None = None

    @property
    def endpoint(self) -> str:
        # read per call: the local cloud may (re)start its gateway after this module was loaded
        return self._endpoint or management_endpoint({})

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:  # kept across invocations of a warm Lambda
            self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="fanout")
        return self._pool

    def publish(self, changes: Sequence[Change], now: datetime) -> FanOutReport:
        """Post every change to the subscribed connections of its tenant; see the module doc."""
        report = FanOutReport(changes=len(changes))
        if not changes:
            return report
        global_ = any(c.tenant_id == EVERY_TENANT for c in changes)
        tenants = self.connections.listening_tenants(now) if global_ else ()
        jobs: list[tuple[Connection, list[Change]]] = []
        for tenant, mine in _audience(changes, tenants).items():
            for connection in self.connections.listening(tenant, now):
                wanted = [c for c in mine if c.channel in connection.subscriptions]
                if wanted:
                    jobs.append((connection, wanted))
        if not jobs:
            return report
        endpoint = self.endpoint
        if len(jobs) == 1:
            report.add(self._send(endpoint, *jobs[0], now))
        else:
            for part in self._executor().map(lambda job: self._send(endpoint, job[0], job[1], now), jobs):
                report.add(part)
        return report

    def _send(self, endpoint: str, connection: Connection, changes: list[Change], now: datetime) -> FanOutReport:
        report = FanOutReport(connections=1)
        tenant, connection_id = connection.tenant_id, connection.connection_id
        try:
            first = self.connections.reserve_sequence(tenant, connection_id, len(changes))
            if first is None:
                report.gone += 1  # disconnected since the query
                return report
            for offset, change in enumerate(changes):
                update = Update(channel=change.channel, data=change.data, ts=change.at or now, seq=first + offset)
                self.poster.post(endpoint, connection_id, update.to_bytes())
                report.delivered += 1
        except ConnectionGone:
            self.connections.delete(tenant, connection_id)
            report.gone += 1
        except Exception as exc:  # one client's failure must not stop the others (see the module doc)
            report.failed += 1
            report.errors.append(f"{connection_id}: {type(exc).__name__}: {exc}")
            log.warning("posting to connection %s of %s failed: %s", connection_id, tenant, exc)
        return report


@dataclass
class BatchOutcome:
    report: FanOutReport
    records: int = 0
    dead_lettered: int = 0


class DeadLetter(Protocol):
    def __call__(self, record: Mapping[str, Any], reason: str) -> None: ...


def broadcast_stream_batch(
    records: Sequence[Mapping[str, Any]],
    now: datetime,
    translator: ChangeTranslator,
    broadcaster: Broadcaster,
    dead_letter: DeadLetter,
) -> BatchOutcome:
    """A DynamoDB stream batch -> one fan-out. A record that cannot be read is dead-lettered with the
    reason and the rest go on (design rule 8); a failure to read the connections raises, so Lambda retries
    the batch."""
    changes: list[Change] = []
    dead = 0
    for record in records:
        try:
            decoded = decode(record, now)
            if decoded is not None:
                changes.extend(translator.changes(decoded))
        except ChangeError as exc:
            dead_letter(record, str(exc))
            dead += 1
    return BatchOutcome(broadcaster.publish(changes, now), len(records), dead)
