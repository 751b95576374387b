"""The `tradeflow backtest` command-line contract (issue 3, item 8): scripts call it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradeflow.cli import main
from tradeflow.marketdata import load_dataset

METRIC_KEYS = {
    "total_return_pct",
    "cagr_pct",
    "volatility_pct",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown_pct",
    "win_rate_pct",
    "profit_factor",
    "expectancy_pct",
    "trades",
    "exposure_pct",
    "buy_hold_return_pct",
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["backtest", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_contract_on_a_shipped_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "--strategy", "sma_cross", "--data", "GOOG", "--param", "fast=10", "--param", "slow=20",
        "--commission", "0.002", "--json",
    )  # fmt: skip
    assert code == 0
    document = json.loads(out)
    assert set(document) == {"metrics", "trades", "equity_curve"}
    assert set(document["metrics"]) >= METRIC_KEYS
    assert document["metrics"]["trades"] == len(document["trades"]) == 47  # the parity test's figure
    assert len(document["equity_curve"]) == len(load_dataset("GOOG"))
    first = document["trades"][0]
    assert {"entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl", "return_pct"} <= set(first)


def test_csv_input_with_capitalised_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bars = load_dataset("GOOG")[:300]
    csv = tmp_path / "goog.csv"
    rows = ["Date,Open,High,Low,Close,Volume"] + [
        f"{b.ts.date()},{b.open},{b.high},{b.low},{b.close},{b.volume}" for b in bars
    ]
    csv.write_text("\n".join(rows) + "\n")
    code, out, _ = run(capsys, "--strategy", "sma_cross", "--data", str(csv), "--symbol", "GOOG", "--json")
    assert code == 0
    from_csv = json.loads(out)
    assert len(from_csv["equity_curve"]) == 300 and from_csv["metrics"]["trades"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "nope", "--data", "GOOG"], "unknown strategy 'nope'; known: "),
        (["--strategy", "sma_cross", "--data", "GOOG", "--param", "fast=30", "--param", "slow=20"], "params"),
        (["--strategy", "sma_cross", "--data", "GOOG", "--param", "speed=3"], "params.speed"),
        (["--strategy", "sma_cross", "--data", "GOOG", "--param", "fast"], "expected KEY=VALUE"),
        (["--strategy", "sma_cross", "--data", "NOPE"], "neither a shipped dataset"),
        (["--strategy", "sma_cross", "--data", "GOOG", "--commission", "0.5"], "commission"),
    ],
)
def test_bad_input_is_named_with_status_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err


def test_too_little_data_for_the_warm_up_is_said_plainly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "short.csv"
    csv.write_text("date,open,high,low,close\n2024-01-02,10,11,9,10\n2024-01-03,10,11,9,10.5\n")
    code, _, err = run(capsys, "--strategy", "sma_cross", "--data", str(csv))
    assert code == 2
    assert "needs more than 31 bars to warm up" in err and "has 2" in err


def test_broken_csv_names_file_and_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "broken.csv"
    csv.write_text("date,open,high,low,close\n2024-01-02,10,11,9,10\n2024-01-03,10,11,9,NaN\n")
    code, _, err = run(capsys, "--strategy", "sma_cross", "--data", str(csv))
    assert code == 2
    assert "broken.csv" in err and "line 3" in err


def test_optimize_is_a_tradeflow_command(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["optimize", "--strategy", "sma_cross", "--data", "GOOG", "--range", "fast=5:10:5", "--range", "slow=20,30",
         "--objective", "total_return_pct", "--json"]
    )  # fmt: skip
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["objective"] == "total_return_pct" and document["evaluated"] == 4
    returns = [r["metrics"]["total_return_pct"] for r in document["results"]]
    assert returns == sorted(returns, reverse=True)


EXAMPLE_SPECS = Path(__file__).resolve().parents[2] / "examples" / "strategies"


def test_a_rule_spec_file_backtests(capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(EXAMPLE_SPECS / "rsi_dip.json")
    code, out, err = run(capsys, "--strategy", spec, "--data", "GOOG", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert set(document["metrics"]) >= METRIC_KEYS
    assert document["metrics"]["trades"] > 0


def test_an_invalid_rule_spec_names_the_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"name": "bad", "entry": {"all": [{"indicator": "rsi", "op": "<<", "value": 30}]}}))
    code, _, err = run(capsys, "--strategy", str(spec), "--data", "GOOG")
    assert code == 2
    assert f"--strategy {spec}: invalid parameters for 'rules': params.entry.all.0.op: Input should be" in err


def test_a_rule_spec_with_a_json_syntax_error_names_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "typo.json"
    spec.write_text('{\n  "name": "typo",\n  "entry": {"indicator": "rsi" "op": "<", "value": 30}\n}\n')
    code, _, err = run(capsys, "--strategy", str(spec), "--data", "GOOG")
    assert code == 2
    assert f"--strategy {spec}: invalid JSON at line 3, column 32: Expecting ',' delimiter" in err


def test_a_missing_rule_spec_file_and_params_with_a_spec_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--strategy", str(tmp_path / "nowhere.json"), "--data", "GOOG")
    assert code == 2 and "nowhere.json: cannot read the rule spec" in err
    spec = str(EXAMPLE_SPECS / "rsi_dip.json")
    code, _, err = run(capsys, "--strategy", spec, "--data", "GOOG", "--param", "period=10")
    assert code == 2 and "--param does not apply to a rule spec: its parameters live in the spec" in err


def test_optimize_refuses_a_rule_spec(capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(EXAMPLE_SPECS / "rsi_dip.json")
    code = main(["optimize", "--strategy", spec, "--data", "GOOG", "--range", "period=10,14"])
    err = capsys.readouterr().err
    assert code == 2 and "a rule spec cannot be swept" in err


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "strategies"


def test_repeated_data_is_a_portfolio_sharing_one_cash_balance(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "--strategy", "sma_cross", "--data", "GOOG", "--data", "SPY", "--size-pct", "50", "--json"
    )
    assert code == 0, err
    document = json.loads(out)
    assert {t["symbol"] for t in document["trades"]} == {"GOOG", "SPY"}
    assert set(document["metrics"]) >= METRIC_KEYS
    # the timeline is the union of both symbols' days
    assert len(document["equity_curve"]) == len({b.ts for s in ("GOOG", "SPY") for b in load_dataset(s)})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "GOOG", "--data", "GOOG"], "given twice"),
        (["--data", "GOOG", "--data", "SPY", "--symbol", "X"], "--symbol"),
        (["--data", "GOOG", "--trailing-stop-pct", "150"], "--trailing-stop-pct"),
        (["--data", "GOOG", "--max-holding-bars", "0"], "--max-holding-bars"),
    ],
)
def test_bad_portfolio_and_exit_flags_are_named(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--strategy", "sma_cross", *args)
    assert code == 2 and message in err


def test_exit_flags_reach_the_engine(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "--strategy", "sma_cross", "--data", "GOOG", "--trailing-stop-pct", "8", "--max-holding-bars", "30",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    trades = json.loads(out)["trades"]
    assert {"trailing_stop", "max_holding"} <= {t["exit_reason"] for t in trades}
    assert max(t["bars_held"] for t in trades) <= 30


def test_units_follow_the_asset_class_unless_told(capsys: pytest.CaptureFixture[str]) -> None:
    def sizes(*extra: str) -> list[float]:
        code, out, err = run(capsys, "--strategy", "sma_cross", "--json", *extra)
        assert code == 0, err
        return [t["size"] for t in json.loads(out)["trades"]]

    assert all(s == int(s) for s in sizes("--data", "GOOG"))  # equities: whole shares
    crypto = ["--data", "BTCUSD", "--param", "fast=3", "--param", "slow=6"]
    assert any(s != int(s) for s in sizes(*crypto))  # bitcoin trades in fractions
    assert all(s == int(s) for s in sizes(*crypto, "--units", "whole"))


def test_a_spec_plan_gives_way_only_to_flags_that_are_given(capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(EXAMPLES / "rsi_dip.json")  # sizes at 50 % of equity, holds at most 30 bars

    def first_trade(*extra: str) -> dict[str, float]:
        code, out, err = run(capsys, "--strategy", spec, "--data", "GOOG", "--json", *extra)
        assert code == 0, err
        trade: dict[str, float] = json.loads(out)["trades"][0]
        return trade

    by_spec, by_flag = first_trade(), first_trade("--size-pct", "100")
    assert by_spec["size"] * by_spec["entry_price"] <= 5_000 < by_flag["size"] * by_flag["entry_price"]


def test_a_portfolio_report_draws_every_symbol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "portfolio.html"
    code, stdout, err = run(
        capsys, "--strategy", "sma_cross", "--data", "GOOG", "--data", "SPY", "--size-pct", "50", "--json",
        "--report", str(out),
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(stdout)  # stdout stays one JSON object; the file is named on stderr
    assert str(out) in err
    page = out.read_text(encoding="utf-8")
    assert "<title>sma_cross on GOOG + SPY</title>" in page
    assert '<svg id="chart-price-1"' in page and '<svg id="chart-price-2"' in page
    assert page.count('class="mk entry ') == len(document["trades"])
    assert '<tr class="win" data-symbol="GOOG">' in page or '<tr class="loss" data-symbol="GOOG">' in page
