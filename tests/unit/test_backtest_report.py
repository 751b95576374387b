"""The HTML backtest report (`tradeflow.backtest.report`, `tradeflow backtest --report`): monthly returns,
escaping, bounded size on long runs, every section present, one marker per trade, nothing fetched."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tradeflow.backtest import BacktestConfig, BacktestResult, Metrics, Ohlcv, run_backtest
from tradeflow.backtest.report import MAX_MARKED_TRADES, TRADE_ROWS, decimate, monthly_returns, render_report
from tradeflow.cli import main
from tradeflow.marketdata import load_dataset
from tradeflow.strategies import create

SECTIONS = (
    'id="summary"',
    '<svg id="chart-price"',
    '<svg id="chart-equity"',
    '<svg id="chart-drawdown"',
    '<table id="monthly-returns"',
    '<table id="metrics-table"',
    '<table id="trades-table"',
    '<table id="settings-table"',
)


def d(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


@pytest.fixture(scope="module")
def goog() -> tuple[Ohlcv, BacktestResult]:
    bars = Ohlcv.from_bars(load_dataset("GOOG"))
    result = run_backtest(bars, create("sma_cross", {"fast": 10, "slow": 20}), BacktestConfig(allow_short=True))
    return bars, result


def test_monthly_returns_hand_checked() -> None:
    # 2020: Jan ends at 110 (+10 % over the 100 start), Feb at 121 (+10 %), no bar in March, Apr at 108.9
    # (-10 % over Feb's end); the year: 108.9 / 100 - 1 = +8.9 %. 2021: Jan ends at 130.68, +20 % over 108.9.
    times = [d(2020, 1, 15), d(2020, 1, 31), d(2020, 2, 10), d(2020, 2, 28), d(2020, 4, 5), d(2021, 1, 4)]
    equity = [104.0, 110.0, 95.0, 121.0, 108.9, 130.68]
    rows = monthly_returns(times, equity, start_equity=100.0)

    assert [r.year for r in rows] == [2020, 2021]
    jan, feb, mar, apr = rows[0].months[:4]
    assert jan == pytest.approx(10.0) and feb == pytest.approx(10.0) and mar is None and apr == pytest.approx(-10.0)
    assert rows[0].months[4:] == (None,) * 8
    assert rows[0].total == pytest.approx(8.9)
    assert rows[1].months[0] == pytest.approx(20.0) and rows[1].months[1:] == (None,) * 11
    assert rows[1].total == pytest.approx(20.0)
    # The year total compounds its months.
    assert (1 + rows[0].total / 100) == pytest.approx(1.1 * 1.1 * 0.9)


def test_monthly_returns_default_base_is_the_first_bar_and_input_is_checked() -> None:
    rows = monthly_returns([d(2020, 1, 1), d(2020, 1, 2)], [200.0, 220.0])
    assert rows[0].months[0] == pytest.approx(10.0)
    assert monthly_returns([], []) == []
    with pytest.raises(ValueError, match="one equity value per timestamp"):
        monthly_returns([d(2020, 1, 1)], [1.0, 2.0])
    with pytest.raises(ValueError, match="ascending"):
        monthly_returns([d(2020, 2, 1), d(2020, 1, 1)], [1.0, 2.0])


def test_decimate_keeps_first_last_and_extremes_within_four_points_per_column() -> None:
    rng = np.random.default_rng(7)
    values = np.cumsum(rng.normal(size=100_003))
    values[54_321] = 1e6  # a spike must survive
    index = decimate(values, 500)
    assert len(index) <= 4 * 500
    assert (np.diff(index) > 0).all()
    assert {0, len(values) - 1, int(values.argmin()), int(values.argmax())} <= set(index.tolist())
    assert decimate(values[:1000], 500).tolist() == list(range(1000))  # short series: drawn whole


def test_every_section_and_one_marker_per_trade(goog: tuple[Ohlcv, BacktestResult]) -> None:
    bars, result = goog
    page = render_report(result, bars, title="GOOG", strategy="sma_cross", params={"fast": 10, "slow": 20})
    trades = result.trades
    assert len(trades) > 10
    for section in SECTIONS:
        assert section in page, section
    assert page.count('class="mk entry ') == len(trades)
    assert page.count('class="mk exit ') == len(trades)
    assert page.count('class="mk entry long"') == sum(t.side == "long" for t in trades)
    assert page.count('class="mk entry short"') == sum(t.side == "short" for t in trades)
    assert "exit (signal)" in page  # the exit reason is in the marker's tooltip
    # Metrics: every field has a row.
    for name in Metrics.model_fields:
        assert f'data-field="{name}"' in page
    # Monthly table: one row per calendar year of the data, 2004 to 2013.
    assert re.findall(r"<tr><th>(\d{4})</th>", page) == [str(y) for y in range(2004, 2014)]
    assert page.count('<tr class="win">') + page.count('<tr class="loss">') == len(trades)  # all listed


def test_the_page_loads_nothing_from_anywhere(goog: tuple[Ohlcv, BacktestResult]) -> None:
    bars, result = goog
    page = render_report(result, bars, title="t", strategy="s", params={})
    assert "<script" not in page
    assert not re.search(r"\b(src|href)=", page)
    assert "@import" not in page and "url(" not in page
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"] * 3  # SVG namespaces only
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_text_is_escaped(goog: tuple[Ohlcv, BacktestResult]) -> None:
    bars, result = goog
    page = render_report(
        result,
        bars,
        title='<script>alert("t")</script>',
        strategy="a&b<i>",
        params={"note": "</td><b>x</b>"},
    )
    assert "<script>" not in page and "<i>" not in page and "<b>x" not in page
    assert "&lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt;" in page
    assert "a&amp;b&lt;i&gt;" in page
    assert "&lt;/td&gt;&lt;b&gt;x&lt;/b&gt;" in page


def test_a_million_bar_run_gives_a_small_report() -> None:
    n = 1_000_000
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    start = datetime(2000, 1, 1, tzinfo=UTC)
    ts = [start + timedelta(hours=i) for i in range(n)]
    bars = Ohlcv.from_arrays(close, close * 1.001, close * 0.999, close, None, ts, "SYN")
    signals = np.zeros(n, dtype=np.int8)
    signals[::200] = 1
    signals[100::200] = -1  # a reversal every 100 bars: ~10,000 trades
    result = run_backtest(bars, signals, BacktestConfig(allow_short=True))
    assert len(result.trades) > MAX_MARKED_TRADES

    page = render_report(result, bars, title="synthetic", strategy="flip", params={})
    assert len(page.encode()) < 3_000_000
    for section in SECTIONS:
        assert section in page, section
    for chart in ("chart-price", "chart-equity", "chart-drawdown"):
        svg = page.split(f'<svg id="{chart}"', 1)[1].split("</svg>", 1)[0]
        drawn = re.search(r'class="(?:line|area)[^"]*" points="([^"]*)"', svg)
        assert drawn is not None
        assert len(drawn.group(1).split()) <= 4 * 1200 + 2  # decimated to at most 4 points per pixel column
    assert page.count('class="mk entry ') == page.count('class="mk exit ') == MAX_MARKED_TRADES
    assert f"{len(result.trades) - MAX_MARKED_TRADES:,} trades in the middle of the run are not marked" in page
    assert page.count('<tr class="win">') + page.count('<tr class="loss">') == 2 * TRADE_ROWS
    assert f"the first and last {TRADE_ROWS} are listed" in page


def test_bars_without_times_still_render() -> None:
    close = np.linspace(100.0, 120.0, 300) + np.sin(np.arange(300) / 5.0)
    bars = Ohlcv.from_arrays(close, close + 1, close - 1, close)
    signals = np.zeros(300, dtype=np.int8)
    signals[[10, 100, 200]] = [1, -1, 1]
    result = run_backtest(bars, signals)
    page = render_report(result, bars, title="t", strategy="s", params={})
    assert "The bars carry no times, so there are no months." in page
    assert "bar 0" in page and page.count('class="mk entry ') == len(result.trades) == 2


def test_bars_and_result_must_match(goog: tuple[Ohlcv, BacktestResult]) -> None:
    bars, result = goog
    short = Ohlcv.from_arrays(bars.close[:10], bars.high[:10], bars.low[:10], bars.close[:10])
    with pytest.raises(ValueError, match="equity points"):
        render_report(result, short, title="t", strategy="s", params={})


def test_cli_report_keeps_stdout_one_json_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nested" / "report.html"
    code = main(["backtest", "--strategy", "sma_cross", "--data", "GOOG", "--json", "--report", str(out)])
    captured = capsys.readouterr()
    assert code == 0
    document = json.loads(captured.out)  # stdout is exactly one JSON object
    assert str(out) in captured.err
    page = out.read_text(encoding="utf-8")
    assert page.count('class="mk entry ') == len(document["trades"])
    assert "<title>sma_cross on GOOG</title>" in page

    code = main(["backtest", "--strategy", "sma_cross", "--data", "GOOG", "--report", str(out)])
    assert code == 0 and f"report written to {out}" in capsys.readouterr().out
