"""A loggable excerpt of a raw stream message: short, and with anything secret-looking masked.

Malformed messages are logged so someone can see what the broker sent, but a raw frame may echo
credentials (an auth frame, a URL with a token), and secrets never reach logs (design rule 5).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_EXCERPT = 300
MASK = "***"
_SENSITIVE = ("key", "secret", "token", "password", "passphrase", "signature", "auth", "credential")
# "secret": "value" / secret=value / 'apiKey': 'value' in text
_TEXT_PATTERN = re.compile(
    r"""(?P<name>["']?[\w-]*(?:"""
    + "|".join(_SENSITIVE)
    + r""")[\w-]*["']?\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|[^\s,&}]+)""",
    re.IGNORECASE,
)


def _masked(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: MASK if any(s in str(k).lower() for s in _SENSITIVE) else _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def safe_excerpt(raw: object) -> str:
    """At most `MAX_EXCERPT` characters of `raw`, sensitive-looking values replaced by `***`."""
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw[: MAX_EXCERPT * 4]).decode("utf-8", errors="replace")
    text = raw if isinstance(raw, str) else repr(_masked(raw))
    text = _TEXT_PATTERN.sub(lambda m: m.group("name") + MASK, text[: MAX_EXCERPT * 4])
    return text if len(text) <= MAX_EXCERPT else text[:MAX_EXCERPT] + "…"
