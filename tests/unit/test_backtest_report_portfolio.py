"""The portfolio HTML report (`render_portfolio_report`, `tradeflow backtest --data A --data B --report`):
per-symbol figures, one price chart per symbol placed on the shared timeline, the chart cap, symbol
column, escaping, checks on the inputs."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tradeflow.backtest import BacktestConfig, BacktestResult, Ohlcv
from tradeflow.backtest.engine import run_portfolio
from tradeflow.backtest.report import (
    MAX_MARKED_TRADES,
    MAX_PRICE_CHARTS,
    TRADE_ROWS,
    SymbolSummary,
    render_portfolio_report,
    symbol_summaries,
    write_portfolio_report,
)
from tradeflow.backtest.results import Trade
from tradeflow.marketdata import load_dataset
from tradeflow.strategies import create

START = datetime(2020, 1, 1, tzinfo=UTC)
PLOT_LEFT, PLOT_WIDTH = 72, 1200 - 72 - 16


def trade(symbol: str, entry: int, exit: int, pnl: float, side: str = "long") -> Trade:
    return Trade.model_validate(
        {
            "side": side,
            "size": 1.0,
            "entry_bar": entry,
            "exit_bar": exit,
            "entry_time": None,
            "exit_time": None,
            "entry_price": 100.0,
            "exit_price": 100.0 + pnl,
            "commission": 0.0,
            "pnl": pnl,
            "return_pct": pnl,
            "bars_held": exit - entry,
            "exit_reason": "signal",
            "symbol": symbol,
        }
    )


def synthetic(symbol: str, days: list[int], seed: int) -> Ohlcv:
    """A random walk with bars on the given days after START."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days))))
    ts = [START + timedelta(days=d) for d in days]
    return Ohlcv.from_arrays(close, close * 1.01, close * 0.99, close, None, ts, symbol)


def flips(n: int, every: int) -> np.ndarray:
    signals = np.zeros(n, dtype=np.int8)
    signals[::every] = 1
    signals[every // 2 :: every] = -1
    return signals


def svg(page: str, chart_id: str) -> str:
    return page.split(f'<svg id="{chart_id}"', 1)[1].split("</svg>", 1)[0]


def polyline_xs(chart: str) -> list[float]:
    found = re.search(r'class="line price" points="([^"]*)"', chart)
    assert found is not None
    return [float(p.split(",")[0]) for p in found.group(1).split()]


def x_of(index: int, bars: int) -> float:
    return round(PLOT_LEFT + index * PLOT_WIDTH / (bars - 1), 1)


@pytest.fixture(scope="module")
def goog_spy() -> tuple[dict[str, Ohlcv], BacktestResult]:
    series = {s: Ohlcv.from_bars(load_dataset(s)) for s in ("GOOG", "SPY")}
    result = run_portfolio(series, create("sma_cross", {"fast": 10, "slow": 20}), BacktestConfig(size_pct=50))
    return series, result


def test_symbol_summaries_hand_checked() -> None:
    # Timeline of 7 times: A has a bar at every one but the last, B at every other one.
    positions = {"A": [0, 1, 2, 3, 4, 5], "B": [0, 2, 4, 6], "C": [1, 2]}
    trades = [
        trade("A", 1, 3, 30.0),
        trade("B", 2, 6, 20.0),
        trade("A", 3, 4, -10.0, "short"),  # a reversal at bar 3: held bars 1..4 of A, counted once
    ]
    a, b, c = symbol_summaries(trades, positions)
    assert a.exposure_pct == pytest.approx(4 / 6 * 100)  # A's bars 1, 2, 3 and 4 of its 6
    assert a == SymbolSummary("A", bars=6, trades=2, win_rate_pct=50.0, net_pnl=20.0, pnl_share_pct=50.0,
                              exposure_pct=a.exposure_pct)  # fmt: skip
    assert b == SymbolSummary("B", bars=4, trades=1, win_rate_pct=100.0, net_pnl=20.0, pnl_share_pct=50.0,
                              exposure_pct=75.0)  # fmt: skip  # B's bars 2, 4 and 6 of its 4
    assert c == SymbolSummary("C", bars=2, trades=0, win_rate_pct=None, net_pnl=0.0, pnl_share_pct=0.0,
                              exposure_pct=0.0)  # fmt: skip


def test_symbol_summaries_shares_add_up_and_edge_cases() -> None:
    positions = {"A": np.arange(10), "B": np.arange(10)}
    shares = [s.pnl_share_pct for s in symbol_summaries([trade("A", 0, 2, 50.0), trade("B", 3, 5, -20.0)], positions)]
    assert shares == [pytest.approx(50 / 30 * 100), pytest.approx(-20 / 30 * 100)]  # a loser's share is negative
    assert sum(s for s in shares if s is not None) == pytest.approx(100.0)
    even = symbol_summaries([trade("A", 0, 2, 5.0), trade("B", 3, 5, -5.0)], positions)
    assert [s.pnl_share_pct for s in even] == [None, None]  # a flat portfolio has no shares
    assert symbol_summaries([], {"A": []}) == [SymbolSummary("A", 0, 0, None, 0.0, None, 0.0)]
    with pytest.raises(ValueError, match="'Z'"):
        symbol_summaries([trade("Z", 0, 1, 1.0)], positions)


def test_goog_spy_report_has_every_section_a_chart_per_symbol_and_their_trades(
    goog_spy: tuple[dict[str, Ohlcv], BacktestResult],
) -> None:
    series, result = goog_spy
    page = render_portfolio_report(result, series, title="sma_cross on GOOG + SPY", strategy="sma_cross", params={})
    for section in (
        'id="summary"',
        '<svg id="chart-price-1"',
        '<svg id="chart-price-2"',
        '<svg id="chart-equity"',
        '<svg id="chart-drawdown"',
        '<table id="monthly-returns"',
        '<table id="symbols-table"',
        '<table id="metrics-table"',
        '<table id="trades-table"',
        '<table id="settings-table"',
    ):
        assert section in page, section
    assert '<svg id="chart-price"' not in page and '<svg id="chart-price-3"' not in page
    assert "sma_cross on GOOG + SPY · 1993-01-29 to 2021-08-19 · 7,192 bars" in page
    assert "Buy &amp; hold (equal weight)" in page
    counts = {s: sum(t.symbol == s for t in result.trades) for s in ("GOOG", "SPY")}
    assert min(counts.values()) > 10
    for k, symbol in enumerate(("GOOG", "SPY"), start=1):
        chart = svg(page, f"chart-price-{k}")
        assert f'aria-label="{symbol} close price with {counts[symbol]} trades"' in chart
        assert chart.count('class="mk entry ') == chart.count('class="mk exit ') == counts[symbol]
    # The trades table: the first and last TRADE_ROWS trades, each with its symbol.
    assert len(result.trades) > 2 * TRADE_ROWS
    listed = result.trades[:TRADE_ROWS] + result.trades[-TRADE_ROWS:]
    for symbol in ("GOOG", "SPY"):
        assert page.count(f'<td class="symbol">{symbol}</td>') == sum(t.symbol == symbol for t in listed)
    assert "<th>#</th><th>Symbol</th><th>Side</th>" in page
    # The per-symbol table: one row per symbol, P&L shares adding up to 100 %.
    table = page.split('<table id="symbols-table"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'data-symbol="([^"]+)"', table) == ["GOOG", "SPY"]
    shares = [float(v) for v in re.findall(r"<td>([+-][\d.]+) %</td>", table)]
    assert len(shares) == 2 and sum(shares) == pytest.approx(100.0, abs=0.2)
    assert "<tr><th>symbols</th><td>GOOG, SPY</td></tr>" in page
    # Nothing is fetched.
    assert "<script" not in page and not re.search(r"\b(src|href)=", page)
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"] * 4
    assert len(page.encode()) < 400_000


def test_each_symbol_is_drawn_at_its_place_on_the_timeline(goog_spy: tuple[dict[str, Ohlcv], BacktestResult]) -> None:
    series, result = goog_spy
    timeline = result.timestamps
    assert timeline is not None
    page = render_portfolio_report(result, series, title="t", strategy="s", params={})
    goog_ts = series["GOOG"].ts
    assert goog_ts is not None
    first, last = timeline.index(goog_ts[0]), timeline.index(goog_ts[-1])
    assert 0 < first < last < len(timeline) - 1  # GOOG (2004-2013) sits inside SPY's 1993-2021
    xs = polyline_xs(svg(page, "chart-price-1"))
    assert xs[0] == x_of(first, len(timeline)) and xs[-1] == x_of(last, len(timeline))
    xs = polyline_xs(svg(page, "chart-price-2"))
    assert xs[0] == x_of(0, len(timeline)) and xs[-1] == x_of(len(timeline) - 1, len(timeline))


def test_calendars_with_gaps_are_placed_bar_by_bar() -> None:
    weekdays = [d for d in range(200) if d % 7 < 5]
    gappy = [d for d in range(0, 200, 3) if not 60 <= d < 120]  # every third day, and a 60-day hole
    series = {"DAILY": synthetic("DAILY", list(range(200)), 1), "WEEK": synthetic("WEEK", weekdays, 2),
              "GAPPY": synthetic("GAPPY", gappy, 3)}  # fmt: skip
    signals = {s: flips(len(b), 10) for s, b in series.items()}
    result = run_portfolio(series, signals, BacktestConfig(size_pct=30, allow_short=True))
    page = render_portfolio_report(result, series, title="t", strategy="s", params={})
    for k, days in enumerate((list(range(200)), weekdays, gappy), start=1):
        xs = polyline_xs(svg(page, f"chart-price-{k}"))
        assert xs == [x_of(d, 200) for d in days]  # the timeline is the 200 days: day d at index d
    for k, symbol in enumerate(series, start=1):
        chart = svg(page, f"chart-price-{k}")
        assert chart.count('class="mk entry ') == sum(t.symbol == symbol for t in result.trades) > 0


def test_charts_are_capped_with_a_note_and_markers_bounded() -> None:
    n = 4_000
    symbols = [f"S{k:02d}" for k in range(MAX_PRICE_CHARTS + 2)]
    series = {s: synthetic(s, list(range(n)), k) for k, s in enumerate(symbols)}
    result = run_portfolio(series, {s: flips(n, 20) for s in symbols}, BacktestConfig(size_pct=5, allow_short=True))
    assert len(result.trades) > MAX_MARKED_TRADES
    page = render_portfolio_report(result, series, title="t", strategy="s", params={})
    assert re.findall(r'<svg id="chart-price-(\d+)"', page) == [str(k) for k in range(1, MAX_PRICE_CHARTS + 1)]
    assert f"{len(symbols)} symbols: the first {MAX_PRICE_CHARTS} are drawn; S12, S13 are in the tables only." in page
    assert "on 14 symbols" in page
    assert page.count('class="mk entry ') == page.count('class="mk exit ') <= MAX_MARKED_TRADES
    assert "trades in the middle of the run are not marked" in page
    table = page.split('<table id="symbols-table"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'data-symbol="([^"]+)"', table) == symbols  # every symbol in the table
    assert len(page.encode()) < 1_500_000
    for chart in re.findall(r'<svg id="chart-price-\d+".*?</svg>', page):
        assert len(polyline_xs(chart)) <= 4 * PLOT_WIDTH


def test_symbols_are_escaped_and_inputs_checked() -> None:
    series = {"<b>&": synthetic("<b>&", list(range(60)), 1), "Q": synthetic("Q", list(range(10, 60)), 2)}
    result = run_portfolio(series, {s: flips(len(b), 10) for s, b in series.items()})
    page = render_portfolio_report(result, series, title="t", strategy="s", params={})
    assert "<b>&" not in page and "&lt;b&gt;&amp;" in page
    with pytest.raises(ValueError, match="missing"):
        render_portfolio_report(result, {"Q": series["Q"]}, title="t", strategy="s", params={})
    shifted = {**series, "Q": synthetic("Q", [d + 100 for d in range(10, 60)], 2)}
    with pytest.raises(ValueError, match="not on the run's timeline"):
        render_portfolio_report(result, shifted, title="t", strategy="s", params={})
    no_times = result.model_copy(update={"timestamps": None})
    with pytest.raises(ValueError, match="timeline"):
        render_portfolio_report(no_times, series, title="t", strategy="s", params={})


def test_write_portfolio_report_creates_folders(
    goog_spy: tuple[dict[str, Ohlcv], BacktestResult], tmp_path: Path
) -> None:
    series, result = goog_spy
    out = write_portfolio_report(tmp_path / "a" / "b.html", result, series, title="x", strategy="s", params={"k": 1})
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
