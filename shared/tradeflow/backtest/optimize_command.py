"""`tradeflow optimize`: a parameter sweep of one strategy over one symbol's history.

    tradeflow optimize --strategy NAME --data CSV|DATASET [--symbol SYM] [--timeframe 1d]
        --range K=START:STOP:STEP|K=A,B,C ... [--param k=v]... [--objective sharpe]
        [--search grid|random] [--samples 100] [--seed 0] [--workers N] [--walk-forward FOLDS]
        [--in-sample-pct 70] [--top 10] [--cash ...] [--commission ...] [--slippage-bps ...]
        [--fill ...] [--size-pct ...] [--allow-short] [--json]

All `tradeflow backtest` flags are accepted with the same meaning (the parser inherits them). `--json`
prints one object: {"objective", "search", "evaluated", "skipped", "results": [{"params", "metrics",
"objective"}...], "walk_forward": [...] or null}. Otherwise a ranked table (and the walk-forward folds).
A progress bar is drawn on stderr only when stderr is a terminal. Errors are one line on stderr naming
what is wrong, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pydantic import ValidationError

from tradeflow.backtest import command as backtest_command
from tradeflow.backtest.command import CommandError, as_flags, load_data, parse_params, run_config
from tradeflow.domain.validation import describe


class _Capture:
    """Stands in for the subparsers object so `backtest`'s flags can be inherited, not copied."""

    parser: argparse.ArgumentParser

    def add_parser(self, name: str, **_: Any) -> argparse.ArgumentParser:
        self.parser = argparse.ArgumentParser(prog=name, add_help=False)
        return self.parser


def add_parser(commands: Any) -> None:
    capture = _Capture()
    backtest_command.add_parser(capture)
    parser = commands.add_parser(
        "optimize", parents=[capture.parser], help="sweep a strategy's parameters and rank the results"
    )
    parser.add_argument(
        "--range", action="append", default=[], dest="ranges", metavar="K=SPEC",
        help="a parameter range: K=START:STOP:STEP (stop included) or K=A,B,C",
    )  # fmt: skip
    parser.add_argument("--objective", default="sharpe", help="metric to maximise (default sharpe)")
    parser.add_argument("--search", choices=("grid", "random"), default="grid")
    parser.add_argument("--samples", type=int, default=100, help="parameter sets drawn by random search")
    parser.add_argument("--seed", type=int, default=0, help="random search seed")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: the machine's cores)")
    parser.add_argument("--walk-forward", type=int, default=None, metavar="FOLDS", dest="folds")
    parser.add_argument("--in-sample-pct", type=float, default=70.0, help="in-sample share of each fold")
    parser.add_argument("--top", type=int, default=10, help="rows of the ranked table")


def run(args: argparse.Namespace) -> int:
    from tradeflow.backtest.optimize import OptimizeError

    try:
        result = _optimize(args)
    except (CommandError, OptimizeError) as exc:
        print(f"tradeflow optimize: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.model_dump(mode="json")))
    else:
        print(render(result.model_dump(mode="json")))
    return 0


def _optimize(args: argparse.Namespace) -> Any:
    from tradeflow.backtest import Ohlcv
    from tradeflow.backtest.optimize import OptimizeSettings, check_objective, optimize, parse_ranges

    if backtest_command.spec_path(args.strategy) is not None or args.strategy == "rules":
        raise CommandError(
            f"--strategy {args.strategy}: a rule spec cannot be swept (--range varies a named strategy's"
            " parameters); write one spec per variant and run `tradeflow backtest --strategy SPEC.json` on each"
        )
    if not args.ranges:
        raise CommandError("give at least one --range K=START:STOP:STEP or K=A,B,C")
    ranges = parse_ranges(args.ranges)
    check_objective(args.objective)
    if len(args.data) > 1:
        raise CommandError("optimize sweeps one symbol: give a single --data")
    if args.report:
        raise CommandError("--report belongs to `tradeflow backtest`; backtest the winning parameters to get one")
    bars = load_data(args.data[0], args.symbol, args.timeframe)
    try:
        settings = OptimizeSettings(
            strategy=args.strategy,
            ranges=ranges,
            fixed=parse_params(args.param),
            objective=args.objective,
            search=args.search,
            samples=args.samples,
            seed=args.seed,
            top=args.top,
            workers=args.workers,
            folds=args.folds,
            in_sample_pct=args.in_sample_pct,
            backtest=run_config(args, [bars[0].symbol]),
        )
    except ValidationError as exc:
        raise CommandError(as_flags(describe(exc))) from exc
    progress = _ProgressBar() if sys.stderr.isatty() else None
    try:
        return optimize(Ohlcv.from_bars(bars), settings, progress)
    finally:
        if progress is not None:
            progress.close()


class _ProgressBar:
    def __init__(self, width: int = 40) -> None:
        self.width, self.shown = width, -1

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * done // max(total, 1)
        if filled == self.shown and done != total:
            return
        self.shown = filled
        bar = "#" * filled + "-" * (self.width - filled)
        sys.stderr.write(f"\r[{bar}] {done}/{total} backtests")
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown >= 0:
            sys.stderr.write("\n")
            sys.stderr.flush()


_LEFT = frozenset({"#", "params", "fold", "best params"})
COLUMNS = ("total_return_pct", "cagr_pct", "sharpe", "sortino", "calmar", "max_drawdown_pct", "trades")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.3f}" if isinstance(value, float) else str(value)


def render(document: dict[str, Any]) -> str:
    objective = document["objective"]
    columns = [objective, *(c for c in COLUMNS if c != objective)]
    rows = [
        [str(i), _params(r["params"]), *(_cell(r["metrics"][c]) for c in columns)]
        for i, r in enumerate(document["results"], 1)
    ]
    lines = [
        f"{document['search']} search, objective {objective}: {document['evaluated']} evaluated, "
        f"{document['skipped']} skipped (invalid parameters)"
    ]
    lines += _table(["#", "params", *columns], rows)
    if document.get("walk_forward"):
        lines += ["", "walk-forward (best in-sample parameters, then out-of-sample):"]
        folds = [
            [
                str(f["fold"]),
                f"{f['in_sample'][0]}-{f['in_sample'][1]}",
                f"{f['out_of_sample'][0]}-{f['out_of_sample'][1]}",
                "-" if f["best_params"] is None else _params(f["best_params"]),
                _cell(f["in_sample_objective"]),
                _cell(f["out_of_sample_objective"]),
            ]
            for f in document["walk_forward"]
        ]
        lines += _table(["fold", "in-sample bars", "out-of-sample bars", "best params", "in-sample", "out"], folds)
    return "\n".join(lines)


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(x) for x in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if h in _LEFT else c.rjust(w) for h, c, w in zip(header, cells, widths, strict=True)
        )

    return [line(header), *(line(r) for r in rows)]
