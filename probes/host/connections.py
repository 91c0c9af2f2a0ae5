"""Outbound TCP and UDP connections with their owning process.

A connection is outbound when its local port is not one this host listens on (TCP LISTEN, or an unconnected
UDP socket on that port): the connections accepted by local servers are left out, their remote port is
ephemeral and says nothing stable. TCP counts in ESTABLISHED and SYN_SENT (a connect under way, such as a
beacon that cannot reach home); UDP when the socket is connected. The subject is protocol, remote address and
port and the program; the local port is ephemeral and volatile. Several connections with the same subject
collapse into one row with a count.

Connections are activity, not state: they are judged by the profile rules (a shell or a program in /tmp that
talks to the network) but never kept in a baseline, where every short-lived client connection would be drift.
What holds a connection for good is a long-lived process, and process identities are baselined
(probes/host/processes.py).
"""

from __future__ import annotations

import ipaddress
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row
from probes.procfs import SocketEntry, parse_net_table, read_net_tables, read_socket_owners

DELETED_SUFFIX = " (deleted)"
TCP_STATES = ("ESTABLISHED", "SYN_SENT")


@dataclass(frozen=True, slots=True)
class Connection(Row):
    proto: str  # tcp | udp
    remote_addr: str  # IPv4-mapped IPv6 addresses shown as IPv4
    remote_port: int
    program: str  # exe path, or "[comm]" when the exe is not readable, "" when the owner is unknown
    process: str  # comm
    exe: str
    exe_dir: str
    exe_deleted: bool
    uid: int
    state: str
    local_addr: str
    local_port: int
    loopback: bool
    pid: int | None
    count: int

    KEY: ClassVar[tuple[str, ...]] = ("proto", "remote_addr", "remote_port", "program")
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"local_port", "pid", "count", "state"})
    IN_BASELINE: ClassVar[bool] = False


def _plain(addr: str) -> str:
    if addr.startswith("::ffff:") and "." in addr:
        return addr[7:]
    return addr


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def outbound(entries: Sequence[SocketEntry]) -> list[SocketEntry]:
    listening = {(e.proto, e.local_port) for e in entries
                 if (e.proto == "tcp" and e.state == "LISTEN") or (e.proto == "udp" and e.remote_port == 0)}
    out = []
    for e in entries:
        if e.proto == "tcp" and e.state not in TCP_STATES:
            continue
        if e.proto == "udp" and e.remote_port == 0:
            continue
        if (e.proto, e.local_port) in listening:
            continue  # accepted by a local server: inbound
        out.append(e)
    return out


class ConnectionsProbe(Probe[Connection]):
    id = "connections"
    title = "Outbound network connections"
    title_zh = "对外网络连接"
    requires = Requirements(root=True, paths_any=("/proc/net/tcp",))

    def gather(self, ctx: GatherContext) -> Raw:
        return {"net": read_net_tables(ctx), "owners": read_socket_owners(ctx)}

    @staticmethod
    def parse(raw: Raw) -> Sequence[Connection]:
        owners = raw.get("owners", {})
        entries = [e for table, text in raw.get("net", {}).items() for e in parse_net_table(table, text)]
        rows: dict[tuple[object, ...], Connection] = {}
        for e in outbound(entries):
            owner = owners.get(str(e.inode), {})
            exe = str(owner.get("exe", ""))
            deleted = exe.endswith(DELETED_SUFFIX)
            if deleted:
                exe = exe[:-len(DELETED_SUFFIX)]
            comm = str(owner.get("comm", ""))
            remote = _plain(e.remote_addr)
            row = Connection(
                proto=e.proto,
                remote_addr=remote,
                remote_port=e.remote_port,
                program=exe or (f"[{comm}]" if comm else ""),
                process=comm,
                exe=exe,
                exe_dir=posixpath.dirname(exe) if exe.startswith("/") else "",
                exe_deleted=deleted,
                uid=e.uid,
                state=e.state,
                local_addr=_plain(e.local_addr),
                local_port=e.local_port,
                loopback=_is_loopback(remote),
                pid=int(owner["pid"]) if "pid" in owner else None,
                count=1,
            )
            key = tuple(getattr(row, k) for k in Connection.KEY)
            prev = rows.get(key)
            rows[key] = row if prev is None else replace(prev, count=prev.count + 1)
        return sorted(rows.values(), key=lambda r: (r.proto, r.remote_addr, r.remote_port, r.program))
