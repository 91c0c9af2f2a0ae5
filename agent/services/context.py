"""What every service is handed: the state directory, the validated config and the record writer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import AgentConfig, load_config
from agent.errors import UserError
from agent.record import Recorder
from agent.state import StateDir
from baselines.model import Severity
from baselines.profile import Profile, ProfileError, load_profile
from baselines.waivers import WaiverError, WaiverSpec, load_waivers

if TYPE_CHECKING:
    from agent.wire.contents import Applied


@dataclass(frozen=True, slots=True)
class AgentContext:
    state: StateDir
    config: AgentConfig
    recorder: Recorder

    @classmethod
    def load(cls, state: StateDir, config_path: str | Path | None = None, actor: str | None = None) -> AgentContext:
        """Validate the config (``config.toml`` in the state dir, or ``config_path``) and open the record."""
        return cls(state, load_config(config_path, state), Recorder(state, actor))


@dataclass(frozen=True, slots=True)
class Judging:
    """What findings are judged by: the profile, the waivers and the --fail-on threshold, with the overrides
    given on the command line (recorded with each run)."""

    profile: Profile
    waivers: list[WaiverSpec]
    fail_on: Severity
    overrides: dict[str, str]

    def applied(self, ctx: AgentContext, **extra: str | int | None) -> Applied:
        from agent.wire.contents import Applied

        lead = ctx.config.notice.lead_time_seconds()
        values = {"profile": self.profile.id, "fail_on": self.fail_on.value, "unit": ctx.config.notice.unit,
                  "lead_time_s": lead, **extra}
        return Applied.model_validate({**values, "overrides": dict(self.overrides)})


def parse_fail_on(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def judging(ctx: AgentContext, *, profile: str | None = None, waivers: str | None = None,
            fail_on: str | None = None, use_waivers: bool = True) -> Judging:
    """The profile, waivers and threshold from the request or the config, each checked before anything runs."""
    overrides = {name: value for name, value in (("profile", profile), ("waivers", waivers), ("fail_on", fail_on))
                 if value is not None}
    threshold = parse_fail_on(fail_on or ctx.config.fail_on)
    try:
        loaded = load_profile(profile or ctx.config.profile)
    except ProfileError as exc:
        raise UserError(str(exc)) from None
    specs: list[WaiverSpec] = []
    if use_waivers:
        path = waivers or ctx.config.waivers
        candidate = Path(path) if path else ctx.state.waivers
        if path or candidate.exists():
            try:
                specs = load_waivers(candidate)
            except WaiverError as exc:
                raise UserError(str(exc)) from None
    return Judging(loaded, specs, threshold, overrides)


def exit_code(probe_errors: int, worst_rank: int | None, fail_on: Severity) -> int:
    """0 clean, 1 a finding at or above the threshold, 2 a probe or stage that failed."""
    if probe_errors:
        return 2
    return 1 if worst_rank is not None and worst_rank >= fail_on.rank else 0
