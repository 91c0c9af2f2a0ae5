"""Reference results from plain nmap (grepable output, parsed here independently of probes/network)."""

from __future__ import annotations

import re
import subprocess


def nmap_open_ports(hosts: list[str], ports: str, scan: str = "-sS",
                    extra: tuple[str, ...] = ()) -> dict[str, set[int]]:
    out = subprocess.run(["nmap", "-n", scan, "-p", ports, "--open", *extra, "-oG", "-", *hosts],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    found: dict[str, set[int]] = {}
    for line in out.splitlines():
        m = re.match(r"Host: (\S+) .*Ports: (.*)", line)
        if not m:
            continue
        for item in m.group(2).split(","):
            fields = item.strip().split("/")
            if len(fields) > 2 and fields[1] == "open":
                found.setdefault(m.group(1), set()).add(int(fields[0]))
    return found


def nmap_hosts_up(target: str) -> set[str]:
    out = subprocess.run(["nmap", "-n", "-sn", "-oG", "-", target], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    return {m.group(1) for m in re.finditer(r"^Host: (\S+) .*Status: Up", out, re.M)}
