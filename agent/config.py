"""Agent configuration: TOML in the state directory (config.toml) or --config, validated at load.

Unknown tables and keys, bad durations, bad CIDRs and wrong types are all reported at once, each as
``file:line: reason`` (tomllib gives no positions, so ``key_lines`` finds each table header and key in the
text). Each probe's own options model (``[probes.<id>]``) is part of the validation: a misspelt probe table or
an unknown key in one is refused like any other.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from agent import messages as msg
from agent.errors import UserError
from agent.state import StateDir
from baselines.input_file import InputFileError, read_input_text
from baselines.model import Text
from probes.i18n import Joined, Message

CONFIG_FILE = "config.toml"
SEVERITIES = ("info", "low", "medium", "high", "critical")


class ConfigError(UserError):
    """Every problem of a config file, one ``file:line: reason`` per line (``problems``: the English lines)."""

    def __init__(self, problems: Sequence[Message]) -> None:
        super().__init__(Joined(list(problems), "\n", "\n"))
        self.problems = [p.get("en") for p in problems]


# What a validation error type means, for the Chinese line (pydantic words its messages in English only).
_ZH_PROBLEM = {
    "missing": "缺少该项", "literal_error": "取值不在允许的选项中", "enum": "取值不在允许的选项中",
    "string_type": "应为字符串", "int_type": "应为整数", "int_parsing": "应为整数", "int_from_float": "应为整数",
    "float_type": "应为数字", "float_parsing": "应为数字", "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false", "list_type": "应为列表", "dict_type": "应为表", "model_type": "应为表",
    "greater_than": "应大于 {gt}", "greater_than_equal": "应不小于 {ge}", "less_than": "应小于 {lt}",
    "less_than_equal": "应不大于 {le}", "string_too_short": "内容过短", "string_too_long": "内容过长",
    "too_short": "项数过少", "too_long": "项数过多",
}


def problem_line(file: Path | str, line: int, key: str, en: str, zh: str) -> Message:
    return msg.CONFIG_PROBLEM(file=file, line=line, key=key, problem=Text(en, zh))


def not_toml(file: Path | str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    where = re.search(r"\(at line (\d+), column \d+\)", str(exc))
    return ConfigError([msg.CONFIG_NOT_TOML(file=file, line=where.group(1) if where else "1",
                                            error=str(exc).split(" (at line")[0])])


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


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


_KEY_PART = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([A-Za-z0-9_-]+))\s*(?:\.|$)')


def _split_key(text: str) -> tuple[str, ...]:
    """A dotted TOML key into its parts; quoted parts may hold dots."""
    parts, pos = [], 0
    while pos < len(text):
        m = _KEY_PART.match(text, pos)
        if not m or m.end() == pos:
            return (text.strip(),)
        parts.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
    return tuple(parts)


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """1-based line of every table header and ``key =`` line, by its full dotted path. Lines inside multi-line
    strings and arrays are not keys; values spanning lines keep the line where their key is."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_string: str | None = None
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string:
            if in_string in line:
                in_string = None
            continue
        if depth == 0:
            header = _HEADER.match(line)
            if header:
                table = _split_key(header.group(1))
                lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                path = table + _split_key(key.group(1))
                lines.setdefault(path, number)
                for i in range(len(table) + 1, len(path)):
                    lines.setdefault(path[:i], number)
                value = line[key.end():]
                for quote in ('"""', "'''"):
                    if value.count(quote) == 1:
                        in_string = quote
        depth += line.count("[") - line.count("]") if not _HEADER.match(line) else 0
        depth = max(depth, 0)
    return lines


def _line_of(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _problems(file: Path, exc: ValidationError, lines: dict[tuple[str, ...], int],
              prefix: tuple[str, ...] = ()) -> list[tuple[int, str, str, str]]:
    """(line, key, problem in English, problem in Chinese) for every error."""
    out = []
    for e in exc.errors():
        loc = prefix + tuple(str(p) for p in e["loc"] if not isinstance(p, int))
        name = ".".join(loc) or "(top level)"
        message = e["msg"].removeprefix("Value error, ")
        zh = _ZH_PROBLEM.get(e["type"], "取值无效").format_map(e.get("ctx") or {})
        if e["type"] == "extra_forbidden":
            table = loc in lines and _is_table(loc, lines)
            message = f"unknown {'table' if table else 'key'}"
            zh = "未知的配置表" if table else "未知的配置项"
        out.append((_line_of(loc, lines), name, message, zh))
    return out


def _is_table(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> bool:
    return any(len(k) > len(loc) and k[:len(loc)] == loc for k in lines)


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
