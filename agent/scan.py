"""A self-inspection: run host probes, evaluate the profile, apply waivers."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent import __version__
from agent.runner import ProbeRun, ProgressFn, run_probes
from baselines.evaluate import evaluate
from baselines.model import Finding, Severity
from baselines.profile import Profile
from baselines.waivers import WaiverSpec, apply_waivers
from probes.base import Probe, ProbeSettings
from probes.observation import Observation
from probes.registry import all_probes
from probes.transport import Transport

log = logging.getLogger(__name__)

SCHEMA = "precaution.scan/v1"


@dataclass(slots=True)
class HostIdentity:
    hostname: str
    machine_id: str

    @classmethod
    def read(cls, transport: Transport) -> HostIdentity:
        def first(paths: Sequence[str]) -> str:
            for path in paths:
                try:
                    value = transport.read_text(path, 4096).strip()
                except OSError:
                    continue
                if value:
                    return value
            return ""

        return cls(first(["/proc/sys/kernel/hostname", "/etc/hostname"]) or "unknown",
                   first(["/etc/machine-id", "/var/lib/dbus/machine-id"]))


@dataclass(slots=True)
class ScanResult:
    host: HostIdentity
    transport: str
    as_root: bool
    started: dt.datetime
    finished: dt.datetime
    profile_id: str
    probes: list[ProbeRun]
    findings: list[Finding]
    unevaluated_rules: tuple[str, ...] = ()
    expired_waivers: tuple[WaiverSpec, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def observations(self) -> list[Observation]:
        return [o for run in self.probes for o in run.observations]

    @property
    def active_findings(self) -> list[Finding]:
        return [f for f in self.findings if not f.waived_by]

    @property
    def probe_errors(self) -> list[ProbeRun]:
        return [r for r in self.probes if r.status in ("error", "timeout")]

    def worst(self) -> Severity | None:
        active = self.active_findings
        return max((f.severity for f in active), key=lambda s: s.rank) if active else None

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Severity}
        for f in self.active_findings:
            out[f.severity.value] += 1
        return out

    def to_json(self, lang: str | None = None, include_observations: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "tool_version": __version__,
            "host": {"hostname": self.host.hostname, "machine_id": self.host.machine_id},
            "transport": self.transport,
            "as_root": self.as_root,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "profile": self.profile_id,
            "summary": {
                "findings": self.counts(),
                "waived": len(self.findings) - len(self.active_findings),
                "probe_errors": len(self.probe_errors),
                "unevaluated_rules": list(self.unevaluated_rules),
            },
            "probes": [
                {"id": r.probe, "title": r.title, "status": r.status, "duration_s": round(r.duration_s, 4),
                 "observations": len(r.observations), "message": r.message, "limitations": r.limitations}
                for r in self.probes
            ],
            "findings": [f.to_json(lang) for f in sorted_findings(self.findings)],
            "expired_waivers": [
                {"rule": w.rule, "finding": w.finding, "subject": w.subject, "expires": w.expires.isoformat(),
                 "justification": w.justification} for w in self.expired_waivers
            ],
            "notes": self.notes,
        }
        if include_observations:
            data["observations"] = [o.to_json() for o in self.observations]
        return data


def sorted_findings(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-f.severity.rank, f.rule_id, f.subject))


def select_probes(
    only: Sequence[str] = (), kind: str = "host", settings: ProbeSettings | None = None
) -> list[Probe]:  # type: ignore[type-arg]
    classes = [c for c in all_probes() if c.kind == kind]
    if only:
        known = {c.id for c in classes}
        unknown = [p for p in only if p not in known]
        if unknown:
            from agent.errors import UserError

            raise UserError(f"unknown probe(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        classes = [c for c in classes if c.id in only]
    settings = settings or ProbeSettings()
    return [c.configured(ProbeSettings(settings.cache_dir, settings.options.get(c.id, {}))) for c in classes]


def run_scan(
    transport: Transport,
    profile: Profile,
    waivers: Sequence[WaiverSpec] = (),
    probes: Sequence[Probe] | None = None,  # type: ignore[type-arg]
    progress: ProgressFn | None = None,
    today: dt.date | None = None,
) -> ScanResult:
    started = dt.datetime.now(dt.UTC)
    host = HostIdentity.read(transport)
    runs = run_probes(probes if probes is not None else select_probes(), transport, progress)
    ran = {r.probe for r in runs if r.ran}
    observations = [o for r in runs for o in r.observations]
    evaluation = evaluate(profile, observations, host.hostname, ran)
    waived = apply_waivers(evaluation.findings, list(waivers), today or started.date())
    return ScanResult(
        host=host,
        transport=transport.name,
        as_root=transport.is_root,
        started=started,
        finished=dt.datetime.now(dt.UTC),
        profile_id=profile.id,
        probes=runs,
        findings=sorted_findings(waived.findings),
        unevaluated_rules=evaluation.unevaluated_rules,
        expired_waivers=waived.expired,
    )
