"""Readers and pure parsers for /proc shared by several probes (sockets, processes)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from probes.base import GatherContext

TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
    "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
}
NET_TABLES = ("tcp", "tcp6", "udp", "udp6")


@dataclass(frozen=True, slots=True)
class SocketEntry:
    proto: str  # tcp | udp (family folded into the address)
    local_addr: str
    local_port: int
    remote_addr: str
    remote_port: int
    state: str
    uid: int
    inode: int


def hex_to_addr(text: str) -> str:
    """Kernel hex (host byte order per 32-bit word) to a printable address."""
    raw = bytes.fromhex(text)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, struct.pack("<I", struct.unpack(">I", raw)[0]))
    words = struct.unpack(">4I", raw)
    packed = struct.pack("<4I", *words)
    addr = socket.inet_ntop(socket.AF_INET6, packed)
    return addr


def parse_net_table(table: str, text: str) -> list[SocketEntry]:
    proto = "udp" if table.startswith("udp") else "tcp"
    out: list[SocketEntry] = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10 or ":" not in parts[1]:
            continue
        try:
            laddr, lport = parts[1].split(":")
            raddr, rport = parts[2].split(":")
            out.append(SocketEntry(
                proto=proto,
                local_addr=hex_to_addr(laddr),
                local_port=int(lport, 16),
                remote_addr=hex_to_addr(raddr),
                remote_port=int(rport, 16),
                state=TCP_STATES.get(parts[3], parts[3]) if proto == "tcp" else ("UNCONN" if parts[3] == "07"
                                                                                 else "ESTABLISHED"),
                uid=int(parts[7]),
                inode=int(parts[9]),
            ))
        except (ValueError, OSError):
            continue  # a malformed line is skipped, not fatal
    return out


def read_net_tables(ctx: GatherContext, pid: str = "self") -> dict[str, str]:
    tables: dict[str, str] = {}
    for name in NET_TABLES:
        try:
            tables[name] = ctx.transport.read_text(f"/proc/{pid}/net/{name}" if pid != "self" else f"/proc/net/{name}")
        except FileNotFoundError:
            continue  # no IPv6, say
    return tables


def list_pids(ctx: GatherContext) -> list[str]:
    return [d for d in ctx.transport.list_dir("/proc") if d.isdigit()]


def read_socket_owners(ctx: GatherContext) -> dict[str, dict[str, str | int]]:
    """Socket inode -> owning process (pid, comm, exe). Processes that vanish mid-read are skipped;
    processes we may not look into are noted as a limitation."""
    owners: dict[str, dict[str, str | int]] = {}
    t = ctx.transport
    denied = 0
    for pid in list_pids(ctx):
        try:
            fds = t.list_dir(f"/proc/{pid}/fd")
        except PermissionError:
            denied += 1
            continue
        except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
            continue
        inodes = []
        for fd in fds:
            try:
                target = t.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.append(target[8:-1])
        if not inodes:
            continue
        info = read_process_brief(ctx, pid)
        if info is None:
            continue
        for inode in inodes:
            owners.setdefault(inode, info)
    if denied:
        ctx.limited(f"{denied} processes not readable: socket owners unknown for them")
    return owners


def read_process_brief(ctx: GatherContext, pid: str) -> dict[str, str | int] | None:
    t = ctx.transport
    try:
        comm = t.read_text(f"/proc/{pid}/comm", 256).strip()
    except OSError:
        return None
    try:
        exe = t.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    return {"pid": int(pid), "comm": comm, "exe": exe}
