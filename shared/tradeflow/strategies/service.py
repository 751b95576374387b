"""The strategy use case: evaluate one deployment on one symbol at the scheduled time.

Every evaluation is recorded, whatever its result; a non-hold decision becomes a Signal with a
deterministic id, journaled (pending) and sent to the `signals` FIFO queue, grouped by
tenant#account#symbol and deduplicated by signal id. A retried schedule invocation therefore yields the
same signal, which the queue and the journal both recognise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import ConfigDict, Field

from tradeflow.domain import Bar, Deployment, DeploymentStatus, Evaluation, Signal, SignalAction
from tradeflow.domain.base import Model
from tradeflow.domain.ids import signal_id
from tradeflow.domain.timeframes import TIMEFRAME_SECONDS, last_closed_open_time
from tradeflow.domain.types import ResourceId, Symbol, TenantId, UtcDatetime
from tradeflow.messaging.sqs import MessageQueue
from tradeflow.storage.bars import BarRepository
from tradeflow.storage.deployments import DeploymentRepository
from tradeflow.storage.evaluations import EvaluationRepository
from tradeflow.storage.positions import PositionRepository
from tradeflow.storage.signals import SignalRepository
from tradeflow.strategies import Decision, Strategy, StrategyError, create
from tradeflow.strategies.exits import bars_needed, due_exit, has_exits

# A position held longer than this many bars has its plan exits noted as unchecked rather than read
# from an unbounded history (10,000 one-minute bars is a week).
MAX_EXIT_WINDOW = 10_000


class ScheduledInvocation(Model):
    """The payload each EventBridge Scheduler schedule sends (see `scheduling.schedule_input`)."""

    model_config = ConfigDict(extra="ignore")

    tenant_id: TenantId
    deployment_id: ResourceId
    symbol: Symbol
    scheduled_time: UtcDatetime = Field(description="<aws.scheduler.scheduled-time>: 'now' for this run")


@dataclass
class StrategyResult:
    evaluation: Evaluation
    signal: Signal | None = None
    sent: bool = False


class StrategyService:
    def __init__(self, queue: MessageQueue) -> None:
        self.queue = queue
        self.deployments = DeploymentRepository()
        self.bars = BarRepository()
        self.evaluations = EvaluationRepository()
        self.signals = SignalRepository()
        self.positions = PositionRepository()

    def run(self, invocation: ScheduledInvocation) -> StrategyResult:
        now = invocation.scheduled_time
        deployment = self.deployments.get(invocation.tenant_id, invocation.deployment_id)

        def outcome(status: str, reasons: dict[str, object], bar_time: datetime | None = None) -> StrategyResult:
            evaluation = Evaluation(
                tenant_id=invocation.tenant_id,
                deployment_id=invocation.deployment_id,
                symbol=invocation.symbol,
                evaluated_at=now,
                bar_time=bar_time,
                action=SignalAction.HOLD,
                status=status,
                reasons=reasons,
            )
            self.evaluations.put(evaluation)
            return StrategyResult(evaluation)

        if deployment is None:
            return outcome("unknown_deployment", {"error": f"deployment {invocation.deployment_id} not found"})
        if invocation.symbol not in deployment.symbols:
            return outcome("unknown_symbol", {"error": f"{invocation.symbol} is not traded by this deployment"})
        if deployment.status is not DeploymentStatus.ACTIVE:
            return outcome("inactive", {"status": deployment.status.value})
        try:
            strategy = create(deployment.strategy, deployment.params)
        except StrategyError as exc:
            return outcome("invalid_strategy", {"error": str(exc)})

        # Only bars that have closed by `now` (a bar's ts is its open): the bar opening at `now` is still
        # forming, and a late retry of this schedule that saw it would decide differently.
        bars = self.bars.latest(
            invocation.tenant_id,
            invocation.symbol,
            deployment.timeframe,
            last_closed_open_time(now, deployment.timeframe),
            strategy.warmup,
        )
        if len(bars) < strategy.warmup:
            return outcome("insufficient_data", {"bars": len(bars), "needed": strategy.warmup})
        last = bars[-1]
        max_age = deployment.max_bar_age_seconds or 3 * TIMEFRAME_SECONDS[deployment.timeframe]
        if now - last.ts > timedelta(seconds=max_age):
            return outcome("stale_data", {"last_bar": last.ts.isoformat(), "max_age_seconds": max_age}, last.ts)

        decision = self._plan_exit(strategy, deployment, bars[-1], strategy.evaluate(bars))
        sid = None
        signal = None
        if decision.action is not SignalAction.HOLD:
            sid = signal_id(invocation.tenant_id, deployment.deployment_id, invocation.symbol, last.ts, decision.action)
            signal = Signal(
                signal_id=sid,
                tenant_id=invocation.tenant_id,
                deployment_id=deployment.deployment_id,
                account_id=deployment.account_id,
                symbol=invocation.symbol,
                action=decision.action,
                bar_time=last.ts,
                generated_at=now,
                price=last.close,
                atr=Decimal(repr(decision.atr)) if decision.atr is not None else None,
                strategy=deployment.strategy,
                reasons=decision.reasons,
            )
        evaluation = Evaluation(
            tenant_id=invocation.tenant_id,
            deployment_id=deployment.deployment_id,
            symbol=invocation.symbol,
            evaluated_at=now,
            bar_time=last.ts,
            action=decision.action,
            signal_id=sid,
            reasons=decision.reasons,
        )
        self.evaluations.put(evaluation)
        if signal is None:
            return StrategyResult(evaluation)
        fresh = self.signals.record_new(signal)
        if not fresh:
            record = self.signals.get(signal.tenant_id, signal.signal_id)
            if record is not None and record.outcome.value != "pending":
                return StrategyResult(evaluation, signal, sent=False)  # already past the risk gate
        self.queue.send("signals", signal.model_dump_json(), signal.group_id, signal.signal_id)
        return StrategyResult(evaluation, signal, sent=True)

    def _plan_exit(self, strategy: Strategy, deployment: Deployment, last: Bar, decision: Decision) -> Decision:
        """The strategy's decision, unless its plan's exits say the open position must close now: then the
        closing signal, its reasons naming the exit and keeping the strategy's own (see `exits.py`)."""
        plan = strategy.plan
        if plan is None or not has_exits(plan):
            return decision
        tenant, timeframe = deployment.tenant_id, deployment.timeframe
        position = self.positions.get(tenant, deployment.account_id, last.symbol)
        if position.quantity == 0 or position.opened_at is None:
            return decision
        side = 1 if position.quantity > 0 else -1
        held = int((last.ts - position.opened_at).total_seconds() // TIMEFRAME_SECONDS[timeframe]) + 1
        count = held + bars_needed(plan) + 1
        if count > MAX_EXIT_WINDOW:
            note = f"position open for {held} bars: plan exits are checked over at most {MAX_EXIT_WINDOW} bars"
            return decision.model_copy(update={"reasons": {**decision.reasons, "plan_exit": note}})
        history = self.bars.latest(tenant, last.symbol, timeframe, last.ts, count)
        due = due_exit(plan, side, float(position.average_price), position.opened_at, history)
        if due is None:
            return decision
        action = SignalAction.SELL if side > 0 else SignalAction.BUY
        return Decision(action=action, reasons={**due.reasons(), "strategy": decision.reasons}, atr=decision.atr)
