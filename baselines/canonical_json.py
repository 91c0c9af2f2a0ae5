"""Canonical JSON: the exact bytes that get hashed and signed (inspection record entries, advance notices).
Sorted keys, no whitespace, UTF-8 kept as is: the same data always gives the same bytes."""

from __future__ import annotations

import json
from typing import Any


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
