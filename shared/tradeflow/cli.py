"""The `tradeflow` command.

tradeflow local up [--aws-port 5000] [--api-port 8000] [--ws-port 8001] [--speed 60] [--duration S]
                   [--summary-json PATH] [--no-brokers]
tradeflow local token --tenant T --user U [--role admin]... [--ttl 3600]
tradeflow invoke FUNCTION EVENT.json [--aws-endpoint URL]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from tradeflow.catalogue import FUNCTIONS


def _parse_time(value: str) -> datetime:
    from tradeflow.domain.types import parse_iso

    try:
        return parse_iso(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--start: {exc} (use e.g. 2026-01-05T14:30:00Z)") from exc


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradeflow", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="the local cloud")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    up = local_commands.add_parser("up", help="start the local cloud with the trading demo (foreground)")
    up.add_argument("--aws-port", type=int, default=5000, help="port of moto's server (default 5000)")
    up.add_argument("--api-port", type=int, default=8000, help="port of the REST API (default 8000; 0: none)")
    up.add_argument("--ws-port", type=int, default=8001, help="port of the WebSocket API (default 8001; 0: none)")
    up.add_argument("--speed", type=_positive, default=60.0, help="simulated seconds per wall second (default 60)")
    up.add_argument("--duration", type=_positive, default=None, help="stop by itself after this many seconds")
    up.add_argument("--summary-json", type=Path, default=None, help="write the run's summary here on exit")
    up.add_argument("--start", type=_parse_time, default=None, help="replay clock origin (default: now)")
    up.add_argument("--no-demo", action="store_true", help="do not seed the demo tenant and its replay")
    up.add_argument(
        "--no-brokers", action="store_true", help="start without the Alpaca and Binance stubs and the streamer"
    )
    up.add_argument("--symbols", default=None, help="comma-separated subset of the demo symbols")
    up.add_argument("--log-format", choices=("pretty", "json"), default="pretty")
    up.add_argument(
        "--flag",
        action="append",
        default=[],
        choices=sorted({spec.context_flag for spec in FUNCTIONS.values() if spec.context_flag}),
        help="run an optional part, as CDK's -c FLAG=true deploys it (e.g. timestream; repeatable)",
    )
    up.add_argument("--status-every", type=float, default=15.0, help="seconds between account status lines (0: none)")
    token = local_commands.add_parser("token", help="print a bearer token of the local dev issuer (TOKEN=$(...))")
    token.add_argument("--tenant", required=True, help="tenant id the token is for")
    token.add_argument("--user", required=True, help="user id (the token's sub)")
    token.add_argument("--role", action="append", default=[], help="a role, e.g. admin (repeatable)")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")

    from tradeflow.backtest.command import add_parser as add_backtest
    from tradeflow.backtest.optimize_command import add_parser as add_optimize

    add_backtest(commands)
    add_optimize(commands)

    invoke = commands.add_parser("invoke", help="run a function's handler against the local cloud")
    invoke.add_argument("function", choices=sorted(FUNCTIONS))
    invoke.add_argument("event", type=Path, help="event JSON file (see events/)")
    invoke.add_argument("--aws-endpoint", default="http://127.0.0.1:5000", help="the local cloud's AWS endpoint")
    return parser


def local_token(args: argparse.Namespace) -> int:
    """Print just the token, so scripts can do TOKEN=$(tradeflow local token ...)."""
    from tradeflow.api.dev_issuer import DevIssuer

    try:
        print(DevIssuer().issue(args.tenant, args.user, roles=args.role, ttl_seconds=args.ttl))
    except ValueError as exc:
        print(f"tradeflow local token: {exc}", file=sys.stderr)
        return 2
    return 0


def local_up(args: argparse.Namespace) -> int:
    from tradeflow.local.cloud import LocalCloud, LocalCloudConfig, write_summary
    from tradeflow.local.console import install_console

    if args.symbols:
        from tradeflow.local.demo import DEMO_FEEDS

        known = [s for s, _ in DEMO_FEEDS]
        unknown = [s for s in args.symbols.split(",") if s not in known]
        if unknown:
            print(
                f"tradeflow local up: --symbols: unknown {', '.join(unknown)}; choose from {', '.join(known)}",
                file=sys.stderr,
            )
            return 2
    pretty = args.log_format == "pretty"
    config = LocalCloudConfig(
        aws_port=args.aws_port,
        speed=args.speed,
        duration=args.duration,
        start=args.start,
        demo=not args.no_demo,
        demo_symbols=args.symbols.split(",") if args.symbols else None,
        console=pretty,
        status_seconds=args.status_every or None,
        api_port=args.api_port or None,
        ws_port=args.ws_port or None,
        brokers=not args.no_brokers,
        flags=frozenset(args.flag),
    )
    cloud = LocalCloud(config)
    tally = None
    if pretty:
        from tradeflow.local.emf import EmfTally

        tally = EmfTally(sys.stdout)
        sys.stdout = tally
        install_console()  # for the start-up lines; installed again once the handlers are loaded
    interrupted = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted:  # a second Ctrl-C: stop now, without waiting for in-flight work
            raise KeyboardInterrupt
        interrupted = True
        cloud.halt_schedules.set()
        cloud.stop_event.set()

    previous = signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        cloud.start()
        print(
            f"tradeflow local cloud: AWS endpoint {cloud.endpoint}  (export AWS_ENDPOINT_URL={cloud.endpoint})\n"
            f"replay clock starts {cloud.clock.start.isoformat()} at {config.speed:g}x; Ctrl-C stops",
            flush=True,
        )
        if cloud.api is not None or cloud.ws is not None:
            _print_api_banner(cloud.api, demo=config.demo, ws=cloud.ws, brokers=cloud.brokers)
        cloud.run()
        if interrupted:
            cloud.stop_event.clear()  # let the pollers finish what is in flight, briefly
            print("stopping: finishing in-flight messages (Ctrl-C again to stop at once) ...", flush=True)
            cloud.drain(timeout=5, market=False)
        else:
            print("draining: no new decisions, waiting for in-flight orders ...", flush=True)
            cloud.drain()
        cloud.stop_workers()
        summary = cloud.summary()
        _print_summary(summary)
        if tally is not None:
            print(f"metrics (from the functions' EMF lines): {dict(sorted(tally.totals.items()))}")
        if args.summary_json:
            write_summary(summary, args.summary_json)
            print(f"summary written to {args.summary_json}")
    finally:
        cloud.shutdown()
        signal.signal(signal.SIGINT, previous)
        if tally is not None:
            sys.stdout = tally.stream
    return 0


def _print_api_banner(api: Any, demo: bool, ws: Any = None, brokers: Any = None) -> None:
    """Where the REST and WebSocket APIs and the broker stubs are, and a ready token for a user of the
    demo tenant."""
    from tradeflow.local.demo import DEMO_TENANT

    lines = []
    if brokers is not None:
        from tradeflow.local.brokers import BINANCE_KEY, BINANCE_SECRET

        lines.append(
            f"Broker stubs: Alpaca {brokers.alpaca.base_url} (any key pair opens a paper account), "
            f"Binance {brokers.binance.base_url} (api_key {BINANCE_KEY}, secret {BINANCE_SECRET})"
        )
    if api is not None:
        lines.append(f"REST API {api.url}  (docs {api.url}/docs)")
    if ws is not None:
        lines.append(f"WebSocket API {ws.url}/?token=$TOKEN  (@connections at {ws.management_url})")
    if demo and api is not None:
        token = api.issuer.issue(DEMO_TENANT, "demo-trader", ttl_seconds=12 * 3600)
        lines.append(f"token of demo/demo-trader, valid 12 h:\nexport TOKEN={token}")
        # the token rides in the fragment: the browser never sends it to a server
        lines.append(f"Dashboard {api.url}/#token={token}")
    print("\n".join(lines), flush=True)


def _print_summary(summary: Any) -> None:
    print("\n=== summary ===")
    print(
        f"signals {summary.signals}  orders {summary.orders}  fills {summary.fills}  "
        f"rejections {summary.rejections}  dead letters {summary.dead_letters}"
    )
    print(f"signal outcomes: {json.dumps(summary.outcomes)}")
    for account in summary.accounts:
        print(
            f"account {account.tenant_id}/{account.account_id}: cash {account.cash:,.2f}  "
            f"positions {account.positions_value:,.2f}  equity {account.equity:,.2f}  "
            f"realized P&L {account.realized_pnl:,.2f}  open {account.open_positions or '-'}"
        )


def invoke(args: argparse.Namespace) -> int:
    from tradeflow.local.environment import use_local_cloud
    from tradeflow.local.lambdas import LocalLambdas

    try:
        event = json.loads(args.event.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"tradeflow invoke: cannot read event {args.event}: {exc}", file=sys.stderr)
        return 2
    import contextlib
    import logging

    use_local_cloud(args.aws_endpoint)
    lambdas = LocalLambdas([args.function])
    # The function's logs and metrics go to stderr; stdout carries only its result (pipe it to jq).
    for handler in logging.getLogger(f"tradeflow-{args.function}").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    with contextlib.redirect_stdout(sys.stderr):
        result = lambdas.invoke(args.function, event)
    print(json.dumps(result, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "local":
        return local_token(args) if args.local_command == "token" else local_up(args)
    if args.command == "backtest":
        from tradeflow.backtest.command import run

        return run(args)
    if args.command == "optimize":
        from tradeflow.backtest.optimize_command import run as run_optimize

        return run_optimize(args)
    return invoke(args)


if __name__ == "__main__":
    sys.exit(main())
