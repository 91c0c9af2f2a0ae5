"""What one run covered, and which finding a run's coverage can speak for. Pure (no I/O): the agent builds the
coverage, the collector applies it when it resolves absent findings and verifies fixes.

A finding is about its run's host (``target`` None: host probes, remote host probes, agent health) or about a
network target (``target`` an address, or ``link:<iface>`` for passive link events) named by a network run.
A later run may resolve a finding it did not report only when it covered that finding: the same probe, the
same host (host-level findings) or a target inside the run's network coverage that answered, and, for a
port's finding, that port inside the TCP ports scanned. A run without coverage (an agent older than this
field) covers only host-level findings of its probes with status ``ok``: it resolves less, never more.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

NETSCAN_KIND = "netscan"
PORT_PROBES = ("ports", "services", "tls", "ssh_algos")  # network finding probes whose subject names a port
LINK_PREFIX = "link:"
GROUP_PREFIX = "group:"  # a finding over many targets (a grouped drift item): no single run's coverage names it


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkCoverage(_Closed):
    """Network targets one run tested completely for some finding probes."""

    probes: list[str] = Field(max_length=20)  # finding probes (hosts, ports, services, tls, ssh_algos, link)
    # addresses or CIDRs that answered and were tested (never one that was down), or "link:<iface>"
    targets: list[str] = Field(max_length=10_000)
    # inclusive TCP port ranges "lo-hi" scanned on those targets; None: these probes are not about ports
    tcp_ports: list[str] | None = Field(default=None, max_length=10_000)


class RunCoverage(_Closed):
    """What a run covered. ``host``: the run's own host (RunReport.host) for its probes with status ``ok``;
    ``networks``: network targets (what a netscan tested)."""

    host: bool = False
    networks: list[NetworkCoverage] = Field(default_factory=list, max_length=100)


HOST_ONLY = RunCoverage(host=True)  # what a run without coverage is taken to cover


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def finding_target(run_kind: str, run_host: str, finding_host: str, subject: str) -> str | None:
    """The target a finding is about: None for a host-level finding (about the run's host); for a network
    run's finding the address its subject starts with (``10.0.0.5|tcp|22``, ``10.0.0.5|443``, ``10.0.0.5``),
    else the finding's host when that is not the run's (a rule over an absent observation of an address,
    ``link:eth0``), else a ``group:`` marker that no coverage names."""
    if run_kind != NETSCAN_KIND:
        return None
    if finding_host.startswith(LINK_PREFIX):  # a link event is about the segment, whoever it names
        return finding_host[:255]
    address = _address(subject.split("|", 1)[0])
    if address is not None:
        return address
    if finding_host != run_host:
        return _address(finding_host) or finding_host[:255]
    return (GROUP_PREFIX + subject)[:255]


def _port_of(probe: str, subject: str) -> tuple[str, int] | None:
    """(protocol, port) named by a port finding's subject; None when it names none."""
    parts = subject.split("|")
    if probe == "ports" and len(parts) == 3 and parts[2].isdigit():
        return parts[1], int(parts[2])
    if probe in PORT_PROBES and probe != "ports" and len(parts) == 2 and parts[1].isdigit():
        return "tcp", int(parts[1])
    return None


def _ranges(texts: Sequence[str]) -> list[tuple[int, int]]:
    out = []
    for text in texts:
        lo, _, hi = text.partition("-")
        if lo.isdigit() and (hi or lo).isdigit():
            out.append((int(lo), int(hi or lo)))
    return out


def _target_in(target: str, entries: Sequence[str]) -> bool:
    address = _address(target)
    if address is None:
        return target in entries and not target.startswith(GROUP_PREFIX)
    ip = ipaddress.ip_address(address)
    for entry in entries:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def covers_network(coverage: RunCoverage, probe: str, target: str, subject: str) -> bool:
    """Whether a network finding (``target`` not None) of ``probe`` lies inside this run's coverage: a probe
    the entry covers, a target that answered, and for a port's finding a TCP port that was scanned."""
    port = _port_of(probe, subject) if probe in PORT_PROBES else None
    for entry in coverage.networks:
        if probe not in entry.probes or not _target_in(target, entry.targets):
            continue
        if probe in PORT_PROBES and _address(subject.split("|", 1)[0]) is not None:
            if port is None or entry.tcp_ports is None or port[0] != "tcp":
                continue  # a UDP port, or a port this entry did not scan
            if not any(lo <= port[1] <= hi for lo, hi in _ranges(entry.tcp_ports)):
                continue
        return True
    return False


def network_probes(coverage: RunCoverage) -> set[str]:
    return {p for entry in coverage.networks for p in entry.probes}
