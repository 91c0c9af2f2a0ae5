"""Findings, severities and remedial actions (Art. 26)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from probes.i18n import Localized, Message, render


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ValueError(f"unknown severity {text!r} (one of {', '.join(s.value for s in cls)})") from None


_RANK = {Severity.INFO: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


class ActionKind(StrEnum):
    """Remedial measures of Art. 26 (block, isolate, dismantle, stop use) plus the everyday ones."""

    BLOCK = "block"
    ISOLATE = "isolate"
    DISMANTLE = "dismantle"
    STOP_USE = "stop_use"
    RECONFIGURE = "reconfigure"
    INVESTIGATE = "investigate"


LANGS = ("en", "zh-CN")


@dataclass(frozen=True, slots=True)
class Text:
    """A sentence in English and Simplified Chinese."""

    en: str
    zh: str

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh-CN" else self.en

    def format(self, values: dict[str, Any]) -> Text:
        """Fill the placeholders of both sentences; a localised value (probes.i18n) fills each in its language."""
        return Text(_fill(self.en, values, "en"), _fill(self.zh, values, "zh-CN"))


@dataclass(frozen=True, slots=True)
class Remediation:
    action: ActionKind
    steps: Text
    command: str | None = None

    def format(self, values: dict[str, Any]) -> Remediation:
        cmd = _fill(self.command, values, "en") if self.command else None
        return Remediation(self.action, self.steps.format(values), cmd)


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(template: str, values: dict[str, Any], lang: str) -> str:
    try:
        return template.format_map(_Missing({k: render(v, lang) if isinstance(v, Localized) else v
                                             for k, v in values.items()}))
    except (ValueError, IndexError, AttributeError):
        return template


def finding_id(host: str, probe: str, subject: str, rule: str) -> str:
    """Stable across runs: the same host, probe, subject and rule always give the same id."""
    digest = hashlib.sha256("\x1f".join((host, probe, subject, rule)).encode()).hexdigest()
    return digest[:16]


@dataclass(frozen=True, slots=True)
class Finding:
    id: str
    rule_id: str
    host: str
    probe: str
    subject: str
    severity: Severity
    title: Text
    rationale: Text
    remediation: Remediation
    evidence: dict[str, Any] = field(default_factory=dict)
    references: tuple[str, ...] = ()
    kind: str = "rule"  # rule | drift | integrity
    waived_by: Message | None = None  # the waiver's justification and end date when one applies

    def to_json(self, lang: str | None = None) -> dict[str, Any]:
        def text(t: Text) -> Any:
            return t.get(lang) if lang else {"en": t.en, "zh-CN": t.zh}

        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "kind": self.kind,
            "host": self.host,
            "probe": self.probe,
            "subject": self.subject,
            "severity": self.severity.value,
            "title": text(self.title),
            "rationale": text(self.rationale),
            "remediation": {
                "action": self.remediation.action.value,
                "steps": text(self.remediation.steps),
                "command": self.remediation.command,
            },
            "evidence": self.evidence,
            "references": list(self.references),
            "waived": self.waived_by.get(lang or "en") if self.waived_by else None,
        }
