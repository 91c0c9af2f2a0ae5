"""One scanned port: the row both scan engines (nmap, the built-in TCP and UDP probes) produce."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from probes.observation import Row


@dataclass(frozen=True, slots=True)
class PortRow(Row):
    host: str
    proto: str  # tcp | udp
    port: int
    state: str  # open | closed | filtered | open|filtered
    service: str = ""
    product: str = ""
    version: str = ""
    reason: str = ""  # syn-ack, reset, conn-refused, no-response, udp-response, port-unreach
    cpe: tuple[str, ...] = ()
    extrainfo: str = ""

    KEY: ClassVar[tuple[str, ...]] = ("host", "proto", "port")
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"reason"})
