"""Agent configuration: TOML in the state directory (config.toml) or --config, validated at start-up.

Every bad field is listed in one error, like DataDog integrations' config models.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import UserError
from agent.state import StateDir

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


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Per-probe options, validated by each probe's configured(); e.g. [probes.files] paths = [...]
    probes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    profile: str | None = None
    waivers: str | None = None
    fail_on: str = "high"
    notice: NoticeConfig = Field(default_factory=NoticeConfig)
    netscan: NetscanConfig = Field(default_factory=NetscanConfig)


def load_config(path: str | Path | None, state: StateDir) -> AgentConfig:
    """Load the given file, or config.toml in the state dir when it exists, else defaults."""
    explicit = path is not None
    file = Path(path) if path else state.config
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if explicit:
            raise UserError(f"{file}: config file not found") from None
        return AgentConfig()
    except OSError as exc:
        raise UserError(f"{file}: cannot read config: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{file}: not valid TOML: {exc}") from None
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{file}: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
