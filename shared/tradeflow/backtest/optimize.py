"""Parameter optimisation: grid or random search over parameter ranges, ranked by one metric, with an
optional walk-forward check.

The unit of work is one backtest (`evaluate`: one strategy, one parameter set, one slice of one
symbol's bars, one configuration), so a sweep can fan out anywhere (local processes here; Lambda in the
cloud). Locally, batches of parameter sets go to a `ProcessPoolExecutor` whose workers receive the bars
once (at start-up), and results are put back in the order of the parameter sets, so a parallel sweep
returns exactly what a sequential one does.

- Ranges: `fast=5:50:5` (start:stop:step, stop included), `slow=20,30,50` (a list) or `fast=10` (one
  value). Integers stay integers; any float makes the range float.
- Invalid combinations (the strategy's parameter validation fails, e.g. `fast >= slow`, or the slice is
  too short for the strategy's warm-up) are skipped and counted, never fatal.
- Ranking: by the objective metric, best first; metrics where lower is better (`volatility_pct`,
  `max_drawdown_duration_bars`) are minimised, everything else is maximised (`max_drawdown_pct` is
  negative, so closer to zero ranks higher). A None objective ranks last; ties keep the sweep order.
- Walk-forward: the bars are cut into `folds` consecutive windows of equal length (the last one takes
  the remainder). In each, the first `in_sample_pct` percent is optimised and the best parameters are
  then backtested on the rest of the window (out-of-sample). The out-of-sample signals are computed with
  the preceding `warmup` bars as indicator history (past data only), but trades happen only inside the
  out-of-sample bars, which never overlap the in-sample ones.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime
from itertools import product
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field

from tradeflow.backtest.config import BacktestConfig
from tradeflow.backtest.data import Ohlcv
from tradeflow.backtest.engine import run_backtest
from tradeflow.backtest.results import Metrics
from tradeflow.domain.base import Model

Progress = Callable[[int, int], None]
"""Called with (backtests done, backtests in total) as batches complete."""

MINIMISED = frozenset({"volatility_pct", "max_drawdown_duration_bars"})
OBJECTIVES = tuple(Metrics.model_fields)
MAX_COMBINATIONS = 1_000_000
MAX_RANGE_VALUES = 100_000

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class OptimizeError(ValueError):
    """Bad ranges, objective or settings; the message names what is wrong."""


class ParamRange(Model):
    """The values one strategy parameter takes in a sweep."""

    model_config = ConfigDict(frozen=True)

    name: str
    values: tuple[Any, ...] = Field(min_length=1)

    @classmethod
    def parse(cls, spec: str) -> ParamRange:
        """`name=start:stop:step` (stop included), `name=a,b,c` or `name=value`."""
        name, sep, raw = spec.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not name:
            raise OptimizeError(f"range {spec!r}: expected NAME=START:STOP:STEP or NAME=A,B,C")
        if not _NAME.match(name):
            raise OptimizeError(f"range {spec!r}: {name!r} is not a parameter name")
        if not raw:
            raise OptimizeError(f"range {name}: no values")
        if ":" in raw:
            return cls(name=name, values=_arithmetic(name, raw))
        values = tuple(_scalar(name, part) for part in raw.split(","))
        if len(set(values)) != len(values):
            raise OptimizeError(f"range {name}: duplicate values in {raw!r}")
        return cls(name=name, values=values)


def _scalar(name: str, text: str) -> Any:
    text = text.strip()
    if not text:
        raise OptimizeError(f"range {name}: empty value")
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text  # enumerated text values (e.g. a mode name) are passed on as they are
    if not math.isfinite(value):
        raise OptimizeError(f"range {name}: {text!r} is not a finite number")
    return value


def _arithmetic(name: str, raw: str) -> tuple[Any, ...]:
    parts = raw.split(":")
    if len(parts) != 3:
        raise OptimizeError(f"range {name}: {raw!r} must be START:STOP:STEP")
    numbers = [_scalar(name, p) for p in parts]
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in numbers):
        raise OptimizeError(f"range {name}: START, STOP and STEP in {raw!r} must be numbers")
    start, stop, step = numbers
    if step <= 0:
        raise OptimizeError(f"range {name}: step must be positive, got {parts[2].strip()}")
    if stop < start:
        raise OptimizeError(f"range {name}: stop {parts[1].strip()} is below start {parts[0].strip()}")
    count = math.floor((stop - start) / step + 1e-9) + 1
    if count > MAX_RANGE_VALUES:
        raise OptimizeError(f"range {name}: {count} values, more than {MAX_RANGE_VALUES}")
    if all(isinstance(x, int) for x in numbers):
        return tuple(range(start, stop + 1, step))
    return tuple(round(start + i * step, 10) for i in range(count))


def parse_ranges(specs: Sequence[str]) -> list[ParamRange]:
    ranges = [ParamRange.parse(s) for s in specs]
    seen: set[str] = set()
    for r in ranges:
        if r.name in seen:
            raise OptimizeError(f"range {r.name}: given more than once")
        seen.add(r.name)
    return ranges


def combinations(ranges: Sequence[ParamRange]) -> int:
    return math.prod(len(r.values) for r in ranges)


def grid(ranges: Sequence[ParamRange]) -> list[dict[str, Any]]:
    """Every combination, the last range varying fastest."""
    total = combinations(ranges)
    if total > MAX_COMBINATIONS:
        raise OptimizeError(f"the grid has {total:,} combinations (limit {MAX_COMBINATIONS:,}); use random search")
    names = [r.name for r in ranges]
    return [dict(zip(names, values, strict=True)) for values in product(*(r.values for r in ranges))]


def random_sample(ranges: Sequence[ParamRange], samples: int, seed: int) -> list[dict[str, Any]]:
    """`samples` distinct combinations drawn uniformly from the grid (all of it if it is smaller), the
    same ones for the same seed."""
    if samples < 1:
        raise OptimizeError(f"samples must be at least 1, got {samples}")
    total = combinations(ranges)
    if samples >= total:
        return grid(ranges)
    rng = random.Random(seed)
    out = []
    for drawn in rng.sample(range(total), samples):
        params: dict[str, Any] = {}
        index = drawn
        for r in reversed(ranges):  # mixed-radix decoding, the last range varying fastest as in `grid`
            index, digit = divmod(index, len(r.values))
            params[r.name] = r.values[digit]
        out.append({r.name: params[r.name] for r in ranges})
    return out


def check_objective(objective: str) -> str:
    if objective not in Metrics.model_fields:
        raise OptimizeError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
    return objective


def objective_value(metrics: Metrics, objective: str) -> float | None:
    value = getattr(metrics, objective)
    return None if value is None else float(value)


class Evaluation(Model):
    model_config = ConfigDict(frozen=True)

    params: dict[str, Any]
    metrics: Metrics
    objective: float | None


def rank(evaluations: Sequence[Evaluation], objective: str) -> list[Evaluation]:
    """Best first; None objectives last; ties keep their order (the sort is stable)."""
    sign = 1.0 if objective in MINIMISED else -1.0
    return sorted(evaluations, key=lambda e: (e.objective is None, 0.0 if e.objective is None else sign * e.objective))


# -- the unit of work -----------------------------------------------------------------------------------


def evaluate(
    data: Ohlcv,
    strategy: str,
    params: dict[str, Any],
    config: BacktestConfig,
    start: int = 0,
    end: int | None = None,
) -> Metrics | str:
    """One backtest of `strategy(params)` over bars [start, end): its metrics, or why it was skipped."""
    from tradeflow.strategies import StrategyError, create

    try:
        instance = create(strategy, params)
    except StrategyError as exc:
        return str(exc)
    bars = _slice(data, start, end)
    if len(bars) <= instance.warmup:
        return f"{len(bars)} bars do not cover the warm-up of {instance.warmup}"
    return run_backtest(bars, instance, config).metrics


def _slice(data: Ohlcv, start: int, end: int | None) -> Ohlcv:
    stop = len(data) if end is None else end
    if start == 0 and stop == len(data):
        return data
    return Ohlcv(
        data.open[start:stop],
        data.high[start:stop],
        data.low[start:stop],
        data.close[start:stop],
        data.volume[start:stop],
        None if data.ts is None else data.ts[start:stop],
        data.symbol,
    )


_Task = tuple[str, BacktestConfig, int, int | None, list[tuple[int, dict[str, Any]]]]
_Outcome = list[tuple[int, Metrics | str]]

_WORKER_DATA: Ohlcv | None = None


def _init_worker(data: Ohlcv) -> None:
    global _WORKER_DATA  # noqa: PLW0603  the bars are sent once per worker, not once per task
    _WORKER_DATA = data


def _run_batch(task: _Task, data: Ohlcv | None = None) -> _Outcome:
    bars = data if data is not None else _WORKER_DATA
    assert bars is not None, "worker started without data"
    strategy, config, start, end, items = task
    return [(i, evaluate(bars, strategy, params, config, start, end)) for i, params in items]


class _Runner:
    """Runs batches of backtests in-process (workers=1) or on a process pool, counting progress."""

    def __init__(self, data: Ohlcv, workers: int, chunk_size: int | None, progress: Progress | None, total: int):
        self.data, self.workers, self.chunk_size, self.progress = data, workers, chunk_size, progress
        self.total, self.done = total, 0
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> _Runner:
        if self.workers > 1:
            self.pool = ProcessPoolExecutor(self.workers, initializer=_init_worker, initargs=(self.data,))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def _chunks(self, items: list[tuple[int, dict[str, Any]]]) -> Iterator[list[tuple[int, dict[str, Any]]]]:
        size = self.chunk_size or max(1, min(256, math.ceil(len(items) / (self.workers * 4))))
        for i in range(0, len(items), size):
            yield items[i : i + size]

    def _tick(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)

    def sweep(
        self, strategy: str, config: BacktestConfig, combos: list[dict[str, Any]], start: int, end: int | None
    ) -> list[Metrics | str]:
        items = list(enumerate(combos))
        out: list[Metrics | str] = [""] * len(items)
        tasks: list[_Task] = [(strategy, config, start, end, chunk) for chunk in self._chunks(items)]
        if self.pool is None:
            for task in tasks:
                for i, outcome in _run_batch(task, self.data):
                    out[i] = outcome
                self._tick(len(task[4]))
        else:
            futures = {self.pool.submit(_run_batch, task): len(task[4]) for task in tasks}
            for future in as_completed(futures):
                for i, outcome in future.result():
                    out[i] = outcome
                self._tick(futures[future])
        return out


# -- a whole optimisation -------------------------------------------------------------------------------


class OptimizeSettings(Model):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str
    ranges: list[ParamRange] = Field(min_length=1)
    fixed: dict[str, Any] = Field(default_factory=dict)
    objective: str = "sharpe"
    search: Literal["grid", "random"] = "grid"
    samples: int = Field(default=100, ge=1)
    seed: int = 0
    top: int = Field(default=10, ge=1)
    workers: int | None = Field(default=None, ge=1)
    chunk_size: int | None = Field(default=None, ge=1)
    folds: int | None = Field(default=None, ge=1, le=100)
    in_sample_pct: float = Field(default=70.0, gt=0, lt=100)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)


class FoldResult(Model):
    model_config = ConfigDict(frozen=True)

    fold: int
    in_sample: tuple[int, int]
    """Bar indices [start, end) of the in-sample part."""
    out_of_sample: tuple[int, int]
    in_sample_period: tuple[datetime, datetime] | None
    out_of_sample_period: tuple[datetime, datetime] | None
    evaluated: int
    skipped: int
    best_params: dict[str, Any] | None
    in_sample_objective: float | None
    out_of_sample_objective: float | None
    out_of_sample_metrics: Metrics | None


class OptimizeResult(Model):
    objective: str
    search: Literal["grid", "random"]
    evaluated: int
    skipped: int
    skip_example: str | None
    results: list[Evaluation]
    walk_forward: list[FoldResult] | None = None


def fold_bounds(n: int, folds: int, in_sample_pct: float) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """((is_start, is_end), (oos_start, oos_end)) per fold: consecutive windows of n // folds bars (the
    last one takes the remainder), each split at `in_sample_pct` percent."""
    size = n // folds
    if size < 2:
        raise OptimizeError(f"{folds} walk-forward folds need at least {2 * folds} bars; there are {n}")
    out = []
    for k in range(folds):
        start = k * size
        end = n if k == folds - 1 else start + size
        split = start + max(1, min(end - start - 1, math.floor((end - start) * in_sample_pct / 100)))
        out.append(((start, split), (split, end)))
    return out


def _collect(
    combos: list[dict[str, Any]], outcomes: list[Metrics | str], objective: str
) -> tuple[list[Evaluation], int, str | None]:
    evaluations, skipped, example = [], 0, None
    for params, outcome in zip(combos, outcomes, strict=True):
        if isinstance(outcome, str):
            skipped += 1
            example = example or f"{params}: {outcome}"
        else:
            evaluations.append(
                Evaluation(params=params, metrics=outcome, objective=objective_value(outcome, objective))
            )
    return rank(evaluations, objective), skipped, example


def check_ranges(strategy: str, ranges: Sequence[ParamRange], fixed: dict[str, Any]) -> None:
    from tradeflow.strategies import StrategyError, create

    try:
        cls = type(create(strategy, None))
    except StrategyError as exc:
        raise OptimizeError(str(exc)) from exc
    valid = list(cls.Params.model_fields)
    for name in [r.name for r in ranges] + list(fixed):
        if name not in valid:
            raise OptimizeError(f"unknown parameter {name!r} for {strategy}; valid parameters: {', '.join(valid)}")
    clash = sorted({r.name for r in ranges} & set(fixed))
    if clash:
        raise OptimizeError(f"parameter {clash[0]!r} is both a range and a fixed --param")


def optimize(data: Ohlcv, settings: OptimizeSettings, progress: Progress | None = None) -> OptimizeResult:
    check_objective(settings.objective)
    check_ranges(settings.strategy, settings.ranges, settings.fixed)
    if settings.search == "grid":
        varied = grid(settings.ranges)
    else:
        varied = random_sample(settings.ranges, settings.samples, settings.seed)
    combos = [{**settings.fixed, **v} for v in varied]
    folds = fold_bounds(len(data), settings.folds, settings.in_sample_pct) if settings.folds else []
    workers = settings.workers or os.cpu_count() or 1
    total = len(combos) * (1 + len(folds))
    with _Runner(data, min(workers, max(1, len(combos))), settings.chunk_size, progress, total) as runner:
        outcomes = runner.sweep(settings.strategy, settings.backtest, combos, 0, None)
        ranked, skipped, example = _collect(combos, outcomes, settings.objective)
        walk = [_fold(data, settings, runner, combos, k, b) for k, b in enumerate(folds)] if folds else None
    return OptimizeResult(
        objective=settings.objective,
        search=settings.search,
        evaluated=len(ranked),
        skipped=skipped,
        skip_example=example,
        results=ranked[: settings.top],
        walk_forward=walk,
    )


def _fold(
    data: Ohlcv,
    settings: OptimizeSettings,
    runner: _Runner,
    combos: list[dict[str, Any]],
    k: int,
    bounds: tuple[tuple[int, int], tuple[int, int]],
) -> FoldResult:
    (is_start, is_end), (oos_start, oos_end) = bounds
    outcomes = runner.sweep(settings.strategy, settings.backtest, combos, is_start, is_end)
    ranked, skipped, _ = _collect(combos, outcomes, settings.objective)
    best = ranked[0] if ranked else None
    oos_metrics = None if best is None else out_of_sample(data, settings, best.params, oos_start, oos_end)

    def period(a: int, b: int) -> tuple[datetime, datetime] | None:
        return None if data.ts is None else (data.ts[a], data.ts[b - 1])

    return FoldResult(
        fold=k + 1,
        in_sample=(is_start, is_end),
        out_of_sample=(oos_start, oos_end),
        in_sample_period=period(is_start, is_end),
        out_of_sample_period=period(oos_start, oos_end),
        evaluated=len(ranked),
        skipped=skipped,
        best_params=None if best is None else best.params,
        in_sample_objective=None if best is None else best.objective,
        out_of_sample_objective=None if oos_metrics is None else objective_value(oos_metrics, settings.objective),
        out_of_sample_metrics=oos_metrics,
    )


def out_of_sample(
    data: Ohlcv, settings: OptimizeSettings, params: dict[str, Any], start: int, end: int
) -> Metrics | None:
    """Backtest `params` on bars [start, end) only, its signals computed with up to `warmup` earlier bars
    as indicator history (they are past data; no trade happens before `start`)."""
    from tradeflow.strategies import create

    strategy = create(settings.strategy, params)
    history = max(0, start - strategy.warmup)
    context = _slice(data, history, end)
    signals = strategy.signals(
        context.open, context.high, context.low, context.close, context.volume, ts=context.ts, symbol=data.symbol
    )
    window = _slice(data, start, end)
    if len(window) < 2:
        return None
    return run_backtest(window, np.asarray(signals[start - history :]), settings.backtest).metrics
