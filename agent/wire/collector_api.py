"""The agent <-> collector protocol: enrolment, signed requests, ingest batches and their per-item
acknowledgement, notice delivery and task leases. Pydantic only, importable by the agent without the
collector's server code.

Every call after enrolment carries four headers (``AUTH_HEADERS``) and an Ed25519 signature by the agent's
enrolled identity key over ``request_signing_bytes``: method, path with query, time, a fresh nonce and the
SHA-256 of the body. The collector refuses a signature older or newer than its clock-skew allowance and any
nonce it has already seen from that agent (kept in the database, so every replica refuses a replay).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.wire.collector_answers import (
    AUTH_HEADERS,
    HEADER_AGENT,
    HEADER_BOOT,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIME,
    INGEST_SCHEMA,
    ApiModel,
    EnrolResponse,
    ErrorBody,
    HostIdentity,
    IngestCounts,
    IngestResult,
    ItemAck,
    ItemStatus,
    NoticesOf,
    RenewRequest,
    RenewResponse,
    TaskCompletion,
    TaskLeaseOf,
    TrustedIssuerInfo,
    request_signing_bytes,
)
from agent.wire.coverage import RunCoverage
from agent.wire.findings import Finding
from agent.wire.notice import AcknowledgementDoc, NoticeDocument
from agent.wire.scan import ProbeRunDoc

# The light half (headers, signing bytes, the collector's answers) lives in agent.wire.collector_answers, what
# the idle daemon imports; re-exported here so the collector and the children have the whole protocol in one place.
__all__ = ["AUTH_HEADERS", "ENROL_SCHEMA", "HEADER_AGENT", "HEADER_BOOT", "HEADER_NONCE", "HEADER_SIGNATURE",
           "HEADER_TIME", "INGEST_SCHEMA", "ApiModel", "EnrolRequest", "EnrolResponse", "ErrorBody", "HostIdentity",
           "Id", "IngestBatch", "IngestCounts", "IngestResult", "ItemAck", "ItemStatus", "NoticeDelivery",
           "RenewRequest", "RenewResponse", "RunReport", "TaskCompletion", "TaskItem", "TaskLease",
           "TrustedIssuerInfo", "request_signing_bytes"]

ENROL_SCHEMA = "precaution.collector.enrol/v1"

Id = str  # ids are opaque strings; the collector limits their length
_ID = Field(min_length=1, max_length=200)


class EnrolRequest(ApiModel):
    schema_: Literal["precaution.collector.enrol/v1"] = Field(alias="schema", default="precaution.collector.enrol/v1")
    token: str = Field(min_length=10, max_length=200)
    unit: str = Field(min_length=1, max_length=200)
    csr_pem: str = Field(min_length=1, max_length=8192)  # for the agent's Ed25519 identity key
    record_public_key: str = Field(min_length=1, max_length=100)  # base64 raw Ed25519 key that signs the record
    host: HostIdentity
    agent_version: str = Field(default="", max_length=64)


class RunReport(ApiModel):
    """One run on one host: which probes ran (and how), and every finding it produced.

    Item key of a finding: (finding id, run id). A run is *complete* for a probe when that probe's status is
    ``ok``; only a complete run resolves an absent finding or verifies a fix, and never one with a login
    failure on that host. ``coverage`` says what the run covered (agent.wire.coverage): only a finding inside
    it can be resolved or verified by its absence. None (an older agent): host-level findings only."""

    run_id: Id = _ID
    kind: Literal["scan", "netscan", "remote", "inspection"]
    host: str = Field(min_length=1, max_length=255)  # the host the run covered
    started: str = Field(max_length=40)
    finished: str = Field(max_length=40)
    task_id: str | None = Field(default=None, max_length=200)
    notice_id: str | None = Field(default=None, max_length=200)
    login_failed: bool = False
    probes: list[ProbeRunDoc] = Field(max_length=500)
    findings: list[Finding]
    coverage: RunCoverage | None = None


class IngestBatch(ApiModel):
    schema_: Literal["precaution.collector.ingest/v1"] = Field(alias="schema", default="precaution.collector.ingest/v1")
    batch_id: Id = _ID
    host: HostIdentity
    runs: list[RunReport] = Field(default_factory=list)
    record_lines: list[str] = Field(default_factory=list)  # exact lines of record.jsonl, in order, no newline
    acknowledgements: list[AcknowledgementDoc] = Field(default_factory=list)


class TaskItem(ApiModel):
    task_id: str
    notice_id: str | None
    tests: list[str]
    targets: list[str]
    not_before: str
    expires_at: str
    lease_until: str
    notice: NoticeDocument | None


class NoticeDelivery(NoticesOf[NoticeDocument]):
    """Signed notices for this agent's unit not yet acknowledged by it (acknowledge through ingest)."""


class TaskLease(TaskLeaseOf[TaskItem]):
    """The tasks leased to this agent, each with its notice; poll again after ``poll_interval_s``."""
