"""ApprovedTarget: the only thing network probes send packets to.

Only ``agent.scope.ScopeGuard`` issues them. Each instance carries a seal (HMAC over its fields with a key that
exists only in this process); ``__post_init__`` checks it, so neither direct construction nor
``dataclasses.replace`` with a changed address yields a usable target. Every function in probes/network that
sends packets takes ApprovedTarget objects and calls ``check_targets``, never strings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from probes.network.ports import PortSet
from probes.test_kinds import TEST_KINDS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

KINDS = TEST_KINDS  # probes/test_kinds.py: what a notice may allow and a guard approves

_KEY = secrets.token_bytes(32)


def _seal(ip: IPAddress, kind: str, ports: PortSet | None, hostname: str | None, deadline: dt.datetime | None) -> str:
    msg = repr((str(ip), kind, ports.ranges if ports else None, hostname, deadline.isoformat() if deadline else None))
    return hmac.new(_KEY, msg.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class ApprovedTarget:
    """One address the scope guard approved for one test kind (and ports), until ``deadline``."""

    ip: IPAddress
    kind: str
    ports: PortSet | None = None  # None: the scanner's default list
    hostname: str | None = None
    deadline: dt.datetime | None = None  # wall clock (aware); scanners stop when it passes
    seal: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        if not hmac.compare_digest(self.seal, _seal(self.ip, self.kind, self.ports, self.hostname, self.deadline)):
            raise TypeError("ApprovedTarget is issued only by agent.scope.ScopeGuard")

    @property
    def address(self) -> str:
        return str(self.ip)

    @property
    def version(self) -> int:
        return self.ip.version


def issue_target(ip: IPAddress, kind: str, ports: PortSet | None, hostname: str | None,
                 deadline: dt.datetime | None) -> ApprovedTarget:
    """Seal a target. Public so that the scope guard (agent.scope, a layer above) can call it; only the guard
    does, after checking the address against the scope and the advance notice."""
    return ApprovedTarget(ip, kind, ports, hostname, deadline, _seal(ip, kind, ports, hostname, deadline))


class DeadlinePassed(Exception):
    """The run's deadline (the notice window's end) passed; results so far are partial."""


def check_targets(targets: Sequence[ApprovedTarget], kinds: Sequence[str]) -> None:
    """Refuse anything not issued by the guard for one of ``kinds`` (defence in depth against callers)."""
    for t in targets:
        if not isinstance(t, ApprovedTarget):
            raise TypeError(f"network probes take ApprovedTarget objects, not {type(t).__name__}")
        if t.kind not in kinds:
            raise PermissionError(f"{t.address} approved for {t.kind!r}, not for {'/'.join(kinds)}")


def earliest_deadline(targets: Sequence[ApprovedTarget], deadline: dt.datetime | None = None) -> dt.datetime | None:
    found = [d for d in [deadline, *(t.deadline for t in targets)] if d is not None]
    return min(found) if found else None


def seconds_left(deadline: dt.datetime | None) -> float | None:
    if deadline is None:
        return None
    return (deadline - dt.datetime.now(dt.UTC)).total_seconds()
