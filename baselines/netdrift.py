"""Network drift that compares like with like. Pure.

A network baseline holds what one set of tests saw: some addresses, some ports, with or without discovery over
ARP (MAC addresses) and service checks, through one engine. A later run may test a subset, other ports or other
kinds. Only what *both* covered is compared (``Coverage.common`` and ``comparable``), so a host that was not
scanned is not "gone" and a MAC address that was not asked for is not "changed". ``network_parents`` tells the
drift judgement which items belong to one change: a new port's service and TLS rows, a gone host's ports.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from baselines.diff import Diff, DriftItem
from probes.observation import AttrValue, Observation
from probes.ranges import merge_ranges

PROBE_COVERAGE = "coverage"  # the row a network baseline keeps about the tests that made it
COVERAGE_SUBJECT = "netscan"
SERVICE_PROBES = ("services", "tls", "ssh_algos")
# Port-row attributes that name the service: they depend on the engine (nmap's table or -sV vs /etc/services).
ENGINE_NAMING = ("service", "product", "version", "cpe", "extrainfo")
ARP_ATTRS = ("mac", "vendor")  # only known for hosts found by ARP on the scanner's own segment

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ItemKey = tuple[str, str, str]  # (change, probe, subject)


def network_parents(item: DriftItem) -> tuple[ItemKey, ...]:
    """The items this one is part of, nearest first, as (change, probe, subject): a service check row is part
    of its port's service row and of its port (the same change, or the port's service that changed), a port of
    its host (a new or gone host). A host whose MAC changed and a port that closed are two changes."""
    c = item.change
    if item.probe in SERVICE_PROBES:
        host, _, port = item.subject.rpartition("|")
        port_key = f"{host}|tcp|{port}"
        keys: list[ItemKey] = []
        if item.probe != "services":
            keys += [(c, "services", item.subject), ("changed", "services", item.subject)]
        keys += [(c, "ports", port_key), ("changed", "ports", port_key)]
        if c != "changed":
            keys.append((c, "hosts", host))
        return tuple(dict.fromkeys(keys))
    if item.probe == "ports" and c != "changed":
        return ((c, "hosts", item.subject.split("|", 1)[0]),)
    return ()


@dataclass(frozen=True, slots=True)
class Coverage:
    """What one network run tested: its target addresses (as networks), TCP ports, whether hosts were found
    by discovery and by ARP (MACs), whether services were checked, and the port-scan engine."""

    targets: tuple[str, ...]  # CIDRs
    ports: tuple[tuple[int, int], ...]  # inclusive ranges
    discovery: bool
    arp: bool
    services: bool
    engine: str
    complete: bool = True  # False: the notice window ended mid-scan, so what was not seen may not have been tried

    @classmethod
    def of(cls, addresses: Iterable[str | IPAddress], ports: Iterable[tuple[int, int]], discovery: bool, arp: bool,
           services: bool, engine: str, complete: bool = True) -> Coverage:
        return cls(tuple(str(n) for n in _address_blocks(addresses)), merge_ranges(ports), discovery, arp, services,
                   engine, complete)

    def to_observation(self) -> Observation:
        attrs: dict[str, AttrValue] = {
            "targets": self.targets, "ports": tuple(f"{lo}-{hi}" for lo, hi in self.ports),
            "discovery": self.discovery, "arp": self.arp, "services": self.services, "engine": self.engine,
            "complete": self.complete}
        return Observation(PROBE_COVERAGE, COVERAGE_SUBJECT, attrs)

    @classmethod
    def from_observations(cls, observations: Iterable[Observation]) -> Coverage | None:
        """The coverage row of a baseline; None for a baseline captured before coverage was kept."""
        for o in observations:
            if o.probe == PROBE_COVERAGE and o.subject == COVERAGE_SUBJECT:
                a = o.attrs
                ranges = []
                for text in _strings(a.get("ports")):
                    lo, _, hi = text.partition("-")
                    ranges.append((int(lo), int(hi or lo)))
                return cls(_strings(a.get("targets")), tuple(ranges), bool(a.get("discovery")), bool(a.get("arp")),
                           bool(a.get("services")), str(a.get("engine") or ""), a.get("complete") is not False)
        return None

    def networks(self) -> list[IPNetwork]:
        return [ipaddress.ip_network(t) for t in self.targets]

    def common(self, other: Coverage | None) -> Coverage:
        """What both runs covered (``other`` None: a baseline of unknown coverage, taken as covering this run)."""
        if other is None:
            return self
        nets = _collapse(n for a in self.networks() for b in other.networks() if (n := _intersect(a, b)))
        ports = merge_ranges((max(a[0], b[0]), min(a[1], b[1])) for a in self.ports for b in other.ports
                       if max(a[0], b[0]) <= min(a[1], b[1]))
        return Coverage(tuple(str(n) for n in nets), ports, self.discovery and other.discovery,
                        self.arp and other.arp, self.services and other.services,
                        self.engine if self.engine == other.engine else "", self.complete and other.complete)

    def has_address(self, address: str, networks: Sequence[IPNetwork] | None = None) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in n for n in (self.networks() if networks is None else networks))

    def has_port(self, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self.ports)

    def probes(self) -> tuple[str, ...]:
        """The baseline probes this coverage can compare."""
        out = ["ports"]
        if self.discovery:
            out.insert(0, "hosts")
        if self.services:
            out += SERVICE_PROBES
        return tuple(out)

    def comparable(self, observations: Iterable[Observation]) -> list[Observation]:
        """The observations (of either side) that this coverage tested, with the attributes it can compare:
        hosts and ports inside the targets and ports, no MAC without ARP on both sides, no engine-specific
        service names across engines."""
        wanted = set(self.probes())
        nets = self.networks()
        out: list[Observation] = []
        for o in observations:
            if o.probe not in wanted:
                continue
            if o.probe == "hosts":
                if not self.has_address(o.subject, nets):
                    continue
                if not self.arp:
                    o = _without(o, ARP_ATTRS)
            elif o.probe == "ports":
                host, proto, port = _port_key(o.subject)
                if proto != "tcp" or not self.has_address(host, nets) or not self.has_port(port):
                    continue
                if not self.engine:
                    o = _without(o, ENGINE_NAMING)
            else:
                host, _, port_text = o.subject.rpartition("|")
                if not port_text.isdigit() or not self.has_address(host, nets) or not self.has_port(int(port_text)):
                    continue
            out.append(o)
        return out


def _address_blocks(addresses: Iterable[str | IPAddress]) -> list[IPNetwork]:
    """The fewest CIDRs holding exactly these addresses or CIDRs (a /16 of 65,536 addresses in a tenth of a
    second: runs of consecutive integers, then one summarize per run, not collapse_addresses on each)."""
    spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    for a in addresses:
        if isinstance(a, str) and "/" in a:
            net = ipaddress.ip_network(a)
            spans[net.version].append((int(net.network_address), int(net.broadcast_address)))
            continue
        ip = a if isinstance(a, ipaddress.IPv4Address | ipaddress.IPv6Address) else ipaddress.ip_address(a)
        spans[ip.version].append((int(ip), int(ip)))
    out: list[IPNetwork] = []
    for version, cls in ((4, ipaddress.IPv4Address), (6, ipaddress.IPv6Address)):
        for lo, hi in merge_ranges(spans[version]):
            out.extend(ipaddress.summarize_address_range(cls(lo), cls(hi)))
    return out


def seen_only(diff: Diff) -> Diff:
    """A run cut short (``Coverage.complete`` false) saw what it saw, but what it did not see may never have been
    tried: keep what was added or changed, drop what looks removed."""
    return Diff(diff.added, (), diff.changed, diff.ignored, diff.probes)


def _port_key(subject: str) -> tuple[str, str, int]:
    host, proto, port = [*subject.split("|"), "", "", ""][:3]
    return host, proto, int(port) if port.isdigit() else -1


def _without(o: Observation, names: Sequence[str]) -> Observation:
    return Observation(o.probe, o.subject, {k: v for k, v in o.attrs.items() if k not in names}, o.volatile)


def _strings(value: AttrValue) -> tuple[str, ...]:
    if isinstance(value, tuple):
        return tuple(str(v) for v in value)
    return (str(value),) if value else ()


def _intersect(a: IPNetwork, b: IPNetwork) -> IPNetwork | None:
    if a.version != b.version:
        return None
    if a.subnet_of(b):  # type: ignore[arg-type]
        return a
    if b.subnet_of(a):  # type: ignore[arg-type]
        return b
    return None  # CIDRs either nest or are disjoint


def _collapse(nets: Iterable[IPNetwork]) -> list[IPNetwork]:
    items = list(nets)
    v4 = [n for n in items if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in items if isinstance(n, ipaddress.IPv6Network)]
    return [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]

