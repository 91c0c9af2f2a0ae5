"""What every service is handed: the state directory, the validated config and the record writer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agent import messages as msg
from agent.config import AgentConfig, load_config
from agent.errors import UserError
from agent.record import Recorder
from agent.state import StateDir
from baselines.model import Severity
from baselines.profile import Profile, ProfileError, load_profile
from baselines.waivers import WaiverError, WaiverSpec, load_waivers
from probes.i18n import Joined, Message

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
        config = load_config(config_path, state)
        if config_path is None:
            return cls(state, config, Recorder(state, actor))
        # --config: another file than the operator's config.toml. It may not weaken that one, and every entry of
        # this run names it (path and digest), so the record shows which configuration a run was held to.
        check_not_weaker(config, config_path, state)
        import hashlib

        from baselines.input_file import read_input_bytes

        digest = hashlib.sha256(read_input_bytes(config_path, "config", 1024 * 1024)).hexdigest()
        return cls(state, config, Recorder(state, actor, config_override=f"{config_path} (sha256 {digest[:16]})"))


def check_not_weaker(config: AgentConfig, config_path: str | Path, state: StateDir) -> None:
    """Refuse a --config that is laxer than the state directory's config.toml: another unit, a shorter lead
    time, own networks beyond the configured ones, longer waivers."""
    import ipaddress

    from agent.duration import parse_duration

    if not state.config.exists() or Path(config_path).resolve() == state.config.resolve():
        return
    base = load_config(None, state)
    problems: list[Message] = []
    if base.notice.unit and config.notice.unit != base.notice.unit:
        problems.append(msg.LAXER_UNIT(unit=config.notice.unit, configured=base.notice.unit))
    if parse_duration(config.notice.lead_time) < parse_duration(base.notice.lead_time):
        problems.append(msg.LAXER_LEAD(lead=config.notice.lead_time, configured=base.notice.lead_time))
    own = [ipaddress.ip_network(n, strict=False) for n in base.netscan.own_networks]
    wider = [n for n in config.netscan.own_networks
             if not any(ipaddress.ip_network(n, strict=False).version == o.version
                        and ipaddress.ip_network(n, strict=False).subnet_of(o) for o in own)]  # type: ignore[arg-type]
    if wider:
        problems.append(msg.LAXER_NETWORKS(networks=wider))
    if config.waiver_max_days > base.waiver_max_days:
        problems.append(msg.LAXER_WAIVER_DAYS(days=config.waiver_max_days, configured=base.waiver_max_days))
    if problems:
        raise UserError(msg.CONFIG_LAXER(path=config_path, base=state.config, problems=Joined(problems, "; ", "；")))


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
    loaded = load_profile_or_refuse(profile or ctx.config.profile)
    specs: list[WaiverSpec] = []
    if use_waivers:
        path = waivers or ctx.config.waivers
        candidate = Path(path) if path else ctx.state.waivers
        if path or candidate.exists() or candidate.is_symlink():
            try:
                specs = load_waivers(candidate, ctx.config.waiver_max_days)
            except WaiverError as exc:
                raise UserError(str(exc), exc.zh) from None
    return Judging(loaded, specs, threshold, overrides)


def load_profile_or_refuse(path: str | Path | None) -> Profile:
    try:
        return load_profile(path)
    except ProfileError as exc:
        raise UserError(str(exc), exc.zh) from None


def check_root(root: str) -> None:
    """--root must be a directory this user can read."""
    import os

    path = Path(root)
    if not path.exists():
        raise UserError(f"--root {root}: no such directory", f"--root {root}：目录不存在")
    if not path.is_dir():
        raise UserError(f"--root {root}: not a directory", f"--root {root}：不是目录")
    if not os.access(path, os.R_OK | os.X_OK):
        raise UserError(f"--root {root}: not readable by this user", f"--root {root}：当前用户无读取权限")


def exit_code(probe_errors: int, worst_rank: int | None, fail_on: Severity) -> int:
    """0 clean, 1 a finding at or above the threshold, 2 a probe or stage that failed."""
    if probe_errors:
        return 2
    return 1 if worst_rank is not None and worst_rank >= fail_on.rank else 0
