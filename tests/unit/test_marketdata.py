"""The shipped datasets and the strict CSV loader behind them."""

from __future__ import annotations

import itertools
import pickle
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tradeflow.domain.bars import Bar
from tradeflow.marketdata import DATASETS, MarketDataError, dataset, load_bars_csv, load_dataset
from tradeflow.marketdata.catalog import DATASETS_DIR

README = DATASETS_DIR / "README.md"


def _readme_rows() -> dict[str, int]:
    """File name -> row count from the README's files table."""
    rows: dict[str, int] = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `([^`]+\.csv)` \|", line)
        if match:
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[match.group(1)] = int(cells[6])
    return rows


def _write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path, *, repair: bool = False) -> MarketDataError:
    with pytest.raises(MarketDataError) as info:
        load_bars_csv(path, "TEST", "1d", repair=repair)
    return info.value


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- shipped datasets -------------------------------------------------------------------------


def test_catalog_matches_files_and_readme() -> None:
    shipped = {p.name for p in DATASETS_DIR.glob("*.csv")}
    assert shipped == {d.path.name for d in DATASETS.values()}
    assert set(_readme_rows()) == shipped
    for symbol, info in DATASETS.items():
        assert info.symbol == symbol
        assert info.path.name == f"{symbol}_{info.timeframe}.csv"
        assert info.asset_class in {"equity", "fx", "crypto"}
        assert info.description
    classes = {d.asset_class for d in DATASETS.values()}
    assert "equity" in classes
    assert classes & {"fx", "crypto"}


def test_datasets_stay_small() -> None:
    assert sum(p.stat().st_size for p in DATASETS_DIR.iterdir()) < 5_000_000


def test_shipped_files_are_normalised() -> None:
    for info in DATASETS.values():
        lines = info.path.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "ts,open,high,low,close,volume", info.path.name
        assert all(re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z,", line) for line in lines[1:])


@pytest.mark.parametrize("symbol", sorted(DATASETS))
def test_every_dataset_loads_sorted_unique_and_counted(symbol: str) -> None:
    info = dataset(symbol)
    bars = load_dataset(symbol)
    assert len(bars) == _readme_rows()[info.path.name]
    assert all(isinstance(bar, Bar) for bar in bars)
    assert all(bar.symbol == symbol and bar.timeframe == info.timeframe for bar in bars)
    stamps = [bar.ts for bar in bars]
    assert all(a < b for a, b in itertools.pairwise(stamps))  # sorted, no duplicates
    assert all(ts.tzinfo is not None and ts.utcoffset() == UTC.utcoffset(None) for ts in stamps)
    # Strict mode and repair mode agree on clean data.
    assert load_bars_csv(info.path, symbol, info.timeframe, repair=True) == bars


def test_load_dataset_is_cached_but_returns_fresh_lists() -> None:
    first, second = load_dataset("GOOG"), load_dataset("GOOG")
    assert first == second
    assert first is not second
    assert first[0] is second[0]


def test_unknown_symbol_lists_available() -> None:
    with pytest.raises(KeyError) as info:
        dataset("NOPE")
    message = str(info.value)
    assert "NOPE" in message
    assert all(symbol in message for symbol in DATASETS)


def _bar_at(symbol: str, ts: datetime) -> Bar:
    return next(bar for bar in load_dataset(symbol) if bar.ts == ts)


def test_known_real_values() -> None:
    goog = load_dataset("GOOG")[0]
    assert goog.ts == _utc(2004, 8, 19)
    assert (goog.open, goog.high, goog.low, goog.close) == (
        Decimal("100"),
        Decimal("104.06"),
        Decimal("95.96"),
        Decimal("100.34"),
    )
    assert goog.volume == Decimal("22351900")
    assert _bar_at("GOOG", _utc(2013, 3, 1)).close == Decimal("806.19")

    eurusd = _bar_at("EURUSD", _utc(2017, 4, 19, 9))
    assert (eurusd.open, eurusd.close) == (Decimal("1.0716"), Decimal("1.07219"))

    # Monthly bars are stamped at the month's open: December 2024 closed at 93,381.
    btc = _bar_at("BTCUSD", _utc(2024, 12, 1))
    assert (btc.open, btc.high, btc.close) == (Decimal("96515.0"), Decimal("108364.0"), Decimal("93381.0"))

    spy = _bar_at("SPY", _utc(2021, 8, 19))
    assert spy.close == Decimal("438.99")
    assert load_dataset("SPY")[0].volume == Decimal("1003200")  # SPY's first trading day, 1993-01-29

    assert _bar_at("ASML.AS", _utc(2013, 1, 25)).close == Decimal("54.7")
    assert _bar_at("002032.SZ", _utc(2004, 8, 17)).open == Decimal("12.21")


def test_asml_holiday_placeholders_were_dropped() -> None:
    stamps = {bar.ts for bar in load_dataset("ASML.AS")}
    assert _utc(2010, 1, 1) not in stamps
    assert all(bar.volume > 0 for bar in load_dataset("ASML.AS"))


# --- loader: accepted inputs ------------------------------------------------------------------


def test_backtesting_style_header_naive_and_date_only_times(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        ",Open,High,Low,Close,Volume\n"
        "2017-04-19 09:00:00,1.0716,1.0722,1.07083,1.07219,1413\n"
        "2017-04-20,1.07214,1.07296,1.07214,1.0726,1241\n",
    )
    bars = load_bars_csv(path, "EURUSD", "1h")
    assert [bar.ts for bar in bars] == [_utc(2017, 4, 19, 9), _utc(2017, 4, 20)]
    assert bars[1].high == Decimal("1.07296")


@pytest.mark.parametrize("name", ["ts", "TIMESTAMP", "Time", "date", "DateTime"])
def test_time_column_aliases_case_insensitive(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, f"{name},OPEN,High,low,Close\n2020-01-02,1,2,0.5,1.5\n")
    (bar,) = load_bars_csv(path, "TEST", "1d")
    assert bar.ts == _utc(2020, 1, 2)
    assert bar.volume == Decimal(0)  # volume is optional


def test_offsets_converted_to_utc_and_extra_columns_ignored(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "\ufeffDate,Open,High,Low,Close,Adj Close,Volume\n"
        "2020-01-02T09:30:00-05:00,1,2,0.5,1.5,1.4,10\n"
        "2020-01-03T00:00:00Z,1,2,0.5,1.5,1.4,10\n"
        "\n",
    )
    bars = load_bars_csv(path, "TEST", "1d")
    assert [bar.ts for bar in bars] == [_utc(2020, 1, 2, 14, 30), _utc(2020, 1, 3)]


# --- loader: errors name the file and the line ------------------------------------------------


def _assert_names(error: MarketDataError, path: Path, line: int, *words: str) -> None:
    message = str(error)
    assert path.name in message
    assert f"line {line}" in message
    assert error.line == line
    for word in words:
        assert word in message


@pytest.mark.parametrize("missing", ["open", "high", "low", "close"])
def test_missing_required_column(tmp_path: Path, missing: str) -> None:
    columns = ",".join(c for c in ["ts", "open", "high", "low", "close"] if c != missing)
    path = _write(tmp_path, f"{columns}\n2020-01-01,1,1,1\n")
    _assert_names(_error(path), path, 1, "missing", repr(missing))


def test_missing_time_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "when,open,high,low,close\n2020-01-01,1,1,1,1\n")
    _assert_names(_error(path), path, 1, "time column")


def test_ambiguous_time_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "date,time,open,high,low,close\n2020-01-01,09:00,1,1,1,1\n")
    _assert_names(_error(path), path, 1, "ambiguous", "date", "time")


def test_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "")
    _assert_names(_error(path), path, 1, "empty")


GOOD = "2020-01-01,1,2,0.5,1.5,10\n"


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("2020-01-02,,2,0.5,1.5,10", ("empty", "'open'")),
        ("2020-01-02,1,abc,0.5,1.5,10", ("'high'", "not a number")),
        ("2020-01-02,1,2,NaN,1.5,10", ("'low'", "finite")),
        ("2020-01-02,1,2,0.5,inf,10", ("'close'", "finite")),
        ("2020-01-02,1,2,0.5,-Infinity,10", ("'close'", "finite")),
        ("2020-01-02,1,2,0.5,1.5,1_000", ("'volume'", "not a number")),
        ("2020-01-02,1,2,0.5,1.5,", ("empty", "'volume'")),
        ("not-a-date,1,2,0.5,1.5,10", ("unparseable time", "not-a-date")),
        ("2020-13-45,1,2,0.5,1.5,10", ("unparseable time",)),
        (",1,2,0.5,1.5,10", ("empty time",)),
        ("2020-01-02,1,0.5,2,1.5,10", ("invalid bar", "high/low")),  # high < low
        ("2020-01-02,1,2,0.5,3,10", ("invalid bar",)),  # close above high
        ("2020-01-02,0,2,0,1.5,10", ("invalid bar", "positive")),
        ("2020-01-02,1,2,0.5,1.5,-1", ("invalid bar", "volume")),
        ("2020-01-02,1,2,0.5,1.5", ("expected 6 fields, found 5",)),
        ("2020-01-02,1,2,0.5,1.5,10,99", ("expected 6 fields, found 7",)),
    ],
)
def test_bad_values_name_column_and_line(tmp_path: Path, row: str, words: tuple[str, ...]) -> None:
    path = _write(tmp_path, f"ts,open,high,low,close,volume\n{GOOD}{row}\n{GOOD}", name="bad_value.csv")
    _assert_names(_error(path), path, 3, *words)


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, f"ts,open,high,low,close,volume\n\n{GOOD}\n2020-01-02,x,2,0.5,1.5,10\n")
    _assert_names(_error(path), path, 5, "'open'")


def test_malformed_quoting(tmp_path: Path) -> None:
    path = _write(tmp_path, f'ts,open,high,low,close,volume\n{GOOD}2020-01-02,"1"x,2,0.5,1.5,10\n')
    _assert_names(_error(path), path, 3, "malformed")


def test_error_is_a_value_error_and_pickles(tmp_path: Path) -> None:
    path = _write(tmp_path, "ts,open,high,low\n")
    error = _error(path)
    assert isinstance(error, ValueError)
    clone = pickle.loads(pickle.dumps(error))
    assert str(clone) == str(error)
    assert clone.path == path


# --- ordering, duplicates and repair ----------------------------------------------------------

HEADER = "ts,open,high,low,close,volume\n"
JAN1 = "2020-01-01,1,2,0.5,1.5,10\n"
JAN2 = "2020-01-02,1.5,2.5,1,2,20\n"
JAN3 = "2020-01-03,2,3,1.5,2.5,30\n"


def test_duplicate_time_is_an_error_by_default(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + JAN1 + JAN2 + JAN2 + JAN3, name="dupes.csv")
    _assert_names(_error(path), path, 4, "duplicate time", "line 3")


def test_unsorted_rows_are_an_error_by_default(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + JAN1 + JAN3 + JAN2, name="unsorted.csv")
    _assert_names(_error(path), path, 4, "earlier", "not sorted")


def test_repair_sorts_and_drops_exact_duplicates(tmp_path: Path) -> None:
    # The same bar written with different number spellings is still an exact duplicate.
    jan2_again = "2020-01-02T00:00:00Z,1.50,2.5,1.0,2,20\n"
    path = _write(tmp_path, HEADER + JAN3 + JAN1 + JAN2 + JAN1 + jan2_again)
    bars = load_bars_csv(path, "TEST", "1d", repair=True)
    assert [bar.ts for bar in bars] == [_utc(2020, 1, 1), _utc(2020, 1, 2), _utc(2020, 1, 3)]
    assert [bar.volume for bar in bars] == [Decimal(10), Decimal(20), Decimal(30)]


def test_repair_rejects_conflicting_duplicates(tmp_path: Path) -> None:
    conflicting = "2020-01-02,1.5,2.5,1,2.1,20\n"
    path = _write(tmp_path, HEADER + JAN3 + JAN2 + JAN1 + conflicting, name="conflict.csv")
    error = _error(path, repair=True)
    _assert_names(error, path, 5, "conflicting", "line 3")


def test_repair_does_not_excuse_bad_values(tmp_path: Path) -> None:
    path = _write(tmp_path, HEADER + JAN2 + "2020-01-01,1,2,0.5,nan,10\n")
    _assert_names(_error(path, repair=True), path, 3, "finite")
