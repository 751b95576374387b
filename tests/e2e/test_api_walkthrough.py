"""The README's REST API walkthrough, end to end, exactly as written.

The requests are not restated here: they are read from the README's `## REST API` / `### Walkthrough`
section (its ```sh blocks), parsed as curl commands and sent with httpx to the REST API of a local cloud
running in this process (uvicorn on a free port, the demo tenant trading on a fast replay clock). Only
the base URL changes (the README's `export API=http://127.0.0.1:8000` must be exactly that). The token
comes from the README's own `tradeflow local token ...` command, run in a subprocess. When `jq` is
installed, every `| jq ...` of the README is run on the response too (so its filters are checked), and
`export X=$(curl ... | jq -r PATH)` takes the value jq prints.

`STEPS` says what each request must do, in the README's order; where the README says "repeat until", the
test repeats the request until it does. A README edit that adds, removes or reorders a request fails
here with the difference, so the README and the test cannot drift apart.

What it proves (issue 4, "done when"): a token; a paper account; a strategy; a synchronous backtest with
metrics; a paper deployment on demo symbols; orders and positions appearing for the new account; the
kill switch: strategy signals rejected with its reason afterwards, a manual order rejected with it, and
no new order on any account of the tenant for several seconds of replay; release; stop.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tradeflow.local.cloud import LocalCloud
from tradeflow.local.demo import DEMO_ACCOUNT
from tradeflow.manual.model import SIGNAL_PREFIX as MANUAL_SIGNAL_PREFIX

from helpers import running_cloud

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
README_API = "http://127.0.0.1:8000"
# the demo replays only these (the walkthrough deploys on them): fewer feeds keep the fast clock on time
SYMBOLS = ["GOOG", "SPY", "EURUSD"]
KILL_REASON = "trading control kill_switch is active"
QUIET_SECONDS = 8.0  # how long (wall; x240 replayed) no new order may appear under the kill switch
JQ = shutil.which("jq")


# -- the README's commands --------------------------------------------------------------------------


@dataclass
class Curl:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    jq: list[str] = field(default_factory=list)  # the `| jq ...` arguments, if any

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


@dataclass
class Command:
    line: str
    export: str | None = None  # export NAME=...
    value: str | None = None  # a literal export value
    token: list[str] | None = None  # `tradeflow local token` arguments
    curl: str | None = None  # the curl command (before variables are substituted)


def walkthrough_section(text: str) -> str:
    assert "\n## REST API\n" in text, "README.md has no '## REST API' section"
    section = text.split("\n## REST API\n", 1)[1].split("\n## ", 1)[0]
    assert "\n### Walkthrough\n" in section, "README.md's REST API section has no '### Walkthrough'"
    return section.split("\n### Walkthrough\n", 1)[1].split("\n### ", 1)[0]


def readme_commands(text: str) -> list[Command]:
    """Every command of the walkthrough's ```sh blocks: `export`, `curl` or `echo` (ignored)."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", walkthrough_section(text), re.S):
        for raw in block.replace("\\\n", " ").splitlines():
            line = strip_comment(raw).strip()
            if not line or line.startswith("echo "):
                continue
            commands.append(parse_command(line))
    return commands


def strip_comment(line: str) -> str:
    """The line without a shell comment (a `#` outside quotes, at a word's start)."""
    quote = None
    for at, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (at == 0 or line[at - 1].isspace()):
            return line[:at]
    return line


def parse_command(line: str) -> Command:
    if line.startswith("curl "):
        return Command(line, curl=line)
    export = re.fullmatch(r"export (\w+)=\$\((.*)\)", line)
    if export:
        name, inner = export.groups()
        if inner.startswith("curl "):
            return Command(line, export=name, curl=inner)
        words = shlex.split(inner)
        assert words[:3] == [".venv/bin/tradeflow", "local", "token"], f"unsupported command: {line}"
        return Command(line, export=name, token=words[1:])  # local token --tenant ...
    literal = re.fullmatch(r"export (\w+)=(\S+)", line)
    assert literal, f"the walkthrough may only use curl, export and echo: {line}"
    return Command(line, export=literal.group(1), value=literal.group(2))


def substitute(word: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in variables, f"${name} is used before the walkthrough sets it"
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, word)


def parse_curl(command: str, variables: dict[str, str]) -> Curl:
    words = shlex.split(command)
    jq: list[str] = []
    if "|" in words:
        at = words.index("|")
        words, jq = words[:at], words[at + 1 :]
        assert jq[:1] == ["jq"], f"only `| jq` may follow curl: {command}"
        jq = jq[1:]
    assert words[0] == "curl"
    method, url, headers, body = None, None, {}, None
    rest = iter(words[1:])
    for word in rest:
        if word == "-s":
            continue
        if word == "-X":
            method = next(rest)
        elif word == "-H":
            name, _, val = substitute(next(rest), variables).partition(":")
            headers[name.strip()] = val.strip()
        elif word == "-d":
            body = substitute(next(rest), variables)
        elif not word.startswith("-") and url is None:
            url = substitute(word, variables)
        else:
            raise AssertionError(f"unsupported curl argument {word!r} in: {command}")
    assert url is not None, f"no URL in: {command}"
    return Curl(method or ("POST" if body is not None else "GET"), url, headers, body, jq)


def run_jq(args: list[str], text: str) -> str:
    """The README's jq on a response: the real jq when installed, else `-r .a.b` paths only."""
    if JQ is not None:
        done = subprocess.run([JQ, *args], input=text, capture_output=True, text=True, timeout=10, check=False)
        assert done.returncode == 0, f"jq {args} failed: {done.stderr}"
        return done.stdout.strip()
    if args[:1] == ["-r"] and re.fullmatch(r"(\.\w+)+", args[1]):
        value: Any = json.loads(text)
        for key in args[1].split(".")[1:]:
            value = value[key]
        return str(value)
    return text


# -- what each request must do ----------------------------------------------------------------------


@dataclass
class Walk:
    http: httpx.Client
    api: str
    variables: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    quiet_from: float = 0.0
    orders_before: dict[str, list[str]] = field(default_factory=dict)
    rejections_before: set[str] = field(default_factory=set)

    def send(self, request: Curl) -> httpx.Response:
        response = self.http.request(request.method, request.url, headers=request.headers, content=request.body)
        self.log.append(f"{request.method} {request.url} -> {response.status_code} {response.text[:300]}")
        assert response.status_code < 500, self.log[-1]
        return response

    def until(
        self, request: Curl, ready: Callable[[httpx.Response], bool], seconds: float, what: str
    ) -> httpx.Response:
        """Repeat the README's request until `ready` (the README's "repeat until ...")."""
        deadline = time.monotonic() + seconds
        while True:
            response = self.send(request)
            if ready(response):
                return response
            assert time.monotonic() < deadline, f"{what}: not within {seconds:g} s; last: {self.log[-1]}"
            time.sleep(0.5)

    def get(self, path: str) -> Any:
        response = self.http.get(self.api + path, headers={"Authorization": f"Bearer {self.variables['TOKEN']}"})
        assert response.status_code == 200, response.text
        return response.json()

    def order_ids(self, account_id: str) -> list[str]:
        return [o["client_order_id"] for o in self.get(f"/v1/orders?account_id={account_id}&limit=20")["items"]]

    def kill_rejections(self) -> set[str]:
        """Ids of the strategy signals (not manual orders) rejected because of the kill switch."""
        events = self.get("/v1/audit?action=signal.rejected&limit=200")["items"]
        return {
            e["subject"]
            for e in events
            if KILL_REASON in e["details"].get("reason", "") and not e["subject"].startswith(MANUAL_SIGNAL_PREFIX)
        }


def ok(status: int) -> Callable[[Walk, Curl], httpx.Response]:
    def step(walk: Walk, request: Curl) -> httpx.Response:
        response = walk.send(request)
        assert response.status_code == status, walk.log[-1]
        return response

    return step


def health(walk: Walk, request: Curl) -> httpx.Response:
    response = ok(200)(walk, request)
    assert response.json() == {"status": "ok", "stage": "local"}
    return response


def backtest(walk: Walk, request: Curl) -> httpx.Response:
    response = ok(201)(walk, request)
    job = response.json()
    assert job["status"] == "succeeded" and job["mode"] == "sync", job
    assert job["bars"] > 1000 and job["metrics"]["trades"] > 10, job["metrics"]
    assert len(job["result"]["equity_curve"]) == job["bars"] and job["result"]["trades"]
    return response


def deployed(walk: Walk, request: Curl) -> httpx.Response:
    response = ok(201)(walk, request)
    deployment = response.json()
    assert deployment["mode"] == "paper" and deployment["status"] == "active"
    assert deployment["symbols"] == SYMBOLS, "the walkthrough deploys on the symbols the test's replay feeds"
    return response


def evaluated(walk: Walk, request: Curl) -> httpx.Response:
    def ready(r: httpx.Response) -> bool:
        symbols = r.json()["symbols"]
        return all(s["schedule_state"] == "ENABLED" and s["latest_evaluation"] for s in symbols)

    return walk.until(request, ready, 30, "every symbol evaluated")


def orders_appear(walk: Walk, request: Curl) -> httpx.Response:
    def ready(r: httpx.Response) -> bool:
        return any(o["status"] == "filled" and o["source"] == "strategy" for o in r.json()["items"])

    response = walk.until(request, ready, 60, "a filled strategy order on the new account")
    assert all(o["account_id"] == "my-paper" for o in response.json()["items"])
    return response


def positions_appear(walk: Walk, request: Curl) -> httpx.Response:
    response = walk.until(request, lambda r: bool(r.json()["items"]), 60, "an open position on the new account")
    assert all(p["symbol"] in SYMBOLS and p["quantity"] != "0" for p in response.json()["items"])
    return response


def kill_switch_on(walk: Walk, request: Curl) -> httpx.Response:
    response = ok(200)(walk, request)
    assert response.json()["active"] is True and response.json()["scope"] == "kill_switch"
    assert walk.get("/v1/controls")["trading_halted"] is True
    return response


def signals_rejected(walk: Walk, request: Curl) -> httpx.Response:
    def ready(r: httpx.Response) -> bool:
        return any(KILL_REASON in e["details"]["reason"] for e in r.json()["items"])

    response = walk.until(request, ready, 40, "a strategy signal rejected by the kill switch")
    # Orders approved just before the switch may still be on their way: let them land, then watch.
    time.sleep(2)
    walk.quiet_from = time.monotonic()
    walk.orders_before = {a: walk.order_ids(a) for a in ("my-paper", DEMO_ACCOUNT)}
    walk.rejections_before = walk.kill_rejections()
    return response


def manual_rejected(walk: Walk, request: Curl) -> httpx.Response:
    def ready(r: httpx.Response) -> bool:
        return bool(r.json()["status"] != "pending")

    response = walk.until(request, ready, 20, "risk's decision on the manual order")
    order = response.json()
    assert order["status"] == "rejected" and order["source"] == "manual", order
    assert order["reason"] == f"{KILL_REASON}: walkthrough: stop everything", order
    return response


def no_new_orders(walk: Walk, request: Curl) -> httpx.Response:
    """After at least QUIET_SECONDS, and once more strategy signals were rejected since the snapshot, the
    README's order list (and the demo account's) shows exactly the orders of the snapshot."""
    time.sleep(max(0.0, walk.quiet_from + QUIET_SECONDS - time.monotonic()))
    deadline = time.monotonic() + 30
    while not walk.kill_rejections() - walk.rejections_before:
        assert time.monotonic() < deadline, "no strategy signal was rejected under the kill switch since the snapshot"
        time.sleep(0.5)
    response = ok(200)(walk, request)
    shown = [o["client_order_id"] for o in response.json()["items"]]
    assert shown == walk.orders_before["my-paper"][: len(shown)], "a new order appeared under the kill switch"
    assert walk.order_ids(DEMO_ACCOUNT) == walk.orders_before[DEMO_ACCOUNT], "the demo account traded on"
    return response


def kill_switch_off(walk: Walk, request: Curl) -> httpx.Response:
    response = ok(200)(walk, request)
    assert response.json()["active"] is False
    assert walk.get("/v1/controls")["trading_halted"] is False
    return response


def stopped(walk: Walk, request: Curl) -> httpx.Response:
    response = ok(200)(walk, request)
    assert response.json()["status"] == "stopped"
    return response


Step = Callable[[Walk, Curl], httpx.Response]
STEPS: list[tuple[str, str, Step]] = [
    ("GET", r"/v1/health", health),
    ("POST", r"/v1/accounts", ok(201)),
    ("POST", r"/v1/strategies", ok(201)),
    ("POST", r"/v1/backtests", backtest),
    ("POST", r"/v1/deployments", deployed),
    ("GET", r"/v1/deployments/dep_\w+/status", evaluated),
    ("GET", r"/v1/orders", orders_appear),
    ("GET", r"/v1/positions", positions_appear),
    ("POST", r"/v1/controls/kill-switch", kill_switch_on),
    ("GET", r"/v1/audit", signals_rejected),
    ("POST", r"/v1/orders", ok(202)),
    ("GET", r"/v1/orders/tfm-\w+", manual_rejected),
    ("GET", r"/v1/orders", no_new_orders),
    ("POST", r"/v1/controls/kill-switch", kill_switch_off),
    ("POST", r"/v1/deployments/dep_\w+/stop", stopped),
]


# -- the test ---------------------------------------------------------------------------------------


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    """The local cloud as `make run` starts it (demo on, REST API on), on free ports and a fast clock."""
    with running_cloud(tmp_path, SYMBOLS, speed=240, websocket=False) as local:
        yield local


def test_readme_commands_parse() -> None:
    """The walkthrough's commands are the ones `STEPS` expects, in order (no cloud needed)."""
    commands = readme_commands(README.read_text())
    variables = {"API": README_API, "TOKEN": "t", "STRATEGY_ID": "stg_x", "DEPLOYMENT_ID": "dep_x",
                 "ORDER_URL": "/v1/orders/tfm-x"}  # fmt: skip
    requests = [parse_curl(c.curl, variables) for c in commands if c.curl is not None]
    found = [(r.method, r.path) for r in requests]
    assert len(found) == len(STEPS), f"README requests {found} vs the test's steps {[s[:2] for s in STEPS]}"
    for (method, path), (want_method, want_path, _) in zip(found, STEPS, strict=True):
        assert method == want_method and re.fullmatch(want_path, path), (method, path)
    assert all(r.url.startswith(README_API) for r in requests)
    assert all(r.headers.get("Authorization") == "Bearer t" for r in requests if r.path != "/v1/health")


def test_readme_walkthrough(cloud: LocalCloud) -> None:
    assert cloud.api is not None
    started = time.monotonic()
    commands = readme_commands(README.read_text())
    with httpx.Client(timeout=60) as http:
        walk = Walk(http, cloud.api.url)
        try:
            walk_through(walk, commands)
        finally:
            print("\n".join(walk.log))  # shown when the test fails (and with -s)
    elapsed = time.monotonic() - started
    assert elapsed < 150, f"the walkthrough took {elapsed:.0f} s"


def walk_through(walk: Walk, commands: list[Command]) -> None:
    """Run the README's commands in order, each request through its step."""
    steps = iter(STEPS)
    for command in commands:
        if command.value is not None:  # export API=http://127.0.0.1:8000
            assert command.export == "API" and command.value == README_API, command.line
            walk.variables["API"] = walk.api
            continue
        if command.token is not None:  # export TOKEN=$(tradeflow local token ...)
            done = subprocess.run(
                [sys.executable, "-m", "tradeflow.cli", *command.token],
                capture_output=True, text=True, timeout=60, check=True,
            )  # fmt: skip
            assert command.export is not None
            walk.variables[command.export] = done.stdout.strip()
            continue
        assert command.curl is not None
        request = parse_curl(command.curl, walk.variables)
        method, path, step = next(steps)
        assert request.method == method and re.fullmatch(path, request.path), (command.line, method, path)
        response = step(walk, request)
        output = run_jq(request.jq, response.text) if request.jq else response.text
        if command.export is not None:
            assert output and output != "null", f"{command.line} gave {output!r}"
            walk.variables[command.export] = output
    assert next(steps, None) is None, "the README skipped steps the test expects"
