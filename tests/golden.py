"""The one golden-file comparison. A normal run never writes an expected file: a missing one fails. Only an
explicit PRECAUTION_REGEN=1 (re)writes them; review the diff before committing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REGEN_ENV = "PRECAUTION_REGEN"


def regenerating() -> bool:
    return os.environ.get(REGEN_ENV) == "1"


def compare_golden(got: Any, expected_path: Path) -> None:
    """``got`` (JSON-able) must equal the content of ``expected_path``."""
    if regenerating():
        expected_path.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    elif not expected_path.exists():
        pytest.fail(f"{expected_path}: expected file missing; create it with {REGEN_ENV}=1 and review it")
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert got == expected, f"differs from {expected_path.name} ({REGEN_ENV}=1 rewrites it after a reviewed change)"
