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
pure ``analyse`` reads live frames and pcap files. Frames are decoded with struct (fixed header offsets);
scapy is used, lazily, only to sniff and to read pcap files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
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


@dataclass(frozen=True, slots=True)
class _Frame:
    """The parts of an Ethernet frame the checks use (decoded with struct: scapy's dissectors cost ~1 ms a
    frame, which a busy link cannot afford)."""

    src_mac: str
    ethertype: int
    arp: tuple[int, str, str] | None = None  # (op, sender MAC, sender IP)
    ip_src: str = ""
    ip_dst: str = ""
    proto: int = 0  # 6 TCP, 17 UDP
    sport: int = 0
    dport: int = 0
    payload: bytes = b""


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def decode_frame(data: bytes) -> _Frame | None:
    """Pure: Ethernet (with up to two VLAN tags) carrying ARP or IPv4 TCP/UDP; None for anything else."""
    if len(data) < 14:
        return None
    src = _mac(data[6:12])
    (etype,) = struct.unpack_from("!H", data, 12)
    off = 14
    for _ in range(2):
        if etype in (0x8100, 0x88A8) and len(data) >= off + 4:
            (etype,) = struct.unpack_from("!H", data, off + 2)
            off += 4
    if etype == 0x0806:
        if len(data) < off + 28:
            return None
        htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", data, off)
        if htype != 1 or ptype != 0x0800 or hlen != 6 or plen != 4:
            return None
        return _Frame(src, etype, arp=(op, _mac(data[off + 8 : off + 14]), socket.inet_ntoa(data[off + 14 : off + 18])))
    if etype != 0x0800 or len(data) < off + 20:
        return None
    vihl, _tos, total, _id, frag, _ttl, proto = struct.unpack_from("!BBHHHBB", data, off)
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20 or frag & 0x1FFF:  # not IPv4, or a non-first fragment (no L4 header)
        return None
    ip_src, ip_dst = socket.inet_ntoa(data[off + 12 : off + 16]), socket.inet_ntoa(data[off + 16 : off + 20])
    end = min(len(data), off + total) if total else len(data)
    l4 = off + ihl
    if proto == 6 and end >= l4 + 20:
        sport, dport = struct.unpack_from("!HH", data, l4)
        doff = (data[l4 + 12] >> 4) * 4
        return _Frame(src, etype, None, ip_src, ip_dst, 6, sport, dport, data[l4 + doff : end])
    if proto == 17 and end >= l4 + 8:
        sport, dport = struct.unpack_from("!HH", data, l4)
        return _Frame(src, etype, None, ip_src, ip_dst, 17, sport, dport, data[l4 + 8 : end])
    return None


DHCP_MAGIC = b"\x63\x82\x53\x63"
DHCP_TYPES = {2: "offer", 5: "ack", 6: "nak"}


def dhcp_server_reply(payload: bytes) -> tuple[str, str | None] | None:
    """(message type, server identifier) of a BOOTREPLY carrying DHCPOFFER/ACK/NAK; None otherwise. Pure."""
    if len(payload) < 240 or payload[0] != 2 or payload[236:240] != DHCP_MAGIC:
        return None
    mtype: int | None = None
    server: str | None = None
    i = 240
    while i < len(payload):
        code = payload[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(payload):
            break
        length = payload[i + 1]
        value = payload[i + 2 : i + 2 + length]
        if code == 53 and length == 1:
            mtype = value[0]
        elif code == 54 and length == 4:
            server = socket.inet_ntoa(value)
        i += 2 + length
    if mtype not in DHCP_TYPES:
        return None
    return DHCP_TYPES[mtype], server


def analyse(frames: Iterable[tuple[float, bytes]], policy: LinkPolicy = LinkPolicy()) -> list[LinkEvent]:
    """Pure: frames → link events, sorted by kind and subject."""
    creds: dict[tuple[str, str, str], _Acc] = {}
    claims: dict[str, _Acc] = {}
    dhcp: dict[str, _Acc] = {}
    dns: dict[str, _Acc] = {}
    telnet_prompted: set[tuple[str, int, str, int]] = set()  # (server, port, client, cport) after a prompt

    for ts, data in frames:
        f = decode_frame(data)
        if f is None:
            continue
        if f.arp is not None:
            op, sender_mac, sender_ip = f.arp
            if sender_ip != "0.0.0.0" and op in (1, 2):
                claims.setdefault(sender_ip, _Acc()).add(ts, sender_mac)
            continue
        if f.proto == 6:
            if not f.payload:
                continue
            if f.sport == 23:  # server to client: a login or password prompt arms the flow
                if _PROMPT.search(f.payload.replace(b"\x00", b"").rstrip(b" ")):
                    telnet_prompted.add((f.ip_src, f.sport, f.ip_dst, f.dport))
                continue
            if f.dport == 23:
                typed = any(32 <= b < 127 for b in f.payload)
                if typed and (f.ip_dst, f.dport, f.ip_src, f.sport) in telnet_prompted:
                    key = ("telnet", f.ip_src, f"{f.ip_dst}:{f.dport}")
                    creds.setdefault(key, _Acc()).add(ts, method="login prompt")
                continue
            found = _credential_method(f.sport, f.dport, f.payload)
            if found:
                proto, method = found
                creds.setdefault((proto, f.ip_src, f"{f.ip_dst}:{f.dport}"), _Acc()).add(ts, method=method)
            continue
        if f.sport == 67:
            reply = dhcp_server_reply(f.payload)
            if reply:
                mtype, server_id = reply
                dhcp.setdefault(server_id or f.ip_src, _Acc()).add(ts, f.src_mac, mtype)
        elif f.sport == 53 and len(f.payload) >= 12 and f.payload[2] & 0x80:  # QR bit: a response
            dns.setdefault(f.ip_src, _Acc()).add(ts, f.src_mac)

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


@dataclass(frozen=True, slots=True)
class Heard:
    """What a capture heard, so that a quiet link is told apart from a deaf capture: frames, and of them
    ARP, DHCP (server port 67 or client port 68), DNS (port 53) and TCP on the login ports."""

    frames: int = 0
    arp: int = 0
    dhcp: int = 0
    dns: int = 0
    tcp: int = 0
    other: int = 0  # not Ethernet/IPv4, or not one of the above


def heard(frames: Iterable[tuple[float, bytes]]) -> Heard:
    """Pure: counts of the frames by kind."""
    counts = {"frames": 0, "arp": 0, "dhcp": 0, "dns": 0, "tcp": 0, "other": 0}
    for _ts, data in frames:
        counts["frames"] += 1
        f = decode_frame(data)
        if f is None:
            kind = "other"
        elif f.arp is not None:
            kind = "arp"
        elif f.proto == 6:
            kind = "tcp"
        elif 67 in (f.sport, f.dport) or 68 in (f.sport, f.dport):
            kind = "dhcp"
        elif 53 in (f.sport, f.dport):
            kind = "dns"
        else:
            kind = "other"
        counts[kind] += 1
    return Heard(**counts)


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


class _ToDebugLog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        log.debug("scapy: %s", record.getMessage())


@contextlib.contextmanager
def _quiet_scapy() -> Iterator[None]:
    """scapy logs warnings straight to stderr through its own handler; a probe never prints. They go to our
    debug log instead, for the duration of the capture."""
    logger = logging.getLogger("scapy.runtime")
    level, propagate, handlers = logger.level, logger.propagate, logger.handlers[:]
    logger.setLevel(logging.WARNING)
    logger.handlers, logger.propagate = [_ToDebugLog()], False
    try:
        yield
    finally:
        logger.setLevel(level)
        logger.handlers, logger.propagate = handlers, propagate


def check_interface(iface: str) -> None:
    """Raise CaptureUnavailable unless ``iface`` exists and we may open a packet socket on it."""
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
    # The link-layer dissectors must be registered before sniffing, or scapy cannot map the interface's
    # hardware type to a layer and logs "Unable to guess type" for every socket it opens.
    import scapy.layers.l2  # noqa: F401
    from scapy.sendrecv import AsyncSniffer

    frames: list[tuple[float, bytes]] = []

    def keep(pkt: Any) -> None:
        if len(frames) < max_packets:
            frames.append((float(pkt.time), bytes(pkt)))

    with _quiet_scapy():
        sniffer = AsyncSniffer(iface=iface, filter=bpf, prn=keep, store=False, count=max_packets,
                               started_callback=on_started)
        sniffer.start()
        sniffer.join(duration)  # returns early only when count is reached
        if sniffer.running:
            sniffer.stop()
    log.debug("captured %d frames on %s (pid %d)", len(frames), iface, os.getpid())
    return Capture(iface, tuple(frames), len(frames) >= max_packets)
