"""User-supplied strategies: found once, lazily, the first time the registry is asked (`create`,
`registered`).

Two sources, in this order:

1. Installed packages declaring an entry point in the group `tradeflow.strategies`
   (`[project.entry-points."tradeflow.strategies"] my_strategy = "my_package.strategies"`): the entry
   point is loaded, which imports its module and so runs its `@register(...)` decorators. An entry
   point naming a Strategy subclass that is not registered yet is registered under the entry point's
   name.
2. `TRADEFLOW_STRATEGY_PATH`: `os.pathsep`-separated `.py` files or directories (whose `*.py` files
   are taken in name order, skipping names starting with `_`), each imported by file path under a
   private module name (`tradeflow_user_strategies.<stem>_<hash>`).

Nothing is skipped silently: a module that fails to import, a path that does not exist, or a strategy
name that clashes with a built-in (or another user strategy) raises `StrategyError` naming the file and
the problem, and the registry is left as it was before the attempt (the next call tries again).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from tradeflow.strategies import base

ENTRY_POINT_GROUP = "tradeflow.strategies"
PATH_VARIABLE = "TRADEFLOW_STRATEGY_PATH"
_MODULE_PREFIX = "tradeflow_user_strategies"

_state: dict[str, bool] = {"loaded": False, "loading": False}
_user_names: set[str] = set()
_user_modules: set[str] = set()


def ensure_loaded() -> None:
    """Load the user strategies unless done already (re-entrant: a user module may use the registry)."""
    if _state["loaded"] or _state["loading"]:
        return
    _state["loading"] = True
    before = dict(base._REGISTRY)
    modules_before = set(sys.modules)
    try:
        _load_entry_points()
        for path in strategy_paths():
            _load_file(path)
    except BaseException:
        base._REGISTRY.clear()
        base._REGISTRY.update(before)
        for name in set(sys.modules) - modules_before:
            if name.startswith(_MODULE_PREFIX):
                del sys.modules[name]
        raise
    finally:
        _state["loading"] = False
    _user_names.update(set(base._REGISTRY) - set(before))
    _user_modules.update(name for name in set(sys.modules) - modules_before if name.startswith(_MODULE_PREFIX))
    _state["loaded"] = True


def user_strategies() -> list[str]:
    """Names registered by user modules (after `ensure_loaded`)."""
    return sorted(_user_names)


def reset() -> None:
    """Forget the user strategies so the next registry call discovers them again (for tests)."""
    for name in _user_names:
        base._REGISTRY.pop(name, None)
    for module in _user_modules:
        sys.modules.pop(module, None)
    _user_names.clear()
    _user_modules.clear()
    _state["loaded"] = False


def strategy_paths() -> list[Path]:
    """The .py files named by TRADEFLOW_STRATEGY_PATH, in order."""
    files: list[Path] = []
    for entry in os.environ.get(PATH_VARIABLE, "").split(os.pathsep):
        if not entry.strip():
            continue
        path = Path(entry).expanduser()
        if path.is_dir():
            files.extend(sorted(p for p in path.glob("*.py") if not p.name.startswith(("_", "."))))
        elif path.is_file() and path.suffix == ".py":
            files.append(path)
        else:
            raise base.StrategyError(f"{PATH_VARIABLE}: {entry} is neither a .py file nor a directory")
    return files


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
            is_strategy = isinstance(loaded, type) and issubclass(loaded, base.Strategy)
            if is_strategy and loaded not in base._REGISTRY.values():
                base.register(point.name)(loaded)
        except Exception as exc:
            raise base.StrategyError(
                f"cannot load user strategies from entry point {point.name} = {point.value}"
                f" ({ENTRY_POINT_GROUP}): {type(exc).__name__}: {exc}"
            ) from exc


def _load_file(path: Path) -> None:
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:10]
    stem = "".join(ch if ch.isalnum() else "_" for ch in resolved.stem)
    module_name = f"{_MODULE_PREFIX}.{stem}_{digest}"
    if module_name in sys.modules:
        return
    try:
        spec = importlib.util.spec_from_file_location(module_name, resolved)
        if spec is None or spec.loader is None:
            raise ImportError("not an importable Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise base.StrategyError(f"cannot load user strategies from {resolved}: {type(exc).__name__}: {exc}") from exc
