"""`precaution scan --json`: the self-inspection result, schema ``precaution.scan/v2``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from agent.wire.base import Attrs, Date, SeverityCounts, Timestamp, WireModel
from agent.wire.findings import Finding

SCAN_SCHEMA = "precaution.scan/v2"

ProbeStatus = Literal["ok", "limited", "skipped", "error", "timeout"]


class HostIdentityDoc(WireModel):
    hostname: str
    machine_id: str


class ScanSummary(WireModel):
    findings: SeverityCounts
    waived: int
    probe_errors: int
    unevaluated_rules: list[str]


class ProbeRunDoc(WireModel):
    id: str
    title: str
    status: ProbeStatus
    duration_s: float
    observations: int
    message: str | None
    limitations: list[str]


class ExpiredWaiverDoc(WireModel):
    rule: str | None
    finding: str | None
    subject: str | None
    expires: Date
    justification: str


class DriftCounts(WireModel):
    added: int = 0
    removed: int = 0
    changed: int = 0


class BaselineComparisonDoc(WireModel):
    """What a scan or netscan did with the saved baseline of its scope."""

    scope: str
    status: Literal["compared", "missing", "invalid"]
    message: str
    version: int | None
    accepted_by: str | None
    accepted_at: str | None
    probes: list[str]
    drift: DriftCounts
    ignored: dict[str, int]


class ObservationDoc(WireModel):
    probe: str
    subject: str
    attrs: Attrs


class ScanDocument(WireModel):
    OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"observations"})

    schema_: Literal["precaution.scan/v2"] = Field(alias="schema")
    tool_version: str
    host: HostIdentityDoc
    transport: str
    as_root: bool
    started: Timestamp
    finished: Timestamp
    profile: str
    summary: ScanSummary
    probes: list[ProbeRunDoc]
    findings: list[Finding]
    expired_waivers: list[ExpiredWaiverDoc]
    notes: list[str]
    baseline: BaselineComparisonDoc | None
    observations: list[ObservationDoc] | None = None  # only with --observations


class InspectorRef(WireModel):
    name: str
    id: str  # the identification presented (warrant card, badge number)


class InspectionInfo(WireModel):
    on_site: Literal[True]
    inspectors: list[InspectorRef]
    notice: str | None
    started: Timestamp


class InspectionDocument(ScanDocument):
    """`precaution inspect --on-site --json`: the scan document plus who inspected (Art. 25 ¶1)."""

    inspection: InspectionInfo
