"""Host discovery of approved targets: ARP on a directly connected segment, ICMP echo / TCP connect elsewhere.

ARP needs the interface named explicitly (``iface``): the scanner never picks one itself, so a sweep can only
go out where the caller (and the notice) said. The frames go out on an AF_PACKET socket bound to that one
interface and receiving only ARP. They are built and parsed with struct rather than scapy: importing scapy
enumerates every interface and route (0.4 s on a quiet host, 1.7 s with a few dozen interfaces), which alone
would cost more than the whole sweep; an ARP frame is 42 fixed bytes.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import ipaddress
import logging
import os
import random
import select
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from probes.errors import ProbeInputError
from probes.network.target import ApprovedTarget, check_targets, earliest_deadline, seconds_left
from probes.observation import Row

log = logging.getLogger(__name__)

DISCOVERY_KINDS = ("discovery",)
METHODS = ("auto", "arp", "icmp", "tcp")
TCP_PING_PORTS = (80, 443, 22, 445, 3389)
ETH_P_ARP = 0x0806
NMAP_MAC_PREFIXES = Path("/usr/share/nmap/nmap-mac-prefixes")

# Used when neither nmap's prefix file nor scapy's manuf database is there: a few common vendors.
SMALL_OUI = {
    "00:50:56": "VMware", "00:0c:29": "VMware", "00:05:69": "VMware", "52:54:00": "QEMU virtual NIC",
    "08:00:27": "Oracle VirtualBox", "00:15:5d": "Microsoft Hyper-V", "00:1b:21": "Intel", "3c:fd:fe": "Intel",
    "b8:27:eb": "Raspberry Pi Foundation", "dc:a6:32": "Raspberry Pi Trading", "00:1a:a0": "Dell",
    "f8:bc:12": "Dell", "00:25:b5": "Cisco", "00:00:0c": "Cisco", "00:1b:17": "Palo Alto Networks",
    "00:09:0f": "Fortinet", "00:1c:7f": "Check Point", "00:0e:8c": "Siemens", "00:1b:1b": "Siemens",
    "00:80:f4": "Telemecanique (Schneider)", "00:00:bc": "Rockwell Automation", "00:e0:4c": "Realtek",
    "00:e0:fc": "Huawei", "28:6e:d4": "Huawei", "00:0f:e2": "H3C", "00:23:89": "H3C", "74:d4:35": "Giga-Byte",
}


@dataclass(frozen=True, slots=True)
class DiscoveredHost(Row):
    ip: str
    mac: str  # "" when not on a local segment
    vendor: str  # from the MAC's OUI; "" unknown or locally administered
    method: str  # arp | icmp | tcp | local
    rtt_ms: float | None

    KEY: ClassVar[tuple[str, ...]] = ("ip",)
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"rtt_ms", "method"})


@dataclass(frozen=True, slots=True)
class DiscoveryResult:
    rows: tuple[DiscoveredHost, ...]
    probed: int  # addresses tried
    partial: bool = False
    limitations: tuple[str, ...] = ()

    def ips(self) -> set[str]:
        return {r.ip for r in self.rows}


# ==== vendors ================================================================================================

@functools.cache
def _nmap_prefixes() -> dict[str, str]:
    table: dict[str, str] = {}
    try:
        text = NMAP_MAC_PREFIXES.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return table
    for line in text.splitlines():
        if line and not line.startswith("#"):
            prefix, _, name = line.partition(" ")
            if len(prefix) == 6:
                table[prefix.upper()] = name.strip()
    return table


def vendor_for(mac: str) -> str:
    """OUI vendor of a MAC; "" when unknown or locally administered (random / virtual addresses)."""
    parts = mac.lower().split(":")
    if len(parts) != 6 or not mac:
        return ""
    if int(parts[0], 16) & 0x02:
        # Locally administered: random or virtual; only well-known virtual prefixes (QEMU 52:54:00) mean a vendor.
        return SMALL_OUI.get(":".join(parts[:3]), "")
    prefix = "".join(parts[:3]).upper()
    name = _nmap_prefixes().get(prefix)
    if name:
        return name
    if not _nmap_prefixes():
        try:
            from scapy.config import conf  # lazy: heavy

            found = conf.manufdb._get_manuf(mac)
            if found and found != mac:
                return str(found)
        except (ImportError, AttributeError):
            pass
    return SMALL_OUI.get(":".join(parts[:3]), "")


# ==== interface facts ========================================================================================

@dataclass(frozen=True, slots=True)
class IfaceInfo:
    name: str
    mac: str
    networks: tuple[ipaddress.IPv4Interface, ...]


def iface_info(iface: str) -> IfaceInfo:
    import psutil

    addrs = psutil.net_if_addrs().get(iface)
    if addrs is None:
        raise ProbeInputError(f"no network interface {iface!r}")
    mac = next((a.address for a in addrs if a.family == psutil.AF_LINK), "")
    nets = tuple(ipaddress.IPv4Interface(f"{a.address}/{a.netmask}") for a in addrs
                 if a.family == socket.AF_INET and a.netmask)
    return IfaceInfo(iface, mac.lower(), nets)


# ==== discovery ==============================================================================================

def discover(targets: Sequence[ApprovedTarget], iface: str | None = None, method: str = "auto",
             timeout: float = 0.5, retries: int = 1, deadline: dt.datetime | None = None,
             tcp_ports: Sequence[int] = TCP_PING_PORTS) -> DiscoveryResult:
    """Which approved targets are up. ARP for targets on ``iface``'s own subnets (root, iface given), then ICMP
    echo (root) and TCP connect for the rest; ``timeout`` is the wait after each round, ``retries`` extra rounds."""
    check_targets(targets, DISCOVERY_KINDS)
    if method not in METHODS:
        raise ProbeInputError(f"unknown discovery method {method!r}; use one of {', '.join(METHODS)}")
    root = os.geteuid() == 0
    end = earliest_deadline(targets, deadline)
    limitations: list[str] = []
    left = seconds_left(end)
    if left is not None and left <= 0:
        return DiscoveryResult((), 0, True, ("deadline passed before discovery began",))
    found: dict[str, DiscoveredHost] = {}
    pending = list(targets)
    partial = False
    if method in ("auto", "arp") and iface is not None:
        if not root:
            if method == "arp":
                raise ProbeInputError("ARP discovery needs root (raw packets)")
            limitations.append("not root: no ARP sweep")
        else:
            info = iface_info(iface)
            local = [t for t in pending if t.version == 4 and any(t.ip in n.network for n in info.networks)]
            own = {str(n.ip) for n in info.networks}
            for t in local:
                if t.address in own:
                    found[t.address] = DiscoveredHost(t.address, info.mac, vendor_for(info.mac), "local", 0.0)
            sweep = [t for t in local if t.address not in own]
            if sweep:
                hits, partial = arp_sweep(sweep, info, timeout, retries, end)
                found.update(hits)
            done = {t.address for t in local}
            pending = [t for t in pending if t.address not in done]
    elif method == "arp":
        raise ProbeInputError("ARP discovery needs the interface named (iface)")
    if pending and method in ("auto", "icmp") and not partial:
        if root:
            hits, partial = icmp_ping([t for t in pending if t.version == 4], timeout, retries, end)
            found.update(hits)
            pending = [t for t in pending if t.address not in found]
        elif method == "icmp":
            raise ProbeInputError("ICMP echo discovery needs root (raw socket)")
        else:
            limitations.append("not root: TCP connect ping only")
    if pending and method in ("auto", "tcp") and not partial:
        hits, partial = tcp_ping(pending, tcp_ports, max(timeout, 1.0), end)
        found.update(hits)
    if partial:
        limitations.append("deadline reached: results are partial")
    rows = sorted(found.values(), key=lambda r: (ipaddress.ip_address(r.ip).version, int(ipaddress.ip_address(r.ip))))
    return DiscoveryResult(tuple(rows), len(targets), partial, tuple(limitations))


def arp_sweep(targets: Sequence[ApprovedTarget], info: IfaceInfo, timeout: float, retries: int,
              deadline: dt.datetime | None) -> tuple[dict[str, DiscoveredHost], bool]:
    """ARP who-has for each target on ``info.name`` only; replies matched to targets by sender address."""
    check_targets(targets, DISCOVERY_KINDS)
    frames: dict[str, bytes] = {}
    for t in targets:
        iface_net = next(n for n in info.networks if t.ip in n.network)
        frames[t.address] = build_arp_request(info.mac, str(iface_net.ip), t.address)
    found: dict[str, DiscoveredHost] = {}
    sent_at: dict[str, float] = {}
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    partial = False
    try:
        sock.bind((info.name, ETH_P_ARP))
        sock.setblocking(False)
        for _round in range(retries + 1):
            todo = [ip for ip in frames if ip not in found]
            if not todo:
                break
            left = seconds_left(deadline)
            if left is not None and left <= 0:
                partial = True
                break
            for ip in todo:
                sent_at[ip] = time.monotonic()
                _send(sock, frames[ip])
                _drain_arp(sock, frames, sent_at, found)
            wait = timeout if left is None else min(timeout, left)
            until = time.monotonic() + wait
            while len(found) < len(frames):
                remaining = until - time.monotonic()
                if remaining <= 0:
                    break
                select.select([sock], [], [], remaining)
                _drain_arp(sock, frames, sent_at, found)
    finally:
        sock.close()
    return found, partial


def _send(sock: socket.socket, frame: bytes) -> None:
    while True:
        try:
            sock.send(frame)
            return
        except BlockingIOError:
            select.select([], [sock], [], 0.1)


def build_arp_request(src_mac: str, src_ip: str, target_ip: str) -> bytes:
    """Pure: a broadcast Ethernet ARP who-has frame (42 bytes)."""
    mac = bytes.fromhex(src_mac.replace(":", ""))
    eth = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + socket.inet_aton(src_ip) + b"\x00" * 6
    return eth + arp + socket.inet_aton(target_ip)


def parse_arp_reply(frame: bytes) -> tuple[str, str] | None:
    """Pure: (sender IPv4, sender MAC) of an Ethernet ARP reply, None for anything else."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x06":
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4 or op != 2:
        return None
    mac = ":".join(f"{b:02x}" for b in frame[22:28])
    return socket.inet_ntoa(frame[28:32]), mac


def _drain_arp(sock: socket.socket, frames: dict[str, bytes], sent_at: dict[str, float],
               found: dict[str, DiscoveredHost]) -> None:
    while True:
        try:
            data = sock.recv(2048)
        except BlockingIOError:
            return
        now = time.monotonic()
        reply = parse_arp_reply(data)
        if reply is None:
            continue
        ip, mac = reply
        if ip not in frames or ip in found:
            continue  # only replies from the addresses we asked about
        rtt = (now - sent_at[ip]) * 1000 if ip in sent_at else None
        found[ip] = DiscoveredHost(ip, mac, vendor_for(mac), "arp", rtt)


def _icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return int(~total & 0xFFFF)


def icmp_ping(targets: Sequence[ApprovedTarget], timeout: float, retries: int,
              deadline: dt.datetime | None) -> tuple[dict[str, DiscoveredHost], bool]:
    """ICMP echo to each IPv4 target over a raw socket (root); replies matched by identifier and source."""
    check_targets(targets, DISCOVERY_KINDS)
    ident = random.randrange(1, 0xFFFF)
    wanted = {t.address: i for i, t in enumerate(targets)}
    found: dict[str, DiscoveredHost] = {}
    sent_at: dict[str, float] = {}
    partial = False
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        sock.setblocking(False)
        for _round in range(retries + 1):
            todo = [t for t in targets if t.address not in found]
            if not todo:
                break
            left = seconds_left(deadline)
            if left is not None and left <= 0:
                partial = True
                break
            for t in todo:
                seq = wanted[t.address] & 0xFFFF
                header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
                payload = b"precaution-discovery"
                packet = struct.pack("!BBHHH", 8, 0, _icmp_checksum(header + payload), ident, seq) + payload
                sent_at[t.address] = time.monotonic()
                try:
                    sock.sendto(packet, (t.address, 0))
                except OSError as exc:
                    if exc.errno not in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EAGAIN, errno.ENOBUFS):
                        raise
            until = time.monotonic() + (timeout if left is None else min(timeout, left))
            while len(found) < len(targets):
                remaining = until - time.monotonic()
                if remaining <= 0:
                    break
                select.select([sock], [], [], remaining)
                while True:
                    try:
                        data, (src, _p) = sock.recvfrom(2048)
                    except BlockingIOError:
                        break
                    ihl = (data[0] & 0x0F) * 4
                    if len(data) < ihl + 8:
                        continue
                    icmp_type, _code, _ck, rid, _rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
                    if icmp_type == 0 and rid == ident and src in wanted and src not in found:
                        rtt = (time.monotonic() - sent_at[src]) * 1000
                        found[src] = DiscoveredHost(src, "", "", "icmp", rtt)
    finally:
        sock.close()
    return found, partial


def tcp_ping(targets: Sequence[ApprovedTarget], ports: Sequence[int], timeout: float,
             deadline: dt.datetime | None) -> tuple[dict[str, DiscoveredHost], bool]:
    """A host that accepts or refuses (RST) a TCP connection on any of ``ports`` is up."""
    check_targets(targets, DISCOVERY_KINDS)
    found: dict[str, DiscoveredHost] = {}
    socks: dict[int, tuple[socket.socket, str, float]] = {}
    partial = False
    poller = select.epoll()
    try:
        for t in targets:
            fam = socket.AF_INET6 if t.version == 6 else socket.AF_INET
            for port in ports:
                s = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                rc = s.connect_ex((t.address, port))
                if rc in (0, errno.ECONNREFUSED):
                    found.setdefault(t.address, DiscoveredHost(t.address, "", "", "tcp", 0.0))
                    s.close()
                elif rc == errno.EINPROGRESS:
                    socks[s.fileno()] = (s, t.address, time.monotonic())
                    poller.register(s.fileno(), select.EPOLLOUT | select.EPOLLERR)
                else:
                    s.close()
        left = seconds_left(deadline)
        until = time.monotonic() + (timeout if left is None else min(timeout, left))
        while socks:
            remaining = until - time.monotonic()
            if remaining <= 0:
                partial = left is not None and left < timeout
                break
            for fd, _ev in poller.poll(remaining):
                s, ip, t0 = socks.pop(fd)
                poller.unregister(fd)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                s.close()
                if err in (0, errno.ECONNREFUSED) and ip not in found:
                    found[ip] = DiscoveredHost(ip, "", "", "tcp", (time.monotonic() - t0) * 1000)
    finally:
        for s, _ip, _t0 in socks.values():
            s.close()
        poller.close()
    return found, partial
