"""SSH facts without logging in: the identification string and the server's KEXINIT algorithm lists.

The server sends its SSH_MSG_KEXINIT as the first binary packet right after the version exchange (RFC 4253
section 7.1), unencrypted, so reading one packet tells us every algorithm it offers. We close the connection
right after: no key exchange, no authentication attempt.
"""

from __future__ import annotations

import logging
import socket
import struct
from dataclasses import dataclass
from typing import ClassVar

from probes.observation import Row

log = logging.getLogger(__name__)

SSH_MSG_KEXINIT = 20
MAX_PACKET = 35000  # RFC 4253 6.1: implementations must handle 35000-byte packets; more is not a KEXINIT
MAX_PRE_BANNER = 8192  # servers may send text lines before the identification string (RFC 4253 4.2)
CLIENT_IDENT = b"SSH-2.0-precaution_inspect\r\n"


class SshParseError(ValueError):
    """Bytes that are not a well-formed SSH identification or KEXINIT packet."""


@dataclass(frozen=True, slots=True)
class KexInit:
    kex: tuple[str, ...]
    host_key: tuple[str, ...]
    ciphers_c2s: tuple[str, ...]
    ciphers_s2c: tuple[str, ...]
    macs_c2s: tuple[str, ...]
    macs_s2c: tuple[str, ...]
    compression_c2s: tuple[str, ...]
    compression_s2c: tuple[str, ...]
    first_kex_follows: bool


@dataclass(frozen=True, slots=True)
class SshAlgos(Row):
    """What one SSH server offers. Ciphers and MACs are the union of both directions, in server order."""

    host: str
    port: int
    ident: str  # the full identification line, e.g. SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3
    protocol: str  # "2.0", "1.99", "1.5"
    software: str
    kex: tuple[str, ...]
    host_key: tuple[str, ...]
    ciphers: tuple[str, ...]
    macs: tuple[str, ...]
    compression: tuple[str, ...]

    KEY: ClassVar[tuple[str, ...]] = ("host", "port")


def parse_ident(line: bytes) -> tuple[str, str, str]:
    """Split ``SSH-protoversion-softwareversion SP comments`` into (full line, protocol, software)."""
    text = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
    if not text.startswith("SSH-"):
        raise SshParseError(f"not an SSH identification: {text[:40]!r}")
    parts = text.split("-", 2)
    if len(parts) < 3:
        raise SshParseError(f"malformed SSH identification: {text[:40]!r}")
    return text, parts[1], parts[2].split(" ", 1)[0]


def _name_list(buf: bytes, offset: int) -> tuple[tuple[str, ...], int]:
    if offset + 4 > len(buf):
        raise SshParseError("truncated name-list length")
    (length,) = struct.unpack_from(">I", buf, offset)
    offset += 4
    if offset + length > len(buf):
        raise SshParseError(f"name-list of {length} bytes overruns the packet")
    raw = buf[offset : offset + length]
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise SshParseError("name-list is not US-ASCII") from None
    return (tuple(text.split(",")) if text else ()), offset + length


def parse_kexinit_packet(packet: bytes) -> KexInit:
    """Parse one unencrypted binary packet (uint32 length, byte padding length, payload, padding)."""
    if len(packet) < 6:
        raise SshParseError("packet shorter than its header")
    length, padding = struct.unpack_from(">IB", packet, 0)
    if length > MAX_PACKET or length + 4 > len(packet) or padding + 1 > length:
        raise SshParseError(f"bad packet length {length} (padding {padding}, have {len(packet)} bytes)")
    payload = packet[5 : 4 + length - padding]
    return parse_kexinit_payload(payload)


def parse_kexinit_payload(payload: bytes) -> KexInit:
    if not payload or payload[0] != SSH_MSG_KEXINIT:
        kind = payload[0] if payload else None
        raise SshParseError(f"first packet is message {kind}, not KEXINIT ({SSH_MSG_KEXINIT})")
    offset = 1 + 16  # message number, cookie
    lists: list[tuple[str, ...]] = []
    for _ in range(10):
        names, offset = _name_list(payload, offset)
        lists.append(names)
    if offset >= len(payload):
        raise SshParseError("truncated KEXINIT (no first_kex_packet_follows)")
    return KexInit(
        kex=lists[0],
        host_key=lists[1],
        ciphers_c2s=lists[2],
        ciphers_s2c=lists[3],
        macs_c2s=lists[4],
        macs_s2c=lists[5],
        compression_c2s=lists[6],
        compression_s2c=lists[7],
        first_kex_follows=payload[offset] != 0,
    )


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return a + tuple(x for x in b if x not in a)


def to_row(host: str, port: int, ident_line: bytes, packet: bytes) -> SshAlgos:
    """Pure: the identification line and the first binary packet as read from the wire → row."""
    ident, protocol, software = parse_ident(ident_line)
    kex = parse_kexinit_packet(packet)
    return SshAlgos(
        host=host,
        port=port,
        ident=ident,
        protocol=protocol,
        software=software,
        # ext-info-s/kex-strict markers are pseudo-algorithms (RFC 8308, OpenSSH terrapin fix), not key exchanges
        kex=tuple(k for k in kex.kex if not k.startswith(("ext-info-", "kex-strict-"))),
        host_key=kex.host_key,
        ciphers=_union(kex.ciphers_c2s, kex.ciphers_s2c),
        macs=_union(kex.macs_c2s, kex.macs_s2c),
        compression=_union(kex.compression_c2s, kex.compression_s2c),
    )


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    need = n
    while need:
        chunk = sock.recv(min(need, 65536))
        if not chunk:
            raise SshParseError(f"connection closed after {n - need} of {n} bytes")
        chunks.append(chunk)
        need -= len(chunk)
    return b"".join(chunks)


def read_ident_and_kexinit(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read the server identification (skipping pre-banner lines), send ours, read the first packet."""
    seen = 0
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = sock.recv(1024)
            if not chunk:
                raise SshParseError("connection closed before an SSH identification")
            buf += chunk
            seen += len(chunk)
            if seen > MAX_PRE_BANNER:
                raise SshParseError("no SSH identification in the first 8 KiB")
        line, buf = buf.split(b"\n", 1)
        if line.startswith(b"SSH-"):
            break
    sock.sendall(CLIENT_IDENT)
    while len(buf) < 4:
        chunk = sock.recv(4096)
        if not chunk:
            raise SshParseError("connection closed before the first binary packet")
        buf += chunk
    (length,) = struct.unpack_from(">I", buf, 0)
    if length > MAX_PACKET:
        raise SshParseError(f"first packet claims {length} bytes")
    if len(buf) < 4 + length:
        buf += _recv_exact(sock, 4 + length - len(buf))
    return line + b"\n", buf[: 4 + length]


def grab(host: str, port: int, timeout: float = 3.0) -> tuple[bytes, bytes]:
    """Connect, read identification and KEXINIT, close. Raises OSError or SshParseError."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        return read_ident_and_kexinit(sock)
