"""The local clock: real time, or accelerated (`speed` simulated seconds per wall second) for replays.

Simulated time is what handlers receive as "now" (the schedule's scheduled time), so a replay at any
speed makes the same decisions as one in real time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


def floor_minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


class LocalClock:
    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start or floor_minute(datetime.now(UTC))
        self.speed = speed
        self._t0 = time.monotonic()

    def restart(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    def wait_until(self, moment: datetime, stop: threading.Event, max_wall: float = 0.25) -> bool:
        """Sleep (at most `max_wall` seconds, and not past a stop) towards `moment`; True once reached."""
        remaining = (moment - self.now()).total_seconds() / self.speed
        if remaining <= 0:
            return True
        stop.wait(min(remaining, max_wall))
        return (moment - self.now()).total_seconds() <= 0
