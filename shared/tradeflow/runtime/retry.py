"""Jittered backoff between optimistic-concurrency retries."""

from __future__ import annotations

import random
import time


def backoff(attempt: int) -> None:
    """Sleep a random time up to 5 ms x 2^attempt (capped at 200 ms): full jitter spreads
    contending writers apart instead of letting them collide again in step."""
    time.sleep(min(0.2, 0.005 * 2**attempt) * random.random())
