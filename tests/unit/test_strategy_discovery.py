"""User strategies: discovered once, lazily, from TRADEFLOW_STRATEGY_PATH and the `tradeflow.strategies`
entry points; failures are errors naming the file, never silent skips."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent

import pytest

from tradeflow.backtest import run_backtest
from tradeflow.marketdata import load_dataset
from tradeflow.strategies import StrategyError, create, discovery, registered

USER_STRATEGY = dedent(
    '''
    from pydantic import BaseModel

    from tradeflow.domain import SignalAction
    from tradeflow.strategies import Decision, Strategy, register


    class Params(BaseModel):
        lookback: int = 3


    @register("{name}")
    class UpStreak(Strategy):
        """Buys after `lookback` higher closes, sells after as many lower ones."""

        Params = Params

        @property
        def warmup(self):
            return self.params.lookback + 1

        def evaluate(self, bars):
            closes = [float(b.close) for b in bars[-self.warmup :]]
            steps = [b - a for a, b in zip(closes, closes[1:])]
            if all(s > 0 for s in steps):
                return Decision(action=SignalAction.BUY, reasons={{"streak": "up"}})
            if all(s < 0 for s in steps):
                return Decision(action=SignalAction.SELL, reasons={{"streak": "down"}})
            return Decision(action=SignalAction.HOLD)
    '''
)


@pytest.fixture(autouse=True)
def _fresh_discovery(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(discovery.PATH_VARIABLE, raising=False)
    discovery.reset()
    yield
    discovery.reset()


def _write(directory: Path, filename: str, text: str) -> Path:
    path = directory / filename
    path.write_text(text)
    return path


def test_a_user_file_on_the_path_is_registered_and_backtests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "up_streak.py", USER_STRATEGY.format(name="up_streak"))
    monkeypatch.setenv(discovery.PATH_VARIABLE, str(path))
    assert "up_streak" in registered()
    assert discovery.user_strategies() == ["up_streak"]
    strategy = create("up_streak", {"lookback": 4})
    result = run_backtest(load_dataset("GOOG"), strategy)
    assert result.metrics.trades > 0


def test_directories_and_several_entries_are_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    _write(one, "a.py", USER_STRATEGY.format(name="user_a"))
    _write(one, "_helper.py", "raise RuntimeError('helpers starting with _ are not imported')\n")
    _write(two, "b.py", USER_STRATEGY.format(name="user_b"))
    monkeypatch.setenv(discovery.PATH_VARIABLE, os.pathsep.join([str(one), "", str(two)]))
    assert {"user_a", "user_b"} <= set(registered())
    assert "sma_cross" in registered() and "rules" in registered()


def test_loading_is_lazy_and_happens_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = tmp_path / "count.txt"
    text = USER_STRATEGY.format(name="counted") + f"\nwith open({str(counter)!r}, 'a') as f:\n    f.write('x')\n"
    monkeypatch.setenv(discovery.PATH_VARIABLE, str(_write(tmp_path, "counted.py", text)))
    assert not counter.exists()
    create("sma_cross")
    registered()
    create("counted")
    assert counter.read_text() == "x"


def test_a_broken_file_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "broken.py", "import not_a_module_anywhere\n")
    monkeypatch.setenv(discovery.PATH_VARIABLE, str(path))
    with pytest.raises(StrategyError) as info:
        registered()
    message = str(info.value)
    assert str(path.resolve()) in message
    assert "ModuleNotFoundError: No module named 'not_a_module_anywhere'" in message
    with pytest.raises(StrategyError, match=r"broken\.py"):  # still an error on the next call, not a skip
        create("sma_cross")


def test_a_syntax_error_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "typo.py", "def oops(:\n")
    monkeypatch.setenv(discovery.PATH_VARIABLE, str(path))
    with pytest.raises(StrategyError, match=r"typo\.py: SyntaxError"):
        registered()


def test_a_failure_rolls_back_what_the_same_attempt_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = _write(tmp_path, "a_good.py", USER_STRATEGY.format(name="good_one"))
    bad = _write(tmp_path, "b_bad.py", "raise ValueError('boom')\n")
    monkeypatch.setenv(discovery.PATH_VARIABLE, os.pathsep.join([str(good), str(bad)]))
    with pytest.raises(StrategyError, match=r"b_bad\.py: ValueError: boom"):
        registered()
    monkeypatch.setenv(discovery.PATH_VARIABLE, str(good))
    assert "good_one" in registered()  # retried, and no "already registered" from the first attempt


def test_a_clash_with_a_builtin_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "clash.py", USER_STRATEGY.format(name="sma_cross"))
    monkeypatch.setenv(discovery.PATH_VARIABLE, str(path))
    with pytest.raises(StrategyError) as info:
        registered()
    message = str(info.value)
    assert "clash.py" in message
    assert "strategy 'sma_cross' is already registered: the built-in tradeflow.strategies.sma_cross.SmaCross" in message
    monkeypatch.delenv(discovery.PATH_VARIABLE)
    assert create("sma_cross").__class__.__module__ == "tradeflow.strategies.sma_cross"


def test_a_missing_path_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(discovery.PATH_VARIABLE, str(tmp_path / "nowhere.py"))
    with pytest.raises(
        StrategyError, match=r"TRADEFLOW_STRATEGY_PATH: .*nowhere\.py is neither a \.py file nor a directory"
    ):
        registered()


def test_entry_points_are_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    module = _write(tmp_path, "ep_strategies.py", USER_STRATEGY.format(name="from_entry_point"))
    monkeypatch.syspath_prepend(str(tmp_path))
    point = metadata.EntryPoint(name="ep", value=module.stem, group=discovery.ENTRY_POINT_GROUP)
    monkeypatch.setattr(metadata, "entry_points", lambda group: [point] if group == discovery.ENTRY_POINT_GROUP else [])
    try:
        assert "from_entry_point" in registered()
    finally:
        import sys

        sys.modules.pop(module.stem, None)
    broken = metadata.EntryPoint(name="bad", value="no_such_module_xyz", group=discovery.ENTRY_POINT_GROUP)
    discovery.reset()
    monkeypatch.setattr(metadata, "entry_points", lambda group: [broken])
    with pytest.raises(StrategyError, match=r"entry point bad = no_such_module_xyz .*ModuleNotFoundError"):
        registered()
