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
    # What the row is for. Some facts are judged by profile rules but are not state to keep in a baseline
    # (one running process with its pid and command line), others are the stable state that baselines compare
    # but no rule should judge twice (the identity of a long-lived process): see probes/host/processes.py.
    IN_RULES: ClassVar[bool] = True
    IN_BASELINE: ClassVar[bool] = True

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
    in_rules: bool = True  # profile rules judge it
    in_baseline: bool = True  # baselines keep and compare it

    @classmethod
    def from_row(cls, probe: str, row: Row) -> Observation:
        return cls(probe=probe, subject=row.subject(), attrs=row.attrs(), volatile=row.VOLATILE,
                   in_rules=row.IN_RULES, in_baseline=row.IN_BASELINE)

    @property
    def key(self) -> tuple[str, str]:
        return (self.probe, self.subject)

    def to_json(self) -> dict[str, Any]:
        return {"probe": self.probe, "subject": self.subject, "attrs": {k: _jsonable(v) for k, v in self.attrs.items()}}


def _jsonable(value: AttrValue) -> Any:
    return list(value) if isinstance(value, tuple) else value
