"""Per-tenant request rate limit: a fixed one-minute window counted in DynamoDB.

In Lambda many API instances serve one tenant at once, so an in-memory bucket would let a tenant
multiply its limit by the number of warm instances; one atomic `ADD` per request on the tenant's
window item (`rate_limits` table, pk=tenant, sk=window start, expiring after two windows) counts
exactly across all of them. Over the limit: 429 with `Retry-After` (seconds to the next window).
API Gateway's stage throttling stays in front as the coarse, tenant-blind guard.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from tradeflow.api.errors import ApiError
from tradeflow.storage.dynamo import DynamoTable

WINDOW_SECONDS = 60


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute, self.clock = per_minute, clock
        self.table = DynamoTable("rate_limits")

    def check(self, tenant_id: str) -> None:
        now = self.clock()
        window = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
        out = self.table.update(
            {"pk": tenant_id, "sk": str(window)},
            "ADD #count :one SET expires_at = :expires",
            names={"#count": "count"},
            values={":one": 1, ":expires": window + 2 * WINDOW_SECONDS},
        )
        count = int(out.get("count", 0)) if out else 0
        if count > self.per_minute:
            retry = max(1, math.ceil(window + WINDOW_SECONDS - now))
            raise ApiError(
                429,
                f"tenant request rate over {self.per_minute} per minute; retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )
