"""Synthesising the CDK app once per test process (about 15 s), for the infrastructure tests.

The layers are replaced by placeholders (`-c layers=placeholder`): the assertion tests look at the
template, not at pip's output, so they do not need the real layer build (`make layers`)."""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STAGE = "dev"


@functools.cache
def synthesised() -> tuple[Any, Path]:
    """(the stack, the cloud assembly folder) of stage dev."""
    sys.path.insert(0, str(ROOT / "infra"))
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from app import build_app  # type: ignore[import-not-found]

    outdir = Path(tempfile.mkdtemp(prefix="cdk-out-"))
    saved_stage = os.environ.get("TRADEFLOW_STAGE")
    try:
        app, stack = build_app({"stage": STAGE, "layers": "placeholder"}, outdir=str(outdir))
        app.synth()
    finally:
        if saved_stage is None:
            os.environ.pop("TRADEFLOW_STAGE", None)
        else:
            os.environ["TRADEFLOW_STAGE"] = saved_stage
    return stack, outdir


def template_json() -> dict[str, Any]:
    stack, outdir = synthesised()
    loaded: dict[str, Any] = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return loaded


def resources(kind: str) -> list[dict[str, Any]]:
    return [r.get("Properties", {}) for r in template_json()["Resources"].values() if r["Type"] == kind]
