"""The capture proof: while a target list that includes an out-of-scope lab address is scanned, tcpdump on the
lab bridge and on lo sees traffic to the in-scope host and not one packet to the refused address."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from agent.scope import PortSet, Refusal, Scope, ScopeGuard, ScopeRefused
from probes.network.discovery import discover
from probes.network.portscan import ScanOptions, scan
from tests.lab import Lab


class Capture:
    def __init__(self, iface: str, bpf: str, path: Path) -> None:
        self.path = path
        self.proc = subprocess.Popen(["tcpdump", "--immediate-mode", "-i", iface, "-n", "-U", "-w", str(path), bpf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()  # "listening on IFACE ...": the filter is attached
        assert b"listening on" in line, line

    def stop(self) -> list[str]:
        time.sleep(0.2)  # let the last frames reach the capture
        self.proc.terminate()
        self.proc.wait(5)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        out = subprocess.run(["tcpdump", "-n", "-r", str(self.path)], capture_output=True, text=True, check=True)
        return out.stdout.splitlines()


def test_refused_address_gets_no_packet(lab: Lab, tmp_path: Path) -> None:
    inside, outside = lab.host_ip(1), lab.host_ip(10)  # .11 and .20
    scope_net = f"{lab.network.network_address}/28"
    assert outside in lab.ips()  # the refused address is a live lab host: a leak would be answered
    records: list[Refusal] = []
    guard = ScopeGuard(Scope.parse(scope_net), records.append)
    bpf = f"host {inside} or host {outside}"
    captures = [Capture(lab.bridge, bpf, tmp_path / "bridge.pcap"), Capture("lo", bpf, tmp_path / "lo.pcap")]
    try:
        for kind in ("discovery", "portscan"):
            with pytest.raises(ScopeRefused, match=outside):
                guard.approve([inside, outside], kind)
        disc = guard.approve([inside, outside], "discovery", partial=True)
        assert [t.address for t in disc] == [inside]
        assert discover(disc, iface=lab.bridge).ips() == {inside}
        assert discover(disc, method="icmp").ips() == {inside}
        ports = guard.approve([inside, outside], "portscan", PortSet.parse("1-1024"), partial=True)
        for engine in ("nmap", "builtin"):
            assert scan(ports, ScanOptions(engine=engine, udp_ports=PortSet.parse("53,123"))).open_ports() == {
                inside: {22, 80}}
    finally:
        bridge_lines, lo_lines = (c.stop() for c in captures)
    assert any(inside in line for line in bridge_lines)  # the capture works: the in-scope host was scanned
    leaked = [line for line in bridge_lines + lo_lines if outside in line]
    assert leaked == []
    assert len(records) == 4 and all(r.addresses == (outside,) for r in records)
