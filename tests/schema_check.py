"""Validate JSON output against the generated JSON Schema files in docs/schema (jsonschema, Draft 2020-12)."""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "docs" / "schema"


def validate(name: str, data: object) -> None:
    import jsonschema

    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(data)
