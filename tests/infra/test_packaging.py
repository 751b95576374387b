"""Packaging without Docker: which layers each function gets (design rule 9), what a function's code asset
holds, the layer build's pruning and caching (pip replaced by a fake: no download), the `LayerSet` construct
(placeholder layers: no build needed) and the package report's arithmetic on a small fake build."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
import package_report  # noqa: E402
from aws_cdk import aws_lambda as lambda_  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from tradeflow.catalogue import FUNCTIONS  # noqa: E402
from tradeflow_infra import packaging  # noqa: E402
from tradeflow_infra.config import stage_config  # noqa: E402
from tradeflow_infra.packaging import (  # noqa: E402
    FUNCTION_LAYERS,
    IMPORT_PROVIDERS,
    LAYERS,
    LayerSet,
    LayersNotBuilt,
    asset_files,
    layers_for_function,
    stage_function,
    third_party_imports,
)

pytestmark = pytest.mark.xdist_group("infra")

HEAVY_IMPORTS = {"numpy", "pandas", "alpaca", "ccxt", "pyarrow"}
# Reached only inside functions that the Lambda path never calls: the strategies' vectorised `*_series`
# (backtests) import numpy lazily; the live path uses the windowed pure-Python indicators.
LAZY_ONLY_OUTSIDE_LAMBDA = {"strategy": {"numpy"}}


def _providers(function: str) -> set[str]:
    return {*layers_for_function(function), "runtime"}


# ---------------------------------------------------------------------------------------------- layer mapping


def test_every_catalogue_function_has_a_layer_mapping() -> None:
    assert set(FUNCTION_LAYERS) == set(FUNCTIONS)
    for function, layers in FUNCTION_LAYERS.items():
        assert set(layers) <= set(LAYERS)
        assert len(layers_for_function(function)) <= 5  # Lambda's limit of layers per function


@pytest.mark.parametrize("function", ["strategy", "risk"])
def test_strategy_and_risk_get_no_numpy_pandas_or_broker_sdk(function: str) -> None:
    heavy_layers = {IMPORT_PROVIDERS[name] for name in HEAVY_IMPORTS}
    assert heavy_layers == {"analytics", "alpaca", "ccxt", "parquet"}
    assert not set(layers_for_function(function)) & heavy_layers
    assert not set(third_party_imports(function, eager_only=False).third_party) & HEAVY_IMPORTS - {"numpy"}


def test_base_layers_come_first_and_are_always_deployed_together() -> None:
    for function in FUNCTIONS:
        order = layers_for_function(function)
        for position, layer in enumerate(order):
            assert set(LAYERS[layer].base) <= set(order[:position]), (function, order)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_import_a_handler_reaches_is_in_its_layers(function: str) -> None:
    """Eager imports (the cold start) and lazy ones (a code path at run time) both need their layer."""
    reach = third_party_imports(function, eager_only=False)
    unknown = set(reach.third_party) - set(IMPORT_PROVIDERS)
    assert not unknown, f"add these import names to IMPORT_PROVIDERS (and a layer): {unknown}"
    allowed_missing = LAZY_ONLY_OUTSIDE_LAMBDA.get(function, set())
    missing = {
        name: sorted(importers)
        for name, importers in reach.third_party.items()
        if IMPORT_PROVIDERS[name] not in _providers(function) and name not in allowed_missing
    }
    assert not missing, f"{function} reaches imports its layers do not provide: {missing}"
    eager = third_party_imports(function, eager_only=True).third_party
    assert all(IMPORT_PROVIDERS[name] in _providers(function) for name in eager)


def test_the_strategy_functions_numpy_is_only_behind_lazy_imports() -> None:
    assert "numpy" not in third_party_imports("strategy", eager_only=True).third_party


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_no_handler_reaches_the_local_cloud_or_benchmarks(function: str) -> None:
    modules = third_party_imports(function).modules
    assert not {m for m in modules if m.startswith(("tradeflow.local", "tradeflow.bench"))}


# ---------------------------------------------------------------------------------------------- code assets


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_asset_holds_its_handler_and_the_package_but_not_local_or_tests(function: str) -> None:
    files = asset_files(function)
    assert files["handler.py"] == ROOT / "functions" / function / "handler.py"
    assert "tradeflow/catalogue.py" in files
    assert not [f for f in files if f.startswith(("tradeflow/local/", "tradeflow/bench/"))]
    assert not [f for f in files if {"tests", "test", "__pycache__"} & set(f.split("/"))]
    assert not [f for f in files if f.endswith((".pyc", ".pyo"))]  # local bytecode is never shipped
    has_dashboard = any(f.startswith("tradeflow/dashboard/static/") for f in files)
    assert has_dashboard == (function == "api")


def test_code_for_excludes_tests_at_any_depth(tmp_path: Path) -> None:
    """A fake repository: whatever test folders the package grows, they stay out of the asset."""
    (tmp_path / "functions" / "strategy").mkdir(parents=True)
    (tmp_path / "functions" / "strategy" / "handler.py").write_text("def handler(event, context): ...\n")
    package = tmp_path / "shared" / "tradeflow"
    for rel in (
        "__init__.py",
        "catalogue.py",
        "risk/limits.py",
        "tests/test_a.py",
        "risk/tests/test_limits.py",
        "brokers/test/fixture.py",
        "local/cloud.py",
        "bench/run.py",
        "risk/__pycache__/limits.cpython-311.pyc",
        "dashboard/static/index.html",
    ):
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_text("x = 1\n")
    staged = stage_function("strategy", tmp_path)
    shipped = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    sources = {p for p in shipped if not p.endswith(".pyc")}
    assert sources == {"handler.py", "tradeflow/__init__.py", "tradeflow/catalogue.py", "tradeflow/risk/limits.py"}
    assert not [p for p in shipped if "cpython-311" in p]
    assert staged == tmp_path / "build" / "functions" / "strategy"
    # cached: an unchanged source keeps the staged copy; a change restages it
    marker = staged / "marker"
    marker.write_text("kept")
    assert stage_function("strategy", tmp_path) == staged and marker.exists()
    (package / "risk" / "limits.py").write_text("x = 2\n")
    assert not (stage_function("strategy", tmp_path) / "marker").exists()
    assert (staged / "tradeflow" / "risk" / "limits.py").read_text() == "x = 2\n"


def test_a_staged_asset_has_only_312_bytecode() -> None:
    staged = stage_function("risk")
    pycs = [p.name for p in staged.rglob("*.pyc")]
    assert (staged / "handler.py").is_file() and (staged / "tradeflow" / "catalogue.py").is_file()
    assert not (staged / "tradeflow" / "local").exists()
    if packaging.find_python312() is None:
        assert pycs == []  # sources only, never another version's bytecode
    else:
        assert pycs and all(".cpython-312." in name for name in pycs)


# ---------------------------------------------------------------------------------------------- layer build


def _fake_dist(site: Path, dist: str, version: str, files: dict[str, str]) -> None:
    info = site / f"{dist}-{version}.dist-info"
    info.mkdir(parents=True)
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    (info / "METADATA").write_text(f"Name: {dist}\nVersion: {version}\n")
    record = [f"{rel},," for rel in files] + [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")


def test_prune_drops_runtime_and_base_distributions_test_suites_stubs_and_scripts(tmp_path: Path) -> None:
    site = tmp_path / "python"
    _fake_dist(site, "botocore", "1.0", {"botocore/__init__.py": "", "botocore/data/x.json": "{}"})
    _fake_dist(site, "pydantic", "2.0", {"pydantic/__init__.py": ""})
    _fake_dist(
        site,
        "pandas",
        "3.0",
        {"pandas/__init__.py": "", "pandas/core/frame.py": "", "pandas/tests/test_x.py": "", "pandas/x.pyi": ""},
    )
    _fake_dist(site, "numpy", "2.0", {"numpy/__init__.py": "", "numpy/linalg/tests/t.py": "", "numpy/testing/u.py": ""})
    (site / "bin").mkdir()
    (site / "bin" / "tool").write_text("#!")
    (site / "pandas" / "__pycache__").mkdir()
    (site / "pandas" / "__pycache__" / "__init__.cpython-311.pyc").write_text("")
    packaging._prune(site, {"botocore", "pydantic"})
    left = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    assert not (site / "botocore").exists() and not (site / "pydantic").exists()
    assert not [p for p in left if p.startswith(("botocore", "pydantic", "bin/"))]
    assert {"pandas/__init__.py", "pandas/core/frame.py", "numpy/testing/u.py"} <= left  # run-time code stays
    assert not [p for p in left if "/tests/" in p or p.endswith((".pyi", ".pyc"))]


def test_layers_are_built_once_per_requirements_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "layers" / "core").mkdir(parents=True)
    (tmp_path / "layers" / "core" / "requirements.txt").write_text("pydantic==2.14.3\n")
    calls: list[tuple[str, ...]] = []

    def fake_pip(*args: str) -> None:
        calls.append(args)
        site = Path(args[args.index("--target") + 1])
        _fake_dist(site, "pydantic", "2.14.3", {"pydantic/__init__.py": "VERSION = '2.14.3'\n"})
        _fake_dist(site, "boto3", "1.0", {"boto3/__init__.py": ""})

    monkeypatch.setattr(packaging, "_pip", fake_pip)
    assert packaging.build_layer("core", tmp_path) is True
    site = tmp_path / "build" / "layers" / "core" / "python"
    assert (site / "pydantic" / "__init__.py").is_file() and not (site / "boto3").exists()
    assert "--platform=manylinux2014_x86_64" in calls[0] and "--python-version=3.12" in calls[0]
    assert "--only-binary=:all:" in calls[0] and "--no-compile" in calls[0]
    assert packaging.build_layer("core", tmp_path) is False  # stamp current: no pip
    assert len(calls) == 1
    (tmp_path / "layers" / "core" / "requirements.txt").write_text("pydantic==2.14.4\n")
    assert packaging.build_layer("core", tmp_path) is True
    assert len(calls) == 2


# ---------------------------------------------------------------------------------------------- the construct


@pytest.fixture(scope="module")
def template() -> Template:
    app = cdk.App(context={"stage": "dev", "layers": "placeholder"})
    stack = cdk.Stack(app, "PackagingTest", env=cdk.Environment(account="123456789012", region="us-east-1"))
    layers = LayerSet(stack, "Layers", config=stage_config(app.node))
    for name, function in FUNCTIONS.items():
        lambda_.Function(
            stack,
            name,
            runtime=packaging.RUNTIME,
            handler=function.handler,
            code=layers.code_for(name),
            layers=layers.layers_for(name),
        )
    return Template.from_stack(stack)


def test_layer_set_makes_one_python312_x86_layer_version_per_layer(template: Template) -> None:
    versions = template.find_resources("AWS::Lambda::LayerVersion")
    assert len(versions) == len(LAYERS)
    for resource in versions.values():
        assert resource["Properties"]["CompatibleRuntimes"] == ["python3.12"]
        assert resource["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    names = sorted(r["Properties"]["LayerName"] for r in versions.values())
    assert names == sorted(f"tradeflow-dev-{name}" for name in LAYERS)


def test_each_function_gets_exactly_its_layers(template: Template) -> None:
    versions = template.find_resources("AWS::Lambda::LayerVersion")
    by_id = {logical: r["Properties"]["LayerName"].removeprefix("tradeflow-dev-") for logical, r in versions.items()}
    functions = template.find_resources("AWS::Lambda::Function")
    assert len(functions) == len(FUNCTIONS)
    seen = {}
    for logical, resource in functions.items():
        name = next(n for n in FUNCTIONS if logical.startswith(n.replace("_", "")))
        seen[name] = tuple(by_id[ref["Ref"]] for ref in resource["Properties"].get("Layers", []))
    assert seen == {name: layers_for_function(name) for name in FUNCTIONS}


def test_a_missing_layer_build_names_make_layers(tmp_path: Path) -> None:
    app = cdk.App(context={"stage": "dev"})
    stack = cdk.Stack(app, "NoLayers")
    with pytest.raises(LayersNotBuilt, match="make layers"):
        LayerSet(stack, "Layers", config=stage_config(app.node), root=tmp_path)


# ---------------------------------------------------------------------------------------------- the report


def _write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_report_adds_code_and_each_layer_and_flags_what_is_over(tmp_path: Path) -> None:
    mb = package_report.MB
    _write(tmp_path / "build/functions/small/handler.py", 1 * mb)
    _write(tmp_path / "build/functions/small/tradeflow/catalogue.py", mb // 2)
    _write(tmp_path / "build/functions/big/handler.py", 2 * mb)
    _write(tmp_path / "build/layers/core/python/a.py", 3 * mb)
    _write(tmp_path / "build/layers/core/python/pkg/b.so", 1 * mb)
    _write(tmp_path / "build/layers/sdk/python/c.pyc", 5 * mb)
    rows = package_report.measure(tmp_path, {"small": ["core"], "big": ["core", "sdk"]}, limit=10 * mb)
    small, big = rows
    assert (small.code, small.layers, small.total) == (mb + mb // 2, (("core", 4 * mb),), 5 * mb + mb // 2)
    assert not small.over and small.headroom == 4 * mb + mb // 2
    assert (big.code, big.total, big.over, big.headroom) == (2 * mb, 11 * mb, True, -mb)
    text = package_report.render(rows)
    small_line, big_line = text.splitlines()[1:3]
    assert small_line.startswith("small") and "OK" in small_line and "5.5" in small_line
    assert big_line.startswith("big") and "OVER (by 1.0 MB)" in big_line and "core 4.0 + sdk 5.0" in big_line
    assert "1/2 functions within" in text and "OVER: big" in text


def test_report_exits_2_naming_make_layers_when_layers_are_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert package_report.main([], root=tmp_path) == 2
    assert "make layers" in capsys.readouterr().err
