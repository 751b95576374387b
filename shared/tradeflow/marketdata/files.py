"""Strict CSV loader for OHLCV bars.

Only the stdlib `csv` module is used (no pandas): this runs on Lambda cold paths. Every problem is
reported as a `MarketDataError` naming the file and line, because a silently skipped or guessed row
would replay a market that never existed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from os import PathLike
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from tradeflow.domain.bars import Bar
from tradeflow.domain.types import Symbol

TIME_COLUMNS = ("ts", "timestamp", "time", "date", "datetime")
PRICE_COLUMNS = ("open", "high", "low", "close")

_SYMBOL: TypeAdapter[str] = TypeAdapter(Symbol)


class MarketDataError(ValueError):
    """A market data file is malformed; the message names the file, the 1-based line and the problem."""

    def __init__(self, path: str | PathLike[str], line: int, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        super().__init__(f"{self.path}, line {line}: {problem}")

    def __reduce__(self) -> tuple[type[MarketDataError], tuple[Path, int, str]]:
        return type(self), (self.path, self.line, self.problem)


@dataclass(frozen=True, slots=True)
class _Layout:
    """One file's column positions (`volume` None when absent) and the bars' identity."""

    path: Path
    symbol: str
    timeframe: str
    width: int
    ts: int
    open: int
    high: int
    low: int
    close: int
    volume: int | None


def _layout(path: Path, header: list[str], symbol: str, timeframe: str) -> _Layout:
    names = [name.strip().lower() for name in header]
    # The header sits on line 1 (a BOM is stripped by the utf-8-sig codec).
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise MarketDataError(path, 1, f"duplicate column {name!r}")
        seen.add(name)
    time_names = [name for name in TIME_COLUMNS if name in names]
    if len(time_names) > 1:
        raise MarketDataError(path, 1, f"ambiguous time column: {', '.join(time_names)}")
    if time_names:
        ts = names.index(time_names[0])
    elif names and names[0] == "":
        ts = 0  # pandas-written CSVs leave the index (time) column unnamed
    else:
        raise MarketDataError(
            path, 1, f"missing time column (one of {', '.join(TIME_COLUMNS)} or an unnamed first column)"
        )
    for name in PRICE_COLUMNS:
        if name not in names:
            raise MarketDataError(path, 1, f"missing required column {name!r}")
    return _Layout(
        path=path,
        symbol=symbol,
        timeframe=timeframe,
        width=len(names),
        ts=ts,
        open=names.index("open"),
        high=names.index("high"),
        low=names.index("low"),
        close=names.index("close"),
        volume=names.index("volume") if "volume" in names else None,
    )


def _number(path: Path, line: int, column: str, text: str) -> Decimal:
    text = text.strip()
    if not text:
        raise MarketDataError(path, line, f"empty value in column {column!r}")
    try:
        if "_" in text:  # Decimal() accepts 1_000; a CSV should not
            raise InvalidOperation
        value = Decimal(text)
    except InvalidOperation:
        raise MarketDataError(path, line, f"column {column!r}: {text!r} is not a number") from None
    if not value.is_finite():
        raise MarketDataError(path, line, f"column {column!r}: {text!r} is not a finite number")
    return value


def _time(path: Path, line: int, text: str) -> datetime:
    text = text.strip()
    if not text:
        raise MarketDataError(path, line, "empty time value")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MarketDataError(path, line, f"unparseable time {text!r} (ISO-8601 expected)") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return parsed.replace(tzinfo=UTC)  # naive (and date-only, which parses as 00:00) means UTC
    return parsed.astimezone(UTC)


def _bar(cols: _Layout, line: int, row: list[str]) -> Bar:
    path = cols.path
    if len(row) != cols.width:
        raise MarketDataError(path, line, f"expected {cols.width} fields, found {len(row)}")
    ts = _time(path, line, row[cols.ts])
    prices = {name: _number(path, line, name, row[getattr(cols, name)]) for name in PRICE_COLUMNS}
    volume = Decimal(0) if cols.volume is None else _number(path, line, "volume", row[cols.volume])
    try:
        return Bar(symbol=cols.symbol, timeframe=cols.timeframe, ts=ts, volume=volume, **prices)
    except ValidationError as exc:
        problems = "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
        raise MarketDataError(path, line, f"invalid bar: {problems}") from None


def _values(bar: Bar) -> tuple[Decimal, ...]:
    return (bar.open, bar.high, bar.low, bar.close, bar.volume)


def load_bars_csv(path: str | PathLike[str], symbol: str, timeframe: str, *, repair: bool = False) -> list[Bar]:
    """Load OHLCV bars from a CSV file, strictly, in time order.

    The header is matched case-insensitively. The time column is named `ts`, `timestamp`, `time`,
    `date` or `datetime`, or is an unnamed first column (as pandas writes); `open`, `high`, `low`
    and `close` are required; `volume` is optional (0 when absent); other columns are ignored.
    Times are ISO-8601: naive values are taken as UTC and date-only values as 00:00 UTC.

    Any empty, non-numeric, NaN or infinite value, unparseable time, wrong field count or invalid
    bar (e.g. high below low) raises `MarketDataError` naming the file and line. So does a row whose
    time is not after the previous row's (duplicate or unsorted), unless `repair` is set.

    Repair (`repair=True`) exists for exports that are merely out of order or overlapping: rows are
    sorted by time (stably, so file order breaks ties), and a row with the same time and the same
    values (OHLCV compared as numbers) as an earlier row is dropped. Two rows with the same time but
    different values are still an error naming both lines, as there is no telling which is right.
    """
    file = Path(path)
    symbol = _SYMBOL.validate_python(symbol)
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise MarketDataError(file, 1, "empty file: no header row")
            cols = _layout(file, header, symbol, timeframe)
            rows: list[tuple[int, Bar]] = []
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank lines, e.g. a trailing newline
                rows.append((reader.line_num, _bar(cols, reader.line_num, row)))
        except csv.Error as exc:
            raise MarketDataError(file, reader.line_num, f"malformed CSV: {exc}") from None
        except UnicodeDecodeError:
            raise MarketDataError(file, reader.line_num + 1, "not UTF-8 text") from None

    if repair:
        rows.sort(key=lambda item: item[1].ts)
    bars: list[Bar] = []
    previous_line = 0
    for line, bar in rows:
        if bars and bar.ts <= bars[-1].ts:
            stamp = bar.ts.isoformat()
            if bar.ts < bars[-1].ts:
                raise MarketDataError(
                    file, line, f"time {stamp} is earlier than line {previous_line} (rows not sorted)"
                )
            if not repair:
                raise MarketDataError(file, line, f"duplicate time {stamp} (also on line {previous_line})")
            if _values(bar) != _values(bars[-1]):
                raise MarketDataError(
                    file, line, f"conflicting rows for time {stamp}: values differ from line {previous_line}"
                )
            continue  # exact duplicate of the kept row
        bars.append(bar)
        previous_line = line
    return bars
