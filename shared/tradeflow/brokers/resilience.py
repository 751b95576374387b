"""Resilience around real brokers: read retries, the one safe submit retry, and a circuit breaker.

- **Reads** (order lookups, open orders, positions, account, bars) are retried with full-jitter
  exponential backoff when the broker times out, is unreachable or rate-limits us (a 429's
  `Retry-After` is honoured). A read has no side effect, so retrying it is always safe.
- **An order POST is never blindly retried.** After a timeout the order may exist: the caller (the
  execution service) looks it up by client order id instead. The one exception is a 429: the broker
  refused the request before processing it, so nothing was created and the same POST is sent again
  after the delay the broker asked for.
- **The circuit breaker** is per broker account and lives in DynamoDB (`broker_health`), because
  every warm Lambda container and the streamer share it. After `threshold` consecutive failed calls
  (timeouts, unreachable, refused credentials; a rejection of an order is the broker working, not a
  failure) it opens for `cooldown`: submissions are refused at once with the reason recorded (item +
  audit event). When the cooldown is over the next submission is let through (half-open); success
  closes the breaker, failure opens it again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from tradeflow.brokers.port import (
    Broker,
    BrokerAccount,
    BrokerAuthFailed,
    BrokerOrder,
    BrokerPosition,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    RateLimited,
    RejectCode,
)
from tradeflow.domain import Order
from tradeflow.domain.types import iso
from tradeflow.storage.audit import AuditRepository
from tradeflow.storage.dynamo import DynamoTable

log = logging.getLogger("tradeflow.brokers")
T = TypeVar("T")
Sleep = Callable[[float], None]
Clock = Callable[[], datetime]

READ_ATTEMPTS = 4
SUBMIT_RATE_LIMIT_ATTEMPTS = 3
BASE_DELAY = 0.25  # seconds
MAX_DELAY = 8.0


def jittered(attempt: int, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """Full jitter: uniform in [0, min(cap, base x 2^attempt)], so clients that failed together do not
    retry together."""
    return random.uniform(0, min(cap, base * 2**attempt))


def _delay(error: BrokerUnavailable | BrokerTimeout, attempt: int) -> float:
    wait = jittered(attempt)
    if isinstance(error, RateLimited) and error.retry_after is not None:
        wait = max(wait, min(error.retry_after, MAX_DELAY * 4))
    return wait


def retry_read(call: Callable[[], T], what: str, attempts: int = READ_ATTEMPTS, sleep: Sleep = time.sleep) -> T:
    """`call()`, retried on timeouts, unreachability and rate limits; the last failure is raised."""
    for attempt in range(attempts):
        try:
            return call()
        except (BrokerTimeout, BrokerUnavailable) as error:
            if attempt == attempts - 1:
                raise
            wait = _delay(error, attempt)
            log.warning("broker read %s failed (%s); retry %d in %.2fs", what, error, attempt + 1, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def submit_once(call: Callable[[], T], sleep: Sleep = time.sleep) -> T:
    """An order POST: sent again only after a 429 (nothing was created); a timeout propagates."""
    for attempt in range(SUBMIT_RATE_LIMIT_ATTEMPTS):
        try:
            return call()
        except RateLimited as limited:
            if attempt == SUBMIT_RATE_LIMIT_ATTEMPTS - 1:
                raise
            wait = _delay(limited, attempt)
            log.warning("broker rate-limited an order (%s); sending it again in %.2fs", limited, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


class CircuitOpen(BrokerRejected):
    """Submissions to this account are suspended: the broker failed too often in a row."""

    def __init__(self, message: str) -> None:
        super().__init__(RejectCode.BROKER_UNAVAILABLE, message)


class CircuitBreaker:
    """Per-account breaker state in the `broker_health` table (pk=tenant, sk=account)."""

    def __init__(
        self,
        tenant_id: str,
        account_id: str,
        *,
        threshold: int = 5,
        cooldown: timedelta = timedelta(seconds=60),
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.tenant_id = tenant_id
        self.account_id = account_id
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self.table = DynamoTable("broker_health")
        self._failing = False  # this instance saw a failure (a success must then reset the record)

    @property
    def key(self) -> dict[str, str]:
        return {"pk": self.tenant_id, "sk": self.account_id}

    def state(self) -> dict[str, object]:
        return self.table.get(self.key) or {}

    def check(self) -> None:
        """Raise `CircuitOpen` while the breaker is open; let one call through once the cooldown ended."""
        item = self.state()
        self._failing = int(str(item.get("failures", 0))) > 0
        open_until = item.get("open_until")
        if item.get("state") == "open" and isinstance(open_until, str) and iso(self.clock()) < open_until:
            raise CircuitOpen(
                f"submissions to account {self.account_id} are suspended until {open_until}: "
                f"{item.get('failures')} broker failures in a row, last: {item.get('reason')}"
            )

    def success(self) -> None:
        if not self._failing:
            return
        now = iso(self.clock())
        self.table.update(
            self.key,
            "SET failures = :z, #s = :closed, updated_at = :now REMOVE open_until",
            names={"#s": "state"},
            values={":z": 0, ":closed": "closed", ":now": now},
        )
        self._failing = False

    def failure(self, reason: str) -> bool:
        """Count one failure; True when this failure opened the breaker."""
        now = self.clock()
        item = self.table.update(
            self.key,
            "SET failures = if_not_exists(failures, :z) + :one, reason = :r, last_failure_at = :now, "
            "tenant_id = :t, account_id = :a",
            values={":z": 0, ":one": 1, ":r": reason[:500], ":now": iso(now), ":t": self.tenant_id,
                    ":a": self.account_id},
        )  # fmt: skip
        self._failing = True
        failures = int(str(item.get("failures", 0)))
        if failures < self.threshold:
            return False
        until = iso(now + self.cooldown)
        self.table.update(
            self.key,
            "SET #s = :open, open_until = :until, opened_at = :now",
            names={"#s": "state"},
            values={":open": "open", ":until": until, ":now": iso(now)},
        )
        log.error(
            "circuit opened for account %s/%s after %d failures: %s", self.tenant_id, self.account_id, failures, reason
        )
        AuditRepository().record(
            AuditRepository.event(
                self.tenant_id,
                now,
                "system",
                "broker.circuit_opened",
                self.account_id,
                {"failures": failures, "reason": reason[:500], "open_until": until},
            )
        )
        return True


CredentialsRefused = Callable[[BrokerAuthFailed], None]


class GuardedBroker:
    """A real broker's adapter behind read retries, the safe submit retry and the account's breaker.
    `on_auth_failure` is told when the broker refuses the credentials (the account is then halted)."""

    def __init__(
        self,
        inner: Broker,
        breaker: CircuitBreaker,
        on_auth_failure: CredentialsRefused | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.breaker = breaker
        self.on_auth_failure = on_auth_failure
        self.sleep = sleep

    def _guard(self, call: Callable[[], T]) -> T:
        try:
            result = call()
        except BrokerAuthFailed as refused:
            self.breaker.failure(f"credentials refused: {refused.broker_message}")
            if self.on_auth_failure is not None:
                self.on_auth_failure(refused)
            raise
        except (BrokerTimeout, BrokerUnavailable) as failed:
            self.breaker.failure(f"{type(failed).__name__}: {failed.broker_message}")
            raise
        self.breaker.success()
        return result

    def submit(self, order: Order) -> BrokerOrder:
        self.breaker.check()
        return self._guard(lambda: submit_once(lambda: self.inner.submit(order), self.sleep))

    def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        return self._guard(
            lambda: retry_read(
                lambda: self.inner.get_order_by_client_id(client_order_id), f"order {client_order_id}", sleep=self.sleep
            )
        )

    def cancel(self, client_order_id: str) -> BrokerOrder:
        # A cancel is idempotent at the broker (cancelling a cancelled order changes nothing), so it is
        # retried like a read.
        return self._guard(
            lambda: retry_read(
                lambda: self.inner.cancel(client_order_id), f"cancel {client_order_id}", sleep=self.sleep
            )
        )

    def open_orders(self) -> list[BrokerOrder]:
        return self._guard(lambda: retry_read(self.inner.open_orders, "open orders", sleep=self.sleep))

    def recent_orders(self, since: datetime) -> list[BrokerOrder]:
        return self._guard(
            lambda: retry_read(lambda: self.inner.recent_orders(since), "recent orders", sleep=self.sleep)
        )

    def positions(self) -> list[BrokerPosition]:
        return self._guard(lambda: retry_read(self.inner.positions, "positions", sleep=self.sleep))

    def account(self) -> BrokerAccount:
        return self._guard(lambda: retry_read(self.inner.account, "account", sleep=self.sleep))
