"""Agent configuration: TOML in the state directory (config.toml) or --config, validated at start-up.

Every bad field is listed in one error, like DataDog integrations' config models.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.errors import UserError
from agent.state import state_dir
from baselines.input_file import InputFileError, read_input_text
from baselines.waivers import DEFAULT_MAX_DAYS

CONFIG_FILE = "config.toml"


class NoticeConfig(BaseModel):
    """The unit this agent belongs to (notices must name it) and the minimum notice lead time."""

    model_config = ConfigDict(extra="forbid")

    unit: str | None = None
    lead_time: str = "24h"


class NetscanConfig(BaseModel):
    """The unit's own networks: its self-inspection (Art. 9(9)) may test them without a notice. Any other
    non-loopback target needs an advance notice (Art. 25 para. 2)."""

    model_config = ConfigDict(extra="forbid")

    own_networks: list[str] = Field(default_factory=list)

    @field_validator("own_networks")
    @classmethod
    def _specific(cls, value: list[str]) -> list[str]:
        for entry in value:
            check_own_network(entry)
        return value


# Private and shared address space: a unit's internal networks. Anything else must be a declared public range
# of at most a /16 (IPv4) or /32 (IPv6); a larger one reaches other people's networks.
_PRIVATE = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "fc00::/7", "fe80::/10"))
_MAX_PUBLIC_PREFIX = {4: 16, 6: 32}


def check_own_network(entry: str) -> None:
    """A declared own network must be one specific range: never the world, multicast or reserved space."""
    try:
        net = ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{entry!r} is not a network (expected a CIDR such as 10.20.0.0/16)") from None
    if net.prefixlen == 0:
        raise ValueError(f"{entry!r} is every address: own networks must be the unit's specific ranges")
    if net.is_multicast or net.is_unspecified or net.is_reserved or net.network_address.is_unspecified:
        raise ValueError(f"{entry!r} is not a unit network (multicast, reserved or unspecified space)")
    if any(net.version == p.version and net.subnet_of(p) for p in _PRIVATE):  # type: ignore[arg-type]
        return
    if net.is_loopback:
        return
    if net.prefixlen < _MAX_PUBLIC_PREFIX[net.version]:
        raise ValueError(f"{entry!r} reaches beyond private address space and is larger than a "
                         f"/{_MAX_PUBLIC_PREFIX[net.version]}: declare the unit's own public ranges one by one")


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Per-probe options, validated by each probe's configured(); e.g. [probes.files] paths = [...]
    probes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    profile: str | None = None
    waivers: str | None = None
    fail_on: str = "high"
    waiver_max_days: int = Field(default=DEFAULT_MAX_DAYS, ge=1, le=3650)  # how far ahead a waiver may expire
    notice: NoticeConfig = Field(default_factory=NoticeConfig)
    netscan: NetscanConfig = Field(default_factory=NetscanConfig)


def load_config(path: str | Path | None = None) -> AgentConfig:
    """Load the given file, or config.toml in the state dir when it exists, else defaults."""
    explicit = path is not None
    file = Path(path) if path else state_dir() / CONFIG_FILE
    if not explicit and not file.exists() and not file.is_symlink():
        return AgentConfig()
    try:
        data = tomllib.loads(read_input_text(file, "config", 1024 * 1024))
    except InputFileError as exc:
        raise UserError(exc.message, exc.zh) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{file}: not valid TOML: {exc}", f"{file}：不是有效的 TOML：{exc}") from None
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UserError(f"{file}: {bad}", f"{file}：配置无效：{bad}") from None
