"""A self-inspection: run host probes, evaluate the profile, apply waivers."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from agent.runner import ProbeRun, ProgressFn, run_probes
from baselines.diff import Diff, diff_observations, volatile_of
from baselines.drift import DriftFinding, drift_findings, integrity_finding
from baselines.evaluate import evaluate
from baselines.model import Finding, Severity
from baselines.profile import Profile
from baselines.waivers import WaiverSpec, apply_waivers
from probes.base import Probe, ProbeSettings
from probes.observation import Observation
from probes.registry import all_probes
from probes.transport import Transport

if TYPE_CHECKING:
    from agent.baseline_files import BaselineFiles
    from baselines.store import Baseline, Scope

log = logging.getLogger(__name__)



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
class BaselineComparison:
    """What the scan did with the saved baseline: compared it, found none yet, or refused an invalid one."""

    scope: str
    status: Literal["compared", "missing", "invalid"]
    message: str
    version: int | None = None
    accepted_by: str | None = None
    accepted_at: str | None = None
    probes: tuple[str, ...] = ()  # compared
    counts: dict[str, int] = field(default_factory=dict)  # added / removed / changed
    ignored: dict[str, int] = field(default_factory=dict)  # ignore reason -> items


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
    baseline: BaselineComparison | None = None

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
    baselines: BaselineFiles | None = None,
    scope: Scope | None = None,
) -> ScanResult:
    """Probe, evaluate the profile and, when ``baselines`` is given, compare with the saved baseline of
    ``scope`` (drift findings join the rule findings)."""
    started = dt.datetime.now(dt.UTC)
    host = HostIdentity.read(transport)
    runs = run_probes(probes if probes is not None else select_probes(), transport, progress)
    ran = {r.probe for r in runs if r.ran}
    observations = [o for r in runs for o in r.observations]
    evaluation = evaluate(profile, observations, host.hostname, ran)
    findings = list(evaluation.findings)
    comparison: BaselineComparison | None = None
    notes: list[str] = []
    if baselines is not None:
        from agent.baseline_files import host_scope

        extra, comparison, notes = compare_with_baseline(baselines, scope or host_scope(), host, runs, profile)
        findings += extra
    waived = apply_waivers(findings, list(waivers), today or started.date())
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
        notes=notes,
        baseline=comparison,
    )


def compare_runs(baseline: Baseline, runs: Sequence[ProbeRun], profile: Profile,
                 host: str) -> tuple[Diff, list[DriftFinding]]:
    """Diff the probes that ran now and are in the baseline (a probe that did not run is not "removed")."""
    current = [o for r in runs if r.ran for o in r.observations]
    return compare_observations(baseline, {r.probe for r in runs if r.ran}, current, profile, host)


def compare_observations(baseline: Baseline, ran: set[str], observations: Sequence[Observation], profile: Profile,
                         host: str) -> tuple[Diff, list[DriftFinding]]:
    compared = ran & set(baseline.meta.probes)
    current_obs = [o for o in observations if o.probe in compared]
    volatile = dict(baseline.volatile)
    for probe, names in volatile_of(current_obs).items():
        volatile[probe] = volatile.get(probe, frozenset()) | names
    result = diff_observations(baseline.entries, current_obs, volatile, profile.ignore, compared)
    return result, drift_findings(result, profile.drift, host)


def compare_with_baseline(files: BaselineFiles, scope: Scope, host: HostIdentity, runs: Sequence[ProbeRun],
                          profile: Profile) -> tuple[list[Finding], BaselineComparison, list[str]]:
    """Drift findings (or the critical integrity finding), the comparison summary and notes for the report."""
    ran = {r.probe for r in runs if r.ran}
    limited = {r.probe for r in runs if r.status == "limited"}
    return compare_scope(files, scope, host, ran, [o for r in runs if r.ran for o in r.observations], limited,
                         profile, host.hostname)


def compare_scope(files: BaselineFiles, scope: Scope, host: HostIdentity, ran: set[str],
                  observations: Sequence[Observation], limited: set[str], profile: Profile,
                  finding_host: str) -> tuple[list[Finding], BaselineComparison, list[str]]:
    """The one comparison path for host and network baselines: drift findings, or (baseline invalid) the
    critical integrity finding; a missing baseline is a note, never an error."""
    from agent.baseline_files import BaselineMissing
    from baselines.store import BaselineInvalid

    capture = "precaution baseline capture" + (" --network" if scope.kind == "network" else "")
    try:
        baseline = files.load(scope, host.hostname, host.machine_id)
    except BaselineMissing:
        what = "network baseline" if scope.kind == "network" else "baseline"
        whose = "the network's" if scope.kind == "network" else "this host's"
        message = (f"no {what} for {scope.label} yet: drift not checked; run `{capture}` "
                   f"to record {whose} known-good state")
        return [], BaselineComparison(scope.label, "missing", message), [message]
    except BaselineInvalid as exc:
        path = str(files.current_path(scope))
        message = f"baseline {scope.label} NOT USED: {exc.message}"
        return ([integrity_finding(finding_host, scope.label, path, exc.message)],
                BaselineComparison(scope.label, "invalid", message), [message])
    result, drift = compare_observations(baseline, ran, observations, profile, finding_host)
    meta = baseline.meta
    notes: list[str] = []
    missing = sorted(set(meta.probes) - set(result.probes))
    if missing:
        notes.append(f"baseline probes not compared (did not run now): {', '.join(missing)}")
    new = sorted(ran - set(meta.probes))
    if new:
        notes.append(f"probes not in baseline {scope.label} v{meta.version} (no drift check): {', '.join(new)}")
    limited_compared = sorted(p for p in limited if p in result.probes)
    if limited_compared:
        notes.append(f"limited probes compared with the baseline (drift may reflect missing permissions): "
                     f"{', '.join(limited_compared)}")
    total = len(result.items)
    message = (f"baseline {scope.label} v{meta.version} (accepted by {meta.accepted_by} {meta.accepted_at}): "
               f"{total} drift item(s) in {len(drift)} finding(s)")
    comparison = BaselineComparison(scope.label, "compared", message, meta.version, meta.accepted_by,
                                    meta.accepted_at, result.probes, result.counts(), dict(result.ignored))
    return [d.finding for d in drift], comparison, [message, *notes]
