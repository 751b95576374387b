"""Smoke test of the backtest benchmark (tradeflow.bench.backtest) on tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest

from tradeflow.bench import backtest as bench
from tradeflow.marketdata import load_dataset


def test_chained_series_continues_each_copy_from_the_previous_close() -> None:
    source = load_dataset("EURUSD")
    data = bench.chained(source, 12_000)
    n = len(source)
    assert len(data) == 12_000
    np.testing.assert_allclose(data.close[:n], [float(b.close) for b in source])
    for seam in (n, 2 * n):
        assert data.open[seam] == pytest.approx(data.close[seam - 1], rel=1e-12)
    # the second copy is the inverse quote: its moves mirror the first copy's
    ratio = data.close[n + 1 : 2 * n] / data.close[n : 2 * n - 1]
    np.testing.assert_allclose(ratio, data.close[0 : n - 1] / data.close[1:n], rtol=1e-9)
    assert (data.high >= data.low).all() and (data.high >= data.close).all() and (data.low <= data.close).all()
    assert data.close.min() > 0.5 and data.close.max() < 2.0  # no drift over the copies


def test_throughput_runs_both_backtesters_with_identical_trades() -> None:
    data = bench.prefix(bench.chained(load_dataset("EURUSD"), 8_000), 6_000)
    row = bench.throughput("tiny", data, runs=1, strict=True, cash=bench.LONG_CASH)
    assert row.identical is None and row.trades > 10
    assert row.ours_rate > 0 and row.theirs_rate is not None and row.theirs_rate > 0
    daily = bench.throughput("GOOG", bench._daily(), runs=1)
    assert daily.identical is None and daily.trades >= 10


def test_a_trade_difference_is_caught() -> None:
    assert bench.compare_trades([(1, 5), (7, 9)], [(1, 5), (7, 9)]) is None
    assert "trade 1" in (bench.compare_trades([(1, 5), (7, 9)], [(1, 5), (7, 10)]) or "")
    assert "count" in (bench.compare_trades([(1, 5)], [(1, 5), (7, 9)]) or "")
    data = bench._daily()
    mine = bench.ours(data)
    theirs = bench.run_reference(bench.reference_backtest(bench.frame(data)), fast=10, slow=21)
    differs = bench.compare_trades(bench.trade_bars(mine), bench.reference_trade_bars(theirs))
    assert differs is not None  # other rules, other trades: the check notices


def test_sweep_and_live_latency_on_tiny_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    sweep = bench.sweep(4, workers=2)
    assert sweep.sets == 4 and sweep.sequential_rate > 0 and sweep.parallel_rate > 0
    latency = bench.live_latency(evaluations=5)
    assert {lat.strategy for lat in latency} >= {"sma_cross"}
    assert all(len(lat.samples_us) == 5 for lat in latency if not lat.skipped)
    row = bench.throughput("GOOG 1d", bench._daily(), runs=1)
    bench.report(bench.BacktestBench([row], sweep, latency, 5))
    out = capsys.readouterr().out
    assert "identical" in out and "sets/s" in out and "sma_cross" in out
