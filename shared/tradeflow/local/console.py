"""Readable log lines for `tradeflow local up`: the handlers' structured Powertools records (signal,
risk decision, order, fill) rendered one line each. `--log-format json` keeps the raw JSON lines."""

from __future__ import annotations

import logging
import os
import sys
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

FUNCTION_LOGGERS = (
    "tradeflow-strategy",
    "tradeflow-risk",
    "tradeflow-execution",
    "tradeflow-paper_exchange",
    "tradeflow-reconcile",
)


def _money(value: Any) -> str:
    try:
        return f"{Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)


def render(record: logging.LogRecord) -> str | None:
    get = record.__dict__.get
    event = get("event")
    if event == "signal":
        reasons = get("reasons") or {}
        return (
            f"SIGNAL  {get('tenant_id')}/{get('deployment_id')} {get('symbol'):<9} {get('action'):<4} "
            f"@ {get('price')}  {reasons.get('rule', '')}: fast {reasons.get('fast')} slow {reasons.get('slow')}"
        )
    if event == "risk":
        if get("status") == "approved":
            why = get("reason") or "within limits"
            return f"RISK    approved {get('side')} {get('quantity')} {get('symbol')}  ({why})"
        if get("status") == "rejected":
            return f"RISK    rejected {get('action')} {get('symbol')}: {get('reason')}"
        return None
    if event == "order":
        if get("status") in ("submitted", "rejected"):
            detail = f": {get('detail')}" if get("detail") else ""
            return (
                f"ORDER   {get('client_order_id')} {get('side')} {get('quantity')} {get('symbol')} "
                f"-> {get('order_status')}{detail}"
            )
        return None
    if event == "fill":
        return (
            f"FILL    {get('side')} {get('quantity')} {get('symbol')} @ {get('price')} fee {get('fee')}  "
            f"position {get('position')}  realized P&L {_money(get('realized_pnl'))}  cash {_money(get('cash'))}"
        )
    if event == "reconcile":
        if get("status") == "ok" and not get("differences"):
            return None  # a clean reconciliation every 5 simulated minutes is not news
        return (
            f"RECON   {get('tenant_id')}/{get('account_id')} ({get('broker')}): {get('status')}, "
            f"{get('differences')} difference(s), {get('repaired')} repaired, {get('unexplained')} unexplained"
            + (f": {get('reason')}" if get("reason") else "")
        )
    if event in ("dead_letter", "attempt_failed"):
        return f"{'DLQ' if event == 'dead_letter' else 'RETRY':<7} {record.getMessage()}: {get('reason')}"
    if record.levelno >= logging.WARNING:
        return f"{record.levelname:<7} {record.name}: {record.getMessage()}"
    return None


class ConsoleHandler(logging.Handler):
    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stdout

    def emit(self, record: logging.LogRecord) -> None:
        line = render(record)
        if line is not None:
            self.stream.write(line + "\n")
            self.stream.flush()


_DEVNULL = open(os.devnull, "w")  # noqa: SIM115  (lives as long as the process)


def tap_function_logs(handler: logging.Handler, level: int = logging.INFO) -> None:
    """Send the functions' log records to `handler` instead of their JSON stream. Powertools' own
    handler stays registered (silenced), so a function loaded again in this process still finds the
    Logger it configured."""
    for name in FUNCTION_LOGGERS:
        logger = logging.getLogger(name)
        for existing in list(logger.handlers):
            if isinstance(existing, logging.StreamHandler):
                existing.setStream(_DEVNULL)  # Powertools' JSON handler
            else:
                logger.removeHandler(existing)  # an earlier tap
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


def install_console(stream: TextIO | None = None) -> None:
    """Route the functions' loggers (and the local cloud's own) to readable lines."""
    tap_function_logs(ConsoleHandler(stream))
    local = logging.getLogger("tradeflow.local")
    local.handlers = [_plain(stream)]
    local.setLevel(logging.INFO)
    local.propagate = False
    # moto's HTTP access log and Powertools' batch tracebacks would drown the trading lines; failures
    # still show as RETRY/DLQ lines above.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    powertools = logging.getLogger("aws_lambda_powertools")
    powertools.handlers = [_FirstLine(stream)]
    powertools.setLevel(logging.ERROR)
    powertools.propagate = False


class _FirstLine(logging.StreamHandler):  # type: ignore[type-arg]
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname:<7} {record.getMessage().splitlines()[0]}"


def _plain(stream: TextIO | None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler
