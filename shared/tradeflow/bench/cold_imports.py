"""Cold import time of each handler module, each in a fresh interpreter (median of several runs),
next to the goal (300 ms for strategy and risk) and to `import boto3` alone as a floor: every handler
needs boto3, which Lambda's runtime also has to import."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from tradeflow.catalogue import FUNCTIONS
from tradeflow.local.lambdas import repo_root

HEAVY = ("pandas", "numpy", "ccxt", "alpaca", "fastapi", "openai")
GOAL_MS = {"strategy": 300.0, "risk": 300.0}

_PROBE = """
import json, sys, time
t = time.perf_counter()
{body}
elapsed = (time.perf_counter() - t) * 1000
print(json.dumps({{"ms": elapsed, "heavy": sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))}}))
"""


def handler_import(name: str) -> str:
    """Code that imports `functions/<name>/handler.py` as Lambda's runtime does."""
    path = repo_root() / "functions" / name / "handler.py"
    return (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('h', {str(path)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)"
    )


def probe(body: str) -> dict[str, object]:
    """Run `body` in a fresh interpreter set up like Lambda's: {"ms": import time, "heavy": [...]}."""
    return _run(body)


def _run(body: str) -> dict[str, object]:
    # The variables Lambda's runtime sets: the X-Ray SDK behaves differently inside Lambda (outside it
    # probes for a daemon and an EC2 host at import, ~100 ms that a Lambda cold start never pays).
    env = {
        # (PYTHONDONTWRITEBYTECODE dropped: a deployed package ships compiled .pyc files, see layers/)
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("POWERTOOLS_", "AWS_ENDPOINT")) and k != "PYTHONDONTWRITEBYTECODE"
        },
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "tradeflow-bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "LAMBDA_TASK_ROOT": str(repo_root()),
        "_X_AMZN_TRACE_ID": "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=1",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        # the API's Cognito settings, as the stack sets them (the key set is fetched on first use only)
        "TRADEFLOW_AUTH_ISSUER": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench",
        "TRADEFLOW_AUTH_AUDIENCE": "bench-client",
        "TRADEFLOW_AUTH_JWKS_URL": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_bench/.well-known/jwks.json",
    }
    code = _PROBE.format(body=body, heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(runs: int = 7) -> list[dict[str, object]]:
    rows = []
    baseline = statistics.median(float(str(_run("import boto3")["ms"])) for _ in range(runs))
    rows.append({"module": "import boto3 (floor)", "ms": baseline, "heavy": [], "goal": None})
    for name in FUNCTIONS:
        body = handler_import(name)
        _run(body)  # warm the bytecode cache, as a deployed package has .pyc files
        samples = [_run(body) for _ in range(runs)]
        rows.append(
            {
                "module": f"functions/{name}/handler.py",
                "ms": statistics.median(float(str(s["ms"])) for s in samples),
                "heavy": samples[0]["heavy"],
                "goal": GOAL_MS.get(name),
                "ratio_to_floor": None,
            }
        )
    for row in rows[1:]:
        row["ratio_to_floor"] = float(str(row["ms"])) / baseline
    return rows


def report(rows: list[dict[str, object]]) -> None:
    print("\n== cold import (fresh interpreter, median) ==")
    for row in rows:
        ms = float(str(row["ms"]))
        goal = row.get("goal")
        verdict = ""
        if goal is not None:
            verdict = (
                f"goal <= {goal:.0f} ms: {'met' if ms <= float(str(goal)) else 'MISSED'} ({ms / float(str(goal)):.2f}x)"
            )
        ratio = row.get("ratio_to_floor")
        ratio_text = f"{float(str(ratio)):.2f}x boto3" if ratio is not None else ""
        heavy = ",".join(map(str, row["heavy"])) if row["heavy"] else "none"  # type: ignore[call-overload]
        print(f"  {row['module']:<38} {ms:7.1f} ms  {ratio_text:<12} heavy imports: {heavy:<14} {verdict}")
