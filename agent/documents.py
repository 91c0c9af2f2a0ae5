"""Build wire documents (agent.wire) from the agent's domain results: the one place JSON output comes from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from agent import __version__
from agent.wire.base import SeverityCounts, Text
from agent.wire.findings import Finding as FindingDoc
from agent.wire.findings import Remediation
from agent.wire.scan import (
    BaselineComparisonDoc,
    DriftCounts,
    ExpiredWaiverDoc,
    HostIdentityDoc,
    ObservationDoc,
    ProbeRunDoc,
    ScanDocument,
    ScanSummary,
)

if TYPE_CHECKING:
    from agent.runner import ProbeRun
    from agent.scan import BaselineComparison, ScanResult
    from agent.wire.netscan import NetscanDocument
    from baselines.model import Finding
    from baselines.model import Text as DomainText
    from probes.observation import Observation


def plain(value: Any) -> Any:
    """A JSON value from evidence and attributes: tuples and sets become lists, mappings plain dicts."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [plain(v) for v in value]
    return value


def text(t: DomainText) -> Text:
    return Text.model_validate({"en": t.en, "zh-CN": t.zh})


def finding(f: Finding) -> FindingDoc:
    return FindingDoc(
        id=f.id, rule_id=f.rule_id, kind=f.kind, host=f.host, probe=f.probe,  # type: ignore[arg-type]
        subject=f.subject, severity=f.severity.value, title=text(f.title),
        rationale=text(f.rationale),
        remediation=Remediation(action=f.remediation.action.value,
                                steps=text(f.remediation.steps), command=f.remediation.command),
        evidence=plain(f.evidence), references=list(f.references), waived=f.waived_by)


def severity_counts(counts: Mapping[str, int]) -> SeverityCounts:
    return SeverityCounts.model_validate(dict(counts))


def probe_run(r: ProbeRun) -> ProbeRunDoc:
    return ProbeRunDoc(id=r.probe, title=r.title, status=r.status, duration_s=round(r.duration_s, 4),
                       observations=len(r.observations), message=r.message, limitations=list(r.limitations))


def observation(o: Observation) -> ObservationDoc:
    return ObservationDoc(probe=o.probe, subject=o.subject, attrs=plain(o.attrs))


def baseline_comparison(c: BaselineComparison) -> BaselineComparisonDoc:
    return BaselineComparisonDoc(scope=c.scope, status=c.status, message=c.message, version=c.version,
                                 accepted_by=c.accepted_by, accepted_at=c.accepted_at, probes=list(c.probes),
                                 drift=DriftCounts.model_validate(dict(c.counts)), ignored=dict(c.ignored))


def scan_fields(result: ScanResult, include_observations: bool) -> dict[str, Any]:
    """The fields scan and netscan documents share."""
    from agent.scan import sorted_findings

    return dict(
        tool_version=__version__,
        host=HostIdentityDoc(hostname=result.host.hostname, machine_id=result.host.machine_id),
        transport=result.transport, as_root=result.as_root, started=result.started.isoformat(),
        finished=result.finished.isoformat(), profile=result.profile_id,
        summary=ScanSummary(findings=severity_counts(result.counts()),
                            waived=len(result.findings) - len(result.active_findings),
                            probe_errors=len(result.probe_errors), unevaluated_rules=list(result.unevaluated_rules)),
        probes=[probe_run(r) for r in result.probes],
        findings=[finding(f) for f in sorted_findings(result.findings)],
        expired_waivers=[ExpiredWaiverDoc(rule=w.rule, finding=w.finding, subject=w.subject,
                                          expires=w.expires.isoformat(), justification=w.justification)
                         for w in result.expired_waivers],
        notes=list(result.notes),
        baseline=baseline_comparison(result.baseline) if result.baseline else None,
        observations=[observation(o) for o in result.observations] if include_observations else None,
    )


def scan_document(result: ScanResult, include_observations: bool = False) -> ScanDocument:
    return ScanDocument(schema="precaution.scan/v2", **scan_fields(result, include_observations))


def findings_docs(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    return [finding(f).to_json() for f in findings]


class NetscanResultLike(Protocol):
    result: ScanResult
    targets: list[str]
    scope: list[str]
    engine: str
    hosts_up: list[str]
    notes: list[str]


def netscan_document(outcome: NetscanResultLike, include_observations: bool = False) -> NetscanDocument:
    """Hosts, open ports and services always; every observation only when asked."""
    from agent.wire.netscan import NetHost, NetscanDocument, NetscanInfo, OpenPort, ServiceDoc

    observations = outcome.result.observations
    hosts = [NetHost(ip=str(a["ip"]), mac=str(a.get("mac") or ""), vendor=str(a.get("vendor") or ""),
                     method=str(a.get("method") or "")) for a in (o.attrs for o in observations if o.probe == "hosts")]
    port_rows = [o.attrs for o in observations
                 if o.probe == "ports" and str(o.attrs.get("state", "")).startswith("open")]
    ports = [OpenPort.model_validate({k: plain(a.get(k, "" if k != "cpe" else [])) for k in OpenPort.model_fields})
             for a in port_rows]
    services = [ServiceDoc.model_validate({k: plain(a.get(k)) for k in ServiceDoc.model_fields})
                for a in (o.attrs for o in observations if o.probe == "services")]
    return NetscanDocument.model_validate({
        **{k: v for k, v in scan_fields(outcome.result, include_observations).items()},
        "schema": "precaution.netscan/v2",
        "netscan": NetscanInfo(targets=list(outcome.targets), scope=list(outcome.scope), engine=outcome.engine,
                               hosts_up=list(outcome.hosts_up)),
        "notes": [*outcome.result.notes, *outcome.notes],
        "hosts": hosts, "open_ports": ports, "services": services,
    })
