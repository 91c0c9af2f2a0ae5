"""A finding and its remedial measure (Art. 26)."""

from __future__ import annotations

from typing import Literal

from agent.wire.base import Attrs, Severity, Text, WireModel

ActionKind = Literal["block", "isolate", "dismantle", "stop_use", "reconfigure", "investigate"]
FindingKind = Literal["rule", "drift", "integrity"]


class Remediation(WireModel):
    action: ActionKind
    steps: Text
    command: str | None  # suggested only: precaution never runs it


class Finding(WireModel):
    id: str
    rule_id: str
    kind: FindingKind
    host: str
    probe: str
    subject: str
    severity: Severity
    title: Text
    rationale: Text
    remediation: Remediation
    evidence: Attrs
    references: list[str]
    waived: str | None  # the waiver's justification and end date when one applies
