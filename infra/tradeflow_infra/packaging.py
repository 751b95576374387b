"""Packaging without Docker: Lambda layers built by pip for the Lambda platform, and small function assets.

What ships where
- `layers/<name>/requirements.txt` declares each layer's top-level pins; `layers/constraints.txt` pins the
  whole resolved set (all layers resolved together, so two layers deployed side by side never carry two
  versions of a shared dependency). `LAYERS` below says which layers a layer is always deployed with
  (its `base`): their distributions are pruned from it, so nothing is shipped twice.
- `FUNCTION_LAYERS` gives each catalogue function its layers, from what its handler imports (checked by
  `third_party_imports`, a static walk of the handler's import graph through the `tradeflow` package).
  The strategy and risk functions get the core layer only (design rule 9: no numpy, pandas or broker SDK).
- A function's code asset (`build/functions/<name>/`) is its `handler.py` plus the `tradeflow` package
  without tests, benchmarks, the local cloud or local bytecode; the dashboard's static files and the
  market-data CSVs only for the functions that serve or load them.

Building
- `build_all(root)` (run by `make layers` / `make synth` before `cdk synth`) builds every layer into
  `build/layers/<name>/python/` with `pip install --target --platform manylinux… --python-version 3.12
  --only-binary=:all:`, prunes what the Lambda runtime already has (boto3, botocore, s3transfer), the
  base layers' distributions, console scripts, type stubs, the SDKs' own test suites and the parts of pyarrow
  nothing loads (`PRUNED_PARTS`: headers, Cython sources, Arrow Flight, duplicate libraries). A stamp per layer
  (`build/layers/<name>.stamp`) holds the hash of its inputs: an unchanged layer is not rebuilt.
- Bytecode: Lambda cannot write `.pyc`, so without shipped bytecode every cold start recompiles. It must
  be made by a 3.12 interpreter (the runtime's), found by `find_python312()`; 3.11 bytecode is never
  shipped. Bytecode uses the `unchecked-hash` invalidation mode because asset zips do not keep mtimes.
  The heavy SDK layers (alpaca, ccxt) are shipped sourceless (`compileall -b`, sources removed) to stay
  within the 250 MB limit; the other layers and the function code keep their sources next to the
  bytecode (readable tracebacks). Without a 3.12 interpreter everything ships as sources only.
- Function assets are staged at synth time by `code_for` (cheap, no network, cached by a content
  stamp), so a deploy never ships stale code.

Synth in tests: context `layers=placeholder` (`cdk.App(context={"layers": "placeholder"})`) makes every
layer a tiny placeholder asset, so assertion tests synthesise without building layers. The real build is
the default, and a missing layer then fails the synth with a message naming `make layers`.

CLI: `PYTHONPATH=infra python -m tradeflow_infra.packaging build|lock|stage`.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from tradeflow.catalogue import FUNCTIONS
from tradeflow_infra.config import StageConfig

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
PYTHON_VERSION = "3.12"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # code + all layers, unzipped
RECIPE_VERSION = "2"  # bump when the build steps below change: every layer is rebuilt
PLACEHOLDER_CONTEXT = "layers"  # context key; value "placeholder" selects the tiny test layers

# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): these manylinux tags all load there.
PIP_PLATFORM_ARGS: tuple[str, ...] = (
    "--platform=manylinux2014_x86_64",
    "--platform=manylinux_2_28_x86_64",
    "--platform=manylinux_2_34_x86_64",
    "--implementation=cp",
    f"--python-version={PYTHON_VERSION}",
    "--only-binary=:all:",
)

# Distributions the Lambda python3.12 runtime already provides (on sys.path after the layers). jmespath,
# python-dateutil, urllib3 and six are kept: Powertools, pandas and requests need them whatever boto3 does.
RUNTIME_PROVIDED: frozenset[str] = frozenset({"boto3", "botocore", "s3transfer"})

# The SDKs' own test suites (never imported at run time): pandas/tests ~39 MB, numpy's */tests ~13 MB, ccxt/test.
TEST_SUITES: tuple[str, ...] = (
    "pandas/tests",
    "numpy/tests",
    "numpy/*/tests",
    "numpy/*/*/tests",
    "ccxt/test",
    "pyarrow/tests",  # ~12 MB of pyarrow's own tests and their data
)
# Parts of a distribution nothing of ours loads, pruned from the layer that holds it. Only pyarrow's files match,
# so the other layers' content is unchanged:
# - build-time files: Arrow's C++ headers and sources, the Cython .pyx/.pxd/.pxi (~10 MB);
# - Arrow Flight (RPC), which `pyarrow.parquet` never loads: libarrow_flight alone is ~30 MB;
# - the extra copies of libarrow_python*.so under their unversioned and full-version names (wheels cannot hold
#   symlinks): the extensions link the `.so.<major>` SONAME only.
PRUNED_PARTS: tuple[str, ...] = (
    "pyarrow/include",
    "pyarrow/src",
    "pyarrow/**/*.pxd",
    "pyarrow/**/*.pyx",
    "pyarrow/**/*.pxi",
    "pyarrow/**/*.h",
    "pyarrow/**/*.cc",
    "pyarrow/flight.py",
    "pyarrow/_flight.*.so",
    "pyarrow/libarrow_flight.so*",
    "pyarrow/libarrow_python_flight.so*",
    "pyarrow/libarrow_python*.so",
    "pyarrow/libarrow_python*.so.*.*.*",
)


@dataclass(frozen=True)
class LayerSpec:
    name: str
    holds: str
    base: tuple[str, ...] = ()  # layers always deployed with this one (their distributions are pruned here)
    sourceless: bool = False  # ship 3.12 bytecode without sources (the heavy SDKs), when 3.12 is available


LAYERS: dict[str, LayerSpec] = {
    spec.name: spec
    for spec in (
        LayerSpec("core", "pydantic, Powertools (Logger, Metrics, Tracer, batch), PyJWT[crypto]"),
        LayerSpec("analytics", "numpy (backtests, vectorised indicator series)", base=("core",)),
        LayerSpec("api", "FastAPI, Mangum (the REST API)", base=("core",)),
        LayerSpec("alpaca", "alpaca-py and pandas (Alpaca accounts)", base=("core", "analytics"), sourceless=True),
        LayerSpec("ccxt", "ccxt (crypto exchange accounts)", base=("core",), sourceless=True),
        LayerSpec("parquet", "pyarrow (the bars archiver's Parquet writer)", base=("core",)),
    )
}

# Which layers each function gets, from what its handler reaches (see `third_party_imports`). execution and
# reconcile serve both broker kinds (an account is alpaca or ccxt), so they carry both SDK layers.
FUNCTION_LAYERS: dict[str, tuple[str, ...]] = {
    "strategy": ("core",),
    "risk": ("core",),
    "execution": ("core", "analytics", "alpaca", "ccxt"),
    "reconcile": ("core", "analytics", "alpaca", "ccxt"),
    "api": ("core", "api", "analytics"),  # analytics: the backtest routes' result models and metrics
    "ws_connect": ("core",),
    "ws_disconnect": ("core",),
    "ws_default": ("core",),
    "broadcaster": ("core",),
    "backtest_worker": ("core", "analytics"),
    "paper_exchange": ("core",),
    "bars_archiver": ("core", "parquet"),
    "timestream_writer": ("core",),  # boto3's timestream-write client comes with the runtime
}

# Top-level import names -> the layer that provides them ("runtime": the Lambda runtime itself).
IMPORT_PROVIDERS: dict[str, str] = {
    "pydantic": "core",
    "pydantic_core": "core",
    "aws_lambda_powertools": "core",
    "aws_xray_sdk": "core",
    "jwt": "core",
    "cryptography": "core",
    "typing_extensions": "core",
    "numpy": "analytics",
    "fastapi": "api",
    "starlette": "api",
    "mangum": "api",
    "alpaca": "alpaca",
    "pandas": "alpaca",
    "requests": "alpaca",
    "urllib3": "alpaca",
    "ccxt": "ccxt",
    "pyarrow": "parquet",
    "boto3": "runtime",
    "botocore": "runtime",
}

# Package data that only some functions need (paths under tradeflow/); everything else ships to all.
PACKAGE_DATA_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "dashboard/static": ("api",),  # the trader's dashboard, served by the API (static/vendor: `make dashboard`)
    "marketdata/datasets": ("api", "backtest_worker"),  # backtests over the shipped historical data
}
# Never in a Lambda asset: the local cloud, benchmarks, tests, and bytecode of the local interpreter.
EXCLUDED_DIRS: frozenset[str] = frozenset({"local", "bench", "tests", "test", "__pycache__"})
EXCLUDED_SUFFIXES: tuple[str, ...] = (".pyc", ".pyo")
DASHBOARD_VENDOR = "dashboard/static/vendor"


class LayersNotBuilt(RuntimeError):
    """A layer directory is missing at synth time: `make layers` has not run."""


# --------------------------------------------------------------------------------------------------------
# Paths and inputs


def layers_dir(root: Path = ROOT) -> Path:
    return root / "layers"


def build_dir(root: Path = ROOT) -> Path:
    return root / "build"


def layer_build_dir(name: str, root: Path = ROOT) -> Path:
    return build_dir(root) / "layers" / name


def function_build_dir(name: str, root: Path = ROOT) -> Path:
    return build_dir(root) / "functions" / name


def _with_bases(layers: Iterable[str]) -> list[str]:
    """`layers` with each layer's base layers before it, each once (the order Lambda extracts them)."""
    ordered: list[str] = []

    def add(layer: str) -> None:
        for base in LAYERS[layer].base:
            add(base)
        if layer not in ordered:
            ordered.append(layer)

    for layer in layers:
        add(layer)
    return ordered


def layers_for_function(name: str) -> tuple[str, ...]:
    """The function's layers with each layer's base layers first (the order Lambda extracts them)."""
    return tuple(_with_bases(FUNCTION_LAYERS[name]))


@cache
def find_python312() -> str | None:
    """A CPython 3.12 interpreter to compile bytecode with (the Lambda runtime's version), or None.

    `TRADEFLOW_PYTHON312` wins; then `python3.12` on PATH, then the usual install places (pyenv). Each
    candidate is run, because a pyenv shim can exist without a usable interpreter behind it."""
    candidates = [os.environ.get("TRADEFLOW_PYTHON312", ""), shutil.which("python3.12") or ""]
    candidates += ["/usr/bin/python3.12", "/usr/local/bin/python3.12"]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2], sys.implementation.name)"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.split() == [PYTHON_VERSION, "cpython"]:
            return candidate
    return None


@cache
def _bytecode_tag() -> str:
    py = find_python312()
    if py is None:
        return "sources-only"
    out = subprocess.run([py, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True)
    return "cpython " + out.stdout.strip().split()[0]


def _compile(directory: Path, *, sourceless: bool) -> bool:
    """Compile `directory` with 3.12 (unchecked-hash pycs); sourceless: legacy .pyc next to each module and the
    sources removed. Returns False (sources only) when no 3.12 interpreter exists."""
    py = find_python312()
    if py is None:
        return False
    args = [py, "-m", "compileall", "-q", "-j0", "--invalidation-mode", "unchecked-hash"]
    if sourceless:
        args.append("-b")
    # compileall exits non-zero when a file does not compile (e.g. a template with other syntax): such a
    # module keeps its source (we only remove sources that have bytecode), so the status is not fatal.
    subprocess.run([*args, str(directory)], check=False, capture_output=True)
    if sourceless:
        for source in directory.rglob("*.py"):
            if source.with_suffix(".pyc").is_file():
                source.unlink()
    return True


# --------------------------------------------------------------------------------------------------------
# Layers


def constraints_file(root: Path = ROOT) -> Path:
    return layers_dir(root) / "constraints.txt"


def requirements_file(name: str, root: Path = ROOT) -> Path:
    return layers_dir(root) / name / "requirements.txt"


def layer_key(name: str, root: Path = ROOT) -> str:
    """The hash of everything a layer's content depends on: its stamp."""
    digest = hashlib.sha256()
    parts = [
        RECIPE_VERSION,
        requirements_file(name, root).read_text(),
        constraints_file(root).read_text() if constraints_file(root).exists() else "",
        " ".join(PIP_PLATFORM_ARGS),
        ",".join(sorted(RUNTIME_PROVIDED)),
        f"sourceless={LAYERS[name].sourceless}",
        _bytecode_tag(),
        *(layer_key(base, root) for base in LAYERS[name].base),
    ]
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _stamp_path(name: str, root: Path) -> Path:
    return layer_build_dir(name, root).with_suffix(".stamp")


def _normalise(dist: str) -> str:
    return dist.lower().replace("-", "_").replace(".", "_")


def _dist_infos(site: Path) -> Iterator[tuple[str, Path]]:
    for info in site.glob("*.dist-info"):
        yield _normalise(info.name[: -len(".dist-info")].rsplit("-", 1)[0]), info


def _remove_distribution(site: Path, info: Path) -> None:
    """Remove one installed distribution by its RECORD (exactly the files pip wrote for it)."""
    record = info / "RECORD"
    if record.exists():
        for line in record.read_text().splitlines():
            rel = line.rsplit(",", 2)[0]
            target = (site / rel).resolve()
            if target.is_relative_to(site.resolve()) and target.is_file():
                target.unlink()
    shutil.rmtree(info, ignore_errors=True)


def _prune(site: Path, provided_elsewhere: set[str]) -> None:
    for dist, info in list(_dist_infos(site)):
        if dist in provided_elsewhere:
            _remove_distribution(site, info)
    # drop the package directories those removals left empty
    for directory in sorted((p for p in site.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: nothing runs them in Lambda
    for pattern in TEST_SUITES:
        for suite in site.glob(pattern):
            shutil.rmtree(suite, ignore_errors=True)
    for pattern in PRUNED_PARTS:
        for found in site.glob(pattern):
            if found.is_dir():
                shutil.rmtree(found, ignore_errors=True)
            else:
                found.unlink(missing_ok=True)
    for stub in site.rglob("*.pyi"):  # type stubs are never imported
        stub.unlink()
    for cache_dir in list(site.rglob("__pycache__")):  # pip's or anyone's: only our 3.12 bytecode ships
        shutil.rmtree(cache_dir, ignore_errors=True)


def _installed_distributions(name: str, root: Path) -> set[str]:
    site = layer_build_dir(name, root) / "python"
    return {dist for dist, _ in _dist_infos(site)}


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True)


def build_layer(name: str, root: Path = ROOT, *, force: bool = False) -> bool:
    """Build one layer into build/layers/<name>/python unless its stamp is current. True when it was built."""
    spec = LAYERS[name]
    key = layer_key(name, root)
    final = layer_build_dir(name, root)
    stamp = _stamp_path(name, root)
    if not force and final.is_dir() and stamp.exists() and stamp.read_text().strip() == key:
        return False
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
    try:
        site = work / "python"
        args = ["install", "--quiet", "--no-compile", "--target", str(site), *PIP_PLATFORM_ARGS]
        if constraints_file(root).exists():
            args += ["-c", str(constraints_file(root))]
        _pip(*args, "-r", str(requirements_file(name, root)))
        provided = set(RUNTIME_PROVIDED)
        for base in spec.base:
            provided |= _installed_distributions(base, root)
        _prune(site, provided)
        _compile(site, sourceless=spec.sourceless)
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stamp.write_text(key + "\n")
    return True


def _layer_order() -> list[str]:
    return _with_bases(LAYERS)


def lock(root: Path = ROOT) -> Path:
    """Resolve all layers together for the Lambda platform and write layers/constraints.txt (full pins)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        args = ["install", "--quiet", "--dry-run", "--ignore-installed", "--report", str(report)]
        args += ["--target", str(Path(tmp) / "target"), *PIP_PLATFORM_ARGS]
        for name in LAYERS:
            args += ["-r", str(requirements_file(name, root))]
        _pip(*args)
        installs = json.loads(report.read_text())["install"]
    pins = sorted(f"{i['metadata']['name']}=={i['metadata']['version']}" for i in installs)
    header = (
        "# Every layer's resolved dependencies for the Lambda platform (manylinux x86_64, CPython 3.12), resolved\n"
        "# together so that layers deployed side by side agree. Regenerate after editing a layer's\n"
        "# requirements.txt: `PYTHONPATH=infra .venv/bin/python -m tradeflow_infra.packaging lock`.\n"
    )
    constraints_file(root).write_text(header + "\n".join(pins) + "\n")
    return constraints_file(root)


# --------------------------------------------------------------------------------------------------------
# Function code assets


def _package_files(package: Path) -> Iterator[Path]:
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if path.is_file() and not EXCLUDED_DIRS.intersection(rel.parts[:-1]) and path.suffix not in EXCLUDED_SUFFIXES:
            yield path


def asset_files(name: str, root: Path = ROOT) -> dict[str, Path]:
    """What the function's asset holds: relative path in the asset -> source file."""
    files: dict[str, Path] = {"handler.py": root / "functions" / name / "handler.py"}
    package = root / "shared" / "tradeflow"
    for path in _package_files(package):
        rel = path.relative_to(package).as_posix()
        data_owner = next((d for d in PACKAGE_DATA_FUNCTIONS if rel.startswith(d + "/")), None)
        if data_owner is not None and name not in PACKAGE_DATA_FUNCTIONS[data_owner]:
            continue
        files[f"tradeflow/{rel}"] = path
    return files


def _asset_key(files: dict[str, Path]) -> str:
    digest = hashlib.sha256(f"{RECIPE_VERSION}\0{_bytecode_tag()}\0".encode())
    for rel, path in sorted(files.items()):
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def stage_function(name: str, root: Path = ROOT, *, out: Path | None = None) -> Path:
    """Stage the function's asset (handler.py + tradeflow/) into build/functions/<name>/ (or `out`), unless
    the staged copy is current. Safe when several processes stage at once: each builds aside and swaps in."""
    if name not in FUNCTIONS:
        raise KeyError(f"{name!r} is not a catalogue function")
    files = asset_files(name, root)
    if name in PACKAGE_DATA_FUNCTIONS["dashboard/static"] and not any(
        rel.startswith(f"tradeflow/{DASHBOARD_VENDOR}/") for rel in files
    ):
        raise LayersNotBuilt(
            f"{DASHBOARD_VENDOR} is missing: the {name} function serves the dashboard; run `make dashboard` first"
        )
    final = out or function_build_dir(name, root)
    key = _asset_key(files)
    stamp = final.with_suffix(".stamp")
    final.parent.mkdir(parents=True, exist_ok=True)
    # One stager at a time per function (e.g. two test workers synthesising at once on a fresh clone):
    # the second then finds the stamp current and leaves the directory alone, instead of swapping it out
    # from under the first one's asset copy.
    with open(final.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.is_dir() and stamp.exists() and stamp.read_text().strip() == key:
            return final
        _stage_into(final, files, stamp, key)
    return final


def _stage_into(final: Path, files: dict[str, Path], stamp: Path, key: str) -> None:
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        for rel, source in files.items():
            target = work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        _compile(work, sourceless=False)
        if final.exists():
            trash = final.with_name(f".{final.name}-old-{os.getpid()}")
            final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        try:
            work.rename(final)
        except OSError:
            if not final.is_dir():  # someone else swapped theirs in meanwhile: identical content
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stamp.write_text(key + "\n")


# --------------------------------------------------------------------------------------------------------
# Import analysis: what a handler can reach


def _module_file(package_root: Path, module: str) -> Path | None:
    base = package_root.joinpath(*module.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _imports_of(path: Path, module: str, package_root: Path, *, eager_only: bool) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes: list[ast.AST] = []

    def visit(body: Iterable[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue  # runs only when called: a lazy import
            if isinstance(node, ast.ClassDef):
                visit(node.body)
            elif isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            else:
                nodes.append(node)

    if eager_only:
        visit(tree.body)
    else:
        nodes = list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                if path.name != "__init__.py":
                    parts = parts[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                target = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            yield target
            yield from (f"{target}.{alias.name}" for alias in node.names)
        elif not eager_only and isinstance(node, ast.Call) and node.args:
            # importlib.import_module("tradeflow.x") or f"tradeflow.pkg.{name}": every module of that package
            func = node.func
            if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) != "import_module":
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                yield arg.value
            elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                prefix = str(arg.values[0].value).rstrip(".")
                folder = package_root.joinpath(*prefix.split("."))
                yield from (f"{prefix}.{p.stem}" for p in sorted(folder.glob("*.py")) if p.stem != "__init__")


@dataclass(frozen=True)
class Reach:
    modules: frozenset[str]  # tradeflow modules reached
    third_party: dict[str, frozenset[str]] = field(default_factory=dict)  # top-level name -> importing modules


def third_party_imports(name: str, root: Path = ROOT, *, eager_only: bool = False) -> Reach:
    """Walk `functions/<name>/handler.py`'s imports through the tradeflow package. eager_only: only what runs
    at import time (the cold start); otherwise every import anywhere, including lazy ones in functions."""
    package_root = root / "shared"
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    seen: set[str] = set()
    third: dict[str, set[str]] = {}
    stack = [(root / "functions" / name / "handler.py", "handler")]
    while stack:
        path, module = stack.pop()
        for imported in _imports_of(path, module, package_root, eager_only=eager_only):
            top = imported.split(".")[0]
            if top == "tradeflow":
                parts = imported.split(".")
                for i in range(1, len(parts) + 1):
                    sub = ".".join(parts[:i])
                    found = _module_file(package_root, sub)
                    if found and sub not in seen:
                        seen.add(sub)
                        stack.append((found, sub))
            elif top and top not in stdlib:
                third.setdefault(top, set()).add(module)
    return Reach(frozenset(seen), {k: frozenset(v) for k, v in third.items()})


# --------------------------------------------------------------------------------------------------------
# Build entry point


@dataclass(frozen=True)
class BuildResult:
    built: tuple[str, ...]  # layers (re)built now
    cached: tuple[str, ...]  # layers whose stamp was current
    functions: tuple[str, ...]  # function assets staged
    bytecode: str  # "cpython 3.12.x" or "sources-only"


def build_all(root: Path = ROOT, *, force: bool = False) -> BuildResult:
    """Build every layer (cached by stamp) and stage every function's asset. `make layers` / `make synth`."""
    built: list[str] = []
    cached: list[str] = []
    for name in _layer_order():
        (built if build_layer(name, root, force=force) else cached).append(name)
    for name in FUNCTIONS:
        stage_function(name, root)
    return BuildResult(tuple(built), tuple(cached), tuple(FUNCTIONS), _bytecode_tag())


# --------------------------------------------------------------------------------------------------------
# The construct


class LayerSet(Construct):
    """The layers (one `lambda_.LayerVersion` each, python3.12, x86_64) and each function's code asset.

    `layers_for(name)` gives a catalogue function its layers; `code_for(name)` its staged code asset."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, root: Path = ROOT) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.root = root
        self.placeholder = str(self.node.try_get_context(PLACEHOLDER_CONTEXT) or "") == "placeholder"
        self._layers: dict[str, lambda_.ILayerVersion] = {}
        for name, spec in LAYERS.items():
            self._layers[name] = lambda_.LayerVersion(
                self,
                f"{name.capitalize()}Layer",
                layer_version_name=f"tradeflow-{config.stage}-{name}",
                description=f"tradeflow {name}: {spec.holds}"[:256],
                code=lambda_.Code.from_asset(str(self._layer_dir(name))),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                removal_policy=config.removal_policy,
            )

    def _layer_dir(self, name: str) -> Path:
        if self.placeholder:
            return _placeholder_layer(name, self.root)
        directory = layer_build_dir(name, self.root)
        if not (directory / "python").is_dir():
            raise LayersNotBuilt(
                f"Lambda layer {name!r} is not built ({directory}/python is missing): run `make layers` "
                "(pip builds the layers for the Lambda platform) before synth, or synthesise with "
                "`-c layers=placeholder` for tests that do not deploy."
            )
        return directory

    def layers_for(self, function_name: str) -> list[lambda_.ILayerVersion]:
        return [self._layers[name] for name in layers_for_function(function_name)]

    def code_for(self, function_name: str) -> lambda_.Code:
        return lambda_.Code.from_asset(str(stage_function(function_name, self.root)))


def _placeholder_layer(name: str, root: Path) -> Path:
    directory = build_dir(root) / "layers-placeholder" / name
    marker = directory / "python" / "PLACEHOLDER.txt"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_name(f".PLACEHOLDER-{os.getpid()}")
        tmp.write_text(f"placeholder for the {name} layer (synth with -c layers=placeholder): not deployable\n")
        tmp.replace(marker)  # atomic: parallel test workers never see a half-written file
    return directory


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "build"
    if command == "lock":
        print(f"wrote {lock()}")
    elif command == "build":
        result = build_all(force="--force" in args)
        print(f"layers built: {', '.join(result.built) or '-'}; up to date: {', '.join(result.cached) or '-'}")
        print(f"function assets staged: {len(result.functions)}; bytecode: {result.bytecode}")
    elif command == "stage":
        for name in FUNCTIONS:
            print(stage_function(name))
    else:
        print("usage: python -m tradeflow_infra.packaging [build [--force] | lock | stage]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
