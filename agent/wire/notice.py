"""Notices of remote technical testing (Art. 25 ¶2) and their acknowledgements, schema ``precaution.notice/v1``.

The signature covers the canonical JSON of the ``notice`` object as issued (see ``agent.wire.signatures``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.wire.base import Sha256Hex, Timestamp, WireModel

NOTICE_SCHEMA = "precaution.notice/v1"

NoticeKind = Literal["host", "discovery", "portscan", "service", "passive"]


class NoticeWindow(WireModel):
    start: Timestamp
    end: Timestamp


class RateLimitsDoc(WireModel):
    packets_per_second: int | None = Field(default=None, gt=0)
    max_parallel: int | None = Field(default=None, gt=0)  # hosts tested at once


class NoticeBody(WireModel):
    schema_: Literal["precaution.notice/v1"] = Field(alias="schema")
    id: str = Field(pattern=r"\S")  # not empty, not only blanks
    issuer: str = Field(pattern=r"\S")
    subject_unit: str = Field(pattern=r"\S")
    contact: str = ""
    targets: list[str] = Field(min_length=1)  # addresses, CIDRs, host names, user@host:port
    kinds: list[NoticeKind] = Field(min_length=1)
    window: NoticeWindow
    rate_limits: RateLimitsDoc = Field(default_factory=RateLimitsDoc)
    lead_time_s: int = Field(default=0, ge=0)
    issued_at: Timestamp
    basis: str = ""


class SignatureBlock(WireModel):
    algorithm: Literal["ed25519"]
    public_key: str  # base64 raw Ed25519 key
    value: str  # base64 signature over the canonical JSON of ``notice``


class NoticeDocument(WireModel):
    notice: NoticeBody
    signature: SignatureBlock | None


class AcknowledgementDoc(WireModel):
    """The subject's record of when a notice reached it (the first acknowledgement stands)."""

    notice_id: str
    digest: Sha256Hex  # binds the acknowledgement to exactly this signed notice
    acknowledged_at: Timestamp
    actor: str
