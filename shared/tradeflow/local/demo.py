"""The demo tenant: a paper account and a running SMA-cross deployment on several real symbols, so
`make run` trades without any input."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tradeflow.domain import Deployment, RiskProfile, SizingMethod, SizingRule
from tradeflow.execution.accounts import open_account
from tradeflow.local.replay import Feed
from tradeflow.scheduling.deployments import DeploymentService
from tradeflow.storage.deployments import DeploymentRepository

DEMO_TENANT = "demo"
DEMO_ACCOUNT = "paper-main"
DEMO_DEPLOYMENT = "sma-demo"
DEMO_PARAMS = {"fast": 5, "slow": 20}
# (symbol, where in its history the replay starts): daily equities and hourly FX. BTCUSD ships too,
# but as monthly bars replayed one a minute it turns 2012-2024's rally into minutes: not a demo.
DEMO_FEEDS = (("GOOG", 0), ("SPY", 3000), ("EURUSD", 0), ("ASML.AS", 0), ("002032.SZ", 0))
STARTING_CASH = Decimal(100_000)


def demo_feeds(tenant_id: str = DEMO_TENANT) -> list[Feed]:
    return [Feed(tenant_id, symbol, symbol, start) for symbol, start in DEMO_FEEDS]


def demo_risk() -> RiskProfile:
    return RiskProfile(
        sizing=SizingRule(method=SizingMethod.PERCENT_OF_EQUITY, percent=Decimal(15)),
        max_open_positions=5,
        max_position_notional=Decimal(25_000),
        max_gross_exposure=Decimal(90_000),
        daily_loss_limit=Decimal(5_000),
    )


def seed_demo(at: datetime, symbols: list[str] | None = None, tenant_id: str = DEMO_TENANT) -> Deployment:
    """Create (idempotently) the demo account and deployment, with its schedules."""
    open_account(
        tenant_id,
        DEMO_ACCOUNT,
        STARTING_CASH,
        at,
        name="Demo paper account",
        broker_config={"fill_model": "next_open", "slippage_bps": "2", "fee_rate": "0.0005", "timeframe": "1m"},
    )
    existing = DeploymentRepository().get(tenant_id, DEMO_DEPLOYMENT)
    if existing is not None:
        return existing
    deployment = Deployment(
        tenant_id=tenant_id,
        deployment_id=DEMO_DEPLOYMENT,
        name="SMA cross demo",
        strategy="sma_cross",
        params=DEMO_PARAMS,
        symbols=symbols or [s for s, _ in DEMO_FEEDS],
        account_id=DEMO_ACCOUNT,
        schedule="rate(1 minute)",
        timeframe="1m",
        risk=demo_risk(),
        created_at=at,
        updated_at=at,
    )
    DeploymentService().deploy(deployment, actor="local-cloud")
    return deployment
