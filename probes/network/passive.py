"""Passive link checks (Art. 24(2) "links"): listen on ONE named interface for a bounded time, or read a pcap.

What is reported (facts; the profile judges):
- ``cleartext_credentials``: a login over telnet, FTP, POP3, IMAP, SMTP AUTH or HTTP Basic crossed the link.
  Protocol, client and server endpoints and the method (``USER/PASS``, ``LOGIN``, ``Basic``); never the user
  name or the secret, which are not even kept in memory past the packet being looked at.
- ``arp_conflict``: one IPv4 address claimed by several MAC addresses (ARP spoofing, or a duplicate address).
- ``gateway_mac``: the MAC addresses that claimed the gateway's address, and whether they are the expected one.
- ``dhcp_server``: a DHCPOFFER/ACK sender, and whether it is in the allowed list (rogue DHCP).
- ``dns_resolver``: a DNS response sender, and whether it is in the allowed list.

Capture uses a BPF filter so the kernel hands us only ARP, DHCP, DNS and the cleartext-login ports; the same
pure ``analyse`` reads live frames and pcap files. scapy is imported lazily, only the layers used.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from probes.observation import Observation, Row

log = logging.getLogger(__name__)

PROBE_LINK = "link"
MAX_DURATION = 3600.0
DEFAULT_MAX_PACKETS = 200_000
HTTP_PORTS = (80, 8000, 8008, 8080, 8888)
BPF_FILTER = (
    "arp or (udp and (src port 53 or src port 67 or dst port 68)) or "
    "(tcp and (port 21 or port 23 or port 25 or port 110 or port 143 or port 587 or "
    + " or ".join(f"port {p}" for p in HTTP_PORTS) + "))"
)

_PROMPT = re.compile(rb"(login|username|user name|password)\s*:\s*$", re.I)
_HTTP_BASIC = re.compile(rb"^[A-Z]{3,7} \S+ HTTP/1\.[01]\r\n(?:.*\r\n)*?authorization:[ \t]*basic[ \t]", re.I)
_IMAP_LOGIN = re.compile(rb"^\S+ (LOGIN|AUTHENTICATE (?:PLAIN|LOGIN))\b", re.I)


class CaptureUnavailable(Exception):
    """The capture cannot start here (no such interface, no raw-socket rights); the message says which."""


@dataclass(frozen=True, slots=True)
class LinkEvent(Row):
    kind: str  # cleartext_credentials | arp_conflict | gateway_mac | dhcp_server | dns_resolver
    protocol: str  # telnet ftp pop3 imap smtp http-basic | arp | dhcp | dns
    src: str  # client (credentials), claimed IP (arp), server IP (dhcp, dns)
    dst: str  # server ip:port (credentials), "" otherwise
    macs: tuple[str, ...]
    method: str  # how credentials went (USER/PASS, LOGIN, Basic, ...); DHCP message types; "" otherwise
    expected: bool | None  # against the allowed list / expected gateway MAC; None when none was given
    packets: int
    first_seen: float
    last_seen: float

    KEY: ClassVar[tuple[str, ...]] = ("kind", "protocol", "src", "dst")
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"packets", "first_seen", "last_seen"})


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    """What the operator expects on the segment. None: not given, so the matching rows say expected=None."""

    dhcp_servers: frozenset[str] | None = None
    dns_servers: frozenset[str] | None = None
    gateway_ip: str | None = None
    gateway_mac: str | None = None


@dataclass(frozen=True, slots=True)
class Capture:
    """Frames as read: (timestamp, bytes). ``source``: interface name or pcap path."""

    source: str
    frames: tuple[tuple[float, bytes], ...]
    truncated: bool = False  # stopped at max_packets

    def to_raw(self) -> dict[str, Any]:
        return {"source": self.source, "truncated": self.truncated,
                "frames": [[round(ts, 6), data.hex()] for ts, data in self.frames]}

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> Capture:
        return cls(str(raw.get("source", "")), tuple((float(ts), bytes.fromhex(h)) for ts, h in raw["frames"]),
                   bool(raw.get("truncated", False)))


@dataclass(slots=True)
class _Acc:
    macs: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    packets: int = 0
    first: float = 0.0
    last: float = 0.0

    def add(self, ts: float, mac: str | None = None, method: str | None = None) -> None:
        if self.packets == 0:
            self.first = ts
        self.packets += 1
        self.last = max(self.last, ts)
        if mac and mac not in self.macs:
            self.macs.append(mac)
        if method and method not in self.methods:
            self.methods.append(method)


def _credential_method(sport: int, dport: int, payload: bytes) -> tuple[str, str] | None:
    """(protocol, method) when a client-to-server payload carries a login. Pure, payload not kept."""
    head = payload[:16].upper()
    if dport == 21 and head.startswith((b"USER ", b"PASS ")):
        return "ftp", head[:4].decode()
    if dport == 110 and head.startswith((b"USER ", b"PASS ", b"APOP ", b"AUTH ")):
        return "pop3", head[:4].decode()
    if dport == 143:
        m = _IMAP_LOGIN.match(payload[:200])
        if m:
            return "imap", m.group(1).decode().upper().split()[0]
    if dport in (25, 587) and head.startswith(b"AUTH "):
        return "smtp", "AUTH"
    if payload[:8].split(b" ", 1)[0] in (b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"PATCH", b"OPTIONS") and \
            _HTTP_BASIC.match(payload[:8192]):
        return "http-basic", "Basic"
    return None


def analyse(frames: Iterable[tuple[float, bytes]], policy: LinkPolicy = LinkPolicy()) -> list[LinkEvent]:
    """Pure: frames → link events, sorted by kind and subject."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.dns import DNS
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether

    creds: dict[tuple[str, str, str], _Acc] = {}
    claims: dict[str, _Acc] = {}
    dhcp: dict[str, _Acc] = {}
    dns: dict[str, _Acc] = {}
    telnet_prompted: set[tuple[str, int, str, int]] = set()  # (server, port, client, cport) after a prompt

    for ts, data in frames:
        pkt = Ether(data)
        if ARP in pkt:
            arp = pkt[ARP]
            if arp.ptype == 0x0800 and arp.psrc and arp.psrc != "0.0.0.0" and arp.op in (1, 2):
                claims.setdefault(str(arp.psrc), _Acc()).add(ts, str(arp.hwsrc).lower())
            continue
        if IP not in pkt:
            continue
        ip = pkt[IP]
        if TCP in pkt:
            tcp = pkt[TCP]
            payload = bytes(tcp.payload)
            if not payload:
                continue
            src, dst, sport, dport = str(ip.src), str(ip.dst), int(tcp.sport), int(tcp.dport)
            if sport == 23:  # server to client: a login or password prompt arms the flow
                text = payload.replace(b"\x00", b"").rstrip(b" ")
                if _PROMPT.search(text):
                    telnet_prompted.add((src, sport, dst, dport))
                continue
            if dport == 23:
                typed = bytes(b for b in payload if 32 <= b < 127)
                if typed and (dst, dport, src, sport) in telnet_prompted:
                    creds.setdefault(("telnet", src, f"{dst}:{dport}"), _Acc()).add(ts, method="login prompt")
                continue
            found = _credential_method(sport, dport, payload)
            if found:
                proto, method = found
                creds.setdefault((proto, src, f"{dst}:{dport}"), _Acc()).add(ts, method=method)
            continue
        if UDP in pkt:
            udp = pkt[UDP]
            if int(udp.sport) == 67 and BOOTP in pkt and pkt[BOOTP].op == 2 and DHCP in pkt:
                opts = {o[0]: o[1] for o in pkt[DHCP].options if isinstance(o, tuple) and len(o) >= 2}
                mtype = opts.get("message-type")
                names = {2: "offer", 5: "ack", 6: "nak"}
                if mtype in names:
                    server = str(opts.get("server_id") or ip.src)
                    dhcp.setdefault(server, _Acc()).add(ts, str(pkt[Ether].src).lower(), names[int(mtype)])
            elif int(udp.sport) == 53 and DNS in pkt and pkt[DNS].qr == 1:
                dns.setdefault(str(ip.src), _Acc()).add(ts, str(pkt[Ether].src).lower())

    events: list[LinkEvent] = []
    for (proto, client, server), acc in creds.items():
        events.append(_event("cleartext_credentials", proto, client, server, acc, None))
    for ip_addr, acc in claims.items():
        if len(acc.macs) > 1:
            events.append(_event("arp_conflict", "arp", ip_addr, "", acc, None))
        if policy.gateway_ip and ip_addr == policy.gateway_ip:
            expected = None
            if policy.gateway_mac:
                expected = all(m == policy.gateway_mac.lower() for m in acc.macs)
            events.append(_event("gateway_mac", "arp", ip_addr, "", acc, expected))
    for server, acc in dhcp.items():
        ok = None if policy.dhcp_servers is None else server in policy.dhcp_servers
        events.append(_event("dhcp_server", "dhcp", server, "", acc, ok))
    for server, acc in dns.items():
        ok = None if policy.dns_servers is None else server in policy.dns_servers
        events.append(_event("dns_resolver", "dns", server, "", acc, ok))
    return sorted(events, key=lambda e: (e.kind, e.protocol, e.src, e.dst))


def _event(kind: str, protocol: str, src: str, dst: str, acc: _Acc, expected: bool | None) -> LinkEvent:
    return LinkEvent(kind=kind, protocol=protocol, src=src, dst=dst, macs=tuple(sorted(acc.macs)),
                     method="/".join(acc.methods), expected=expected, packets=acc.packets,
                     first_seen=round(acc.first, 6), last_seen=round(acc.last, 6))


def observations(events: Sequence[LinkEvent]) -> list[Observation]:
    return [Observation.from_row(PROBE_LINK, e) for e in events]


# --- reading frames --------------------------------------------------------------------------------------

def read_pcap(path: str | Path, max_packets: int = DEFAULT_MAX_PACKETS) -> Capture:
    """Offline mode: Ethernet frames of a pcap/pcapng file (other link types are skipped)."""
    import scapy.layers.l2  # noqa: F401  (registers Ethernet as link type 1 for the reader)
    from scapy.error import Scapy_Exception
    from scapy.utils import PcapReader

    frames: list[tuple[float, bytes]] = []
    truncated = False
    try:
        with PcapReader(str(path)) as reader:
            for pkt in reader:
                if len(frames) >= max_packets:
                    truncated = True
                    break
                frames.append((float(pkt.time), bytes(pkt)))
    except Scapy_Exception as exc:
        raise ValueError(f"{path}: not a pcap file: {exc}") from None
    return Capture(str(path), tuple(frames), truncated)


def check_interface(iface: str) -> None:
    """Raise CaptureUnavailable unless ``iface`` exists and we may open a packet socket on it."""
    import socket

    if not iface or "/" in iface or not Path("/sys/class/net", iface).exists():
        raise CaptureUnavailable(f"no such network interface: {iface!r}")
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    except PermissionError:
        raise CaptureUnavailable(f"capturing on {iface} needs root or CAP_NET_RAW") from None
    except OSError as exc:
        raise CaptureUnavailable(f"cannot open a packet socket: {exc.strerror or exc}") from None
    sock.close()


def capture(iface: str, duration: float, max_packets: int = DEFAULT_MAX_PACKETS, bpf: str = BPF_FILTER,
            on_started: Callable[[], None] | None = None) -> Capture:
    """Listen on ``iface`` for ``duration`` seconds (or until ``max_packets``); only frames passing ``bpf``."""
    if not 0 < duration <= MAX_DURATION:
        raise ValueError(f"capture duration must be in (0, {MAX_DURATION:.0f}] seconds, got {duration}")
    check_interface(iface)
    from scapy.sendrecv import AsyncSniffer

    frames: list[tuple[float, bytes]] = []

    def keep(pkt: Any) -> None:
        if len(frames) < max_packets:
            frames.append((float(pkt.time), bytes(pkt)))

    sniffer = AsyncSniffer(iface=iface, filter=bpf, prn=keep, store=False, count=max_packets,
                           started_callback=on_started)
    sniffer.start()
    sniffer.join(duration)  # returns early only when count is reached
    if sniffer.running:
        sniffer.stop()
    log.debug("captured %d frames on %s (pid %d)", len(frames), iface, os.getpid())
    return Capture(iface, tuple(frames), len(frames) >= max_packets)
