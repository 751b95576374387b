"""The CDK app: `make synth` (offline: `python infra/app.py`), `make deploy STAGE=dev`, `make diff`.

cdk-nag's AwsSolutions pack runs during synth as a policy-validation plugin (cdk-nag 3): an
unacknowledged finding fails the synth; each acknowledgment in the constructs names its reason.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "infra"), str(ROOT / "shared")]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from tradeflow_infra.config import stage_config  # noqa: E402
from tradeflow_infra.stack import TradeflowStack  # noqa: E402


def build_app(context: dict[str, object] | None = None, outdir: str | None = None) -> tuple[cdk.App, TradeflowStack]:
    # the CDK CLI sets CDK_OUTDIR; `python infra/app.py` (make synth) writes to the root's cdk.out/
    app = cdk.App(context=context or None, outdir=outdir or os.environ.get("CDK_OUTDIR") or str(ROOT / "cdk.out"))
    config = stage_config(app.node)
    os.environ["TRADEFLOW_STAGE"] = config.stage  # the catalogue's physical names follow the stage
    env = cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT", "123456789012"),
        region=os.environ.get("CDK_DEFAULT_REGION", "us-east-1"),
    )
    stack = TradeflowStack(app, f"tradeflow-{config.stage}", config=config, env=env)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def _context_args(argv: list[str]) -> dict[str, object]:
    """`-c stage=prod -c timestream=true` (as the CDK CLI takes them) for `python infra/app.py`; the CLI
    itself passes its context through the environment, which `cdk.App` reads."""
    context: dict[str, object] = {}
    args = iter(argv)
    for arg in args:
        if arg in ("-c", "--context"):
            key, _, value = next(args, "").partition("=")
            if not key or not value:
                raise SystemExit(f"infra/app.py: expected -c key=value, got {arg} {key}")
            context[key] = value
    return context


if __name__ == "__main__":
    application, _ = build_app(_context_args(sys.argv[1:]))
    application.synth()
