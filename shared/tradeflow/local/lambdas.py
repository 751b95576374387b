"""A local Lambda runtime: loads each function's `functions/<name>/handler.py` and invokes it with
AWS-shaped events and a Lambda context. One invocation at a time per function, like a single warm
Lambda instance (Powertools keeps per-invocation state in module-level objects)."""

from __future__ import annotations

import importlib.util
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tradeflow.catalogue import FUNCTIONS
from tradeflow.local.environment import LOCAL_REGION
from tradeflow.scheduling.schedules import LOCAL_ACCOUNT


def repo_root() -> Path:
    """The checkout holding `functions/` (the package is installed in editable mode from it)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "functions").is_dir() and (parent / "pyproject.toml").is_file():
            return parent
    raise FileNotFoundError("cannot find the repository's functions/ folder next to the tradeflow package")


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.invoked_function_arn = f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class InvocationStats:
    count: int = 0
    errors: int = 0
    durations_ms: list[float] = field(default_factory=list)


def load_handler(name: str, root: Path | None = None) -> Callable[[dict[str, Any], Any], Any]:
    path = (root or repo_root()) / "functions" / name / "handler.py"
    spec = importlib.util.spec_from_file_location(f"tradeflow_function_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Callable[[dict[str, Any], Any], Any] = module.handler
    return handler


class LocalLambdas:
    def __init__(self, names: list[str] | None = None) -> None:
        self.handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        self.locks: dict[str, threading.Lock] = {}
        self.stats: dict[str, InvocationStats] = {}
        for name in names or list(FUNCTIONS):
            self.handlers[name] = load_handler(name)
            self.locks[name] = threading.Lock()
            self.stats[name] = InvocationStats()

    def by_arn(self, arn: str) -> str | None:
        function = arn.rsplit(":", 1)[-1]
        for name in self.handlers:
            if FUNCTIONS[name].physical_name() == function:
                return name
        return None

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        spec = FUNCTIONS[name]
        context = LambdaContext(spec.physical_name(), spec.memory_mb, spec.timeout_seconds)
        stats = self.stats[name]
        with self.locks[name]:
            started = time.perf_counter()
            try:
                return self.handlers[name](event, context)
            except Exception:
                stats.errors += 1
                raise
            finally:
                stats.count += 1
                stats.durations_ms.append((time.perf_counter() - started) * 1000)
