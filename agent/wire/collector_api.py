"""The agent <-> collector protocol: enrolment, signed requests, ingest batches and their per-item
acknowledgement, notice delivery and task leases. Pydantic only, importable by the agent without the
collector's server code.

Every call after enrolment carries four headers (``AUTH_HEADERS``) and an Ed25519 signature by the agent's
enrolled identity key over ``request_signing_bytes``: method, path with query, time, a fresh nonce and the
SHA-256 of the body. The collector refuses a signature older or newer than its clock-skew allowance and any
nonce it has already seen from that agent (kept in the database, so every replica refuses a replay).
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.wire.coverage import RunCoverage
from agent.wire.findings import Finding
from agent.wire.notice import AcknowledgementDoc, NoticeDocument
from agent.wire.scan import ProbeRunDoc

ENROL_SCHEMA = "precaution.collector.enrol/v1"
INGEST_SCHEMA = "precaution.collector.ingest/v1"

HEADER_AGENT = "X-Precaution-Agent"
HEADER_TIME = "X-Precaution-Time"
HEADER_NONCE = "X-Precaution-Nonce"
HEADER_SIGNATURE = "X-Precaution-Signature"
HEADER_BOOT = "X-Precaution-Boot"  # the host's boot id: a second host with a copied identity shows another
AUTH_HEADERS = (HEADER_AGENT, HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE)

Id = str  # ids are opaque strings; the collector limits their length
_ID = Field(min_length=1, max_length=200)


def request_signing_bytes(method: str, path_qs: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What the agent signs for one request (path with its query string, exactly as sent)."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join(("precaution-request/v1", method.upper(), path_qs, timestamp, nonce, digest)).encode("utf-8")


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HostIdentity(ApiModel):
    hostname: str = Field(min_length=1, max_length=255)
    machine_id: str = Field(min_length=1, max_length=128)
    boot_id: str = Field(min_length=1, max_length=128)


class EnrolRequest(ApiModel):
    schema_: Literal["precaution.collector.enrol/v1"] = Field(alias="schema", default="precaution.collector.enrol/v1")
    token: str = Field(min_length=10, max_length=200)
    unit: str = Field(min_length=1, max_length=200)
    csr_pem: str = Field(min_length=1, max_length=8192)  # for the agent's Ed25519 identity key
    record_public_key: str = Field(min_length=1, max_length=100)  # base64 raw Ed25519 key that signs the record
    host: HostIdentity
    agent_version: str = Field(default="", max_length=64)


class TrustedIssuerInfo(ApiModel):
    name: str
    public_key: str  # base64 raw Ed25519: notices signed with it come from this collector


class EnrolResponse(ApiModel):
    agent_id: str
    unit: str
    certificate_pem: str
    ca_pem: str
    not_after: str
    issuers: list[TrustedIssuerInfo]
    poll_interval_s: int


class RenewRequest(ApiModel):
    csr_pem: str = Field(min_length=1, max_length=8192)


class RenewResponse(ApiModel):
    certificate_pem: str
    not_after: str


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


ItemStatus = Literal["accepted", "duplicate", "rejected"]


class ItemAck(ApiModel):
    kind: Literal["run", "finding", "record", "acknowledgement"]
    key: str
    status: ItemStatus
    reason: str | None = None


class IngestCounts(ApiModel):
    accepted: int
    duplicate: int
    rejected: int


class IngestResult(ApiModel):
    batch_id: str
    replayed_batch: bool  # the whole batch was seen before: nothing changed
    counts: IngestCounts
    items: list[ItemAck]
    record_head: int  # the last record seq the collector holds for this agent


class NoticeDelivery(ApiModel):
    notices: list[NoticeDocument]


class TaskItem(ApiModel):
    task_id: str
    notice_id: str | None
    tests: list[str]
    targets: list[str]
    not_before: str
    expires_at: str
    lease_until: str
    notice: NoticeDocument | None


class TaskLease(ApiModel):
    tasks: list[TaskItem]
    poll_interval_s: int


class TaskCompletion(ApiModel):
    status: Literal["done", "failed"]
    run_id: str | None = Field(default=None, max_length=200)
    message: str = Field(default="", max_length=2000)


class ErrorBody(ApiModel):
    error: str
    message: str
    message_zh: str
