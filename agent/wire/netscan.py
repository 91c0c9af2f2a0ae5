"""`precaution netscan --json`: network test result, schema ``precaution.netscan/v2``.

Hosts, open ports and services are always included; ``observations`` (every fact, TLS and SSH details too)
only with --observations.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from agent.wire.base import Timestamp, WireModel
from agent.wire.findings import Finding
from agent.wire.scan import (
    BaselineComparisonDoc,
    ExpiredWaiverDoc,
    HostIdentityDoc,
    ObservationDoc,
    ProbeRunDoc,
    ScanSummary,
)

NETSCAN_SCHEMA = "precaution.netscan/v2"


class NetscanInfo(WireModel):
    targets: list[str]
    scope: list[str]
    engine: str
    hosts_up: list[str]


class NetHost(WireModel):
    ip: str
    mac: str
    vendor: str
    method: str  # arp | icmp | tcp | local | portscan


class OpenPort(WireModel):
    host: str
    proto: Literal["tcp", "udp"]
    port: int
    state: str  # open | open|filtered
    service: str
    product: str
    version: str
    cpe: list[str]
    extrainfo: str


class ServiceDoc(WireModel):
    host: str
    port: int
    service: str
    banner: str
    tls: bool
    starttls: bool | None
    login_prompt: bool
    telnet_options: list[str]
    http_status: int | None
    auth: list[str]
    vnc_security: list[str]
    note: str
    smb1: bool | None


class NetscanDocument(WireModel):
    OMIT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"observations"})

    schema_: Literal["precaution.netscan/v2"] = Field(alias="schema")
    tool_version: str
    host: HostIdentityDoc  # the machine that ran the test
    transport: Literal["network"]
    as_root: bool
    started: Timestamp
    finished: Timestamp
    profile: str
    summary: ScanSummary
    probes: list[ProbeRunDoc]  # one per stage: discovery, ports, services, link
    findings: list[Finding]
    expired_waivers: list[ExpiredWaiverDoc]
    notes: list[str]
    baseline: BaselineComparisonDoc | None
    netscan: NetscanInfo
    hosts: list[NetHost]
    open_ports: list[OpenPort]
    services: list[ServiceDoc]
    observations: list[ObservationDoc] | None = None
