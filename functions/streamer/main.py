"""The streamer's entry point: `python functions/streamer/main.py` (the Fargate task's command).

Thin on purpose (design rule 2): JSON logs on stdout (CloudWatch Logs through the awslogs driver), the
settings from the environment (`tradeflow.streaming.settings`), SIGTERM/SIGINT turned into a graceful
stop — ECS sends SIGTERM and waits `stopTimeout` before SIGKILL, time enough to close the streams and
release the leases so another task takes the accounts over at once — and `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from tradeflow.streaming.heartbeat import SERVICE
from tradeflow.streaming.service import Streamer
from tradeflow.streaming.settings import StreamerSettings


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(LambdaPowertoolsFormatter(service=SERVICE, utc=True))
    logging.basicConfig(level=os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO").upper(), handlers=[handler], force=True)


def build_streamer(settings: StreamerSettings) -> Streamer:
    # The broker SDKs load here, in the one process that streams (design rule 9).
    from tradeflow.streaming.broker_streams import streams_for

    return Streamer(
        streams_for,
        instance_id=settings.instance_id,
        refresh_seconds=settings.refresh_seconds,
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        silence_seconds=settings.silence_seconds,
        bar_grace_seconds=settings.bar_grace_seconds,
    )


async def serve(streamer: Streamer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await streamer.run(stop)


def main() -> None:
    configure_logging()
    settings = StreamerSettings.from_env()
    logging.getLogger("tradeflow.streaming").info("streamer settings: %s", settings.model_dump())
    asyncio.run(serve(build_streamer(settings)))


if __name__ == "__main__":
    main()
