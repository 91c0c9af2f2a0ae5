"""The scope guard (Art. 25 ¶2): network tests reach only what the notice named, for the kinds it named.

``Scope`` is what is allowed (networks, host names, ports, test kinds, a deny list that always wins, a cap on its
size). ``ScopeGuard.approve`` resolves and expands requested targets (CIDRs, ranges, addresses, host names), checks
every address, and issues ``ApprovedTarget`` objects, the only thing network probes accept. Anything outside is
refused as a whole (``ScopeRefused``), unless ``partial=True``; each refusal is handed to ``on_refusal`` so that
the inspection record keeps it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.errors import UserError
from probes.errors import ProbeInputError
from probes.network.ports import PortSet
from probes.network.target import KINDS, ApprovedTarget, IPAddress, issue_target

__all__ = [
    "DEFAULT_MAX_ADDRESSES", "KINDS", "ApprovedTarget", "PortSet", "Refusal", "Scope", "ScopeGuard", "ScopeRefused",
    "expand_target",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_ADDRESSES = 65536  # a /16
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[IPAddress]]

_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")
_SHORT_RANGE = re.compile(r"^(\d{1,3}\.\d{1,3}\.\d{1,3}\.)(\d{1,3})-(\d{1,3})$")


class ScopeRefused(UserError):
    """Some requested targets are outside the scope; nothing was approved (or, with partial, nothing at all)."""

    def __init__(self, message: str, refusals: Sequence[Refusal]) -> None:
        super().__init__(message)
        self.refusals = tuple(refusals)


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused request part, for the inspection record: what, for which test kind, and why."""

    target: str  # as requested
    kind: str
    reason: str
    addresses: tuple[str, ...] = ()  # refused addresses, as ranges ("10.0.0.1-10.0.0.9"), at most 20
    count: int = 0  # refused addresses in all
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def describe(self) -> str:
        what = self.target
        if self.addresses and self.addresses != (self.target,):
            more = f" (+{self.count - len(self.addresses)} more)" if self.count > len(self.addresses) else ""
            what = f"{self.target} [{', '.join(self.addresses[:5])}{more}]"
        return f"{what}: {self.reason}"


def resolve_hostname(name: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UserError(f"cannot resolve host name {name!r}: {exc}") from None
    out: list[IPAddress] = []
    for family, _t, _p, _c, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            if ip not in out:
                out.append(ip)
    if not out:
        raise UserError(f"host name {name!r} has no IPv4/IPv6 address")
    return out


def _parse_networks(text: str) -> list[Network] | None:
    """A CIDR, an address or a range as networks; None when ``text`` is none of these (a host name?)."""
    item = text.strip().strip("[]") if text.strip().startswith("[") else text.strip()
    if "/" in item:
        try:
            return [ipaddress.ip_network(item, strict=True)]
        except ValueError as exc:
            raise UserError(f"bad network {text!r}: {exc}") from None
    short = _SHORT_RANGE.match(item)
    if short:
        item = f"{short.group(1)}{short.group(2)}-{short.group(1)}{short.group(3)}"
    if "-" in item and (":" in item or re.match(r"^[\d.]+-[\d.]+$", item)):
        lo_s, _, hi_s = item.partition("-")
        try:
            lo, hi = ipaddress.ip_address(lo_s.strip()), ipaddress.ip_address(hi_s.strip())
        except ValueError as exc:
            raise UserError(f"bad address range {text!r}: {exc}") from None
        if lo.version != hi.version or int(lo) > int(hi):
            raise UserError(f"bad address range {text!r}: start after end or mixed IPv4/IPv6")
        return list(ipaddress.summarize_address_range(lo, hi))
    try:
        ip = ipaddress.ip_address(item.split("%", 1)[0])
    except ValueError:
        if re.match(r"^[\d.]+$", item) or ":" in item:
            raise UserError(f"bad IP address {text!r}") from None
        return None
    return [ipaddress.ip_network(ip)]


def _check_hostname(text: str) -> str:
    name = text.strip()
    if not _HOSTNAME.match(name) or name.rstrip(".").rsplit(".", 1)[-1].isdigit():
        raise UserError(f"bad target {text!r}: not an address, network, range or host name")
    return name


def _size(networks: Iterable[Network]) -> int:
    total = 0
    for version in (4, 6):
        nets: list[Any] = [n for n in networks if n.version == version]
        total += sum(int(n.num_addresses) for n in ipaddress.collapse_addresses(nets))
    return total


def _host_addresses(net: Network) -> list[IPAddress]:
    if net.num_addresses <= 2:
        return [net.network_address + i for i in range(net.num_addresses)]
    return list(net.hosts())


def _ranges(addresses: Sequence[IPAddress], limit: int = 20) -> tuple[str, ...]:
    out: list[str] = []
    for net in ipaddress.collapse_addresses(ipaddress.ip_network(a) for a in sorted(addresses)):  # type: ignore[type-var]
        out.append(str(net.network_address) if net.num_addresses == 1 else str(net))
        if len(out) >= limit:
            break
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Scope:
    """What network tests may reach. ``ports`` None: any port. The deny list always wins."""

    networks: tuple[Network, ...] = ()
    hosts: tuple[str, ...] = ()  # host names, allowed at the addresses they resolve to at approval time
    ports: PortSet | None = None
    kinds: frozenset[str] = frozenset(KINDS)
    deny: tuple[Network, ...] = ()
    max_addresses: int = DEFAULT_MAX_ADDRESSES  # also the cap on one request's expansion

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise UserError(f"unknown test kind(s) {', '.join(sorted(unknown))}; known: {', '.join(KINDS)}")

    @classmethod
    def loopback(cls, kinds: Iterable[str] = KINDS) -> Scope:
        """The default without a notice: this machine's loopback only."""
        return cls(networks=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")),
                   kinds=frozenset(kinds))

    @classmethod
    def parse(cls, cidrs: str | Sequence[str], kinds: Iterable[str] = KINDS, deny: str | Sequence[str] = (),
              ports: str | PortSet | None = None, max_addresses: int = DEFAULT_MAX_ADDRESSES) -> Scope:
        networks: list[Network] = []
        hosts: list[str] = []
        for entry in _split(cidrs):
            nets = _parse_networks(entry)
            if nets is None:
                hosts.append(_check_hostname(entry).lower().rstrip("."))
            else:
                networks.extend(nets)
        if not networks and not hosts:
            raise UserError("empty scope: name at least one network, address or host")
        deny_nets: list[Network] = []
        for entry in _split(deny):
            nets = _parse_networks(entry)
            if nets is None:
                raise UserError(f"deny entry {entry!r}: give addresses or networks, not host names")
            deny_nets.extend(nets)
        size = _size(networks)
        if size > max_addresses:
            raise UserError(f"scope too large: {size} addresses, the limit is {max_addresses}")
        try:
            port_set = PortSet.parse(ports) if isinstance(ports, str) else ports
        except ProbeInputError as exc:  # the agent's own input, so the agent's error (notices catch it)
            raise UserError(f"scope ports: {exc}") from None
        return cls(tuple(networks), tuple(hosts), port_set, frozenset(kinds), tuple(deny_nets), max_addresses)

    def entries(self) -> list[str]:
        return [str(n) for n in self.networks] + list(self.hosts)

    def size(self) -> int:
        return _size(self.networks)


def _split(value: str | Sequence[str]) -> list[str]:
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    return [i.strip() for i in items if i.strip()]


def expand_target(target: str, resolver: Resolver = resolve_hostname,
                  max_addresses: int = DEFAULT_MAX_ADDRESSES) -> list[tuple[IPAddress, str | None]]:
    """A target as (address, host name) pairs; the size is checked before expanding anything."""
    nets = _parse_networks(target)
    if nets is None:
        name = _check_hostname(target).rstrip(".")
        return [(ip, name) for ip in resolver(name)]
    size = _size(nets)
    if size > max_addresses:
        raise ScopeRefused(f"target {target} has {size} addresses, more than the limit {max_addresses}",
                           [Refusal(target, "", f"more than {max_addresses} addresses", count=size)])
    out: list[tuple[IPAddress, str | None]] = []
    cidr = "/" in target  # a CIDR means its hosts; a range or an address means every address in it
    for net in nets:
        addresses = _host_addresses(net) if cidr else [net.network_address + i for i in range(net.num_addresses)]
        out.extend((ip, None) for ip in addresses)
    return out


class ScopeGuard:
    """Approves targets against a scope until ``deadline`` (the notice window's end, aware datetime)."""

    def __init__(self, scope: Scope, on_refusal: Callable[[Refusal], None] | None = None,
                 deadline: dt.datetime | None = None, resolver: Resolver = resolve_hostname) -> None:
        self.scope = scope
        self.on_refusal = on_refusal
        self.deadline = _aware(deadline) if deadline else None
        self.resolver = resolver

    def _refuse(self, refusals: list[Refusal], message: str) -> ScopeRefused:
        for r in refusals:
            log.warning("scope guard refused %s", r.describe())
            if self.on_refusal is not None:
                self.on_refusal(r)
        return ScopeRefused(message, refusals)

    def _allowed_networks(self) -> list[Network]:
        nets = list(self.scope.networks)
        for name in self.scope.hosts:
            try:
                nets.extend(ipaddress.ip_network(ip) for ip in self.resolver(name))
            except UserError as exc:
                log.warning("scope host %s: %s", name, exc)
        return nets

    def approve(self, targets: Sequence[str] | str, kind: str, ports: PortSet | None = None,
                partial: bool = False) -> list[ApprovedTarget]:
        if kind not in KINDS:
            raise UserError(f"unknown test kind {kind!r}; known: {', '.join(KINDS)}")
        items = _split(targets)
        if not items:
            raise UserError("no targets given")
        joined = ", ".join(items)
        if self.deadline is not None and dt.datetime.now(dt.UTC) >= self.deadline:
            raise self._refuse([Refusal(joined, kind, f"notice window closed at {self.deadline.isoformat()}")],
                               f"refused {joined}: the notice window closed at {self.deadline.isoformat()}")
        if kind not in self.scope.kinds:
            allowed = ", ".join(sorted(self.scope.kinds)) or "none"
            raise self._refuse([Refusal(joined, kind, f"test kind {kind!r} not in scope (allowed: {allowed})")],
                               f"refused {joined}: test kind {kind!r} is not in scope (allowed: {allowed})")
        if ports is not None and self.scope.ports is not None and not ports.issubset(self.scope.ports):
            extra = ports.difference(self.scope.ports)
            shown = ",".join(map(str, extra[:10])) + ("..." if len(extra) > 10 else "")
            raise self._refuse([Refusal(joined, kind, f"ports {shown} not in scope ({self.scope.ports})")],
                               f"refused {joined}: ports {shown} are not in scope ({self.scope.ports})")
        approved_ports = ports if ports is not None else self.scope.ports

        expanded: list[tuple[str, IPAddress, str | None]] = []
        total = 0
        for item in items:
            try:
                pairs = expand_target(item, self.resolver, self.scope.max_addresses - total)
            except ScopeRefused as exc:
                refusals = [Refusal(item, kind, r.reason, count=r.count) for r in exc.refusals]
                raise self._refuse(refusals, f"refused {item}: more addresses than the limit "
                                             f"{self.scope.max_addresses} in one request") from None
            total += len(pairs)
            expanded.extend((item, ip, name) for ip, name in pairs)

        allowed_nets = self._allowed_networks()
        approved: list[ApprovedTarget] = []
        refused: dict[tuple[str, str], list[IPAddress]] = {}
        seen: set[IPAddress] = set()
        for item, ip, name in expanded:
            if ip in seen:
                continue
            seen.add(ip)
            reason = self._reason(ip, allowed_nets)
            if reason:
                refused.setdefault((item, reason), []).append(ip)
            else:
                approved.append(issue_target(ip, kind, approved_ports, name, self.deadline))
        if refused:
            refusals = [Refusal(item, kind, reason, _ranges(ips), len(ips)) for (item, reason), ips in refused.items()]
            if not partial or not approved:
                detail = "; ".join(r.describe() for r in refusals)
                raise self._refuse(refusals, f"refused (outside the notified scope, nothing approved): {detail}")
            self._refuse(refusals, "")
        return approved

    def _reason(self, ip: IPAddress, allowed: Sequence[Network]) -> str | None:
        for net in self.scope.deny:
            if ip.version == net.version and ip in net:
                return f"in deny list {net}"
        if any(ip.version == net.version and ip in net for net in allowed):
            return None
        return "outside scope"


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo is not None else when.astimezone()
