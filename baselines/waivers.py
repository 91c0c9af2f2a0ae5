"""Waivers: accept a known deviation for a while, with a justification (like InSpec waivers).

An expired waiver stops applying by itself and is reported as expired.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from baselines import messages as msg
from baselines.model import Finding


class WaiverError(Exception):
    pass


class WaiverSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str | None = None
    finding: str | None = None
    subject: str | None = None  # glob over the finding subject
    justification: str = Field(min_length=3)
    expires: dt.date
    approved_by: str | None = None

    @model_validator(mode="after")
    def _target(self) -> WaiverSpec:
        if not (self.rule or self.finding):
            raise ValueError("a waiver names a rule or a finding id")
        return self


class WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    waivers: list[WaiverSpec] = []


@dataclass(frozen=True, slots=True)
class WaiverOutcome:
    findings: tuple[Finding, ...]
    expired: tuple[WaiverSpec, ...]


def load_waivers(path: str | Path) -> list[WaiverSpec]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise WaiverError(f"{path}: cannot read waivers: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise WaiverError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise WaiverError(f"{path}: a waivers file is a mapping with a 'waivers:' list")
    try:
        return WaiverFile.model_validate(data).waivers
    except ValidationError as exc:
        bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise WaiverError(f"{path}: {bad}") from None


def apply_waivers(findings: Iterable[Finding], waivers: list[WaiverSpec], today: dt.date) -> WaiverOutcome:
    active = [w for w in waivers if w.expires >= today]
    expired = tuple(w for w in waivers if w.expires < today)
    out: list[Finding] = []
    for f in findings:
        waiver = next((w for w in active if _matches(w, f)), None)
        out.append(dataclasses.replace(f, waived_by=msg.WAIVED(justification=waiver.justification,
                                                               until=waiver.expires.isoformat()))
                   if waiver else f)
    return WaiverOutcome(tuple(out), expired)


def _matches(w: WaiverSpec, f: Finding) -> bool:
    if w.finding and w.finding != f.id:
        return False
    if w.rule and w.rule != f.rule_id:
        return False
    return not (w.subject and not fnmatch.fnmatchcase(f.subject, w.subject))
