"""WebSocket connections and their subscriptions, in the catalogue's `connections` table.

Item: pk = tenant, sk = connection id, plus `connection_id` (the `by_connection` index key), `user_id`,
`connected_at`, `subscriptions` (a DynamoDB string set, absent when empty), `seq` (the last sequence number
reserved for a live update to it, see `reserve_sequence`) and `expires_at` (epoch seconds,
the table's TTL attribute; refreshed on activity).

Every call takes the tenant (design rule 5) except `get_by_id`: on $default and $disconnect API Gateway
gives us only the connection id (assigned by API Gateway, never chosen by the client), so the
`by_connection` index maps it to the tenant, and everything after that goes through the tenant.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field

from tradeflow.domain.types import ResourceId, TenantId, UtcDatetime
from tradeflow.storage.dynamo import ConditionFailed, DynamoTable

CONNECTION_TTL: Final = timedelta(hours=2)  # API Gateway closes a WebSocket after 2 h at most
ConnectionId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9=+/_.-]+$")]


def expiry(now: datetime, ttl: timedelta = CONNECTION_TTL) -> int:
    """The TTL attribute's value (epoch seconds) for activity at `now`."""
    return int((now + ttl).timestamp())


class Connection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: TenantId
    connection_id: ConnectionId
    user_id: ResourceId
    connected_at: UtcDatetime
    subscriptions: frozenset[str] = frozenset()
    expires_at: int = Field(ge=0, description="epoch seconds; DynamoDB TTL")

    def item(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "pk": self.tenant_id,
            "sk": self.connection_id,
            "connection_id": self.connection_id,
            "user_id": self.user_id,
            "connected_at": self.model_dump(mode="json")["connected_at"],
            "expires_at": self.expires_at,
        }
        if self.subscriptions:  # DynamoDB has no empty sets
            data["subscriptions"] = set(self.subscriptions)
        return data

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Connection:
        return cls(
            tenant_id=item["pk"],
            connection_id=item["sk"],
            user_id=item["user_id"],
            connected_at=item["connected_at"],
            subscriptions=frozenset(item.get("subscriptions") or ()),
            expires_at=int(item["expires_at"]),
        )

    def expired(self, now: datetime) -> bool:
        return self.expires_at <= int(now.timestamp())


class ConnectionRepository:
    def __init__(self) -> None:
        self.table = DynamoTable("connections")

    def put(self, connection: Connection) -> None:
        self.table.put(connection.item())

    def get(self, tenant_id: str, connection_id: str) -> Connection | None:
        item = self.table.get({"pk": tenant_id, "sk": connection_id})
        return Connection.from_item(item) if item else None

    def get_by_id(self, connection_id: str) -> Connection | None:
        """The connection with this API Gateway connection id, whatever its tenant (see the module doc)."""
        found = self.table.query(connection_id, index="by_connection", limit=1)
        if not found:
            return None
        # The index is eventually consistent: read the item itself for its current subscriptions.
        return self.get(found[0]["pk"], connection_id)

    def delete(self, tenant_id: str, connection_id: str) -> None:
        self.table.delete({"pk": tenant_id, "sk": connection_id})

    def subscribe(
        self, tenant_id: str, connection_id: str, channels: Iterable[str], now: datetime
    ) -> frozenset[str] | None:
        """Add channels (atomically) and refresh the TTL; the subscriptions now, or None if gone."""
        return self._change("ADD", tenant_id, connection_id, channels, now)

    def unsubscribe(
        self, tenant_id: str, connection_id: str, channels: Iterable[str], now: datetime
    ) -> frozenset[str] | None:
        """Remove channels (atomically) and refresh the TTL; the subscriptions now, or None if gone."""
        return self._change("DELETE", tenant_id, connection_id, channels, now)

    def touch(self, tenant_id: str, connection_id: str, now: datetime) -> bool:
        """Refresh the TTL (activity); False if the connection is gone."""
        try:
            self.table.update(
                {"pk": tenant_id, "sk": connection_id},
                "SET expires_at = :exp",
                condition="attribute_exists(pk)",
                values={":exp": expiry(now)},
            )
        except ConditionFailed:
            return False
        return True

    def subscribers(self, tenant_id: str, channel: str, now: datetime) -> list[Connection]:
        """The unexpired connections of this tenant subscribed to `channel` (TTL deletion lags, so filter)."""
        return [c for c in self.listening(tenant_id, now) if channel in c.subscriptions]

    def listening(self, tenant_id: str, now: datetime) -> list[Connection]:
        """The tenant's unexpired connections with at least one subscription: one query per fan-out."""
        items = self.table.query(
            tenant_id,
            filter_expression="attribute_exists(subscriptions) AND expires_at > :now",
            values={":now": int(now.timestamp())},
        )
        return [Connection.from_item(item) for item in items]

    def listening_tenants(self, now: datetime) -> set[str]:
        """Every tenant with a listening connection: the audience of a global change (the admins' halt).
        A scan, so only for such rare changes."""
        now_s = int(now.timestamp())
        return {
            str(item["pk"])
            for item in self.table.scan()
            if item.get("subscriptions") and int(item.get("expires_at", 0)) > now_s
        }

    def reserve_sequence(self, tenant_id: str, connection_id: str, count: int) -> int | None:
        """Reserve `count` consecutive sequence numbers (atomically) for updates to this connection; the
        first of them, or None when the connection is gone. Numbers start at 1 and never repeat, even when
        several broadcasters post to one connection at once."""
        if count < 1:
            raise ValueError("count must be at least 1")
        try:
            item = self.table.update(
                {"pk": tenant_id, "sk": connection_id},
                "ADD seq :n",
                condition="attribute_exists(pk)",
                values={":n": count},
            )
        except ConditionFailed:
            return None
        return int(item["seq"]) - count + 1

    def _change(
        self, op: str, tenant_id: str, connection_id: str, channels: Iterable[str], now: datetime
    ) -> frozenset[str] | None:
        wanted = set(channels)
        if not wanted:
            raise ValueError("no channels given")
        try:
            item = self.table.update(
                {"pk": tenant_id, "sk": connection_id},
                f"{op} subscriptions :channels SET expires_at = :exp",
                condition="attribute_exists(pk)",
                values={":channels": wanted, ":exp": expiry(now)},
            )
        except ConditionFailed:
            return None
        return frozenset(item.get("subscriptions") or ())
