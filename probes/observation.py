"""The observation: one typed fact about a subject, produced by a probe."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

Scalar = str | int | float | bool | None
AttrValue = Scalar | tuple[Scalar, ...]


class Row:
    """Base of every probe's typed row (a frozen dataclass).

    ``KEY`` names the fields that identify the subject (stable across runs); ``VOLATILE`` names fields that
    change without meaning drift (pids, counters) so that baselines ignore them.
    """

    KEY: ClassVar[tuple[str, ...]] = ()
    VOLATILE: ClassVar[frozenset[str]] = frozenset()

    def subject(self) -> str:
        values = [_fmt(getattr(self, name)) for name in self.KEY]
        return "|".join(values)

    def attrs(self) -> dict[str, AttrValue]:
        out: dict[str, AttrValue] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = tuple(value) if isinstance(value, list | tuple | frozenset) else value
        return out


def _fmt(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Observation:
    """A fact in the uniform shape that profiles and baselines compare: probe id, subject key, attributes."""

    probe: str
    subject: str
    attrs: Mapping[str, AttrValue] = field(default_factory=dict)
    volatile: frozenset[str] = frozenset()

    @classmethod
    def from_row(cls, probe: str, row: Row) -> Observation:
        return cls(probe=probe, subject=row.subject(), attrs=row.attrs(), volatile=row.VOLATILE)

    @property
    def key(self) -> tuple[str, str]:
        return (self.probe, self.subject)

    def to_json(self) -> dict[str, Any]:
        return {"probe": self.probe, "subject": self.subject, "attrs": {k: _jsonable(v) for k, v in self.attrs.items()}}


def _jsonable(value: AttrValue) -> Any:
    return list(value) if isinstance(value, tuple) else value
