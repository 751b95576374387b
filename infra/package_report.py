"""`make package-report`: each Lambda function's unzipped size (its code + each of its layers) against the 250 MB
limit Lambda enforces on a function's code and all its layers together, unzipped.

Sizes are measured on what is actually deployed: the staged code asset (`build/functions/<name>/`) and the
built layers (`build/layers/<name>/`, from `make layers`). Layers are counted in full for every function that
uses them, as Lambda counts them. Exits 1 when a function is over the limit, 2 when the layers are not built.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "infra"), str(ROOT / "shared")]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # packaging imports aws_cdk

from tradeflow.catalogue import FUNCTIONS  # noqa: E402
from tradeflow_infra.packaging import (  # noqa: E402
    LAMBDA_UNZIPPED_LIMIT,
    function_build_dir,
    layer_build_dir,
    layers_for_function,
    stage_function,
)

MB = 1024 * 1024


def dir_size(path: Path) -> int:
    """Bytes of all regular files under `path` (what the unzipped asset occupies; links not followed)."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for filename in filenames:
            file = Path(dirpath) / filename
            if not file.is_symlink():
                total += file.stat().st_size
    return total


@dataclass(frozen=True)
class FunctionSize:
    name: str
    code: int
    layers: tuple[tuple[str, int], ...]  # (layer, bytes), in deployment order
    limit: int = LAMBDA_UNZIPPED_LIMIT

    @property
    def total(self) -> int:
        return self.code + sum(size for _, size in self.layers)

    @property
    def over(self) -> bool:
        return self.total > self.limit

    @property
    def headroom(self) -> int:
        return self.limit - self.total


def measure(
    root: Path = ROOT,
    function_layers: Mapping[str, Sequence[str]] | None = None,
    *,
    limit: int = LAMBDA_UNZIPPED_LIMIT,
) -> list[FunctionSize]:
    """Sizes of the staged code and built layers under `root/build` (each layer measured once)."""
    mapping = function_layers or {name: layers_for_function(name) for name in FUNCTIONS}
    layer_sizes: dict[str, int] = {}
    rows = []
    for name, layers in mapping.items():
        for layer in layers:
            if layer not in layer_sizes:
                layer_sizes[layer] = dir_size(layer_build_dir(layer, root))
        rows.append(
            FunctionSize(
                name=name,
                code=dir_size(function_build_dir(name, root)),
                layers=tuple((layer, layer_sizes[layer]) for layer in layers),
                limit=limit,
            )
        )
    return rows


def _mb(size: int) -> str:
    return f"{size / MB:7.1f}"


def render(rows: Sequence[FunctionSize]) -> str:
    """A table: per function, code and each layer in MB, the total and OK/OVER against the limit."""
    lines = [f"{'function':<16} {'code MB':>8} {'layers MB':<52} {'total MB':>8} {'limit':>6}  status"]
    for row in rows:
        layers = " + ".join(f"{name} {size / MB:.1f}" for name, size in row.layers) or "-"
        status = "OVER" if row.over else "OK"
        detail = f"by {-row.headroom / MB:.1f} MB" if row.over else f"{row.headroom / MB:.1f} MB spare"
        sizes = f"{_mb(row.code):>8} {layers:<52} {_mb(row.total):>8} {row.limit // MB:>6}"
        lines.append(f"{row.name:<16} {sizes}  {status} ({detail})")
    over = [row.name for row in rows if row.over]
    lines.append(
        f"{len(rows) - len(over)}/{len(rows)} functions within Lambda's {rows[0].limit // MB if rows else 250} MB "
        "unzipped limit (code + layers)" + (f"; OVER: {', '.join(over)}" if over else "")
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    del argv  # no options: the report always covers every catalogue function
    missing = [
        layer
        for layer in sorted({layer for name in FUNCTIONS for layer in layers_for_function(name)})
        if not (layer_build_dir(layer, root) / "python").is_dir()
    ]
    if missing:
        print(f"layers not built: {', '.join(missing)}; run `make layers` first", file=sys.stderr)
        return 2
    for name in FUNCTIONS:
        stage_function(name, root)  # the code as it would be deployed now
    rows = measure(root)
    print(render(rows))
    return 1 if any(row.over for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
