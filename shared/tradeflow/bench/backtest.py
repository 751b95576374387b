"""The backtester against backtesting.py 0.6.6, side by side on the same machine, data and rules.

Three figures (issue 3's benchmark):

1. Throughput, bars per second (best of 3 runs each) of the SMA-cross rule (fast 10, slow 20,
   commission 0.002, next-open fills, all-equity whole units, long-only) on GOOG daily and on a
   >= 1,000,000-bar series made from real data. Ours is timed from the ready columns through
   `run_backtest` (signal computation, simulation, metrics, result); theirs is the whole
   `Backtest.run()` (indicators, the per-bar `next()` loop, trade list and statistics). Building the
   inputs (our `Ohlcv`, their DataFrame and `Backtest` object) is outside the timing for both. The
   settings map as documented in tests/unit/test_backtest_parity.py (`finalize="last_open"` <->
   `finalize_trades=True`, `exclusive_orders=True`, `commission` as is, default sizes), and the trades
   of every measured pair of runs are checked identical: same count, same entry and exit bars.
   The long series: the shipped EURUSD hourly bars (5,000) chained end to end, 200 copies, each copy
   re-scaled to open at the previous copy's last close; every other copy is the inverse quote (USD
   per EUR: 1/price, high and low swapped), so the level does not drift to absurd prices over 200
   copies (an EURUSD copy multiplies the level by r, the next USDEUR copy by 1/r). Every bar is thus a
   recorded hourly move; only the seams (a zero gap) are made up.
   If backtesting.py would need more than `MAX_REFERENCE_SECONDS` for one run on the long series
   (extrapolated from a 200,000-bar prefix), it is compared on that prefix, and said so.
2. Parameter sets per second of a sweep of (fast, slow) SMA pairs over GOOG with our backtester,
   sequentially and on a process pool over the machine's cores (workers warmed up first: the figure is
   the sweep, not the pool's start-up). One task is one backtest, as a cloud fan-out would run it.
3. The live path's per-evaluation latency: `strategy.evaluate(window)` of every registered strategy
   (default parameters) over windows of `warmup` bars sliding across GOOG, p50 and p99.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tradeflow.backtest import BacktestConfig, BacktestResult, Ohlcv, run_backtest
from tradeflow.bench.stats import percentile
from tradeflow.domain import Bar
from tradeflow.marketdata import load_dataset
from tradeflow.strategies import StrategyError, create, registered

FAST, SLOW = 10, 20
COMMISSION = 0.002
CASH = 10_000.0
DAILY = "GOOG"
LONG_SOURCE = "EURUSD"
LONG_BARS = 1_000_000
PREFIX_BARS = 200_000
MAX_REFERENCE_SECONDS = 120.0
# The SMA cross pays 0.4 % per round trip and whipsaws on hourly FX: over the 1,000,000-bar series its
# equity shrinks by a factor of about 1e-46. Starting with 10,000 it could no longer afford one unit
# after ~200,000 bars and the rest of the series would see no trades, so that series starts with 1e60
# (the rules, fills and whole-unit sizing are unchanged; only the scale of the account is).
LONG_CASH = 1e60


# --- data ----------------------------------------------------------------------------------------------


def chained(bars: Sequence[Bar], length: int) -> Ohlcv:
    """`length` bars of `bars` chained end to end (see the module docstring): alternately the quote and
    its inverse, each copy scaled to open at the previous copy's last close."""
    base = Ohlcv.from_bars(bars)
    direct = (base.open, base.high, base.low, base.close)
    inverse = (1 / base.open, 1 / base.low, 1 / base.high, 1 / base.close)
    columns: list[list[np.ndarray]] = [[], [], [], []]
    volumes: list[np.ndarray] = []
    made, last_close, k = 0, float(base.open[0]), 0
    while made < length:
        take = min(len(base), length - made)
        o, h, low, c = inverse if k % 2 else direct
        scale = last_close / float(o[0])
        for column, values in zip(columns, (o, h, low, c), strict=True):
            column.append(values[:take] * scale)
        volumes.append(base.volume[:take])
        last_close = float(columns[3][-1][-1])
        made, k = made + take, k + 1
    o, h, low, c = (np.concatenate(column) for column in columns)
    return Ohlcv.from_arrays(o, h, low, c, np.concatenate(volumes), symbol=f"{base.symbol}x{k}")


def prefix(data: Ohlcv, length: int) -> Ohlcv:
    ts = data.ts[:length] if data.ts is not None else None
    return Ohlcv(
        data.open[:length], data.high[:length], data.low[:length], data.close[:length], data.volume[:length], ts,
        data.symbol,
    )  # fmt: skip


def frame(data: Ohlcv) -> Any:
    """backtesting.py's input: a DataFrame of the same columns, indexed by the bar times (hourly from
    2000-01-01 when the series has none)."""
    pd = _pandas()
    if data.ts is not None:
        index = pd.DatetimeIndex(list(data.ts)).tz_localize(None)
    else:
        index = pd.date_range("2000-01-01", periods=len(data), freq="h")
    columns = {"Open": data.open, "High": data.high, "Low": data.low, "Close": data.close, "Volume": data.volume}
    return pd.DataFrame(columns, index=index)


# --- the two backtesters -------------------------------------------------------------------------------


def config(cash: float = CASH) -> BacktestConfig:
    return BacktestConfig(cash=cash, commission=COMMISSION, finalize="last_open")


def ours(data: Ohlcv, fast: int = FAST, slow: int = SLOW, cash: float = CASH) -> BacktestResult:
    return run_backtest(data, create("sma_cross", {"fast": fast, "slow": slow}), config(cash))


def _pandas() -> Any:
    import importlib

    return importlib.import_module("pandas")  # imported when used (pandas has no type stubs here)


def _rolling_mean(values: Any, n: int) -> Any:
    return _pandas().Series(values).rolling(n).mean().to_numpy()


@lru_cache(maxsize=1)
def reference_strategy() -> type:
    """backtesting.py's SMA cross with our crossover rule (ties count as "not above": see the parity test).
    Long-only by default (a down-cross closes the long); `short = True` reverses into a short instead.
    The parity test runs this same class."""
    from backtesting import Strategy as BtStrategy  # type: ignore[import-untyped]

    class SmaCrossReference(BtStrategy):  # type: ignore[misc]
        fast = FAST
        slow = SLOW
        short = False

        def init(self) -> None:
            self.f = self.I(_rolling_mean, self.data.Close, self.fast)
            self.s = self.I(_rolling_mean, self.data.Close, self.slow)

        def next(self) -> None:
            f, s = self.f, self.s
            if f[-2] <= s[-2] and f[-1] > s[-1]:
                self.buy()
            elif f[-2] >= s[-2] and f[-1] < s[-1]:
                if self.short:
                    self.sell()
                else:
                    self.position.close()

    return SmaCrossReference


def reference_backtest(df: Any, cash: float = CASH) -> Any:
    """A ready `Backtest` (the parity test's settings); `.run(fast=..., slow=...)` is what is timed."""
    from backtesting import Backtest

    return Backtest(
        df,
        reference_strategy(),
        cash=cash,
        commission=COMMISSION,
        exclusive_orders=True,
        trade_on_close=False,
        finalize_trades=True,
    )


def run_reference(bt: Any, fast: int = FAST, slow: int = SLOW) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "prices larger than cash", "trades remain open"
        return bt.run(fast=fast, slow=slow)


# --- trades --------------------------------------------------------------------------------------------


def trade_bars(result: BacktestResult) -> list[tuple[int, int]]:
    return [(t.entry_bar, t.exit_bar) for t in result.trades]


def reference_trade_bars(stats: Any) -> list[tuple[int, int]]:
    trades = stats._trades
    return [(int(e), int(x)) for e, x in zip(trades["EntryBar"], trades["ExitBar"], strict=True)]


def compare_trades(mine: Sequence[tuple[int, int]], theirs: Sequence[tuple[int, int]]) -> str | None:
    """None if identical, else what differs first (the count, or the first differing trade)."""
    for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
        if a != b:
            return f"trade {i}: ours (entry, exit bar) {a}, backtesting.py {b}"
    if len(mine) != len(theirs):
        return f"trade count: ours {len(mine)}, backtesting.py {len(theirs)}"
    return None


class TradesDiffer(AssertionError):
    pass


# --- 1. throughput -------------------------------------------------------------------------------------


@dataclass
class Throughput:
    label: str
    bars: int
    ours_seconds: float  # best of `runs`
    theirs_seconds: float | None  # None: not measured at this size (see `note`)
    trades: int
    identical: str | None  # None if the trades matched, else what differs; "-" if not compared
    note: str = ""

    @property
    def ours_rate(self) -> float:
        return self.bars / self.ours_seconds

    @property
    def theirs_rate(self) -> float | None:
        return None if self.theirs_seconds is None else self.bars / self.theirs_seconds


def _best(runs: int, call: Any) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        out = call()
        best = min(best, time.perf_counter() - started)
    return best, out


def throughput(
    label: str, data: Ohlcv, runs: int = 3, reference: bool = True, strict: bool = False, cash: float = CASH
) -> Throughput:
    """Best-of-`runs` seconds for ours and (if `reference`) backtesting.py on `data`, trades compared.
    `strict`: raise `TradesDiffer` instead of reporting a difference."""
    ours_seconds, result = _best(runs, lambda: ours(data, cash=cash))
    if not reference:
        return Throughput(label, len(data), ours_seconds, None, len(result.trades), "-")
    bt = reference_backtest(frame(data), cash)
    theirs_seconds, stats = _best(runs, lambda: run_reference(bt))
    differs = compare_trades(trade_bars(result), reference_trade_bars(stats))
    if differs and strict:
        raise TradesDiffer(f"{label}: {differs}")
    return Throughput(label, len(data), ours_seconds, theirs_seconds, len(result.trades), differs)


def long_series(data: Ohlcv, runs: int = 3) -> list[Throughput]:
    """Ours on the whole long series; backtesting.py beside it there if one of its runs is expected to
    take at most `MAX_REFERENCE_SECONDS`, else both on a `PREFIX_BARS` prefix."""
    label = f"{LONG_SOURCE} 1h chained"
    if len(data) <= PREFIX_BARS:
        return [throughput(label, data, runs, cash=LONG_CASH)]
    head = prefix(data, PREFIX_BARS)
    probe = reference_backtest(frame(head), LONG_CASH)
    started = time.perf_counter()
    run_reference(probe)
    expected = (time.perf_counter() - started) * len(data) / PREFIX_BARS
    if expected <= MAX_REFERENCE_SECONDS:
        return [throughput(label, data, runs, cash=LONG_CASH)]
    note = f"backtesting.py would need ~{expected:.0f} s per run at {len(data):,} bars: compared on a prefix"
    return [
        throughput(f"{label} (prefix)", head, runs, cash=LONG_CASH),
        Throughput(label, len(data), _best(runs, lambda: ours(data, cash=LONG_CASH))[0], None, 0, "-", note),
    ]


# --- 2. sweep ------------------------------------------------------------------------------------------


def sweep_pairs(count: int) -> list[tuple[int, int]]:
    """`count` (fast, slow) pairs, fast 5..50 by 5, slow 20..250 by 10, fast < slow."""
    pairs = [(f, s) for s in range(20, 260, 10) for f in range(5, 55, 5) if f < s]
    step = max(1, len(pairs) // count)
    return pairs[::step][:count]


@lru_cache(maxsize=1)
def _daily() -> Ohlcv:
    return Ohlcv.from_bars(load_dataset(DAILY))


def one_backtest(pair: tuple[int, int]) -> float:
    """The sweep's unit of work: one backtest of one pair over GOOG; its total return in percent."""
    return ours(_daily(), *pair).metrics.total_return_pct


@dataclass
class Sweep:
    sets: int
    sequential_seconds: float
    parallel_seconds: float
    workers: int

    @property
    def sequential_rate(self) -> float:
        return self.sets / self.sequential_seconds

    @property
    def parallel_rate(self) -> float:
        return self.sets / self.parallel_seconds


def sweep(count: int = 50, workers: int | None = None) -> Sweep:
    pairs = sweep_pairs(count)
    one_backtest(pairs[0])  # load the data once, as the workers' warm-up does
    started = time.perf_counter()
    sequential = [one_backtest(p) for p in pairs]
    sequential_seconds = time.perf_counter() - started
    workers = workers or os.cpu_count() or 1
    import multiprocessing

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(one_backtest, pairs[:1] * workers))  # start and warm up every worker
        started = time.perf_counter()
        parallel = list(pool.map(one_backtest, pairs, chunksize=max(1, len(pairs) // (4 * workers))))
        parallel_seconds = time.perf_counter() - started
    if parallel != sequential:
        raise AssertionError("the process pool's results differ from the sequential ones")
    return Sweep(len(pairs), sequential_seconds, parallel_seconds, workers)


# --- 3. live latency -----------------------------------------------------------------------------------


@dataclass
class Latency:
    strategy: str
    warmup: int
    samples_us: list[float] = field(default_factory=list)
    skipped: str = ""


def _example_spec() -> dict[str, object] | None:
    """`rules` has no defaults: it is timed on the repository's example rule spec, when present."""
    path = Path(__file__).resolve().parents[3] / "examples" / "strategies" / "rsi_dip.json"
    return json.loads(path.read_text()) if path.is_file() else None


def live_latency(evaluations: int = 500, dataset: str = DAILY) -> list[Latency]:
    """`evaluate` of each registered strategy (default parameters) on `evaluations` windows of `warmup`
    bars, sliding one bar at a time across `dataset` (from its start, wrapping if it is too short)."""
    bars = load_dataset(dataset)
    results = []
    for name in registered():
        try:
            strategy = create(name, _example_spec() if name == "rules" else None)
        except StrategyError as exc:
            results.append(Latency(name, 0, skipped=f"no default parameters: {exc}"))
            continue
        warmup = strategy.warmup
        if warmup > len(bars):
            results.append(Latency(name, warmup, skipped=f"warm-up longer than {dataset}"))
            continue
        starts = len(bars) - warmup + 1
        samples = []
        for i in range(evaluations):
            start = i % starts
            window = bars[start : start + warmup]
            began = time.perf_counter_ns()
            strategy.evaluate(window)
            samples.append((time.perf_counter_ns() - began) / 1000)
        results.append(Latency(name, warmup, samples))
    return results


# --- all three -----------------------------------------------------------------------------------------


@dataclass
class BacktestBench:
    throughput: list[Throughput]
    sweep: Sweep
    latency: list[Latency]
    evaluations: int


def measure(quick: bool = False) -> BacktestBench:
    """Everything above; `quick`: a 200,000-bar long series, 20 sweep pairs, 200 evaluations."""
    daily = _daily()
    length = PREFIX_BARS if quick else LONG_BARS
    rows = [throughput(f"{DAILY} 1d", daily), *long_series(chained(load_dataset(LONG_SOURCE), length))]
    evaluations = 200 if quick else 500
    return BacktestBench(rows, sweep(20 if quick else 50), live_latency(evaluations), evaluations)


def _rate(value: float | None) -> str:
    return f"{value:>12,.0f}" if value is not None else f"{'-':>12}"


def report(bench: BacktestBench) -> None:
    from backtesting import __version__ as theirs_version

    print(
        f"\n== backtest throughput: SMA cross {FAST}/{SLOW}, commission {COMMISSION}, next-open fills, "
        f"all-equity whole units, long-only; ours vs backtesting.py {theirs_version}, best of 3 =="
    )
    print(f"  {'series':<28} {'bars':>10} {'ours bars/s':>12} {'theirs bars/s':>14} {'ratio':>7}  trades")
    for row in bench.throughput:
        theirs = row.theirs_rate
        ratio = f"{row.ours_rate / theirs:6.1f}x" if theirs else f"{'-':>7}"
        if row.identical is None:
            verdict = f"{row.trades} identical (count, entry and exit bars)"
        elif row.identical == "-":
            verdict = row.note or "not compared"
        else:
            verdict = f"!!! TRADES DIFFER: {row.identical} !!!"
        print(f"  {row.label:<28} {row.bars:>10,} {_rate(row.ours_rate)} {_rate(theirs):>14} {ratio}  {verdict}")
    print(
        f"  (goal: ours >= 10x; the long series is {LONG_SOURCE} hourly chained end to end, alternately inverted, "
        f"cash {LONG_CASH:.0e} so it can trade to the end: see bench/backtest.py)"
    )

    s = bench.sweep
    print(f"\n== parameter sweep: {s.sets} (fast, slow) SMA pairs over {DAILY} 1d ({len(_daily()):,} bars) ==")
    print(f"  sequential                    {s.sequential_rate:8.1f} sets/s  ({s.sequential_seconds:.2f} s)")
    print(
        f"  process pool, {s.workers} workers       {s.parallel_rate:8.1f} sets/s  ({s.parallel_seconds:.2f} s, "
        f"{s.parallel_rate / s.sequential_rate:.1f}x sequential)"
    )

    print(
        f"\n== live path: strategy.evaluate(window of warmup bars), {bench.evaluations} windows sliding over {DAILY} =="
    )
    for lat in bench.latency:
        if lat.skipped:
            print(f"  {lat.strategy:<20} skipped: {lat.skipped}")
            continue
        p50, p99 = percentile(lat.samples_us, 50), percentile(lat.samples_us, 99)
        print(
            f"  {lat.strategy:<20} p50 {p50:8.1f} us  p99 {p99:8.1f} us"
            f"  (warmup {lat.warmup} bars, n={len(lat.samples_us)})"
        )
