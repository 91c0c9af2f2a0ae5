"""`precaution remote --json`: host probes over SSH under a notice, schema ``precaution.remote/v2``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from agent.wire.base import WireModel
from agent.wire.scan import ScanDocument

REMOTE_SCHEMA = "precaution.remote/v2"

RemoteStatus = Literal["ok", "refused", "error", "stopped", "cancelled"]


class RemoteHostDoc(WireModel):
    target: str  # as given
    address: str  # the approved address connected to
    status: RemoteStatus
    message: str
    host_key: str | None  # fingerprint of the key the host presented
    scan: ScanDocument | None


class RemoteDocument(WireModel):
    schema_: Literal["precaution.remote/v2"] = Field(alias="schema")
    tool_version: str
    notice: str  # id of the notice the run was held to
    hosts: list[RemoteHostDoc]
