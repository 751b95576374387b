"""The HTML backtest report renders in a real browser: `tradeflow backtest --report` on a shipped dataset,
then Debian's `chromium` headless takes a screenshot and dumps the DOM.

`chromium` is required, not optional: `make test` installs it when missing (see the Makefile), so a
machine without it fails here with a message saying how to install it instead of skipping silently.
The screenshot and the report are kept under `test-artifacts/report-chromium/` (gitignored) to look at.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from helpers import chromium_path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "report-chromium"
WIDTH, HEIGHT = 1400, 3000
TIMEOUT_S = 60

pytestmark = pytest.mark.xdist_group("chromium")  # one browser at a time, on one worker


def browse(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless chromium with a fresh profile and no background traffic, time-boxed."""
    profile = tmp_path / "chromium-profile"  # fresh for every test
    command = [
        chromium_path("the report's browser test"),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"chromium did not finish within {TIMEOUT_S} s: {' '.join(command)}\n{exc.stderr!r}")


def png_summary(path: Path) -> tuple[int, int, int, float]:
    """(width, height, distinct byte values, share of the commonest byte) of the PNG's decompressed
    scanlines. A single-colour image decompresses to a handful of byte values (the colour, or zeros once
    filtered); a rendered page to nearly all 256."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, width, height, idat = 8, 0, 0, bytearray()
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        chunk = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(chunk[:4], "big"), int.from_bytes(chunk[4:8], "big")
        elif kind == b"IDAT":
            idat += chunk
        position += 12 + length
    raw = zlib.decompress(bytes(idat))
    counts = [0] * 256
    for value in raw[:: max(1, len(raw) // 2_000_000)]:  # a sample is plenty
        counts[value] += 1
    return width, height, sum(1 for c in counts if c), max(counts) / sum(counts)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = tmp_path_factory.mktemp("report") / "goog-sma_cross.html"  # private to this run; copied below
    script = Path(sys.executable).with_name("tradeflow")  # the venv's console script
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tradeflow.cli"]
    done = subprocess.run(
        [*command, "backtest", "--strategy", "sma_cross", "--data", "GOOG", "--json", "--report", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"exit {done.returncode}\nstdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-4000:]}"
    document = json.loads(done.stdout)  # stdout stays one JSON object with --report
    assert str(out) in done.stderr
    assert out.is_file()
    shutil.copyfile(out, ARTIFACTS / out.name)
    return out, document


def test_chromium_screenshot_is_a_rendered_page(report: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    page, _ = report
    shot = ARTIFACTS / "goog-sma_cross.png"
    shot.unlink(missing_ok=True)
    done = browse(tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.is_file(), f"no screenshot written; chromium said:\n{done.stderr[-2000:]}"
    assert shot.stat().st_size > 20_000, f"screenshot is only {shot.stat().st_size} bytes"
    width, height, distinct, commonest = png_summary(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    assert distinct > 64, f"screenshot looks blank: {distinct} distinct byte values"
    assert commonest < 0.99


def test_chromium_dom_has_the_charts_and_tables(report: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    page, document = report
    done = browse(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    (ARTIFACTS / "goog-sma_cross.dom.html").write_text(dom, encoding="utf-8")
    for chart in ("chart-price", "chart-equity", "chart-drawdown"):
        assert f'<svg id="{chart}"' in dom, chart
    for table in ("monthly-returns", "metrics-table", "trades-table", "settings-table"):
        assert f'<table id="{table}"' in dom, table
    trades = document["trades"]
    assert isinstance(trades, list) and trades
    assert dom.count('class="mk entry ') == dom.count('class="mk exit ') == len(trades)
    assert "<title>sma_cross on GOOG</title>" in dom


def test_chromium_renders_a_goog_spy_portfolio_report(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = tmp_path / "goog-spy-sma_cross.html"
    script = Path(sys.executable).with_name("tradeflow")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tradeflow.cli"]
    done = subprocess.run(
        [*command, "backtest", "--strategy", "sma_cross", "--data", "GOOG", "--data", "SPY", "--size-pct", "50",
         "--json", "--report", str(page)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"exit {done.returncode}\nstdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-4000:]}"
    trades = json.loads(done.stdout)["trades"]
    shutil.copyfile(page, ARTIFACTS / page.name)

    shot = ARTIFACTS / "goog-spy-sma_cross.png"
    shot.unlink(missing_ok=True)
    browsed = browse(tmp_path, f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", page.as_uri())
    assert browsed.returncode == 0, browsed.stderr[-2000:]
    assert shot.is_file(), f"no screenshot written; chromium said:\n{browsed.stderr[-2000:]}"
    width, height, distinct, commonest = png_summary(shot)
    assert (width, height) == (WIDTH, HEIGHT)
    assert distinct > 64 and commonest < 0.99, "screenshot looks blank"

    browsed = browse(tmp_path, "--dump-dom", page.as_uri())
    assert browsed.returncode == 0, browsed.stderr[-2000:]
    dom = browsed.stdout
    (ARTIFACTS / "goog-spy-sma_cross.dom.html").write_text(dom, encoding="utf-8")
    for chart in ("chart-price-1", "chart-price-2", "chart-equity", "chart-drawdown"):
        assert f'<svg id="{chart}"' in dom, chart
    for table in ("monthly-returns", "symbols-table", "metrics-table", "trades-table", "settings-table"):
        assert f'<table id="{table}"' in dom, table
    assert 'aria-label="GOOG close price with' in dom and 'aria-label="SPY close price with' in dom
    assert dom.count('class="mk entry ') == dom.count('class="mk exit ') == len(trades)
    assert "<title>sma_cross on GOOG + SPY</title>" in dom
