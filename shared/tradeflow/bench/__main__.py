"""`make bench` (python -m tradeflow.bench [--quick])."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from tradeflow.local.emf import EmfTally


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tradeflow.bench")
    parser.add_argument("--quick", action="store_true", help="fewer samples, shorter pipeline run")
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--sustainable-speed", type=float, default=6.0)
    args = parser.parse_args()
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    sys.stdout = EmfTally(sys.stdout)  # the functions' metric lines are counted, not printed
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from tradeflow.bench import api, backtest, brokers, cold_imports, handlers, pipeline, realtime

    cold_imports.report(cold_imports.measure(3 if args.quick else 7))
    backtest.report(backtest.measure(quick=args.quick))
    handlers.report(handlers.measure(50 if args.quick else 200))
    api.report(api.measure(50 if args.quick else 200))
    realtime.report(realtime.measure(1000, 3 if args.quick else 10, 30 if args.quick else 100))
    brokers.report(brokers.measure(3 if args.quick else 7, 50 if args.quick else 200))
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO"  # the pipeline bench reads the functions' log records
    seconds = 20.0 if args.quick else args.seconds
    # First at a clock faster than the machine can follow (the ceiling), then at one it can
    # (latency without a backlog: 100 symbols x 6 evaluations per wall minute each).
    pipeline.report(pipeline.run(args.symbols, seconds, args.speed), args.speed)
    pipeline.report(pipeline.run(args.symbols, seconds, args.sustainable_speed), args.sustainable_speed)


if __name__ == "__main__":
    main()
