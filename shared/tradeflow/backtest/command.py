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
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tradeflow.domain import Bar
from tradeflow.domain.validation import describe

if TYPE_CHECKING:
    from tradeflow.backtest.config import BacktestConfig


class CommandError(ValueError):
    pass


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("backtest", help="backtest a strategy on a dataset or a CSV file")
    parser.add_argument(
        "--strategy", required=True, help="a registered strategy name (e.g. sma_cross) or a rule spec file (SPEC.json)"
    )
    parser.add_argument(
        "--data",
        required=True,
        action="append",
        help="a shipped dataset (e.g. GOOG) or a CSV file path; repeat it for a portfolio sharing one cash balance",
    )
    parser.add_argument("--symbol", default=None, help="symbol of the CSV's prices (default: the dataset's)")
    parser.add_argument("--timeframe", default=None, help="bar timeframe of a CSV (default 1d)")
    parser.add_argument("--param", action="append", default=[], metavar="K=V", help="strategy parameter")
    parser.add_argument("--cash", type=float, default=10_000.0)
    parser.add_argument("--commission", type=float, default=0.0, help="fraction of notional per fill")
    parser.add_argument("--slippage-bps", type=float, default=0.0)
    parser.add_argument("--fill", choices=("next_open", "close"), default="next_open")
    # Left unset (None), the settings below give way to a rule spec's plan; given, they win over it.
    parser.add_argument("--size-pct", type=float, default=None, help="percent of equity per position (100)")
    parser.add_argument("--allow-short", action="store_true", default=None, help="reverse into shorts on sells")
    parser.add_argument("--stop-loss-pct", type=float, default=None, help="stop this percent from the entry")
    parser.add_argument("--take-profit-pct", type=float, default=None, help="target this percent from the entry")
    parser.add_argument("--trailing-stop-pct", type=float, default=None, help="stop trailing the best price")
    parser.add_argument("--max-holding-bars", type=int, default=None, help="close a position after N bars")
    parser.add_argument(
        "--units",
        choices=("auto", "whole", "fractional"),
        default="auto",
        help="position sizes in whole units or fractions (auto: fractional for crypto and forex, whole for equities)",
    )
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
            "equity_curve": result.equity_curve.tolist(),
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


def _write_report(args: argparse.Namespace, result: Any, bars: list[Bar] | dict[str, list[Bar]]) -> Path:
    from tradeflow.backtest import Ohlcv
    from tradeflow.backtest.report import write_portfolio_report, write_report

    if isinstance(bars, dict):  # a portfolio: symbol -> bars
        series = {symbol: Ohlcv.from_bars(b) for symbol, b in bars.items()}
        named = " + ".join(series) if len(series) <= 6 else f"{len(series)} symbols"
        return write_portfolio_report(
            args.report,
            result,
            series,
            title=f"{args.strategy} on {named}",
            strategy=args.strategy,
            params=parse_params(args.param),
        )
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


def fractional_units(choice: str, symbols: list[str]) -> bool:
    """`--units`: auto trades fractions where every symbol's asset allows them (crypto, forex)."""
    if choice != "auto":
        return choice == "fractional"
    from tradeflow.marketdata.catalog import DATASETS
    from tradeflow.strategies.sessions import asset_class

    def kind(symbol: str) -> str:
        return DATASETS[symbol].asset_class if symbol in DATASETS else asset_class(symbol)

    return all(kind(s) in ("crypto", "fx") for s in symbols)


def run_config(args: argparse.Namespace, symbols: list[str]) -> BacktestConfig:
    """The run's settings from the flags. Only the flags given are set, so that a strategy's plan (a rule
    spec's sizing, side and exits) fills the rest; see `BacktestConfig.resolve_plan`."""
    from tradeflow.backtest import BacktestConfig

    given = {
        "size_pct": args.size_pct,
        "allow_short": args.allow_short,
        "stop_loss_pct": args.stop_loss_pct,
        "take_profit_pct": args.take_profit_pct,
        "trailing_stop_pct": args.trailing_stop_pct,
        "max_holding_bars": args.max_holding_bars,
    }
    try:
        return BacktestConfig(
            cash=args.cash,
            commission=args.commission,
            slippage_bps=args.slippage_bps,
            fill=args.fill,
            fractional=fractional_units(args.units, symbols),
            **{k: v for k, v in given.items() if v is not None},
        )
    except ValidationError as exc:
        raise CommandError(as_flags(describe(exc))) from exc


def _backtest(args: argparse.Namespace) -> Any:
    from tradeflow.backtest import run_backtest
    from tradeflow.backtest.engine import run_portfolio

    strategy = load_strategy(args.strategy, args.param)
    portfolio = len(args.data) > 1
    if portfolio and (args.symbol or args.timeframe):
        raise CommandError("--symbol and --timeframe apply to a single --data; a portfolio names CSVs by file")
    series = {}
    for data in args.data:
        bars = load_data(data, args.symbol, args.timeframe)
        if len(bars) <= strategy.warmup:
            needed = f"{args.strategy} needs more than {strategy.warmup} bars to warm up"
            raise CommandError(f"{needed}; {data} has {len(bars)}")
        if bars[0].symbol in series:
            raise CommandError(f"--data {data}: {bars[0].symbol} is given twice")
        series[bars[0].symbol] = bars
    config = run_config(args, list(series))
    if portfolio:
        return run_portfolio(series, strategy, config), series
    (bars,) = series.values()
    return run_backtest(bars, strategy, config), bars


def as_flags(message: str) -> str:
    """Pydantic's field names as the command's flags: 'backtest.size_pct: ...' -> '--size-pct: ...'."""
    names = {"folds": "walk-forward"}
    parts = []
    for part in message.split("; "):
        field, sep, rest = part.partition(": ")
        name = field.split(".")[-1] if sep else ""
        parts.append(f"--{names.get(name, name).replace('_', '-')}: {rest}" if name else part)
    return "; ".join(parts)


def render(metrics: dict[str, Any]) -> str:
    width = max(len(k) for k in metrics)
    lines = []
    for key, value in metrics.items():
        shown = f"{value:,.4f}" if isinstance(value, float) else ("-" if value is None else str(value))
        lines.append(f"{key:<{width}}  {shown:>16}")
    return "\n".join(lines)
