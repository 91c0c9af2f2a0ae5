"""Discovery against the namespace lab: ARP on the lab bridge only, ICMP and TCP ping, checked against nmap -sn."""

from __future__ import annotations

import datetime as dt

import pytest

from agent.scope import Scope, ScopeGuard
from probes.errors import ProbeInputError
from probes.network.discovery import build_arp_request, discover, parse_arp_reply, vendor_for
from tests.lab import Lab, Service
from tests.network.nmapref import nmap_hosts_up


@pytest.fixture
def guard(lab: Lab) -> ScopeGuard:
    return ScopeGuard(Scope.parse(str(lab.network)))


def test_arp_sweep_matches_nmap(lab: Lab, guard: ScopeGuard) -> None:
    result = discover(guard.approve(str(lab.network), "discovery"), iface=lab.bridge)
    assert result.ips() == nmap_hosts_up(str(lab.network)) == {*lab.ips(), lab.bridge_ip}
    by_ip = {r.ip: r for r in result.rows}
    for host in lab.hosts:
        row = by_ip[host.ip]
        assert row.method == "arp" and row.mac == host.mac and row.rtt_ms is not None
    assert by_ip[lab.bridge_ip].method == "local"
    assert "Intel" in by_ip[lab.host_ip(2)].vendor and "VMware" in by_ip[lab.host_ip(6)].vendor
    assert "Raspberry" in by_ip[lab.host_ip(8)].vendor and by_ip[lab.host_ip(1)].vendor == ""
    assert result.probed == 254 and not result.partial


def test_rogue_host_discovered(lab: Lab, guard: ScopeGuard) -> None:
    targets = guard.approve(str(lab.network), "discovery")
    before = discover(targets, iface=lab.bridge).ips()
    rogue = lab.add_host([Service("tcp", 8081, "http")], mac="52:54:00:31:00:77")
    try:
        after = discover(targets, iface=lab.bridge)
        assert after.ips() - before == {rogue.ip}
        row = next(r for r in after.rows if r.ip == rogue.ip)
        assert row.mac == "52:54:00:31:00:77" and "QEMU" in row.vendor
    finally:
        lab.remove_host(rogue)
    assert rogue.ip not in discover(targets, iface=lab.bridge).ips()


@pytest.mark.parametrize("method", ["icmp", "tcp"])
def test_ping_methods(lab: Lab, guard: ScopeGuard, method: str) -> None:
    absent = lab.host_ip(200)
    result = discover(guard.approve([*lab.ips()[:6], absent], "discovery"), method=method)
    assert result.ips() == set(lab.ips()[:6])
    assert {r.method for r in result.rows} == {method} and all(r.mac == "" for r in result.rows)


def test_arp_needs_iface_and_kind(lab: Lab, guard: ScopeGuard) -> None:
    with pytest.raises(ProbeInputError, match="interface"):
        discover(guard.approve(lab.ips()[:1], "discovery"), method="arp")
    with pytest.raises(PermissionError):
        discover(guard.approve(lab.ips()[:1], "portscan"), iface=lab.bridge)


def test_deadline_past(lab: Lab, guard: ScopeGuard) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    result = discover(guard.approve(str(lab.network), "discovery"), iface=lab.bridge, deadline=past)
    assert result.partial and result.rows == ()


def test_arp_frames_and_vendors() -> None:
    frame = build_arp_request("02:31:00:00:00:01", "10.231.1.1", "10.231.1.20")
    assert len(frame) == 42 and frame[:6] == b"\xff" * 6 and frame[12:14] == b"\x08\x06" and frame[-4:] == bytes(
        [10, 231, 1, 20])
    assert parse_arp_reply(frame) is None  # a request, not a reply
    reply = frame[:20] + b"\x00\x02" + bytes.fromhex("001b21310002") + bytes([10, 231, 1, 12]) + frame[32:]
    assert parse_arp_reply(reply) == ("10.231.1.12", "00:1b:21:31:00:02")
    assert parse_arp_reply(b"\x00" * 10) is None
    assert "VMware" in vendor_for("00:50:56:aa:bb:cc") and vendor_for("02:50:56:aa:bb:cc") == ""
    assert vendor_for("not-a-mac") == ""
