"""Inspection record entry contents (Art. 25 ¶3): one typed model per ``kind``: what writers pass.

An entry is the *content* (what was done, to what, what it found, what was applied) plus the chain fields the
record adds when it writes it (seq, time, actor, key, prev, results digest). ``agent.record.Recorder`` takes
a content model; readers (``record show``, the collector) parse whole entries with ``parse_entry``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.wire.base import SeverityCounts, Sha256Hex, Timestamp, WireModel
from agent.wire.notice import NoticeBody

# -- parts ------------------------------------------------------------------------------------------------


class InspectorDoc(WireModel):
    name: str
    id: str


class Applied(WireModel):
    """What a run was held to: the configured values and every command-line override of them."""

    profile: str | None = None  # profile id evaluated
    fail_on: str | None = None
    unit: str | None = None  # the unit notices must name
    lead_time_s: int | None = None  # minimum notice lead time applied
    engine: str | None = None  # port-scan engine
    overrides: dict[str, str] = Field(default_factory=dict)  # option -> value given on the command line


class HostScope(WireModel):
    host: str
    root: str | None = None
    on_site: bool | None = None


class NetworkScope(WireModel):
    allowed: list[str]  # the scope the guard enforced
    targets: list[str] = Field(default_factory=list)  # as given


class NoticeScope(WireModel):
    targets: list[str]
    kinds: list[str]
    window: list[Timestamp]  # [start, end]


class BaselineScopeDoc(WireModel):
    baseline: str  # label, e.g. host/db01-5f0c or network/127.0.0.1


class SentTo(WireModel):
    """Traffic that left this machine: what was sent to whom."""

    target: str
    what: str  # e.g. "TCP SYN to ports 1-1024", "ARP who-has"


class FailedTest(WireModel):
    """A test that failed after packets went out."""

    test: str
    message: str
    sent: list[SentTo]


# -- summaries per kind -------------------------------------------------------------------------------------


class ScanSummaryDoc(WireModel):
    findings: SeverityCounts
    probe_errors: int
    baseline: Literal["compared", "missing", "invalid"] | None


class InspectionSummary(WireModel):
    host: str
    findings: SeverityCounts
    probe_errors: int


class NetscanSummary(WireModel):
    status: Literal["completed", "failed"]  # failed: a stage failed (after sending, see failures)
    findings: SeverityCounts
    hosts_up: int
    probe_errors: int
    failures: list[FailedTest] = Field(default_factory=list)


class RemoteHostBrief(WireModel):
    status: Literal["ok", "refused", "error", "stopped", "cancelled"]
    message: str | None = None
    findings: SeverityCounts | None = None
    probe_errors: int | None = None
    host: str | None = None  # the host name the target reported
    host_key: str | None = None  # fingerprint of its host key


class RemoteSummary(WireModel):
    hosts: dict[str, RemoteHostBrief]


class RefusalSummary(WireModel):
    code: str  # out-of-scope | no-notice | inspectors | host-key | unsigned | tampered | ...
    message: str
    targets: list[str] = Field(default_factory=list)
    file: str | None = None
    action: str | None = None  # what was refused when not a test: "ack", "verify"
    codes: list[str] = Field(default_factory=list)  # every problem found, the first is ``code``


class NoticeSummary(WireModel):
    verdict: Literal["valid"]
    file: str
    codes: list[str] = Field(default_factory=list)


class AcknowledgementSummary(WireModel):
    acknowledged_at: Timestamp
    digest: Sha256Hex


class BaselineSummary(WireModel):
    version: int
    items: int
    note: str | None = None
    sha256: Sha256Hex | None = None  # body digest of this version: the record names the current baseline
    recovered: str | None = None  # set when written after an interrupted save (the document was already there)


class AgentKeySummary(WireModel):
    event: Literal["created", "replaced"]
    message: str
    previous: str | None = None  # fingerprint of the key that signed the entries before (replaced)
    new: str | None = None


class RecordBreakSummary(WireModel):
    """A discontinuity the writer found (record deleted or cut, head damaged or disagreeing): written instead
    of silently restarting the chain; tampering until an operator acknowledges it."""

    message: str
    problems: list[str]


class RecordRecoverySummary(WireModel):
    """A torn last line the head never acknowledged (a crash or full disk mid-write), set aside."""

    message: str
    torn_bytes: int
    set_aside: str  # file name in the state dir
    sha256: Sha256Hex


class RecordAcknowledgementSummary(WireModel):
    """An operator checked the problems `record verify` reported and acknowledges them."""

    message: str  # the operator's reason
    by: str
    problems: list[str]


class TaskFailedSummary(WireModel):
    """A collector task that ended without a result of its own (its run was killed by the agent's watchdog, or
    interrupted by the agent stopping, twice): what it was, and why it failed."""

    task_id: str
    reason: str  # "killed: memory budget 400 MiB exceeded (peak 512 MiB)"
    targets: list[str] = Field(default_factory=list)


class HostKeySummary(WireModel):
    host: str
    key_type: str
    fingerprint: str
    event: Literal["accepted-new", "refused-unknown", "refused-changed"] = "accepted-new"
    accepted_by: str | None = None  # the option that allowed it


# -- contents: what an action writes --------------------------------------------------------------------------


class _Content(WireModel):
    inspectors: list[InspectorDoc] = Field(default_factory=list)
    notice_id: str | None = None
    tests: list[str] = Field(default_factory=list)
    applied: Applied | None = None


class ScanContent(_Content):
    kind: Literal["scan"] = "scan"
    scope: HostScope
    summary: ScanSummaryDoc


class InspectionContent(_Content):
    kind: Literal["inspection"] = "inspection"
    scope: HostScope
    summary: InspectionSummary


class NetscanContent(_Content):
    kind: Literal["netscan"] = "netscan"
    scope: NetworkScope
    summary: NetscanSummary


class RemoteContent(_Content):
    kind: Literal["remote"] = "remote"
    scope: NoticeScope
    summary: RemoteSummary


class RefusalContent(_Content):
    kind: Literal["refusal"] = "refusal"
    scope: NetworkScope | NoticeScope | None = None
    summary: RefusalSummary


class NoticeContent(_Content):
    kind: Literal["notice"] = "notice"
    scope: NoticeBody
    summary: NoticeSummary


class AcknowledgementContent(_Content):
    kind: Literal["acknowledgement"] = "acknowledgement"
    scope: NoticeBody
    summary: AcknowledgementSummary


class BaselineCaptureContent(_Content):
    kind: Literal["baseline-capture"] = "baseline-capture"
    scope: BaselineScopeDoc
    summary: BaselineSummary


class BaselineAcceptContent(_Content):
    kind: Literal["baseline-accept"] = "baseline-accept"
    scope: BaselineScopeDoc
    summary: BaselineSummary


class HostKeyContent(_Content):
    kind: Literal["host-key"] = "host-key"
    scope: None = None
    summary: HostKeySummary


class AgentKeyContent(_Content):
    kind: Literal["agent-key"] = "agent-key"
    scope: None = None
    summary: AgentKeySummary


class RecordBreakContent(_Content):
    kind: Literal["record-break"] = "record-break"
    scope: None = None
    summary: RecordBreakSummary


class RecordRecoveryContent(_Content):
    kind: Literal["record-recovery"] = "record-recovery"
    scope: None = None
    summary: RecordRecoverySummary


class TaskFailedContent(_Content):
    kind: Literal["task-failed"] = "task-failed"
    scope: None = None
    summary: TaskFailedSummary


class RecordAcknowledgementContent(_Content):
    kind: Literal["record-acknowledgement"] = "record-acknowledgement"
    scope: None = None
    summary: RecordAcknowledgementSummary


EntryContent = (ScanContent | InspectionContent | NetscanContent | RemoteContent | RefusalContent | NoticeContent
                | AcknowledgementContent | BaselineCaptureContent | BaselineAcceptContent | HostKeyContent
                | AgentKeyContent | RecordBreakContent | RecordRecoveryContent | RecordAcknowledgementContent
                | TaskFailedContent)
KINDS = ("scan", "inspection", "netscan", "remote", "refusal", "notice", "acknowledgement", "baseline-capture",
         "baseline-accept", "host-key", "agent-key", "record-break", "record-recovery", "record-acknowledgement",
         "task-failed")
