"""Network scan speed against the namespace lab (tests/lab.py), side by side with plain nmap in the same run.

Budgets (DESIGN §5): 65,535-port TCP sweep of one host driving nmap ≤ 1.1× `nmap -sS -p-`, built-in engine
≤ 1.5× `nmap -sT -p-`, same open ports; /24 discovery with 20 live hosts ≤ `nmap -sn`, same hosts. All
reference runs use -n, as our engine does: reverse DNS would send queries outside the lab.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

TITLE = "Network scans: 65,535-port sweep and /24 discovery vs nmap"
ROUNDS = 5

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _nmap(args: list[str]) -> str:
    return subprocess.run(["nmap", "-n", *args, "-oG", "-"], capture_output=True, text=True, check=True).stdout


def _open_ports(grepable: str) -> set[int]:
    ports: set[int] = set()
    for line in grepable.splitlines():
        if "Ports:" in line:
            for item in line.split("Ports:", 1)[1].split(","):
                fields = item.strip().split("/")
                if len(fields) > 2 and fields[1] == "open":
                    ports.add(int(fields[0]))
    return ports


def _up(grepable: str) -> set[str]:
    return {line.split()[1] for line in grepable.splitlines() if line.startswith("Host:") and "Status: Up" in line}


def run() -> str:
    if os.geteuid() != 0:
        return "Skipped: the lab needs root (network namespaces)."
    from agent.scope import PortSet, Scope, ScopeGuard
    from probes.network.discovery import discover
    from probes.network.portscan import ScanOptions, scan
    from tests.lab import Lab

    with Lab(n_hosts=20, ssh=False) as lab:
        guard = ScopeGuard(Scope.parse(str(lab.network)))
        host = lab.host(lab.host_ip(12))
        port_targets = guard.approve(host.ip, "portscan")
        disc_targets = guard.approve(str(lab.network), "discovery")
        every = PortSet.all()
        cases: dict[str, Callable[[], object]] = {
            "nmap -sS -p-": lambda: _open_ports(_nmap(["-sS", "-p-", host.ip])),
            "ours, nmap engine": lambda: scan(port_targets, ScanOptions(engine="nmap", ports=every)).open_ports(),
            "nmap -sT -p-": lambda: _open_ports(_nmap(["-sT", "-p-", host.ip])),
            "ours, builtin engine": lambda: scan(port_targets, ScanOptions(engine="builtin", ports=every)).open_ports(),
            "nmap -sn /24": lambda: _up(_nmap(["-sn", str(lab.network)])),
            "ours, discovery (ARP)": lambda: discover(disc_targets, iface=lab.bridge).ips(),
        }
        # Warm-up (imports, ARP caches), then rounds in alternating order.
        for fn in cases.values():
            fn()
        times: dict[str, list[float]] = {name: [] for name in cases}
        results: dict[str, object] = {}
        for i in range(ROUNDS):
            names = list(cases) if i % 2 == 0 else list(reversed(cases))
            for name in names:
                elapsed, results[name] = _timed(cases[name])
                times[name].append(elapsed)
    med = {name: statistics.median(v) for name, v in times.items()}
    expected = host.tcp_ports()

    def ports_of(name: str) -> set[int]:
        value = results[name]
        if isinstance(value, dict):
            return set(value.get(host.ip, set()))
        assert isinstance(value, set)
        return value

    rows = [
        ("65,535 TCP ports, SYN", "ours, nmap engine", "nmap -sS -p-", 1.1, ports_of("ours, nmap engine") ==
         ports_of("nmap -sS -p-") == expected),
        ("65,535 TCP ports, connect", "ours, builtin engine", "nmap -sT -p-", 1.5, ports_of("ours, builtin engine") ==
         ports_of("nmap -sT -p-") == expected),
        ("/24 discovery, 20 live hosts", "ours, discovery (ARP)", "nmap -sn /24", 1.0,
         results["ours, discovery (ARP)"] == results["nmap -sn /24"]),
    ]
    lines = [f"Lab: {lab.n_hosts} hosts in network namespaces on a bridge; sweep target {host.ip} "
             f"(open: {sorted(expected)}); median of {ROUNDS} rounds after a warm-up.", "",
             "| task | ours | s | reference | s | ratio | budget | same result | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for task, ours, ref, budget, same in rows:
        ratio = med[ours] / med[ref]
        ok = ratio <= budget and same
        lines.append(f"| {task} | {ours} | {med[ours]:.2f} | `{ref}` | {med[ref]:.2f} | {ratio:.2f}× | ≤ {budget}× "
                     f"| {'yes' if same else 'NO'} | {'pass' if ok else 'FAIL'} |")
    disc = results["ours, discovery (ARP)"]
    lines += ["", f"Hosts found by discovery: {len(disc) if isinstance(disc, set) else disc} "
                  f"(the bridge address counts as up for both, as nmap reports the scanning host)."]
    return "\n".join(lines)
