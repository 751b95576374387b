"""The DynamoDB repositories on moto: tenant walls, idempotent creates, conditional outcome and
version checks, bar ordering, exact decimals, and opening an account."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tradeflow.domain import (
    Account,
    Deployment,
    LedgerEntryKind,
    Position,
    Signal,
    SignalAction,
    SignalOutcome,
)
from tradeflow.execution.accounts import open_account
from tradeflow.storage.accounts import AccountRepository
from tradeflow.storage.bars import BarRepository
from tradeflow.storage.deployments import DeploymentRepository
from tradeflow.storage.dynamo import ConditionFailed, TransactionConflict, transact
from tradeflow.storage.ledger import LedgerRepository
from tradeflow.storage.orders import OrderRepository
from tradeflow.storage.positions import PositionRepository
from tradeflow.storage.signals import SignalRepository

from helpers import ACCOUNT, T0, TENANT, ohlc, paper_order

OTHER = "globex"
M = timedelta(minutes=1)


def signal(tenant: str, signal_id: str = "sig_same", symbol: str = "XYZ") -> Signal:
    return Signal(
        signal_id=signal_id,
        tenant_id=tenant,
        deployment_id="dep-1",
        account_id=ACCOUNT,
        symbol=symbol,
        action=SignalAction.BUY,
        bar_time=T0,
        generated_at=T0 + M,
        price=Decimal(100),
        strategy="sma_cross",
    )


def bare_account(tenant: str, cash: Decimal = Decimal(1000), account_id: str = ACCOUNT) -> Account:
    return Account(tenant_id=tenant, account_id=account_id, cash=cash, created_at=T0, updated_at=T0)


# -- tenant walls ---------------------------------------------------------------------------------


def test_same_ids_under_two_tenants_never_collide_or_leak(aws: object) -> None:
    deployments = DeploymentRepository()
    for tenant, strategy in ((TENANT, "sma_cross"), (OTHER, "breakout")):
        deployments.put(
            Deployment(
                tenant_id=tenant,
                deployment_id="dep-1",
                strategy=strategy,
                symbols=["XYZ"],
                account_id=ACCOUNT,
                created_at=T0,
                updated_at=T0,
            )
        )
    mine, theirs = deployments.get(TENANT, "dep-1"), deployments.get(OTHER, "dep-1")
    assert mine is not None and theirs is not None
    assert (mine.strategy, theirs.strategy) == ("sma_cross", "breakout")
    assert [d.tenant_id for d in deployments.list(TENANT)] == [TENANT]
    assert deployments.get("initech", "dep-1") is None
    assert deployments.list("initech") == []

    orders = OrderRepository()
    assert orders.create(paper_order("coid-1", quantity=1, tenant=TENANT))
    assert orders.create(paper_order("coid-1", quantity=2, tenant=OTHER))
    found = {t: orders.get(t, "coid-1") for t in (TENANT, OTHER)}
    assert {t: o.quantity for t, o in found.items() if o} == {TENANT: 1, OTHER: 2}
    assert [o.quantity for o in orders.list_for_account(TENANT, ACCOUNT)] == [1]
    assert [o.quantity for o in orders.list_for_account(OTHER, ACCOUNT)] == [2]
    assert orders.get("initech", "coid-1") is None

    positions = PositionRepository()
    transact(
        [
            positions.save_write(Position(tenant_id=t, account_id=ACCOUNT, symbol="XYZ", quantity=Decimal(q)))
            for t, q in ((TENANT, 5), (OTHER, -7))
        ]
    )
    assert positions.get(TENANT, ACCOUNT, "XYZ").quantity == 5
    assert positions.get(OTHER, ACCOUNT, "XYZ").quantity == -7
    assert [p.quantity for p in positions.list(OTHER, ACCOUNT)] == [-7]
    unknown = positions.get("initech", ACCOUNT, "XYZ")
    assert (unknown.quantity, unknown.version) == (Decimal(0), 0)

    signals = SignalRepository()
    assert signals.record_new(signal(TENANT)) and signals.record_new(signal(OTHER))
    assert signals.set_outcome(OTHER, "sig_same", SignalOutcome.REJECTED, T0 + 2 * M, reason="theirs")
    mine_sig = signals.get(TENANT, "sig_same")
    assert mine_sig is not None and (mine_sig.outcome, mine_sig.reason) == (SignalOutcome.PENDING, None)
    assert [s.tenant_id for s in signals.list(OTHER)] == [OTHER]
    # another tenant cannot move (or create) an outcome for a signal id it does not own
    assert not signals.set_outcome("initech", "sig_same", SignalOutcome.FILLED, T0 + 2 * M)
    assert signals.get("initech", "sig_same") is None

    accounts = AccountRepository()
    assert accounts.create(bare_account(TENANT, Decimal(1)))
    assert accounts.create(bare_account(OTHER, Decimal(2)))
    assert [a.cash for a in accounts.list(TENANT)] == [1]
    assert [a.cash for a in accounts.list(OTHER)] == [2]
    assert accounts.get("initech", ACCOUNT) is None


# -- idempotent creates ---------------------------------------------------------------------------


def test_create_and_put_new_are_idempotent(aws: object) -> None:
    orders = OrderRepository()
    assert orders.create(paper_order("coid-1", quantity=1))
    assert not orders.create(paper_order("coid-1", quantity=99))  # second write refused...
    stored = orders.get(TENANT, "coid-1")
    assert stored is not None and stored.quantity == 1  # ...and the first one kept
    assert len(orders.list_for_account(TENANT, ACCOUNT)) == 1

    accounts = AccountRepository()
    assert accounts.create(bare_account(TENANT, Decimal(10)))
    assert not accounts.create(bare_account(TENANT, Decimal(20)))
    kept = accounts.get(TENANT, ACCOUNT)
    assert kept is not None and kept.cash == 10

    signals = SignalRepository()
    assert signals.record_new(signal(TENANT))
    assert signals.set_outcome(TENANT, "sig_same", SignalOutcome.APPROVED, T0 + 2 * M)
    assert not signals.record_new(signal(TENANT))  # a re-emitted signal does not reset its journal
    record = signals.get(TENANT, "sig_same")
    assert record is not None and record.outcome is SignalOutcome.APPROVED


def test_order_save_is_conditional_on_the_version_read(aws: object) -> None:
    orders = OrderRepository()
    orders.create(paper_order("coid-1"))
    read = orders.get(TENANT, "coid-1")
    assert read is not None and read.version == 0
    saved = orders.save(read.model_copy(update={"broker_order_id": "b-1"}))
    assert saved.version == 1
    with pytest.raises(ConditionFailed):
        orders.save(read.model_copy(update={"broker_order_id": "stale"}))  # still at version 0
    current = orders.get(TENANT, "coid-1")
    assert current is not None and (current.broker_order_id, current.version) == ("b-1", 1)


# -- signal outcomes ------------------------------------------------------------------------------


def test_set_outcome_never_overwrites_a_final_outcome_and_honours_expect(aws: object) -> None:
    signals = SignalRepository()
    signals.record_new(signal(TENANT))
    at = T0 + 2 * M

    # `expect` is a precondition: pending is not approved
    assert not signals.set_outcome(TENANT, "sig_same", SignalOutcome.ORDERED, at, expect=[SignalOutcome.APPROVED])
    assert signals.set_outcome(TENANT, "sig_same", SignalOutcome.APPROVED, at, expect=[SignalOutcome.PENDING])
    assert signals.set_outcome(
        TENANT,
        "sig_same",
        SignalOutcome.ORDERED,
        at,
        expect=[SignalOutcome.APPROVED],
        extra={"client_order_id": "coid-1", "quantity": Decimal("0.000000000001")},
    )
    assert signals.set_outcome(TENANT, "sig_same", SignalOutcome.FILLED, at + M, reason="filled 10 @ 100")
    for later in (SignalOutcome.REJECTED, SignalOutcome.CANCELLED, SignalOutcome.DEAD_LETTERED, SignalOutcome.PENDING):
        assert not signals.set_outcome(TENANT, "sig_same", later, at + 2 * M, reason="too late")
    # not even when the caller names the final outcome in `expect`
    assert not signals.set_outcome(TENANT, "sig_same", SignalOutcome.REJECTED, at, expect=[SignalOutcome.FILLED])
    record = signals.get(TENANT, "sig_same")
    assert record is not None
    assert (record.outcome, record.reason, record.client_order_id) == (
        SignalOutcome.FILLED,
        "filled 10 @ 100",
        "coid-1",
    )
    assert record.quantity == Decimal("0.000000000001")
    assert record.updated_at == at + M

    # an unknown signal is never created by an outcome
    assert not signals.set_outcome(TENANT, "sig_unknown", SignalOutcome.REJECTED, at)
    assert signals.get(TENANT, "sig_unknown") is None


def test_outcome_write_in_a_transaction_is_all_or_nothing(aws: object) -> None:
    signals, accounts = SignalRepository(), AccountRepository()
    signals.record_new(signal(TENANT))
    accounts.create(bare_account(TENANT, Decimal(1000)))
    account = accounts.get(TENANT, ACCOUNT)
    assert account is not None

    # approve + reserve cash together
    transact(
        [
            signals.outcome_write(TENANT, "sig_same", SignalOutcome.APPROVED, T0 + M, expect=[SignalOutcome.PENDING]),
            accounts.replace_write(account.model_copy(update={"cash": Decimal(900)}), account.risk_seq),
        ]
    )
    approved = signals.get(TENANT, "sig_same")
    after = accounts.get(TENANT, ACCOUNT)
    assert approved is not None and approved.outcome is SignalOutcome.APPROVED
    assert after is not None and (after.cash, after.risk_seq) == (Decimal(900), 1)

    # a second delivery: the outcome condition fails, so the account write is not applied either
    with pytest.raises(TransactionConflict) as conflict:
        transact(
            [
                signals.outcome_write(
                    TENANT, "sig_same", SignalOutcome.APPROVED, T0 + 2 * M, expect=[SignalOutcome.PENDING]
                ),
                accounts.replace_write(after.model_copy(update={"cash": Decimal(800)}), after.risk_seq),
            ]
        )
    assert conflict.value.reasons == ["ConditionalCheckFailed", "None"]
    unchanged = accounts.get(TENANT, ACCOUNT)
    assert unchanged is not None and (unchanged.cash, unchanged.risk_seq) == (Decimal(900), 1)

    # a final outcome in a transaction is refused the same way as through set_outcome
    transact([signals.outcome_write(TENANT, "sig_same", SignalOutcome.REJECTED, T0 + 3 * M, reason="limit")])
    with pytest.raises(TransactionConflict):
        transact([signals.outcome_write(TENANT, "sig_same", SignalOutcome.FILLED, T0 + 4 * M)])
    final = signals.get(TENANT, "sig_same")
    assert final is not None and (final.outcome, final.reason) == (SignalOutcome.REJECTED, "limit")


# -- optimistic concurrency -----------------------------------------------------------------------


def test_account_replace_write_fails_on_a_stale_risk_seq(aws: object) -> None:
    accounts = AccountRepository()
    accounts.create(bare_account(TENANT, Decimal(1000)))
    first = accounts.get(TENANT, ACCOUNT)
    second = accounts.get(TENANT, ACCOUNT)  # two concurrent deciders read the same state
    assert first is not None and second is not None

    transact([accounts.replace_write(first.model_copy(update={"cash": Decimal(600)}), first.risk_seq)])
    with pytest.raises(TransactionConflict) as conflict:
        transact([accounts.replace_write(second.model_copy(update={"cash": Decimal(500)}), second.risk_seq)])
    assert conflict.value.reasons == ["ConditionalCheckFailed"]
    stored = accounts.get(TENANT, ACCOUNT)
    assert stored is not None and (stored.cash, stored.risk_seq) == (Decimal(600), 1)

    # deciding again on fresh numbers succeeds and bumps the sequence again
    transact([accounts.replace_write(stored.model_copy(update={"cash": Decimal(500)}), stored.risk_seq)])
    again = accounts.get(TENANT, ACCOUNT)
    assert again is not None and (again.cash, again.risk_seq) == (Decimal(500), 2)


def test_position_save_write_checks_the_version(aws: object) -> None:
    positions = PositionRepository()
    fresh = positions.get(TENANT, ACCOUNT, "XYZ")
    transact([positions.save_write(fresh.model_copy(update={"quantity": Decimal(10)}))])
    # a second "first write" (version 0) is refused: someone created the position meanwhile
    with pytest.raises(TransactionConflict):
        transact([positions.save_write(fresh.model_copy(update={"quantity": Decimal(20)}))])

    read = positions.get(TENANT, ACCOUNT, "XYZ")
    assert (read.quantity, read.version) == (Decimal(10), 1)
    transact([positions.save_write(read.model_copy(update={"quantity": Decimal(15)}))])
    with pytest.raises(TransactionConflict):
        transact([positions.save_write(read.model_copy(update={"quantity": Decimal(99)}))])  # stale version 1
    latest = positions.get(TENANT, ACCOUNT, "XYZ")
    assert (latest.quantity, latest.version) == (Decimal(15), 2)


# -- bars ---------------------------------------------------------------------------------------


def test_bar_queries_are_ordered_and_bounded(aws: object) -> None:
    repo = BarRepository()
    made = [ohlc("XYZ", T0 + i * M, 100 + i, 101 + i, 99 + i, 100 + i) for i in range(10)]
    repo.put_many(TENANT, list(reversed(made)))  # written out of order
    repo.put_many(TENANT, [ohlc("XYZ", T0 + i * M, 1, 1, 1, 1, timeframe="1h") for i in range(10)])
    repo.put_many(OTHER, [ohlc("XYZ", T0 + i * M, 5, 5, 5, 5) for i in range(10)])
    repo.put_many(TENANT, [ohlc("ABC", T0 + i * M, 7, 7, 7, 7) for i in range(10)])

    latest = repo.latest(TENANT, "XYZ", "1m", T0 + 4 * M, 3)
    assert [b.ts for b in latest] == [T0 + 2 * M, T0 + 3 * M, T0 + 4 * M]  # oldest first, `until` included
    assert [b.close for b in latest] == [102, 103, 104]
    between = repo.latest(TENANT, "XYZ", "1m", T0 + 4 * M + timedelta(seconds=59), 3)
    assert [b.ts for b in between] == [T0 + 2 * M, T0 + 3 * M, T0 + 4 * M]
    assert [b.ts for b in repo.latest(TENANT, "XYZ", "1m", T0 + 2 * M, 100)] == [T0, T0 + M, T0 + 2 * M]
    assert repo.latest(TENANT, "XYZ", "1m", T0 - timedelta(seconds=1), 5) == []

    after = repo.after(TENANT, "XYZ", "1m", T0 + 6 * M, 100)
    assert [b.ts for b in after] == [T0 + 7 * M, T0 + 8 * M, T0 + 9 * M]  # strictly after, oldest first
    assert [b.ts for b in repo.after(TENANT, "XYZ", "1m", T0, 2)] == [T0 + M, T0 + 2 * M]
    assert repo.after(TENANT, "XYZ", "1m", T0 + 9 * M, 5) == []
    assert made[3] == repo.latest(TENANT, "XYZ", "1m", T0 + 3 * M, 1)[0]


# -- exact money ----------------------------------------------------------------------------------


def test_decimal_values_round_trip_exactly(aws: object) -> None:
    cash = Decimal("0.1") + Decimal("0.2")
    accounts = AccountRepository()
    accounts.create(bare_account(TENANT, cash))
    stored = accounts.get(TENANT, ACCOUNT)
    assert stored is not None
    assert stored.cash == Decimal("0.3") and str(stored.cash) == "0.3"

    twelve = Decimal("12345.678901234567")
    tiny = Decimal("0.000000000001")
    huge = Decimal("123456789012345678901234.123456789012")  # more digits than a DynamoDB number holds
    positions = PositionRepository()
    transact(
        [
            positions.save_write(
                Position(
                    tenant_id=TENANT,
                    account_id=ACCOUNT,
                    symbol="XYZ",
                    quantity=tiny,
                    average_price=twelve,
                    realized_pnl=huge,
                )
            )
        ]
    )
    position = positions.get(TENANT, ACCOUNT, "XYZ")
    assert (position.quantity, position.average_price, position.realized_pnl) == (tiny, twelve, huge)
    assert str(position.average_price) == "12345.678901234567"

    bar = ohlc("XYZ", T0, "0.123456789012", "0.123456789013", "0.123456789011", "0.123456789012")
    BarRepository().put_many(TENANT, [bar])
    [read] = BarRepository().latest(TENANT, "XYZ", "1m", T0, 1)
    assert (read.open, read.high, read.low) == (
        Decimal("0.123456789012"),
        Decimal("0.123456789013"),
        Decimal("0.123456789011"),
    )
    assert read == bar

    orders = OrderRepository()
    orders.create(paper_order("coid-1", quantity="0.000000000001", order_type="limit", limit="0.100000000003"))
    order = orders.get(TENANT, "coid-1")
    assert order is not None and (order.quantity, order.limit_price) == (tiny, Decimal("0.100000000003"))


# -- opening an account ---------------------------------------------------------------------------


def test_open_account_creates_the_account_and_its_deposit_once(aws: object) -> None:
    cash = Decimal("25000.123456789012")
    assert open_account(TENANT, ACCOUNT, cash, T0, broker_config={"fill_model": "last_price"})
    # a second opening (even with other numbers, at another time) changes nothing
    assert not open_account(TENANT, ACCOUNT, Decimal(1), T0 + M)
    # the same account id under another tenant is another account
    assert open_account(OTHER, ACCOUNT, Decimal(5), T0)

    account = AccountRepository().get(TENANT, ACCOUNT)
    assert account is not None
    assert (account.cash, account.starting_cash, account.created_at) == (cash, cash, T0)
    assert account.broker_config == {"fill_model": "last_price", "starting_cash": str(cash)}

    [entry] = LedgerRepository().list(TENANT, ACCOUNT)
    assert (entry.kind, entry.amount, entry.balance_after, entry.ts) == (LedgerEntryKind.DEPOSIT, cash, cash, T0)
    assert [e.amount for e in LedgerRepository().list(OTHER, ACCOUNT)] == [5]
