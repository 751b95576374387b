"""`tradeflow backtest`: one strategy over one symbol's history, from the command line.

    tradeflow backtest --strategy NAME|SPEC.json --data CSV|DATASET [--symbol SYM] [--timeframe 1d]
        [--param k=v]... [--cash 10000] [--commission 0.002] [--slippage-bps 0]
        [--fill next_open|close] [--size-pct 100] [--allow-short] [--json] [--report OUT.html]

`--json` prints one object: {"metrics": {...}, "trades": [...], "equity_curve": [...]}. `--report PATH`
also writes a self-contained HTML report (charts, monthly returns, metrics, trades; see
`tradeflow.backtest.report`) and names the file written (on stderr with `--json`). Errors (an
unknown strategy or parameter, unreadable or inconsistent data, too few bars for the warm-up) are one
line on stderr naming what is wrong, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tradeflow.domain import Bar
from tradeflow.domain.validation import describe


class CommandError(ValueError):
    pass


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("backtest", help="backtest a strategy on a dataset or a CSV file")
    parser.add_argument(
        "--strategy", required=True, help="a registered strategy name (e.g. sma_cross) or a rule spec file (SPEC.json)"
    )
    parser.add_argument("--data", required=True, help="a shipped dataset (e.g. GOOG) or a CSV file path")
    parser.add_argument("--symbol", default=None, help="symbol of the CSV's prices (default: the dataset's)")
    parser.add_argument("--timeframe", default=None, help="bar timeframe of a CSV (default 1d)")
    parser.add_argument("--param", action="append", default=[], metavar="K=V", help="strategy parameter")
    parser.add_argument("--cash", type=float, default=10_000.0)
    parser.add_argument("--commission", type=float, default=0.0, help="fraction of notional per fill")
    parser.add_argument("--slippage-bps", type=float, default=0.0)
    parser.add_argument("--fill", choices=("next_open", "close"), default="next_open")
    parser.add_argument("--size-pct", type=float, default=100.0, help="percent of equity per position")
    parser.add_argument("--allow-short", action="store_true", help="reverse into shorts on sell signals")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--report", default=None, metavar="PATH", help="also write a self-contained HTML report")


def parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            params[key] = json.loads(raw)  # numbers, booleans, lists; anything else stays text
        except json.JSONDecodeError:
            params[key] = raw
    return params


def load_data(data: str, symbol: str | None, timeframe: str | None) -> list[Bar]:
    from tradeflow.marketdata.catalog import DATASETS, dataset, load_dataset
    from tradeflow.marketdata.files import MarketDataError, load_bars_csv

    if data in DATASETS:
        if symbol not in (None, data) or timeframe not in (None, dataset(data).timeframe):
            raise CommandError(f"--data {data} is the shipped {dataset(data).timeframe} series of {data}")
        return load_dataset(data)
    path = Path(data)
    if not path.is_file():
        raise CommandError(f"--data {data}: neither a shipped dataset ({', '.join(sorted(DATASETS))}) nor a file")
    try:
        return load_bars_csv(path, symbol or path.stem.upper(), timeframe or "1d")
    except (MarketDataError, ValidationError, OSError) as exc:
        raise CommandError(f"--data {data}: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    try:
        result, bars = _backtest(args)
    except CommandError as exc:
        print(f"tradeflow backtest: {exc}", file=sys.stderr)
        return 2
    if args.json:
        document = {
            "metrics": result.metrics.model_dump(mode="json"),
            "trades": [t.model_dump(mode="json") for t in result.trades],
            "equity_curve": result.equity_curve,
        }
        print(json.dumps(document))
    else:
        print(render(result.metrics.model_dump(mode="json")))
    if args.report:
        try:
            written = _write_report(args, result, bars)
        except OSError as exc:
            print(f"tradeflow backtest: --report {args.report}: {exc}", file=sys.stderr)
            return 2
        print(f"report written to {written}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _write_report(args: argparse.Namespace, result: Any, bars: list[Bar]) -> Path:
    from tradeflow.backtest import Ohlcv
    from tradeflow.backtest.report import write_report

    prices = Ohlcv.from_bars(bars)
    title = f"{args.strategy} on {prices.symbol}"
    return write_report(
        args.report, result, prices, title=title, strategy=args.strategy, params=parse_params(args.param)
    )


def spec_path(value: str) -> Path | None:
    """The rule spec file `--strategy` names (a .json path, or an existing file that is not a
    registered strategy's name), else None."""
    from tradeflow.strategies import registered

    path = Path(value)
    if value.endswith(".json") or (path.is_file() and value not in registered()):
        return path
    return None


def load_spec(path: Path) -> dict[str, Any]:
    """A rule spec document; unreadable files and JSON syntax errors name the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"--strategy {path}: cannot read the rule spec: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"--strategy {path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    if not isinstance(document, dict):
        raise CommandError(f"--strategy {path}: a rule spec is a JSON object, not {type(document).__name__}")
    return document


def load_strategy(value: str, params: list[str]) -> Any:
    """`--strategy NAME` with its `--param`s, or `--strategy SPEC.json` (a `rules` strategy)."""
    from tradeflow.strategies import StrategyError, create

    path = spec_path(value)
    if path is None:
        try:
            return create(value, parse_params(params))
        except StrategyError as exc:
            raise CommandError(str(exc)) from exc
    if params:
        raise CommandError(f"--param does not apply to a rule spec: its parameters live in the spec ({path})")
    document = load_spec(path)
    try:
        return create("rules", document)
    except StrategyError as exc:
        raise CommandError(f"--strategy {path}: {exc}") from exc


def _backtest(args: argparse.Namespace) -> Any:
    from tradeflow.backtest import BacktestConfig, run_backtest

    strategy = load_strategy(args.strategy, args.param)
    try:
        config = BacktestConfig(
            cash=args.cash,
            commission=args.commission,
            slippage_bps=args.slippage_bps,
            fill=args.fill,
            size_pct=args.size_pct,
            allow_short=args.allow_short,
        )
    except ValidationError as exc:
        raise CommandError(describe(exc)) from exc
    bars = load_data(args.data, args.symbol, args.timeframe)
    if len(bars) <= strategy.warmup:
        raise CommandError(
            f"{args.strategy} needs more than {strategy.warmup} bars to warm up; {args.data} has {len(bars)}"
        )
    return run_backtest(bars, strategy, config), bars


def render(metrics: dict[str, Any]) -> str:
    width = max(len(k) for k in metrics)
    lines = []
    for key, value in metrics.items():
        shown = f"{value:,.4f}" if isinstance(value, float) else ("-" if value is None else str(value))
        lines.append(f"{key:<{width}}  {shown:>16}")
    return "\n".join(lines)
