"""Port scans against the namespace lab, checked against plain nmap on the same hosts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from agent.scope import PortSet, Scope, ScopeGuard
from probes.errors import ProbeInputError
from probes.network.portscan import PortRow, ScanOptions, parse_nmap_xml, scan
from tests.lab import Lab
from tests.network.nmapref import nmap_open_ports

PORTS = "1-1100,3306,5432,6379,8080,8443,9100,31337,65000"


@pytest.fixture
def guard(lab: Lab) -> ScopeGuard:
    return ScopeGuard(Scope.parse(str(lab.network)))


def _expected(lab: Lab) -> dict[str, set[int]]:
    return {h.ip: h.tcp_ports() for h in lab.hosts if h.tcp_ports()}


@pytest.mark.parametrize("engine", ["nmap", "builtin"])
def test_agrees_with_nmap(lab: Lab, guard: ScopeGuard, engine: str) -> None:
    targets = guard.approve(lab.ips(), "portscan")
    result = scan(targets, ScanOptions(engine=engine, ports=PortSet.parse(PORTS)))
    reference = nmap_open_ports(lab.ips(), PORTS, "-sS" if engine == "nmap" else "-sT")
    assert result.open_ports() == reference == _expected(lab)
    assert set(result.hosts_up) == set(lab.ips())  # every lab host answers (RST or SYN-ACK)
    assert result.engine == engine and not result.partial
    assert all(r.state == "open" and r.proto == "tcp" for r in result.rows)


@pytest.mark.parametrize("engine", ["nmap", "builtin"])
def test_full_sweep_one_host(lab: Lab, guard: ScopeGuard, engine: str) -> None:
    host = lab.host(lab.host_ip(12))
    result = scan(guard.approve(host.ip, "portscan"), ScanOptions(engine=engine, ports=PortSet.all()))
    assert result.open_ports() == {host.ip: {9100, 65000}} == nmap_open_ports([host.ip], "-")


@pytest.mark.parametrize("engine", ["nmap", "builtin"])
def test_port_opening_appears(lab: Lab, guard: ScopeGuard, engine: str) -> None:
    host = lab.host(lab.host_ip(7))
    targets = guard.approve(host.ip, "portscan", PortSet.parse("70-90,4400-4500"))
    assert scan(targets, ScanOptions(engine=engine)).open_ports() == {host.ip: {80}}
    listener = lab.open_port(host, 4444)
    try:
        assert scan(targets, ScanOptions(engine=engine)).open_ports() == {host.ip: {80, 4444}}
    finally:
        listener.close()
    assert scan(targets, ScanOptions(engine=engine)).open_ports() == {host.ip: {80}}


@pytest.mark.parametrize("engine", ["nmap", "builtin"])
def test_udp(lab: Lab, guard: ScopeGuard, engine: str) -> None:
    dns = lab.host(lab.host_ip(5))
    plain = lab.host(lab.host_ip(9))
    opts = ScanOptions(engine=engine, ports=PortSet.parse("53"), udp_ports=PortSet.parse("53,123,161"),
                       states=("open", "closed"), retries=2)
    result = scan(guard.approve([dns.ip, plain.ip], "portscan"), opts)
    udp = {(r.host, r.port): r.state for r in result.rows if r.proto == "udp"}
    assert udp[(dns.ip, 53)] == "open" and udp[(dns.ip, 123)] == "open"
    assert udp.get((dns.ip, 161), "closed") == "closed"
    assert all(state == "closed" for (host, _p), state in udp.items() if host == plain.ip)
    assert result.open_ports() == {dns.ip: {53}}


def test_service_detection_ssh(lab: Lab, guard: ScopeGuard) -> None:
    assert lab.ssh is not None
    result = scan(guard.approve(lab.ssh.ip, "portscan"),
                  ScanOptions(engine="nmap", ports=PortSet.parse("22"), service_detection=True))
    (row,) = result.rows
    assert row.service == "ssh" and row.product == "OpenSSH" and row.version
    assert any(c.startswith("cpe:/a:openbsd:openssh") for c in row.cpe)
    assert "-sV" in result.command


def test_deadline_in_past_and_mid_scan(lab: Lab, guard: ScopeGuard) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    targets = guard.approve(lab.ips(), "portscan")
    for engine in ("nmap", "builtin"):
        result = scan(targets, ScanOptions(engine=engine, ports=PortSet.all(), deadline=past))
        assert result.partial and result.rows == () and "deadline" in result.limitations[0]
    # A deadline that passes mid-sweep: the scan stops, says partial, and what it found is true. (nmap: the
    # deadline becomes --host-timeout; the rate limit makes a full sweep take far longer than the deadline.)
    expected = _expected(lab)
    for engine in ("builtin", "nmap"):
        soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)
        result = scan(targets, ScanOptions(engine=engine, ports=PortSet.all(), deadline=soon, concurrency=32,
                                           max_rate=5000))
        assert result.partial, engine
        for host, ports in result.open_ports().items():
            assert ports <= expected[host]


def test_refuses_unapproved(lab: Lab, guard: ScopeGuard) -> None:
    with pytest.raises(TypeError):
        scan([lab.hosts[0].ip])  # type: ignore[list-item]
    with pytest.raises(PermissionError):
        scan(guard.approve(lab.hosts[0].ip, "discovery"))
    narrow = guard.approve(lab.hosts[0].ip, "portscan", PortSet.parse("22"))
    with pytest.raises(PermissionError, match="exceed the approved ports"):
        scan(narrow, ScanOptions(ports=PortSet.parse("22,80")))


def test_engine_nmap_missing(lab: Lab, guard: ScopeGuard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    targets = guard.approve(lab.hosts[0].ip, "portscan", PortSet.parse("22"))
    with pytest.raises(ProbeInputError, match="nmap is not installed"):
        scan(targets, ScanOptions(engine="nmap"))
    # auto falls back to the built-in engine
    result = scan(targets, ScanOptions(engine="auto"))
    assert result.engine == "builtin" and result.open_ports() == {lab.hosts[0].ip: {22}}


def test_parse_nmap_xml() -> None:
    xml = """<?xml version="1.0"?><nmaprun><host starttime="1" endtime="2"><status state="up" reason="arp-response"/>
<address addr="10.231.1.11" addrtype="ipv4"/><address addr="02:31:00:00:00:01" addrtype="mac"/>
<ports><port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="64"/>
<service name="ssh" product="OpenSSH" version="9.2p1 Debian 2+deb12u3" extrainfo="protocol 2.0" method="probed"
conf="10"><cpe>cpe:/a:openbsd:openssh:9.2p1</cpe><cpe>cpe:/o:linux:linux_kernel</cpe></service></port>
<port protocol="udp" portid="161"><state state="open|filtered" reason="no-response" reason_ttl="0"/>
<service name="snmp" method="table" conf="3"/></port></ports></host>
<host><status state="down" reason="no-response"/><address addr="10.231.1.99" addrtype="ipv4"/></host>
<host starttime="1" endtime="2" timedout="true"><status state="up" reason="arp-response"/>
<address addr="10.231.1.12" addrtype="ipv4"/></host></nmaprun>"""
    parsed = parse_nmap_xml(xml)
    assert parsed.hosts_up == ("10.231.1.11", "10.231.1.12") and parsed.hosts_down == ("10.231.1.99",)
    assert parsed.timed_out == ("10.231.1.12",)
    assert parsed.rows == (
        PortRow("10.231.1.11", "tcp", 22, "open", "ssh", "OpenSSH", "9.2p1 Debian 2+deb12u3", "syn-ack",
                ("cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel"), "protocol 2.0"),
        PortRow("10.231.1.11", "udp", 161, "open|filtered", "snmp", reason="no-response"),
    )
    with pytest.raises(ValueError, match="unreadable XML"):
        parse_nmap_xml("<nmaprun><host>")


def test_nmap_failing_mid_scan_says_what_was_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nmap that dies after it started scanning is a failed test carrying what went to whom, not a bad input."""
    import shutil

    from probes.errors import ProbeFailedAfterSend
    from probes.network import portscan

    real = shutil.which("nmap")
    if real is None:
        pytest.skip("nmap not installed")
    fake = tmp_path / "nmap"
    # A real nmap run (packets to loopback), then a fatal error as nmap prints it when it crashes mid-scan.
    fake.write_text(f'#!/bin/sh\nif [ "$1" = "-V" ]; then exec {real} -V; fi\n{real} "$@" >/dev/null 2>&1\n'
                    'echo "nmap: Assertion failed: libnetutil" >&2\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    portscan._nmap_prototype.cache_clear()
    try:
        targets = ScopeGuard(Scope.parse("127.0.0.1/32")).approve("127.0.0.1", "portscan", PortSet.parse("1-100"))
        with pytest.raises(ProbeFailedAfterSend, match="nmap failed: nmap: Assertion failed") as err:
            scan(targets, ScanOptions(engine="nmap"))
    finally:
        portscan._nmap_prototype.cache_clear()
    assert not isinstance(err.value, ProbeInputError)
    sent = err.value.sent
    assert sent.tool == "nmap" and sent.targets == ("127.0.0.1",) and sent.ports == "1-100"
    assert sent.command[:3] == ("nmap", "-oX", "-") and "127.0.0.1" in sent.command
