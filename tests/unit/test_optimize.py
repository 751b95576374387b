"""Parameter optimisation (issue 3, item 6) and the `tradeflow optimize` command (item 8)."""

from __future__ import annotations

import argparse
import json
from itertools import product

import pytest

from tradeflow.backtest import BacktestConfig, Metrics, Ohlcv
from tradeflow.backtest import optimize_command as command
from tradeflow.backtest.optimize import (
    Evaluation,
    OptimizeError,
    OptimizeSettings,
    ParamRange,
    fold_bounds,
    grid,
    optimize,
    parse_ranges,
    random_sample,
    rank,
)
from tradeflow.marketdata import load_dataset


@pytest.fixture(scope="module")
def goog() -> Ohlcv:
    return Ohlcv.from_bars(load_dataset("GOOG"))


# -- ranges ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        ("fast=5:50:5", tuple(range(5, 51, 5))),
        ("fast=5:52:5", tuple(range(5, 51, 5))),
        ("slow=20,30,50", (20, 30, 50)),
        ("slow=7", (7,)),
        ("k=0.5:2:0.5", (0.5, 1.0, 1.5, 2.0)),
        ("k=0.1:0.3:0.1", (0.1, 0.2, 0.3)),
        ("k=1,2.5", (1, 2.5)),
        ("mode=a,b", ("a", "b")),
    ],
)
def test_range_parsing(spec: str, values: tuple[object, ...]) -> None:
    parsed = ParamRange.parse(spec)
    assert parsed.name == spec.split("=", maxsplit=1)[0] and parsed.values == values
    assert all(type(a) is type(b) for a, b in zip(parsed.values, values, strict=True))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fast", "expected NAME=START:STOP:STEP"),
        ("=1,2", "expected NAME=START:STOP:STEP"),
        ("fast=", "range fast: no values"),
        ("fast=5:50", "range fast: '5:50' must be START:STOP:STEP"),
        ("fast=5:50:0", "range fast: step must be positive"),
        ("fast=5:50:-5", "range fast: step must be positive"),
        ("fast=50:5:5", "range fast: stop 5 is below start 50"),
        ("fast=a:b:1", "range fast: START, STOP and STEP"),
        ("fast=1,,2", "range fast: empty value"),
        ("fast=1,1", "range fast: duplicate values"),
        ("fast=0:1e9:1", "range fast: 1000000001 values"),
        ("fast=1,inf", "range fast: 'inf' is not a finite number"),
        ("2x=1", "'2x' is not a parameter name"),
    ],
)
def test_range_errors_name_the_parameter(spec: str, message: str) -> None:
    with pytest.raises(OptimizeError, match=message.replace("(", r"\(")):
        ParamRange.parse(spec)


def test_a_parameter_given_twice_is_an_error() -> None:
    with pytest.raises(OptimizeError, match="range fast: given more than once"):
        parse_ranges(["fast=1,2", "fast=3"])


# -- search ---------------------------------------------------------------------------------------------


def test_grid_enumerates_the_product_and_skips_invalid_combinations(goog: Ohlcv) -> None:
    ranges = parse_ranges(["fast=5:25:5", "slow=10,20,30"])
    combos = grid(ranges)
    assert combos == [{"fast": f, "slow": s} for f, s in product(range(5, 26, 5), (10, 20, 30))]
    settings = OptimizeSettings(strategy="sma_cross", ranges=ranges, workers=1, top=100)
    result = optimize(goog, settings)
    valid = {(f, s) for f, s in product(range(5, 26, 5), (10, 20, 30)) if f < s}
    assert {(r.params["fast"], r.params["slow"]) for r in result.results} == valid
    assert result.evaluated == len(valid) and result.skipped == 15 - len(valid)
    assert result.skip_example is not None and "fast must be smaller than slow" in result.skip_example


def test_random_search_is_deterministic_per_seed_and_within_ranges() -> None:
    ranges = parse_ranges(["fast=2:60:1", "slow=10:200:5", "atr_period=7,14,21"])
    a, b = random_sample(ranges, 50, seed=1), random_sample(ranges, 50, seed=1)
    assert a == b and a != random_sample(ranges, 50, seed=2)
    assert len(a) == 50 and len({tuple(p.values()) for p in a}) == 50
    for params in a:
        assert list(params) == ["fast", "slow", "atr_period"]
        assert all(params[r.name] in r.values for r in ranges)
    small = parse_ranges(["fast=1,2", "slow=3,4"])
    assert random_sample(small, 10, seed=0) == grid(small)
    with pytest.raises(OptimizeError, match="samples must be at least 1"):
        random_sample(ranges, 0, seed=0)


def test_random_search_end_to_end_is_reproducible(goog: Ohlcv) -> None:
    settings = OptimizeSettings(
        strategy="sma_cross", ranges=parse_ranges(["fast=2:30:1", "slow=10:80:2"]), search="random", samples=12,
        seed=7, workers=1,
    )  # fmt: skip
    first, second = optimize(goog, settings), optimize(goog, settings)
    assert first == second and first.evaluated + first.skipped == 12


def _evaluation(value: float | None, metrics: Metrics) -> Evaluation:
    return Evaluation(params={"v": value}, metrics=metrics.model_copy(update={"sharpe": value}), objective=value)


def test_ranking_is_best_first_with_none_last(goog: Ohlcv) -> None:
    metrics = (
        optimize(goog, OptimizeSettings(strategy="sma_cross", ranges=parse_ranges(["fast=10"]), workers=1))
        .results[0]
        .metrics
    )
    rows = [_evaluation(v, metrics) for v in (0.5, None, 2.0, -1.0, None, 2.0)]
    assert [e.objective for e in rank(rows, "sharpe")] == [2.0, 2.0, 0.5, -1.0, None, None]
    assert [e.objective for e in rank(rows, "volatility_pct")] == [-1.0, 0.5, 2.0, 2.0, None, None]


@pytest.mark.parametrize("objective", ["sharpe", "total_return_pct", "calmar", "max_drawdown_pct"])
def test_results_are_ranked_by_the_objective(goog: Ohlcv, objective: str) -> None:
    settings = OptimizeSettings(
        strategy="sma_cross", ranges=parse_ranges(["fast=5:20:5", "slow=30,60"]), objective=objective, workers=1
    )
    result = optimize(goog, settings)
    values = [getattr(r.metrics, objective) for r in result.results]
    assert values == [r.objective for r in result.results]
    assert values == sorted(values, reverse=True)


def test_unknown_objective_and_parameter_are_errors(goog: Ohlcv) -> None:
    ranges = parse_ranges(["fast=5,10"])
    with pytest.raises(OptimizeError, match="unknown objective 'sharp'; valid: total_return_pct, cagr_pct"):
        optimize(goog, OptimizeSettings(strategy="sma_cross", ranges=ranges, objective="sharp"))
    with pytest.raises(OptimizeError, match="unknown parameter 'fats' for sma_cross; valid parameters: fast, slow"):
        optimize(goog, OptimizeSettings(strategy="sma_cross", ranges=parse_ranges(["fats=5,10"])))
    with pytest.raises(OptimizeError, match="unknown strategy 'nope'"):
        optimize(goog, OptimizeSettings(strategy="nope", ranges=ranges))


def test_parallel_equals_sequential(goog: Ohlcv) -> None:
    ranges = parse_ranges(["fast=3:30:3", "slow=10:60:10"])
    base = {"strategy": "sma_cross", "ranges": ranges, "top": 1000, "folds": 2}
    sequential = optimize(goog, OptimizeSettings(**base, workers=1))
    ticks: list[tuple[int, int]] = []
    parallel = optimize(
        goog, OptimizeSettings(**base, workers=2, chunk_size=7), progress=lambda d, t: ticks.append((d, t))
    )
    assert parallel == sequential and sequential.evaluated > 20
    total = 60 * 3
    assert ticks[-1] == (total, total) and all(t == total for _, t in ticks)
    assert [d for d, _ in ticks] == sorted(d for d, _ in ticks)


# -- walk-forward ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "folds", "pct"), [(2148, 3, 70.0), (1000, 4, 50.0), (103, 5, 80.0), (10, 5, 99.0)])
def test_fold_boundaries(n: int, folds: int, pct: float) -> None:
    bounds = fold_bounds(n, folds, pct)
    assert len(bounds) == folds and bounds[0][0][0] == 0 and bounds[-1][1][1] == n
    previous_end = 0
    for (is_start, is_end), (oos_start, oos_end) in bounds:
        assert is_start == previous_end  # consecutive windows
        assert is_start < is_end == oos_start < oos_end  # out-of-sample follows in-sample, no overlap
        previous_end = oos_end
    size = n // folds
    assert all(b[0][1] - b[0][0] == max(1, min(size - 1, int(size * pct / 100))) for b in bounds[:-1])
    with pytest.raises(OptimizeError, match="need at least"):
        fold_bounds(folds, folds, pct)


def test_walk_forward_reports_each_fold(goog: Ohlcv) -> None:
    settings = OptimizeSettings(
        strategy="sma_cross", ranges=parse_ranges(["fast=5:20:5", "slow=30,50"]), folds=3, in_sample_pct=70,
        workers=1,
    )  # fmt: skip
    result = optimize(goog, settings)
    assert result.walk_forward is not None and len(result.walk_forward) == 3
    for fold in result.walk_forward:
        (a, b), (c, d) = fold.in_sample, fold.out_of_sample
        assert b == c and fold.best_params is not None and fold.in_sample_objective is not None
        assert fold.in_sample_period is not None and fold.out_of_sample_period is not None
        assert fold.in_sample_period[1] < fold.out_of_sample_period[0]
        assert fold.out_of_sample_metrics is not None and fold.out_of_sample_metrics.bars == d - c
        assert fold.out_of_sample_objective == fold.out_of_sample_metrics.sharpe
        # the best in-sample parameters are those of a sweep over the in-sample bars alone
        alone = optimize(
            Ohlcv.from_arrays(goog.open[a:b], goog.high[a:b], goog.low[a:b], goog.close[a:b], goog.volume[a:b],
                              ts=list(goog.ts or [])[a:b]),
            settings.model_copy(update={"folds": None}),
        )  # fmt: skip
        assert alone.results[0].params == fold.best_params
        assert alone.results[0].objective == fold.in_sample_objective


# -- the command ----------------------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="tradeflow")
    command.add_parser(parser.add_subparsers(dest="command", required=True))
    code = command.run(parser.parse_args(["optimize", *args]))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_contract_on_goog(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(
        capsys, "--strategy", "sma_cross", "--data", "GOOG", "--range", "fast=5:15:5", "--range", "slow=10,30",
        "--param", "atr_period=10", "--objective", "total_return_pct", "--commission", "0.002", "--top", "3",
        "--walk-forward", "2", "--workers", "2", "--json",
    )  # fmt: skip
    assert code == 0 and err == ""  # no progress bar when stderr is not a terminal
    doc = json.loads(out)
    assert {"objective", "evaluated", "skipped", "results", "walk_forward"} <= set(doc)
    assert doc["objective"] == "total_return_pct" and doc["evaluated"] == 4 and doc["skipped"] == 2
    assert len(doc["results"]) == 3
    returns = [r["metrics"]["total_return_pct"] for r in doc["results"]]
    assert returns == sorted(returns, reverse=True)
    for row in doc["results"]:
        assert row["params"]["atr_period"] == 10 and row["params"]["fast"] < row["params"]["slow"]
        assert {"sharpe", "cagr_pct", "max_drawdown_pct", "trades", "buy_hold_return_pct"} <= set(row["metrics"])
    assert [f["fold"] for f in doc["walk_forward"]] == [1, 2]
    assert {"best_params", "in_sample_objective", "out_of_sample_objective"} <= set(doc["walk_forward"][0])


def test_text_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--strategy", "sma_cross", "--data", "GOOG", "--range", "fast=5,10", "--range",
                       "slow=20", "--walk-forward", "2", "--workers", "1")  # fmt: skip
    lines = out.splitlines()
    assert code == 0 and "2 evaluated, 0 skipped" in lines[0] and lines[1].split()[:3] == ["#", "params", "sharpe"]
    assert "walk-forward" in out and "fast=" in lines[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give at least one --range"),
        (["--range", "fast=5:1:1"], "range fast: stop 1 is below start 5"),
        (["--range", "fats=5,10"], "unknown parameter 'fats' for sma_cross; valid parameters: fast, slow"),
        (["--range", "fast=5,10", "--objective", "sharp"], "unknown objective 'sharp'"),
        (["--range", "fast=5,10", "--top", "0"], "--top: Input should be greater than or equal to 1"),
        (["--range", "fast=5,10", "--samples", "0"], "--samples: Input should be greater than or equal to 1"),
        (["--range", "fast=5,10", "--in-sample-pct", "100"], "--in-sample-pct: Input should be less than 100"),
        (["--range", "fast=5,10", "--walk-forward", "0"], "--walk-forward: Input should be greater than or equal"),
        (["--range", "fast=5,10", "--size-pct", "0"], "--size-pct: Input should be greater than 0"),
        (["--range", "fast=5,10", "--param", "fast=3"], "parameter 'fast' is both a range and a fixed --param"),
        (["--range", "fast=5,10", "--data", "nope.csv"], "--data nope.csv: neither a shipped dataset"),
    ],
)
def test_bad_input_is_one_line_on_stderr_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    data = [] if "--data" in args else ["--data", "GOOG"]
    code, out, err = cli(capsys, "--strategy", "sma_cross", *data, *args)
    assert code == 2 and out == ""
    assert err.startswith("tradeflow optimize: ") and err.count("\n") == 1 and message in err


def test_settings_default_backtest_config() -> None:
    settings = OptimizeSettings(strategy="sma_cross", ranges=parse_ranges(["fast=5"]))
    assert settings.backtest == BacktestConfig() and settings.objective == "sharpe" and settings.search == "grid"
