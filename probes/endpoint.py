"""``[user@]host[:port]`` endpoints: the one parser for SSH targets (probes.remote) and the SSH endpoints an
advance notice names (agent.notice), so that what a notice allows and what the remote test connects to are
read by the same rule. IPv6 addresses go in brackets: ``root@[fd00::1]:2222``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENDPOINT_RE = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]*)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(?P<port>\d+))?$")


class EndpointError(ValueError):
    """Not an endpoint; ``reason`` is "syntax" or "port" (out of range)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str  # without brackets
    user: str | None = None
    port: int | None = None  # None: not given


def parse_endpoint(text: str) -> Endpoint:
    """Raises EndpointError (a ValueError naming the text) for anything else, or a port outside 1-65535."""
    m = _ENDPOINT_RE.match(text.strip())
    if not m:
        raise EndpointError("syntax", f"{text!r}: expected HOST, USER@HOST or USER@HOST:PORT")
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise EndpointError("port", f"{text!r}: port out of range")
    return Endpoint(m.group("host").strip("[]"), m.group("user"), port)
