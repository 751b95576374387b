"""The benchmarks' tenant: one paper account filling at the last price (pipeline time, not market
time) and one SMA-cross deployment over the given symbols, one share per order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tradeflow.domain import Deployment, RiskProfile, SizingMethod, SizingRule
from tradeflow.execution.accounts import open_account
from tradeflow.scheduling.deployments import DeploymentService

TENANT, ACCOUNT, DEPLOYMENT = "bench", "paper-bench", "bench-sma"


def seed_bench(at: datetime, symbols: list[str], cash: Decimal) -> None:
    open_account(TENANT, ACCOUNT, cash, at, broker_config={"fill_model": "last_price"})
    DeploymentService().deploy(
        Deployment(
            tenant_id=TENANT,
            deployment_id=DEPLOYMENT,
            strategy="sma_cross",
            params={"fast": 5, "slow": 20},
            symbols=symbols,
            account_id=ACCOUNT,
            risk=RiskProfile(sizing=SizingRule(method=SizingMethod.FIXED_QUANTITY, quantity=Decimal(1))),
            created_at=at,
            updated_at=at,
        )
    )
