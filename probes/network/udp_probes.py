"""Built-in UDP probes: a protocol payload where one is known (DNS, NTP, SNMP), an empty datagram elsewhere.

A reply means open, an ICMP port-unreachable (ECONNREFUSED on a connected socket) means closed, silence means
open|filtered, as nmap reports it.
"""

from __future__ import annotations

import datetime as dt
import errno
import select
import socket
import struct
import time
from collections.abc import Sequence

from probes.network.port_row import PortRow
from probes.network.ports import PortSet
from probes.network.target import ApprovedTarget, check_targets, seconds_left

UDP_DEFAULT_PORTS = PortSet.parse("53,67,69,123,137,161,500,514,520,1900,5353,47808")

# DNS: a standard query for the root NS; NTP: a version 4 client request; SNMP: v1 get of sysDescr, "public".
DNS_QUERY = struct.pack("!HHHHHH", 0x5043, 0x0100, 1, 0, 0, 0) + b"\x00\x00\x02\x00\x01"
NTP_QUERY = b"\x23" + b"\x00" * 47
SNMP_QUERY = bytes.fromhex("302902010004067075626c6963a01c0204504300000201000201003010300e060a2b060102010101000500")
PAYLOADS = {53: DNS_QUERY, 5353: DNS_QUERY, 123: NTP_QUERY, 161: SNMP_QUERY}


def udp_scan(targets: Sequence[ApprovedTarget], ports: dict[str, PortSet], timeout: float = 1.0,
             retries: int = 1, deadline: dt.datetime | None = None) -> tuple[list[PortRow], bool]:
    """Probe each (target, port) once per try; returns rows and whether the deadline cut the scan."""
    check_targets(targets, ("portscan",))
    pending: dict[tuple[str, int], tuple[int, int]] = {}  # (ip, port) -> (family, tries)
    for t in targets:
        fam: int = socket.AF_INET6 if t.version == 6 else socket.AF_INET
        for port in ports.get(t.address, ()):
            pending[(t.address, port)] = (fam, 0)
    states: dict[tuple[str, int], tuple[str, str]] = {}
    partial = False
    for attempt in range(retries + 1):
        if not pending:
            break
        left = seconds_left(deadline)
        if left is not None and left <= 0:
            partial = True
            break
        socks: dict[int, tuple[socket.socket, str, int]] = {}
        try:
            for (ip, port), (fam, _tries) in pending.items():
                s = socket.socket(fam, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
                s.connect((ip, port))
                try:
                    s.send(PAYLOADS.get(port, b""))
                except OSError as exc:
                    s.close()
                    if exc.errno == errno.ECONNREFUSED:
                        states[(ip, port)] = ("closed", "port-unreach")
                    continue
                socks[s.fileno()] = (s, ip, port)
            wait_until = time.monotonic() + (timeout if left is None else min(timeout, left))
            while socks:
                remaining = wait_until - time.monotonic()
                if remaining <= 0:
                    break
                readable, _, _ = select.select(list(socks), [], [], remaining)
                for fd in readable:
                    s, ip, port = socks.pop(fd)
                    try:
                        s.recv(4096)
                        states[(ip, port)] = ("open", "udp-response")
                    except ConnectionRefusedError:
                        states[(ip, port)] = ("closed", "port-unreach")
                    except OSError as exc:
                        states[(ip, port)] = ("filtered", errno.errorcode.get(exc.errno or 0, "error").lower())
                    s.close()
        finally:
            for s, _ip, _port in socks.values():
                s.close()
        pending = {k: v for k, v in pending.items() if k not in states}
        if attempt == retries:
            for key in pending:
                states[key] = ("open|filtered", "no-response")
    if partial:
        for key in pending:
            states.setdefault(key, ("open|filtered", "no-response"))
    rows = []
    for (ip, port), (state, reason) in sorted(states.items()):
        try:
            name = socket.getservbyport(port, "udp")
        except OSError:
            name = ""
        rows.append(PortRow(ip, "udp", port, state, name, reason=reason))
    return rows, partial
