"""The light half of the agent <-> collector protocol: the signed-request headers and signing bytes, and the
collector's answers (ingest acknowledgements, task and notice envelopes, enrolment and renewal). Pydantic only,
nothing else from the wire schema: the long-running agent daemon speaks the protocol with these, so that its
idle footprint carries no finding, scan or notice models (issue 11: <= 40 MB). The task children and the collector
use the full models of ``agent.wire.collector_api``, which re-exports everything here (one definition each).

The envelopes are generic in what they carry: the collector declares ``TaskLease`` (``TaskLeaseOf[TaskItem]``)
and ``NoticeDelivery``; the daemon reads the same envelopes with each task and notice kept as a JSON object,
which it hands whole to the child process that validates and verifies it.
"""

from __future__ import annotations

import hashlib
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

HEADER_AGENT = "X-Precaution-Agent"
HEADER_TIME = "X-Precaution-Time"
HEADER_NONCE = "X-Precaution-Nonce"
HEADER_SIGNATURE = "X-Precaution-Signature"
HEADER_BOOT = "X-Precaution-Boot"  # the host's boot id: a second host with a copied identity shows another
AUTH_HEADERS = (HEADER_AGENT, HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE)

INGEST_SCHEMA = "precaution.collector.ingest/v1"

JsonObject = dict[str, JsonValue]
Item = TypeVar("Item")


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


class NoticesOf(ApiModel, Generic[Item]):
    """Notices for this agent's unit not yet acknowledged by it."""

    notices: list[Item]


class TaskLeaseOf(ApiModel, Generic[Item]):
    """The tasks leased to this agent; poll again after ``poll_interval_s``."""

    tasks: list[Item]
    poll_interval_s: int


class RawNotices(NoticesOf[JsonObject]):
    """The daemon's reading: each notice document kept whole, for the child that verifies it."""


class RawTaskLease(TaskLeaseOf[JsonObject]):
    """The daemon's reading: each task kept whole, for the child that validates and runs it."""


class NoticeKey(BaseModel):
    """What the daemon needs of a delivered notice document: its id (the inbox file name)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    class Body(BaseModel):
        model_config = ConfigDict(extra="ignore", frozen=True)
        id: str = Field(min_length=1)

    notice: Body


class TaskKey(BaseModel):
    """What the daemon needs of a leased task: its id (the inbox file name)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    task_id: str = Field(min_length=1)


class TaskCompletion(ApiModel):
    status: Literal["done", "failed"]
    run_id: str | None = Field(default=None, max_length=200)
    message: str = Field(default="", max_length=2000)


class ErrorBody(ApiModel):
    error: str
    message: str
    message_zh: str
