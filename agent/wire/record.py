"""Inspection record entries (Art. 25 ¶3): an entry is the *content* (``agent.wire.contents``: what was done, to
what, what it found, what was applied; one model per ``kind``) plus the chain fields the record adds when it
writes it (seq, time, actor, key, prev, results digest). Readers (``record show``, the collector) parse whole
entries with ``parse_entry``; writers (``agent.record.Recorder``) need only the contents, so importing them
does not build the entry models.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from agent.wire.base import Sha256Hex, Timestamp, WireModel
from agent.wire.contents import (
    KINDS,
    AcknowledgementContent,
    AcknowledgementSummary,
    AgentKeyContent,
    AgentKeySummary,
    Applied,
    BaselineAcceptContent,
    BaselineCaptureContent,
    BaselineScopeDoc,
    BaselineSummary,
    EntryContent,
    FailedTest,
    HostKeyContent,
    HostKeySummary,
    HostScope,
    InspectionContent,
    InspectionSummary,
    InspectorDoc,
    NetscanContent,
    NetscanSummary,
    NetworkScope,
    NoticeContent,
    NoticeScope,
    NoticeSummary,
    RecordAcknowledgementContent,
    RecordAcknowledgementSummary,
    RecordBreakContent,
    RecordBreakSummary,
    RecordRecoveryContent,
    RecordRecoverySummary,
    RefusalContent,
    RefusalSummary,
    RemoteContent,
    RemoteHostBrief,
    RemoteSummary,
    ScanContent,
    ScanSummaryDoc,
    SentTo,
    TaskFailedContent,
    TaskFailedSummary,
)
from agent.wire.contents import _Content as _Content

__all__ = [
    "KINDS",
    "RECORD_ENTRY",
    "AcknowledgementContent",
    "AcknowledgementSummary",
    "AgentKeyContent",
    "AgentKeySummary",
    "Applied",
    "BaselineAcceptContent",
    "BaselineCaptureContent",
    "BaselineScopeDoc",
    "BaselineSummary",
    "EntryContent",
    "FailedTest",
    "HostKeyContent",
    "HostKeySummary",
    "HostScope",
    "InspectionContent",
    "InspectionSummary",
    "InspectorDoc",
    "NetscanContent",
    "NetscanSummary",
    "NetworkScope",
    "NoticeContent",
    "NoticeScope",
    "NoticeSummary",
    "RecordAcknowledgementContent",
    "RecordAcknowledgementSummary",
    "RecordBreakContent",
    "RecordBreakSummary",
    "RecordEntry",
    "RecordLine",
    "RecordRecoveryContent",
    "RecordRecoverySummary",
    "RefusalContent",
    "RefusalSummary",
    "RemoteContent",
    "RemoteHostBrief",
    "RemoteSummary",
    "ScanContent",
    "ScanSummaryDoc",
    "SentTo",
    "TaskFailedContent",
    "TaskFailedEntry",
    "TaskFailedSummary",
    "parse_entry",
]


# -- whole entries: content + chain fields (what readers and the collector parse) -------------------------


class _Chain(WireModel):
    seq: int = Field(ge=1)
    time: Timestamp
    actor: str
    results_sha256: Sha256Hex | None
    key: str  # fingerprint of the agent key that signed
    prev: Sha256Hex  # link of the entry before: SHA-256(hash || sig); 64 zeros for the first


class ScanEntry(ScanContent, _Chain):
    pass


class InspectionEntry(InspectionContent, _Chain):
    pass


class NetscanEntry(NetscanContent, _Chain):
    pass


class RemoteEntry(RemoteContent, _Chain):
    pass


class RefusalEntry(RefusalContent, _Chain):
    pass


class NoticeEntry(NoticeContent, _Chain):
    pass


class AcknowledgementEntry(AcknowledgementContent, _Chain):
    pass


class BaselineCaptureEntry(BaselineCaptureContent, _Chain):
    pass


class BaselineAcceptEntry(BaselineAcceptContent, _Chain):
    pass


class HostKeyEntry(HostKeyContent, _Chain):
    pass


class AgentKeyEntry(AgentKeyContent, _Chain):
    pass


class RecordBreakEntry(RecordBreakContent, _Chain):
    pass


class RecordRecoveryEntry(RecordRecoveryContent, _Chain):
    pass


class RecordAcknowledgementEntry(RecordAcknowledgementContent, _Chain):
    pass


class TaskFailedEntry(TaskFailedContent, _Chain):
    pass


RecordEntry = Annotated[
    ScanEntry | InspectionEntry | NetscanEntry | RemoteEntry | RefusalEntry | NoticeEntry | AcknowledgementEntry
    | BaselineCaptureEntry | BaselineAcceptEntry | HostKeyEntry | AgentKeyEntry | RecordBreakEntry
    | RecordRecoveryEntry | RecordAcknowledgementEntry | TaskFailedEntry,
    Field(discriminator="kind"),
]
RECORD_ENTRY: TypeAdapter[RecordEntry] = TypeAdapter(RecordEntry)


class RecordLine(WireModel):
    """One line of record.jsonl as a document (the collector's view)."""

    entry: RecordEntry
    hash: Sha256Hex
    sig: str


def parse_entry(body: object) -> RecordEntry:
    """A typed entry from a decoded body (a dict). Raises pydantic.ValidationError."""
    return RECORD_ENTRY.validate_python(body)
