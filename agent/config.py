"""Agent configuration: TOML in the state directory (config.toml) or --config, validated at load.

Unknown tables and keys, bad durations, bad CIDRs and wrong types are all reported at once, each as
``file:line: reason`` (``agent.config_problems``: tomllib gives no positions, so ``key_lines`` finds each table
header and key in the text). Each probe's own options model (``[probes.<id>]``) is part of the validation: a
misspelt probe table or an unknown key in one is refused like any other.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from agent.config_problems import ConfigError, key_lines, not_toml, problem_line
from agent.config_problems import validation_problems as _problems
from agent.errors import UserError
from agent.state import StateDir
from baselines.input_file import InputFileError, read_input_text

CONFIG_FILE = "config.toml"
SEVERITIES = ("info", "low", "medium", "high", "critical")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NoticeConfig(_Closed):
    """The unit this agent belongs to (notices must name it) and the minimum notice lead time."""

    unit: str | None = None
    lead_time: str = "24h"

    @field_validator("lead_time")
    @classmethod
    def _duration(cls, value: str) -> str:
        from agent.duration import parse_duration

        parse_duration(value)  # ValueError names the problem
        return value

    def lead_time_seconds(self) -> int:
        from agent.duration import parse_duration

        return int(parse_duration(self.lead_time).total_seconds())


class NetscanConfig(_Closed):
    """The unit's own networks: its self-inspection (Art. 9(9)) may test them without a notice. Any other
    non-loopback target needs an advance notice (Art. 25 para. 2)."""

    own_networks: list[str] = Field(default_factory=list)

    @field_validator("own_networks")
    @classmethod
    def _specific(cls, values: list[str]) -> list[str]:
        problems = []
        for value in values:
            try:
                check_own_network(value)
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise ValueError("; ".join(problems))
        return values


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
    if net.is_loopback or any(net.version == p.version and net.subnet_of(p) for p in _PRIVATE):  # type: ignore[arg-type]
        return
    if net.prefixlen < _MAX_PUBLIC_PREFIX[net.version]:
        raise ValueError(f"{entry!r} reaches beyond private address space and is larger than a "
                         f"/{_MAX_PUBLIC_PREFIX[net.version]}: declare the unit's own public ranges one by one")


def _default_waiver_days() -> int:
    """The waivers module's default, imported only when a config is built (the idle daemon never loads it)."""
    from baselines.waivers import DEFAULT_MAX_DAYS

    return DEFAULT_MAX_DAYS


class AgentConfig(_Closed):
    # [probes.<id>] tables, each validated by that probe's options model at load (see _probe_options_model)
    probes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    profile: str | None = None
    waivers: str | None = None
    fail_on: str = "high"
    # how far ahead a waiver may expire
    waiver_max_days: int = Field(default_factory=_default_waiver_days, ge=1, le=3650)
    notice: NoticeConfig = Field(default_factory=NoticeConfig)
    netscan: NetscanConfig = Field(default_factory=NetscanConfig)

    @field_validator("fail_on")
    @classmethod
    def _severity(cls, value: str) -> str:
        if value.lower() not in SEVERITIES:
            raise ValueError(f"{value!r} is not a severity ({', '.join(SEVERITIES)})")
        return value.lower()


def _probe_options_model() -> type[BaseModel]:
    """One closed table per host probe: its own options model (``Probe.options_model``), or no keys at all for
    probes without options."""
    from probes.registry import all_probes

    empty = create_model("NoOptions", __config__=ConfigDict(extra="forbid"))
    fields: dict[str, Any] = {c.id: ((c.options_model or empty) | None, None) for c in all_probes()
                              if c.kind == "host"}
    return create_model("ProbesConfig", __config__=ConfigDict(extra="forbid"), **fields)


def parse_config(text: str, file: Path) -> AgentConfig:
    """Validate config text; ConfigError lists every problem as ``file:line: reason``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise not_toml(file, exc) from None
    lines = key_lines(text)
    problems: list[tuple[int, str, str, str]] = []
    config = AgentConfig()
    try:
        config = AgentConfig.model_validate(data)
    except ValidationError as exc:
        problems += _problems(file, exc, lines)
    probes = data.get("probes")
    if isinstance(probes, dict) and probes:
        try:
            _probe_options_model().model_validate(probes, strict=True)
        except ValidationError as exc:
            problems += _problems(file, exc, lines, ("probes",))
    if problems:
        raise ConfigError([problem_line(file, *p) for p in sorted(set(problems))])
    return config


def load_config(path: str | Path | None, state: StateDir) -> AgentConfig:
    """Load the given file, or config.toml in the state dir when it exists, else defaults."""
    explicit = path is not None
    file = Path(path) if path else state.config
    if not explicit and not file.exists() and not file.is_symlink():
        return AgentConfig()
    try:
        text = read_input_text(file, "config", 1024 * 1024)  # a directory, FIFO, device or bad UTF-8: one line
    except InputFileError as exc:
        raise UserError(exc.message, exc.zh) from None
    return parse_config(text, file)
