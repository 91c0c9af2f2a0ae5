"""Readers and pure parsers for /proc shared by several probes (sockets, processes)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from probes import messages as msg
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
    processes we may not look into are noted as a limitation.

    Batched (one listing of every fd directory, one readlink of every fd, one read of the owners' comm and
    exe): over SSH this is a handful of round trips instead of one per file descriptor."""
    owners: dict[str, dict[str, str | int]] = {}
    socket_inodes = read_socket_inodes(ctx)
    briefs = read_process_briefs(ctx, list(socket_inodes))
    for pid, inodes in socket_inodes.items():
        info = briefs[pid]
        if info is None:
            continue
        for inode in inodes:
            owners.setdefault(inode, info)
    return owners


def read_socket_inodes(ctx: GatherContext) -> dict[str, list[str]]:
    """pid -> inodes of the sockets it holds open (every process of a pre-forked server holds the listening
    socket). Processes we may not look into are noted as a limitation."""
    t = ctx.transport
    denied = 0
    pids = list_pids(ctx)
    listings = t.list_many(f"/proc/{pid}/fd" for pid in pids)
    fd_paths: dict[str, list[str]] = {}
    for pid in pids:
        fds = listings[f"/proc/{pid}/fd"]
        if isinstance(fds, PermissionError):
            denied += 1
            continue
        if isinstance(fds, (FileNotFoundError, NotADirectoryError, ProcessLookupError)):
            continue
        if isinstance(fds, OSError):
            raise fds
        fd_paths[pid] = [f"/proc/{pid}/fd/{fd}" for fd in fds]
    links = t.readlink_many(p for paths in fd_paths.values() for p in paths)
    socket_inodes: dict[str, list[str]] = {}
    for pid, paths in fd_paths.items():
        inodes = []
        for path in paths:
            target = links[path]
            if not isinstance(target, OSError) and target.startswith("socket:["):
                inodes.append(target[8:-1])
        if inodes:
            socket_inodes[pid] = inodes
    if denied:
        ctx.limited(msg.PROCESSES_NOT_READABLE(count=denied))
    return socket_inodes


def read_process_briefs(ctx: GatherContext, pids: list[str]) -> dict[str, dict[str, str | int] | None]:
    """pid -> {pid, comm, exe} (None when the process is gone or its comm not readable), in two batched calls."""
    t = ctx.transport
    comms = t.read_many((f"/proc/{pid}/comm" for pid in pids), 256)
    exes = t.readlink_many(f"/proc/{pid}/exe" for pid in pids if not isinstance(comms[f"/proc/{pid}/comm"], OSError))
    out: dict[str, dict[str, str | int] | None] = {}
    for pid in pids:
        comm = comms[f"/proc/{pid}/comm"]
        if isinstance(comm, OSError):
            out[pid] = None
            continue
        exe = exes[f"/proc/{pid}/exe"]
        out[pid] = {"pid": int(pid), "comm": comm.decode("utf-8", errors="replace").strip(),
                    "exe": "" if isinstance(exe, OSError) else exe}
    return out


def read_process_brief(ctx: GatherContext, pid: str) -> dict[str, str | int] | None:
    return read_process_briefs(ctx, [pid])[pid]
