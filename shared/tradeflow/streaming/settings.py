"""The streamer's settings, read from its environment (the Fargate task definition, or the local cloud).

| variable | default | meaning |
|---|---|---|
| `TRADEFLOW_STREAMER_ID` | host-pid-random | this instance's name: lease owner and heartbeat key |
| `TRADEFLOW_STREAMER_REFRESH_SECONDS` | 30 | how often the deployments are re-read |
| `TRADEFLOW_STREAMER_LEASE_SECONDS` | 30 | an account lease's length (renewed every quarter of it) |
| `TRADEFLOW_STREAMER_HEARTBEAT_SECONDS` | 15 | how often the heartbeat record and metrics are written |
| `TRADEFLOW_STREAMER_SILENCE_SECONDS` | 60 | a stream silent this long is treated as dead |
| `TRADEFLOW_STREAMER_BAR_GRACE_SECONDS` | 5 | how long after its minute a forming bar may still change |
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

PREFIX = "TRADEFLOW_STREAMER_"


def default_instance_id() -> str:
    """Unique per process: a restarted task must not mistake its predecessor's lease for its own."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


class StreamerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_id: str = Field(default_factory=default_instance_id, min_length=1, max_length=128)
    refresh_seconds: float = Field(default=30.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    silence_seconds: float = Field(default=60.0, gt=0)
    bar_grace_seconds: float = Field(default=5.0, ge=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StreamerSettings:
        """The settings named in `environ` (default: the process environment); the rest default.
        Raises pydantic's ValidationError naming the variable's field when a value is invalid."""
        env = os.environ if environ is None else environ
        variables = {name: PREFIX + ("ID" if name == "instance_id" else name.upper()) for name in cls.model_fields}
        return cls.model_validate({name: env[var] for name, var in variables.items() if var in env})
