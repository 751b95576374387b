"""What the streamer counts: per stream (for its heartbeat record) and in total (for its metrics)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from tradeflow.domain.types import iso


@dataclass
class Counters:
    """Running totals since the process started; the heartbeat publishes what grew since the last beat."""

    reconnects: int = 0
    silence_kills: int = 0
    stream_failures: int = 0  # a stream's run raised (the supervisor reconnects it)
    malformed: int = 0
    late_bars: int = 0
    bars_written: int = 0
    bar_write_failures: int = 0
    orders_reported: int = 0
    foreign_orders: int = 0  # order updates with a client order id that is not ours (skipped)
    report_failures: int = 0  # order updates that could not be queued (reconciliation repairs them)
    leases_lost: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class StreamStats:
    """One supervised stream's health, as the heartbeat reports it."""

    name: str
    tenant_id: str
    account_id: str
    running: bool = False
    runs: int = 0
    reconnects: int = 0
    silence_kills: int = 0
    failures: int = 0
    messages: int = 0
    last_message_at: datetime | None = None
    last_error: str | None = None

    def record(self) -> dict[str, object]:
        return {
            "name": self.name,
            "tenant_id": self.tenant_id,
            "account_id": self.account_id,
            "running": self.running,
            "runs": self.runs,
            "reconnects": self.reconnects,
            "silence_kills": self.silence_kills,
            "failures": self.failures,
            "messages": self.messages,
            "last_message_at": iso(self.last_message_at) if self.last_message_at else None,
            "last_error": self.last_error,
        }
