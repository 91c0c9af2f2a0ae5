"""Listening TCP and UDP sockets with their owning process."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row
from probes.procfs import parse_net_table, read_net_tables, read_socket_owners


@dataclass(frozen=True, slots=True)
class Listener(Row):
    proto: str
    address: str
    port: int
    process: str
    exe: str
    pid: int | None
    uid: int
    wildcard: bool  # bound to every address (0.0.0.0 or ::), reachable from the network
    loopback: bool

    KEY: ClassVar[tuple[str, ...]] = ("proto", "address", "port")
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"pid"})


class ListenersProbe(Probe[Listener]):
    id = "listeners"
    title = "Listening sockets"
    title_zh = "监听端口"
    requires = Requirements(root=True, paths_any=("/proc/net/tcp",))

    def gather(self, ctx: GatherContext) -> Raw:
        return {"net": read_net_tables(ctx), "owners": read_socket_owners(ctx)}

    @staticmethod
    def parse(raw: Raw) -> Sequence[Listener]:
        owners = raw.get("owners", {})
        rows: dict[tuple[str, str, int], Listener] = {}
        for table, text in raw.get("net", {}).items():
            for s in parse_net_table(table, text):
                if not ((s.proto == "tcp" and s.state == "LISTEN") or (s.proto == "udp" and s.state == "UNCONN")):
                    continue
                owner = owners.get(str(s.inode), {})
                row = Listener(
                    proto=s.proto,
                    address=s.local_addr,
                    port=s.local_port,
                    process=str(owner.get("comm", "")),
                    exe=str(owner.get("exe", "")),
                    pid=int(owner["pid"]) if "pid" in owner else None,
                    uid=s.uid,
                    wildcard=s.local_addr in ("0.0.0.0", "::"),
                    loopback=s.local_addr.startswith("127.") or s.local_addr == "::1",
                )
                rows.setdefault((row.proto, row.address, row.port), row)
        return [rows[k] for k in sorted(rows)]
