"""One stream holder per broker account: a lease in DynamoDB.

Alpaca accepts one trade-updates connection per account, and two holders would also report every
fill twice; so before streaming an account a streamer instance takes its lease: the item
`pk=<tenant>, sk=lease#<account>` in `stream_state`, written with a condition that lets it through only
when the lease is free, expired, or already ours. The holder renews it every quarter of its length and
gives it up on shutdown; an instance that dies simply stops renewing, and another takes the account
over once `lease_until` has passed. `expires_at` lets DynamoDB's TTL remove abandoned items.

A holder that cannot renew (another instance owns the item now) must stop streaming that account at
once. One that cannot reach DynamoDB keeps streaming only until its lease runs out by its own clock:
after that another instance may legitimately have taken over.

Times are ISO strings (fixed width, so they compare as strings in the condition) from the clock the
streamer is given, so every instance must use a wall clock (they do: NTP-synchronised hosts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from tradeflow.domain.types import iso
from tradeflow.storage.dynamo import ConditionFailed, DynamoTable

log = logging.getLogger("tradeflow.streaming")

Clock = Callable[[], datetime]
TTL_MARGIN = timedelta(hours=1)  # abandoned lease items linger this long past their end, then TTL


def lease_key(tenant_id: str, account_id: str) -> dict[str, str]:
    return {"pk": tenant_id, "sk": f"lease#{account_id}"}


class LeaseStore:
    """Acquire, renew and release accounts' stream leases for one streamer instance (`owner`)."""

    def __init__(self, owner: str, lease_seconds: float, clock: Clock) -> None:
        self.owner = owner
        self.length = timedelta(seconds=lease_seconds)
        self.clock = clock
        self.table = DynamoTable("stream_state")

    def _times(self) -> tuple[datetime, datetime, int]:
        now = self.clock()
        until = now + self.length
        return now, until, int((until + TTL_MARGIN).timestamp())

    def acquire(self, tenant_id: str, account_id: str) -> bool:
        """Take the lease when it is free, expired or already ours; False when another holds it."""
        now, until, expires = self._times()
        item = {
            **lease_key(tenant_id, account_id),
            "owner": self.owner,
            "tenant_id": tenant_id,
            "account_id": account_id,
            "acquired_at": iso(now),
            "lease_until": iso(until),
            "expires_at": expires,
        }
        try:
            self.table.put(
                item,
                condition="attribute_not_exists(pk) OR lease_until < :now OR #owner = :me",
                names={"#owner": "owner"},
                values={":now": iso(now), ":me": self.owner},
            )
        except ConditionFailed:
            return False
        log.info("lease of %s/%s acquired by %s until %s", tenant_id, account_id, self.owner, iso(until))
        return True

    def renew(self, tenant_id: str, account_id: str) -> bool:
        """Extend our lease; False when the item is no longer ours (another instance took over)."""
        now, until, expires = self._times()
        try:
            self.table.update(
                lease_key(tenant_id, account_id),
                "SET lease_until = :until, renewed_at = :now, expires_at = :exp",
                condition="#owner = :me",
                names={"#owner": "owner"},
                values={":until": iso(until), ":now": iso(now), ":exp": expires, ":me": self.owner},
            )
        except ConditionFailed:
            log.warning("lease of %s/%s lost by %s", tenant_id, account_id, self.owner)
            return False
        return True

    def release(self, tenant_id: str, account_id: str) -> None:
        """End our lease now, so another instance need not wait for it to expire."""
        now = iso(self.clock())
        try:
            self.table.update(
                lease_key(tenant_id, account_id),
                "SET lease_until = :now, released_at = :now",
                condition="#owner = :me",
                names={"#owner": "owner"},
                values={":now": now, ":me": self.owner},
            )
        except ConditionFailed:
            return  # not ours any more: nothing to give up
        log.info("lease of %s/%s released by %s", tenant_id, account_id, self.owner)

    def holder(self, tenant_id: str, account_id: str) -> str | None:
        """The instance holding the lease now, if any (for status pages and tests)."""
        item = self.table.get(lease_key(tenant_id, account_id))
        if item is None or str(item.get("lease_until", "")) < iso(self.clock()):
            return None
        return str(item["owner"])
