"""The command line refuses bad arguments with a message naming what is wrong."""

from __future__ import annotations

import pytest

from tradeflow.cli import main


def test_unknown_demo_symbols_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["local", "up", "--symbols", "GOOG,FOO,BAR"]) == 2
    err = capsys.readouterr().err
    assert "unknown FOO, BAR" in err and "GOOG" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["local", "up", "--speed", "0"], "--speed: must be positive"),
        (["local", "up", "--start", "yesterday"], "--start"),
        (["invoke", "nope", "events/x.json"], "invalid choice: 'nope'"),
    ],
)
def test_bad_arguments_exit_with_usage(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
