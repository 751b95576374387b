"""Turning pydantic validation errors into answers that name the field (design rule 8)."""

from __future__ import annotations

from pydantic import ValidationError


def describe(error: ValidationError, root: str | None = None, limit: int = 5) -> str:
    """'field.path: problem; ...' for the first `limit` errors. A model-level error has no location:
    it is named `root` (e.g. `params`), or `message` without one."""
    parts = []
    for e in error.errors()[:limit]:
        path = [*([root] if root else []), *map(str, e["loc"])]
        parts.append(f"{'.'.join(path) or 'message'}: {e['msg']}")
    return "; ".join(parts)
