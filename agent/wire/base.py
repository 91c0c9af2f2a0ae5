"""Shared base of every wire model: strict, closed, and serialised by alias."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue


def _iso_timestamp(value: str) -> str:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value!r}")
    return value


def _iso_date(value: str) -> str:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date: {value!r}") from None
    return value


Timestamp = Annotated[str, AfterValidator(_iso_timestamp), Field(json_schema_extra={"format": "date-time"})]
Date = Annotated[str, AfterValidator(_iso_date), Field(json_schema_extra={"format": "date"})]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Attrs = dict[str, JsonValue]

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")
TestKind = Literal["host", "discovery", "portscan", "service", "passive", "on-site"]


class WireModel(BaseModel):
    """Closed (extra fields refused), strict (no type coercion) and immutable."""

    # defer_build: a model's validator is built on first use, so importing the schema costs little (scan RSS)
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True, defer_build=True)

    # Optional fields left out of the JSON when unset (``observations`` without --observations).
    OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()

    def to_json(self) -> dict[str, Any]:
        omit = {name for name in self.OMIT_WHEN_NONE if getattr(self, name) is None}
        return self.model_dump(mode="json", by_alias=True, exclude=omit or None)


class Text(WireModel):
    """A sentence in English and Simplified Chinese."""

    en: str
    zh: str = Field(alias="zh-CN")


class SeverityCounts(WireModel):
    """Active (not waived) findings per severity; every key always present."""

    info: int
    low: int
    medium: int
    high: int
    critical: int
