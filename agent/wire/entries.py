"""Whole record entries: the content models of ``agent.wire.record`` plus the chain fields the record adds
(seq, time, actor, key, prev, results digest), one model per ``kind``, and ``RecordLine`` (one line of
record.jsonl). Readers and the collector use these; writers only need the content models."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, TypeAdapter

from agent.wire.base import Sha256Hex, Timestamp, WireModel
from agent.wire.record import (
    AcknowledgementContent,
    BaselineAcceptContent,
    BaselineCaptureContent,
    HostKeyContent,
    InspectionContent,
    NetscanContent,
    NoticeContent,
    RefusalContent,
    RemoteContent,
    ScanContent,
)

# -- whole entries: content + chain fields -----------------------------------------------------------------


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


RecordEntry = Annotated[
    ScanEntry | InspectionEntry | NetscanEntry | RemoteEntry | RefusalEntry | NoticeEntry | AcknowledgementEntry
    | BaselineCaptureEntry | BaselineAcceptEntry | HostKeyEntry,
    Field(discriminator="kind"),
]
RECORD_ENTRY: TypeAdapter[RecordEntry] = TypeAdapter(RecordEntry)


class RecordLine(WireModel):
    """One line of record.jsonl as a document (the collector's view)."""

    entry: RecordEntry
    hash: Sha256Hex
    sig: str
