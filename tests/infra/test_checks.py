"""The field's standard checks on the synthesised stack: cdk-nag's AwsSolutions pack (run during synth
as a policy-validation plugin: zero unacknowledged findings, every acknowledgment with a reason) and
cfn-lint (no errors, no warnings) on every template."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from synth import synthesised

pytestmark = pytest.mark.xdist_group("infra")


def _nag_report() -> dict[str, Any]:
    _, outdir = synthesised()  # synth itself raises when a finding is not acknowledged
    report: dict[str, Any] = json.loads((outdir / "validation-report.json").read_text())
    return next(r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions")


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings() -> None:
    nag = _nag_report()
    assert nag["conclusion"] == "success"
    assert nag["violations"] == [], [
        (v["ruleName"], v["violatingConstructs"][0]["constructPath"]) for v in nag["violations"]
    ]


def test_every_acknowledgment_gives_a_specific_reason() -> None:
    acknowledged = _nag_report()["suppressedViolations"]
    assert acknowledged, "nothing acknowledged: is the AwsSolutions pack running at all?"
    for finding in acknowledged:
        reason = finding.get("reason", "")
        assert len(reason) >= 25 and "todo" not in reason.lower(), (finding["ruleName"], finding["acknowledgedAt"])
        # acknowledged where the finding is, not for the whole stack
        assert "/" in finding["acknowledgedAt"], (finding["ruleName"], finding["acknowledgedAt"])


def test_cfn_lint_passes_on_every_synthesised_template() -> None:
    _, outdir = synthesised()
    templates = sorted(outdir.glob("*.template.json"))
    assert templates
    lint = subprocess.run(
        [sys.executable, "-m", "cfnlint", *map(str, templates)], capture_output=True, text=True, check=False
    )
    # cfn-lint's exit code is a bit mask: 2 errors, 4 warnings, 8 informational
    assert lint.returncode & 6 == 0, lint.stdout + lint.stderr
