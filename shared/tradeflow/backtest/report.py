"""A backtest as one self-contained HTML page: charts, monthly returns, metrics, trades and settings.

`tradeflow backtest --report out.html` calls `write_report`; code can call `render_report` to get the page
as a string. What the page holds, top to bottom: headline figures; the close price with every trade's
entry (triangle: up = long, down = short) and exit (circle, coloured by exit reason; hover any marker
for the trade's details); the equity curve; the drawdown; monthly returns (year rows x month columns
plus the year, colour-coded); every `Metrics` field; the trades; the run's settings.

A `run_portfolio` run has its own page (`render_portfolio_report`, `write_portfolio_report`): the same
sections over the run's timeline (the union of the symbols' bar times), with one price chart per symbol
(its closes at their places on the timeline, so gaps and other calendars line up with the equity; its
trades marked; the first `MAX_PRICE_CHARTS` symbols), a per-symbol table (`symbol_summaries`: trades,
win rate, net P&L, share of the P&L, exposure) and a symbol column in the trades table.

Self-contained means nothing is fetched when the page is viewed: no script, font, stylesheet or image
comes from the network. Charts are inline SVG drawn here in Python (numpy only), tooltips are SVG
`<title>` elements, styling is one inline `<style>`, and a Content-Security-Policy meta tag forbids any
load the page might otherwise attempt. It opens offline in any browser and can be archived as a CI
artifact or mailed as one file. All text taken from the run (title, strategy, parameters, symbol) is
HTML-escaped.

Size stays bounded for long runs (a 1,000,000-bar run with 10,000+ trades gives about 1 MB):
- Line series are decimated per pixel column (`decimate`): the bars are split into one bucket per
  horizontal pixel of the plot and only each bucket's first, lowest, highest and last points are drawn
  (at most 4 per column). The drawn line covers exactly the same min/max envelope as drawing every bar,
  so spikes and crashes stay visible; a short series is drawn in full.
- Trade markers are drawn for at most `MAX_MARKED_TRADES` trades (the first and last halves of the
  list; in a portfolio, of all symbols' trades together); the trades table lists the first and last
  `TRADE_ROWS` trades. A note says when any are left off.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tradeflow.backtest.data import Ohlcv
from tradeflow.backtest.results import BacktestResult, Metrics, Trade

MAX_MARKED_TRADES = 2_000
"""Trades drawn on the price chart at most (first and last halves); more would only bloat the page."""
TRADE_ROWS = 100
"""Rows of the trades table at each end (first N, last N) when there are more than 2N trades."""
MAX_PRICE_CHARTS = 12
"""Symbols of a portfolio report drawn as price charts at most (the first ones, in the run's order)."""

# Chart geometry, in SVG user units (the SVGs scale to the page width).
_WIDTH = 1200
_LEFT, _RIGHT, _TOP, _BOTTOM = 72, 16, 12, 26
_PLOT_WIDTH = _WIDTH - _LEFT - _RIGHT

_LONG, _SHORT = "#16a34a", "#dc2626"
_EXIT_COLOURS = {
    "signal": "#334155",
    "stop_loss": "#ea580c",
    "trailing_stop": "#ca8a04",
    "take_profit": "#2563eb",
    "max_holding": "#0891b2",
    "end_of_data": "#9333ea",
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --- monthly returns --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthlyRow:
    """One year of monthly returns, in percent. `months[0]` is January; None where the run has no bar."""

    year: int
    months: tuple[float | None, ...]
    total: float


def monthly_returns(
    timestamps: Sequence[datetime], equity: Sequence[float] | npt.ArrayLike, start_equity: float | None = None
) -> list[MonthlyRow]:
    """Monthly and yearly returns (percent) from an equity curve marked once per bar.

    A month's return is its last bar's equity over the previous month's last bar's equity, minus one; the
    first month is measured from `start_equity` (the equity before the first bar, e.g. the starting cash;
    default: the first bar's equity). A year's total is its last month-end over the previous year's, so
    it compounds the months. Months without a bar are None (and do not break the chain: the next month is
    measured from the last month-end there was).
    """
    values = np.asarray(equity, dtype=float)
    if values.ndim != 1 or values.shape[0] != len(timestamps):
        raise ValueError("expected one equity value per timestamp")
    if values.shape[0] == 0:
        return []
    keys = np.fromiter((t.year * 12 + t.month - 1 for t in timestamps), dtype=np.int64, count=len(timestamps))
    if (np.diff(keys) < 0).any():
        raise ValueError("timestamps must be in ascending order")
    ends = np.flatnonzero(np.append(np.diff(keys) != 0, True))  # last bar of each month
    base = float(values[0] if start_equity is None else start_equity)
    by_year: dict[int, list[float | None]] = {}
    year_base: dict[int, float] = {}
    year_end: dict[int, float] = {}
    for index in ends:
        year, month = divmod(int(keys[index]), 12)
        close = float(values[index])
        row = by_year.setdefault(year, [None] * 12)
        year_base.setdefault(year, base)
        row[month] = (close / base - 1.0) * 100.0
        year_end[year] = close
        base = close
    return [
        MonthlyRow(year, tuple(row), (year_end[year] / year_base[year] - 1.0) * 100.0)
        for year, row in sorted(by_year.items())
    ]


# --- downsampling -----------------------------------------------------------------------------------


def decimate(values: npt.ArrayLike, columns: int) -> npt.NDArray[np.intp]:
    """Indexes of the points worth drawing when `values` is plotted `columns` pixels wide.

    Min/max decimation: the points are cut into `columns` consecutive buckets and each bucket keeps its
    first, lowest, highest and last point, in order. At most `4 * columns` indexes come back, and the
    drawn line looks the same as the full one at that width. Series of up to `4 * columns` points are
    returned whole.
    """
    data = np.asarray(values, dtype=float)
    n = data.shape[0]
    if columns < 1:
        raise ValueError("columns must be at least 1")
    if n <= 4 * columns:
        return np.arange(n)
    size = -(-n // columns)  # bars per bucket, rounded up
    buckets = -(-n // size)
    padded = np.full(buckets * size, data[-1])
    padded[:n] = data
    grid = padded.reshape(buckets, size)
    starts = np.arange(buckets) * size
    lows = starts + grid.argmin(axis=1)
    highs = starts + grid.argmax(axis=1)
    lasts = starts + size - 1
    picked = np.concatenate([starts, lows, highs, lasts])
    return np.unique(np.minimum(picked, n - 1))


# --- SVG helpers ------------------------------------------------------------------------------------


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi], about `count` of them."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        value += step
    return ticks


def _tick_label(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{value:,.{min(decimals, 6)}f}"


def _time_format(times: Sequence[datetime]) -> str:
    """Date only when every bar opens at midnight (daily bars and slower), else date and time."""
    step = max(1, len(times) // 500)  # a sample is enough to tell
    midnight = all((t.hour, t.minute, t.second) == (0, 0, 0) for t in times[::step])
    return "%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class _Frame:
    """The x scale (bar index -> SVG x) shared by the three charts, with the time axis labels."""

    bars: int
    times: Sequence[datetime] | None
    time_format: str

    def x(self, index: float | npt.NDArray[Any]) -> Any:
        span = max(self.bars - 1, 1)
        return _LEFT + np.asarray(index, dtype=float) * (_PLOT_WIDTH / span)

    def label(self, index: int) -> str:
        if self.times is None:
            return f"bar {index:,}"
        return self.times[index].strftime(self.time_format)

    def axis(self, height: int) -> str:
        parts = []
        count = min(8, self.bars)
        for k in range(count):
            index = round(k * (self.bars - 1) / max(count - 1, 1))
            x = float(self.x(index))
            anchor = "start" if k == 0 else ("end" if k == count - 1 else "middle")
            parts.append(f'<line class="grid" x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{height - _BOTTOM}"/>')
            label = self.label(index)
            if self.times is not None and self.times[-1] - self.times[0] > timedelta(days=60):
                label = label.split(" ")[0]  # over months, the time of day is noise on the axis
            y = height - _BOTTOM + 16
            parts.append(f'<text class="tick" x="{x:.1f}" y="{y}" text-anchor="{anchor}">{_esc(label)}</text>')
        return "".join(parts)


@dataclass(frozen=True)
class _YScale:
    lo: float
    hi: float
    height: int

    @classmethod
    def around(cls, values: npt.NDArray[np.float64], height: int, *, include_zero: bool = False) -> _YScale:
        lo, hi = float(np.min(values)), float(np.max(values))
        if include_zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
        return cls(lo - pad if not (include_zero and lo == 0.0) else lo, hi + pad, height)

    def y(self, value: float | npt.NDArray[Any]) -> Any:
        inner = self.height - _TOP - _BOTTOM
        return _TOP + (self.hi - np.asarray(value, dtype=float)) * (inner / (self.hi - self.lo))

    def axis(self, suffix: str = "") -> str:
        ticks = _nice_ticks(self.lo, self.hi)
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        parts = []
        for value in ticks:
            y = float(self.y(value))
            parts.append(f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}"/>')
            parts.append(
                f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                f"{_esc(_tick_label(value, step) + suffix)}</text>"
            )
        return "".join(parts)


def _points(
    frame: _Frame, scale: _YScale, values: npt.NDArray[np.float64], positions: npt.NDArray[np.intp] | None = None
) -> list[str]:
    """SVG points of `values`, decimated; `positions` places value i at frame index `positions[i]`
    (default: at index i), e.g. one symbol's closes on a portfolio's timeline."""
    index = decimate(values, _PLOT_WIDTH)
    xs, ys = frame.x(index if positions is None else positions[index]), scale.y(values[index])
    return [f"{x:.1f},{y:.1f}" for x, y in zip(xs.tolist(), ys.tolist(), strict=True)]


def _svg(chart_id: str, height: int, label: str, body: Iterable[str]) -> str:
    return (
        f'<svg id="{chart_id}" class="chart" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="{_esc(label)}" xmlns="http://www.w3.org/2000/svg">{"".join(body)}</svg>'
    )


# --- charts -----------------------------------------------------------------------------------------


def _marked(trades: Sequence[Trade]) -> tuple[list[tuple[int, Trade]], int]:
    """(number, trade) pairs to draw on the price chart, and how many were left off."""
    numbered = list(enumerate(trades, start=1))
    if len(numbered) <= MAX_MARKED_TRADES:
        return numbered, 0
    half = MAX_MARKED_TRADES // 2
    return numbered[:half] + numbered[-half:], len(numbered) - 2 * half


def _price_chart(
    frame: _Frame,
    close: npt.NDArray[np.float64],
    marked: Sequence[tuple[int, Trade]],
    *,
    label: str,
    positions: npt.NDArray[np.intp] | None = None,
    chart_id: str = "chart-price",
) -> str:
    """One symbol's close line with its `marked` trades. `positions` are the closes' indexes on the
    frame (a portfolio's timeline, where the symbol may have gaps); default: close i at index i."""
    height = 360
    prices = [close] + [np.array([t.entry_price, t.exit_price]) for _, t in marked]
    scale = _YScale.around(np.concatenate(prices), height)
    body = [scale.axis(), frame.axis(height)]
    body.append(f'<polyline class="line price" points="{" ".join(_points(frame, scale, close, positions))}"/>')
    lines, markers = [], []
    for number, trade in marked:
        x1, x2 = float(frame.x(trade.entry_bar)), float(frame.x(trade.exit_bar))
        y1, y2 = float(scale.y(trade.entry_price)), float(scale.y(trade.exit_price))
        outcome = "win" if trade.pnl > 0 else "loss"
        lines.append(f'<line class="tl {outcome}" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"/>')
        entry_tip = f"#{number} {trade.side} entry {_when(frame, trade.entry_bar)} @ {trade.entry_price:,.4f}"
        shape = f"M{x1:.1f},{y1 - 1:.1f}l-5,9h10z" if trade.side == "long" else f"M{x1:.1f},{y1 + 1:.1f}l-5,-9h10z"
        markers.append(f'<path class="mk entry {trade.side}" d="{shape}"><title>{_esc(entry_tip)}</title></path>')
        exit_tip = (
            f"#{number} {trade.side} exit ({trade.exit_reason}) {_when(frame, trade.exit_bar)} @ "
            f"{trade.exit_price:,.4f}; P&L {trade.pnl:+,.2f} ({trade.return_pct:+.2f} %), {trade.bars_held} bars"
        )
        markers.append(
            f'<circle class="mk exit {trade.exit_reason}" cx="{x2:.1f}" cy="{y2:.1f}" r="3.5">'
            f"<title>{_esc(exit_tip)}</title></circle>"
        )
    body += lines + markers
    return _svg(chart_id, height, label, body)


def _when(frame: _Frame, index: int) -> str:
    if frame.times is None or not 0 <= index < frame.bars:
        return f"bar {index:,}"
    return frame.label(index)


def _equity_chart(frame: _Frame, equity: npt.NDArray[np.float64], cash: float) -> str:
    height = 240
    scale = _YScale.around(np.append(equity, cash), height)
    body = [scale.axis(), frame.axis(height)]
    y = float(scale.y(cash))
    body.append(f'<line class="base" x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}"/>')
    body.append(f'<polyline class="line equity" points="{" ".join(_points(frame, scale, equity))}"/>')
    return _svg("chart-equity", height, "equity curve", body)


def _drawdown_chart(frame: _Frame, drawdown: npt.NDArray[np.float64]) -> str:
    height = 170
    scale = _YScale.around(drawdown, height, include_zero=True)
    body = [scale.axis(" %"), frame.axis(height)]
    points = _points(frame, scale, drawdown)
    zero = float(scale.y(0.0))
    first_x, last_x = points[0].split(",")[0], points[-1].split(",")[0]
    area = f"{first_x},{zero:.1f} {' '.join(points)} {last_x},{zero:.1f}"
    body.append(f'<polygon class="area drawdown" points="{area}"/>')
    return _svg("chart-drawdown", height, "drawdown in percent", body)


# --- tables -----------------------------------------------------------------------------------------


def _cell_colour(value: float) -> str:
    strength = min(abs(value) / 10.0, 1.0) * 0.75 + 0.08  # 10 % or more: full colour
    rgb = "22,163,74" if value >= 0 else "220,38,38"
    return f"background:rgba({rgb},{strength:.2f})"


def _monthly_table(rows: Sequence[MonthlyRow]) -> str:
    head = "".join(f"<th>{m}</th>" for m in _MONTHS)
    out = [
        f'<table id="monthly-returns" class="monthly"><thead><tr><th>Year</th>{head}<th>Year</th></tr></thead><tbody>'
    ]
    for row in rows:
        cells = []
        for value in row.months:
            if value is None:
                cells.append('<td class="empty"></td>')
            else:
                cells.append(f'<td style="{_cell_colour(value)}">{value:+.1f}</td>')
        total = f'<td class="total" style="{_cell_colour(row.total)}">{row.total:+.1f}</td>'
        out.append(f"<tr><th>{row.year}</th>{''.join(cells)}{total}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _format_metric(name: str, value: object) -> str:
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if name.endswith("_pct"):
            return f"{value:,.2f} %"
        if name == "final_equity":
            return f"{value:,.2f}"
        return f"{value:,.3f}"
    return str(value)


def _metric_label(name: str) -> str:
    words = name.removesuffix("_pct").replace("_", " ")
    labels = {
        "cagr": "CAGR",
        "sharpe": "Sharpe ratio",
        "sortino": "Sortino ratio",
        "calmar": "Calmar ratio",
        "buy hold return": "Buy & hold return",
        "max drawdown duration bars": "Max drawdown duration (bars)",
    }
    return labels.get(words, words[:1].upper() + words[1:])


def _metrics_table(metrics: Metrics) -> str:
    rows = "".join(
        f'<tr><th>{_esc(_metric_label(name))}</th><td data-field="{_esc(name)}">'
        f"{_esc(_format_metric(name, getattr(metrics, name)))}</td></tr>"
        for name in Metrics.model_fields
    )
    return f'<table id="metrics-table" class="kv">{rows}</table>'


def _trades_table(trades: Sequence[Trade], frame: _Frame, *, with_symbol: bool = False) -> str:
    numbered: list[tuple[int, Trade | None]] = list(enumerate(trades, start=1))
    note = ""
    if len(numbered) > 2 * TRADE_ROWS:
        left_off = len(numbered) - 2 * TRADE_ROWS
        note = (
            f'<p class="note">{len(numbered):,} trades: the first and last {TRADE_ROWS} are listed, '
            f"{left_off:,} in between are left off.</p>"
        )
        numbered = [*numbered[:TRADE_ROWS], (0, None), *numbered[-TRADE_ROWS:]]
    symbol_head = "<th>Symbol</th>" if with_symbol else ""
    columns = 12 if with_symbol else 11
    head = (
        f"<tr><th>#</th>{symbol_head}<th>Side</th><th>Entry time</th><th>Entry price</th><th>Exit time</th>"
        "<th>Exit price</th>"
        "<th>Size</th><th>Bars</th><th>P&amp;L</th><th>Return</th><th>Exit reason</th></tr>"
    )
    rows = []
    for number, trade in numbered:
        if trade is None:
            rows.append(f'<tr class="gap"><td colspan="{columns}">…</td></tr>')
            continue
        outcome = "win" if trade.pnl > 0 else "loss"
        symbol = f'<td class="symbol">{_esc(trade.symbol or "")}</td>' if with_symbol else ""
        rows.append(
            f'<tr class="{outcome}"><td>{number}</td>{symbol}<td class="{trade.side}">{trade.side}</td>'
            f"<td>{_esc(_trade_time(trade.entry_time, trade.entry_bar, frame))}</td><td>{trade.entry_price:,.4f}</td>"
            f"<td>{_esc(_trade_time(trade.exit_time, trade.exit_bar, frame))}</td><td>{trade.exit_price:,.4f}</td>"
            f"<td>{trade.size:,.4g}</td><td>{trade.bars_held:,}</td><td>{trade.pnl:+,.2f}</td>"
            f"<td>{trade.return_pct:+.2f} %</td><td>{_esc(trade.exit_reason)}</td></tr>"
        )
    if not trades:
        rows.append(f'<tr><td colspan="{columns}">No trades.</td></tr>')
    return f'{note}<table id="trades-table" class="trades"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _trade_time(when: datetime | None, index: int, frame: _Frame) -> str:
    return when.strftime(frame.time_format) if when is not None else _when(frame, index)


def _settings_table(
    result: BacktestResult, subject: tuple[str, str], strategy: str, params: Mapping[str, Any], frame: _Frame
) -> str:
    """The run's settings; `subject` is the ("symbol", ...) or ("symbols", ...) row."""
    rows: list[tuple[str, str]] = [
        ("strategy", strategy),
        ("params", json.dumps(dict(params), sort_keys=True, default=str) if params else "(defaults)"),
        subject,
        ("bars", f"{frame.bars:,}"),
        ("from", frame.label(0)),
        ("to", frame.label(frame.bars - 1)),
    ]
    for name, value in result.config.model_dump(mode="json").items():
        rows.append((name, "\u2013" if value is None else str(value)))
    body = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    return f'<table id="settings-table" class="kv">{body}</table>'


def _legend() -> str:
    items = [
        f'<span><svg viewBox="0 0 12 12"><path d="M6,1l-5,9h10z" fill="{_LONG}"/></svg>long entry</span>',
        f'<span><svg viewBox="0 0 12 12"><path d="M6,11l-5,-9h10z" fill="{_SHORT}"/></svg>short entry</span>',
    ]
    for reason, colour in _EXIT_COLOURS.items():
        items.append(
            f'<span><svg viewBox="0 0 12 12"><circle cx="6" cy="6" r="4" fill="{colour}"/></svg>'
            f"exit: {reason.replace('_', ' ')}</span>"
        )
    items.append("<span>(hover a marker for the trade)</span>")
    return f'<div class="legend">{"".join(items)}</div>'


_STYLE = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#0f172a;
 margin:0 auto;max-width:1240px;padding:16px 20px 40px;background:#fff}
h1{font-size:22px;margin:4px 0}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
.sub,.note,footer{color:#475569}.note{font-size:13px}
.headline{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.headline div{border:1px solid #e2e8f0;border-radius:6px;padding:8px 12px;min-width:140px}
.headline b{display:block;font-size:18px}
svg.chart{width:100%;height:auto;display:block;background:#fff}
.grid{stroke:#e2e8f0;stroke-width:1}.tick{font-size:11px;fill:#64748b}
.line{fill:none;stroke-width:1.3;stroke-linejoin:round}.price{stroke:#475569}.equity{stroke:#2563eb}
.base{stroke:#94a3b8;stroke-dasharray:4 3}
.area.drawdown{fill:rgba(220,38,38,.25);stroke:#dc2626;stroke-width:1}
.tl{stroke-width:1;opacity:.55}.tl.win{stroke:#16a34a}.tl.loss{stroke:#dc2626}
.mk{stroke:#fff;stroke-width:.8}.mk.entry.long{fill:#16a34a}.mk.entry.short{fill:#dc2626}
.mk.exit.signal{fill:#334155}.mk.exit.stop_loss{fill:#ea580c}.mk.exit.take_profit{fill:#2563eb}
.mk.exit.end_of_data{fill:#9333ea}.mk.exit.trailing_stop{fill:#ca8a04}.mk.exit.max_holding{fill:#0891b2}
h3{font-size:14px;margin:16px 0 2px}
table.symbols tbody th{text-align:left}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;color:#334155;margin:4px 0 0 72px}
.legend svg{width:12px;height:12px;vertical-align:-1px;margin-right:4px}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border:1px solid #e2e8f0;text-align:right}
th{background:#f8fafc;font-weight:600}
table.kv th{text-align:left}table.kv td{text-align:left}
table.monthly td{min-width:52px}table.monthly td.total{font-weight:600}
table.trades td.long{color:#16a34a}table.trades td.short{color:#dc2626}
table.trades tr.gap td{text-align:center;color:#64748b}
.cols{display:flex;flex-wrap:wrap;gap:32px;align-items:flex-start}
footer{margin-top:32px;font-size:12px}
"""


def _page(
    result: BacktestResult,
    frame: _Frame,
    *,
    title: str,
    subtitle: str,
    buy_hold: str,
    price: Sequence[str],
    symbols: Sequence[str],
    settings: str,
    trades: str,
) -> str:
    """The document around the run's own parts: `price` (the price section's contents), `symbols` (an
    optional section before the metrics), `settings` and `trades` (tables)."""
    n = frame.bars
    times = frame.times
    equity = np.asarray(result.equity_curve, dtype=float)
    drawdown = np.asarray(result.drawdown_pct, dtype=float)
    metrics = result.metrics
    headline = [
        ("Total return", _format_metric("total_return_pct", metrics.total_return_pct)),
        (buy_hold, _format_metric("buy_hold_return_pct", metrics.buy_hold_return_pct)),
        ("Max drawdown", _format_metric("max_drawdown_pct", metrics.max_drawdown_pct)),
        ("Sharpe", _format_metric("sharpe", metrics.sharpe)),
        ("Trades", _format_metric("trades", metrics.trades)),
        ("Final equity", _format_metric("final_equity", metrics.final_equity)),
    ]
    if times:
        monthly = _monthly_table(monthly_returns(times, equity, result.config.cash))
        monthly_note = (
            "<p class=\"note\">Equity at each month's last bar over the previous month's (the first month: over "
            "the starting cash); the year column compounds its months.</p>"
        )
    else:
        monthly, monthly_note = "", '<p class="note">The bars carry no times, so there are no months.</p>'
    decimation = (
        f"Charts draw at most 4 points per pixel column (first, min, max and last bar of each column; "
        f"{_PLOT_WIDTH} columns), so they keep every spike of the {n:,} bars."
        if n > 4 * _PLOT_WIDTH
        else "Charts draw every bar."
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Nothing may be loaded from anywhere: the page is complete as it is.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="tradeflow backtest report">',
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>",
        f'<header><h1>{_esc(title)}</h1><p class="sub">{_esc(subtitle)}</p></header>',
        '<section id="summary" class="headline">',
        *(f"<div>{_esc(label)}<b>{_esc(value)}</b></div>" for label, value in headline),
        "</section>",
        '<section id="price"><h2>Price and trades</h2>',
        *price,
        "</section>",
        '<section id="equity"><h2>Equity</h2>',
        _equity_chart(frame, equity, result.config.cash),
        '<p class="note">Marked at every bar\'s close; the dashed line is the starting cash.</p></section>',
        '<section id="drawdown"><h2>Drawdown (%)</h2>',
        _drawdown_chart(frame, drawdown),
        "</section>",
        '<section id="monthly"><h2>Monthly returns (%)</h2>',
        monthly,
        monthly_note,
        "</section>",
        *symbols,
        '<div class="cols"><section id="metrics"><h2>Metrics</h2>',
        _metrics_table(metrics),
        "</section>",
        '<section id="settings"><h2>Run settings</h2>',
        settings,
        "</section></div>",
        '<section id="trades"><h2>Trades</h2>',
        trades,
        "</section>",
        f"<footer>{_esc(decimation)} Generated by tradeflow; the page loads nothing from the network.</footer>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _marker_note(unmarked: int) -> str:
    if not unmarked:
        return ""
    return (
        f'<p class="note">{unmarked:,} trades in the middle of the run are not marked (the first and last '
        f"{MAX_MARKED_TRADES // 2:,} are).</p>"
    )


def render_report(result: BacktestResult, bars: Ohlcv, *, title: str, strategy: str, params: Mapping[str, Any]) -> str:
    """The report of one backtest run over `bars` (the same bars the run used) as one HTML document."""
    n = len(bars)
    if len(result.equity_curve) != n or len(result.drawdown_pct) != n:
        raise ValueError(f"the result has {len(result.equity_curve)} equity points for {n} bars")
    times: Sequence[datetime] | None = bars.ts if bars.ts is not None else result.timestamps
    frame = _Frame(n, times, _time_format(times) if times else "%Y-%m-%d")
    marked, unmarked = _marked(result.trades)
    period = f"{frame.label(0)} to {frame.label(n - 1)}"
    label = f"{bars.symbol} close price with {len(result.trades)} trades"
    return _page(
        result,
        frame,
        title=title,
        subtitle=f"{strategy} on {bars.symbol} · {period} · {n:,} bars · {len(result.trades):,} trades",
        buy_hold="Buy & hold",
        price=[_price_chart(frame, bars.close, marked, label=label), _legend(), _marker_note(unmarked)],
        symbols=[],
        settings=_settings_table(result, ("symbol", bars.symbol), strategy, params, frame),
        trades=_trades_table(result.trades, frame),
    )


# --- portfolio --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SymbolSummary:
    """One symbol's share of a portfolio run. `pnl_share_pct` is its net P&L over the portfolio's (all
    trades' net P&L; the shares add up to 100, and a losing symbol in a winning run has a negative one;
    None when the portfolio's net P&L is 0). `exposure_pct` is the share of the symbol's own bars spent
    in a position (entry bar to exit bar, as the run's exposure counts)."""

    symbol: str
    bars: int
    trades: int
    win_rate_pct: float | None
    net_pnl: float
    pnl_share_pct: float | None
    exposure_pct: float


def symbol_summaries(trades: Sequence[Trade], positions: Mapping[str, npt.ArrayLike]) -> list[SymbolSummary]:
    """Per-symbol figures of a portfolio run, in the order of `positions`: each symbol's bar indexes on
    the run's timeline (ascending), against which the trades' `entry_bar`/`exit_bar` are read. A trade
    of a symbol not in `positions` is an error."""
    by_symbol: dict[str, list[Trade]] = {symbol: [] for symbol in positions}
    for trade in trades:
        if trade.symbol not in by_symbol:
            raise ValueError(f"a trade of {trade.symbol!r}, which is not one of the symbols")
        by_symbol[trade.symbol].append(trade)
    total = math.fsum(t.pnl for t in trades)
    out = []
    for symbol, own in by_symbol.items():
        bars = np.asarray(positions[symbol], dtype=np.intp)
        held = np.zeros(bars.shape[0], dtype=bool)
        for trade in own:
            lo = int(np.searchsorted(bars, trade.entry_bar, side="left"))
            hi = int(np.searchsorted(bars, trade.exit_bar, side="right"))
            held[lo:hi] = True
        net = math.fsum(t.pnl for t in own)
        out.append(
            SymbolSummary(
                symbol=symbol,
                bars=int(bars.shape[0]),
                trades=len(own),
                win_rate_pct=sum(t.pnl > 0 for t in own) / len(own) * 100.0 if own else None,
                net_pnl=net,
                pnl_share_pct=net / total * 100.0 if total else None,
                exposure_pct=float(held.mean() * 100.0) if held.size else 0.0,
            )
        )
    return out


def _symbols_table(rows: Sequence[SymbolSummary]) -> str:
    head = (
        "<tr><th>Symbol</th><th>Bars</th><th>Trades</th><th>Win rate</th><th>Net P&amp;L</th>"
        "<th>P&amp;L share</th><th>Exposure</th></tr>"
    )
    body = []
    for row in rows:
        win_rate = "\u2013" if row.win_rate_pct is None else f"{row.win_rate_pct:.1f} %"
        share = "\u2013" if row.pnl_share_pct is None else f"{row.pnl_share_pct:+.1f} %"
        outcome = "win" if row.net_pnl > 0 else ("loss" if row.net_pnl < 0 else "flat")
        body.append(
            f'<tr class="{outcome}" data-symbol="{_esc(row.symbol)}"><th>{_esc(row.symbol)}</th><td>{row.bars:,}</td>'
            f"<td>{row.trades:,}</td><td>{win_rate}</td><td>{row.net_pnl:+,.2f}</td><td>{share}</td>"
            f"<td>{row.exposure_pct:.1f} %</td></tr>"
        )
    return f'<table id="symbols-table" class="symbols"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def _timeline_positions(result: BacktestResult, series: Mapping[str, Ohlcv]) -> dict[str, npt.NDArray[np.intp]]:
    """Each symbol's bar indexes on the run's timeline, in the run's symbol order; checks that `series`
    are the run's symbols and bars."""
    timeline = result.timestamps
    if timeline is None:
        raise ValueError("a portfolio result carries its timeline (timestamps); this one has none")
    symbols = result.symbols or list(series)
    missing = [s for s in symbols if s not in series]
    extra = [s for s in series if s not in symbols]
    if missing or extra:
        raise ValueError(f"series and run differ: missing {missing}, not in the run {extra}")
    index = {t: k for k, t in enumerate(timeline)}
    positions = {}
    for symbol in symbols:
        ts = series[symbol].ts
        if ts is None:
            raise ValueError(f"{symbol}: a portfolio's bars need times")
        try:
            positions[symbol] = np.fromiter((index[t] for t in ts), dtype=np.intp, count=len(ts))
        except KeyError as exc:
            raise ValueError(f"{symbol}: bar time {exc.args[0]} is not on the run's timeline") from None
    return positions


def render_portfolio_report(
    result: BacktestResult, series: Mapping[str, Ohlcv], *, title: str, strategy: str, params: Mapping[str, Any]
) -> str:
    """The report of a `run_portfolio` run over `series` (symbol -> the bars the run used) as one HTML
    document: the single-symbol report's sections over the run's timeline, one price chart per symbol
    (its closes at their places on the timeline, its trades marked; at most `MAX_PRICE_CHARTS`), a
    per-symbol table (`symbol_summaries`) and a symbol column in the trades table."""
    positions = _timeline_positions(result, series)
    timeline = result.timestamps or []
    n = len(timeline)
    if len(result.equity_curve) != n or len(result.drawdown_pct) != n:
        raise ValueError(f"the result has {len(result.equity_curve)} equity points for a {n}-time timeline")
    frame = _Frame(n, timeline, _time_format(timeline))
    summaries = symbol_summaries(result.trades, positions)
    marked, unmarked = _marked(result.trades)
    symbols = list(positions)
    price = []
    for k, row in enumerate(summaries[:MAX_PRICE_CHARTS], start=1):
        own = [(number, trade) for number, trade in marked if trade.symbol == row.symbol]
        label = f"{row.symbol} close price with {row.trades} trades"
        price.append(f"<h3>{_esc(row.symbol)}</h3>")
        price.append(
            _price_chart(
                frame,
                np.asarray(series[row.symbol].close, dtype=float),
                own,
                label=label,
                positions=positions[row.symbol],
                chart_id=f"chart-price-{k}",
            )
        )
    price.append(_legend())
    if len(symbols) > MAX_PRICE_CHARTS:
        left_off = symbols[MAX_PRICE_CHARTS:]
        price.append(
            f'<p class="note">{len(symbols)} symbols: the first {MAX_PRICE_CHARTS} are drawn; '
            f"{_esc(', '.join(left_off))} are in the tables only.</p>"
        )
    price.append(_marker_note(unmarked))
    named = " + ".join(symbols) if len(symbols) <= 6 else f"{len(symbols)} symbols"
    period = f"{frame.label(0)} to {frame.label(n - 1)}"
    return _page(
        result,
        frame,
        title=title,
        subtitle=f"{strategy} on {named} · {period} · {n:,} bars · {len(result.trades):,} trades",
        buy_hold="Buy & hold (equal weight)",
        price=price,
        symbols=['<section id="symbols"><h2>Per symbol</h2>', _symbols_table(summaries), "</section>"],
        settings=_settings_table(result, ("symbols", ", ".join(symbols)), strategy, params, frame),
        trades=_trades_table(result.trades, frame, with_symbol=True),
    )


def _write(path: str | Path, text: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def write_report(
    path: str | Path,
    result: BacktestResult,
    bars: Ohlcv,
    *,
    title: str,
    strategy: str,
    params: Mapping[str, Any],
) -> Path:
    """Write `render_report(...)` to `path` (UTF-8; parent folders are created) and return the path."""
    return _write(path, render_report(result, bars, title=title, strategy=strategy, params=params))


def write_portfolio_report(
    path: str | Path,
    result: BacktestResult,
    series: Mapping[str, Ohlcv],
    *,
    title: str,
    strategy: str,
    params: Mapping[str, Any],
) -> Path:
    """Write `render_portfolio_report(...)` to `path` (UTF-8; parent folders are created); return the path."""
    return _write(path, render_portfolio_report(result, series, title=title, strategy=strategy, params=params))
