"""Find the line of a key in a TOML text, so that a validation error can name ``file:line``.

A small scanner, not a parser: tomllib has already accepted the text, so tables are ``[a.b]`` / ``[[a.b]]``
headers and keys are ``key =`` or dotted ``a.b =`` at the start of a line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _split_key(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.split(r"\s*\.\s*(?=(?:[^\"']|\"[^\"]*\"|'[^']*')*$)", text)]


def line_of(text: str, loc: Sequence[str | int]) -> int | None:
    """1-based line where the deepest existing prefix of ``loc`` is defined (None when nothing matches)."""
    path = [str(p) for p in loc if not isinstance(p, int)]
    best: tuple[int, int] | None = None  # (matched depth, line)
    table: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            table = _split_key(header.group(1))
            depth = _common(table, path)
            if depth == len(table) and (best is None or depth > best[0]):
                best = (depth, number)
            continue
        key = _KEY.match(raw)
        if key:
            full = table + _split_key(key.group(1))
            depth = _common(full, path)
            if (depth == len(full) or depth == len(path)) and (best is None or depth > best[0]):
                best = (depth, number)
    return best[1] if best else None


def _common(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
