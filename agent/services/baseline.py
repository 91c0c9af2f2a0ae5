"""Baselines: capture the known-good state (host or network), diff against it, accept drift. Capture and
acceptance are recorded (Art. 25 ¶3: who accepted what, when)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent import __version__
from agent.baseline_files import BaselineFiles, BaselineMissing, HistoryEntry, host_scope, login_user, now_iso
from agent.errors import UserError
from agent.record import Entry
from agent.runner import ProbeRun, run_probes
from agent.scan import HostIdentity, compare_runs, select_probes
from agent.services.context import AgentContext
from agent.services.scan import probe_settings
from agent.wire.contents import (
    Applied,
    BaselineAcceptContent,
    BaselineCaptureContent,
    BaselineScopeDoc,
    BaselineSummary,
)
from baselines.diff import Diff, DriftItem, apply, index, volatile_of
from baselines.drift import DriftFinding, item_id
from baselines.profile import Profile, ProfileError, load_profile
from baselines.store import Baseline, BaselineInvalid, BaselineMeta, Scope
from probes.base import Probe, ProbeSettings
from probes.transport import LocalTransport


@dataclass(frozen=True, slots=True)
class BaselineTarget:
    """Which baseline: this host (under ``root``) or the network baseline of ``network_scope``."""

    root: str = "/"
    network_scope: str | None = None
    profile: str | None = None


@dataclass(slots=True)
class BaselineSession:
    ctx: AgentContext
    files: BaselineFiles
    scope: Scope
    transport: LocalTransport
    host: HostIdentity
    profile: Profile
    settings: ProbeSettings
    overrides: dict[str, str] = field(default_factory=dict)

    def applied(self) -> Applied:
        return Applied(profile=self.profile.id, overrides=dict(self.overrides))


def open_session(ctx: AgentContext, target: BaselineTarget) -> BaselineSession:
    try:
        profile = load_profile(target.profile or ctx.config.profile)
    except ProfileError as exc:
        raise UserError(str(exc)) from None
    if not Path(target.root).is_dir():
        raise UserError(f"--root {target.root}: not a directory")
    transport = LocalTransport(root=target.root)
    scope = host_scope(target.root)
    if target.network_scope:
        scope = network_baseline_scope(target.network_scope)
    overrides = {k: v for k, v in (("profile", target.profile), ("network_scope", target.network_scope))
                 if v is not None}
    if target.root != "/":
        overrides["root"] = target.root
    return BaselineSession(ctx, BaselineFiles(ctx.state), scope, transport, HostIdentity.read(transport), profile,
                           probe_settings(ctx), overrides)


def network_baseline_scope(scope_text: str) -> Scope:
    from agent.scope import Scope as NetScope
    from agent.services.netscan import network_scope_id

    return Scope("network", network_scope_id(NetScope.parse(scope_text)))


def load(session: BaselineSession) -> Baseline:
    try:
        return session.files.load(session.scope, session.host.hostname, session.host.machine_id)
    except BaselineMissing:
        raise UserError(f"no baseline for {session.scope.label} yet: run `precaution baseline capture`") from None
    except BaselineInvalid as exc:
        raise UserError(f"baseline {session.scope.label} failed verification: {exc.message} "
                        f"({session.files.current_path(session.scope)})") from None


def history(session: BaselineSession) -> list[HistoryEntry]:
    entries = session.files.history(session.scope)
    if not entries:
        raise UserError(f"no baseline for {session.scope.label} yet: run `precaution baseline capture`")
    return entries


def _run(session: BaselineSession, probes: list[Probe]) -> list[ProbeRun]:  # type: ignore[type-arg]
    runs = run_probes(probes, session.transport)
    failed = [r for r in runs if r.status in ("error", "timeout")]
    if failed:
        detail = "; ".join(f"{r.probe}: {r.message}" for r in failed)
        raise UserError(f"probe(s) failed, baseline left unchanged: {detail}")
    return runs


def _next_version(session: BaselineSession) -> int:
    return max((e.meta.version for e in session.files.history(session.scope)), default=0) + 1


# --- capture ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CaptureRequest:
    probes: tuple[str, ...] = ()
    by: str | None = None
    note: str | None = None
    force: bool = False
    network: tuple[str, ...] = ()  # targets: capture the network baseline of ``scope`` instead
    scope: str | None = None
    ports: str | None = None
    engine: str = "auto"
    services: bool = True


@dataclass(frozen=True, slots=True)
class CaptureOutcome:
    path: Path
    meta: BaselineMeta
    observations: int
    probes: tuple[str, ...]
    skipped: list[ProbeRun]  # probes that could not run here (not captured)
    limited: list[ProbeRun]  # captured, but could not read everything
    entry: Entry


def capture(session: BaselineSession, req: CaptureRequest) -> CaptureOutcome:
    runs: list[ProbeRun] = []
    if req.network:
        from agent.services.netscan import network_scope_id, observations_for_baseline

        net_scope, observations, _ = observations_for_baseline(
            session.ctx, req.network, req.scope, req.ports, services=req.services, engine=req.engine)
        session.scope = Scope("network", network_scope_id(net_scope))
        probe_ids = tuple(sorted({o.probe for o in observations}))
    elif req.scope or req.ports or not req.services:
        raise UserError("--scope, --ports and --no-services go with --network")
    previous: Baseline | None = None
    if session.files.exists(session.scope):
        try:
            previous = session.files.load(session.scope, session.host.hostname, session.host.machine_id)
        except BaselineInvalid as exc:
            if not req.force:
                raise UserError(f"existing baseline {session.scope.label} failed verification ({exc.message}); "
                                "check the host, then use --force to replace it") from None
        if previous is not None and not req.force:
            raise UserError(f"baseline {session.scope.label} exists (version {previous.meta.version}); use "
                            "`baseline accept` for drift or `capture --force` to replace it")
    if not req.network:
        runs = _run(session, select_probes(req.probes, settings=session.settings))
        ran = [r for r in runs if r.ran]
        if not ran:
            raise UserError("no probe could run here, baseline left unchanged")
        observations = [o for r in ran for o in r.observations]
        probe_ids = tuple(r.probe for r in ran)
    who, when = req.by or login_user(), now_iso()
    version = _next_version(session)
    meta = BaselineMeta(scope=session.scope, version=version, created_at=when, created_by=who, accepted_at=when,
                        accepted_by=who, action="capture", accepted_items=0, tool_version=__version__,
                        hostname=session.host.hostname, machine_id=session.host.machine_id,
                        profile_id=session.profile.id, probes=probe_ids,
                        parent_sha256=previous.sha256 if previous else None, note=req.note)
    path = session.files.save(meta, index(observations), volatile_of(observations))
    entry = _record(session, BaselineCaptureContent, meta, len(observations), who, req.probes, req.network, req.force)
    return CaptureOutcome(path, meta, len(observations), probe_ids, [r for r in runs if not r.ran],
                          [r for r in runs if r.status == "limited"], entry)


def _record(session: BaselineSession, content: type[BaselineCaptureContent] | type[BaselineAcceptContent],
            meta: BaselineMeta, items: int, who: str, probes: Sequence[str] = (), network: Sequence[str] = (),
            force: bool = False) -> Entry:
    overrides = dict(session.overrides)
    if probes:
        overrides["probe"] = ",".join(probes)
    if network:
        overrides["network"] = ",".join(network)
    if force:
        overrides["force"] = "true"
    return session.ctx.recorder.write(
        content(scope=BaselineScopeDoc(baseline=session.scope.label), tests=list(meta.probes),
                summary=BaselineSummary(version=meta.version, items=items, note=meta.note),
                applied=Applied(profile=session.profile.id, overrides=overrides)),
        results=meta.to_json(), actor=who)


# --- diff and accept --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DiffOutcome:
    baseline: Baseline
    diff: Diff
    drift: list[DriftFinding]
    limited: list[ProbeRun]


def diff(session: BaselineSession, only: Sequence[str] = ()) -> DiffOutcome:
    baseline = load(session)
    known = {p.id for p in select_probes(settings=session.settings)}
    wanted = [p for p in baseline.meta.probes if p in known and (not only or p in only)]
    unknown = [p for p in only if p not in baseline.meta.probes]
    if unknown:
        raise UserError(f"probe(s) not in baseline {session.scope.label}: {', '.join(unknown)} "
                        f"(baseline has: {', '.join(baseline.meta.probes)})")
    runs = _run(session, select_probes(wanted, settings=session.settings)) if wanted else []
    result, drift = compare_runs(baseline, runs, session.profile, session.host.hostname)
    return DiffOutcome(baseline, result, drift, [r for r in runs if r.status == "limited"])


@dataclass(frozen=True, slots=True)
class AcceptRequest:
    ids: tuple[str, ...] = ()  # drift item or finding ids (from diff)
    all: bool = False
    by: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class AcceptOutcome:
    drift_items: int  # drift there was
    chosen: list[DriftItem]  # accepted
    path: Path | None  # None: nothing to accept, baseline unchanged
    meta: BaselineMeta | None
    entry: Entry | None
    limited: list[ProbeRun]


def accept(session: BaselineSession, req: AcceptRequest) -> AcceptOutcome:
    if not req.all and not req.ids:
        raise UserError("name the drift items to accept (ids from `baseline diff`) or use --all")
    if req.all and req.ids:
        raise UserError("give either --all or ids, not both")
    current = diff(session)
    baseline, result = current.baseline, current.diff
    if req.all:
        chosen = list(result.items)
    else:
        by_id: dict[str, tuple[DriftItem, ...]] = {item_id(session.host.hostname, i): (i,) for i in result.items}
        by_id.update({d.finding.id: d.items for d in current.drift})
        unknown = [i for i in req.ids if i not in by_id]
        if unknown:
            raise UserError(f"no current drift item with id {', '.join(unknown)} (see `precaution baseline diff`)")
        seen: dict[tuple[str, str, str], DriftItem] = {}
        for ident in req.ids:
            for item in by_id[ident]:
                seen[(item.change, *item.key)] = item
        chosen = list(seen.values())
    if not chosen:
        return AcceptOutcome(len(result.items), [], None, None, None, current.limited)
    who, when = req.by or login_user(), now_iso()
    entries = apply(baseline.entries, chosen)
    meta = dataclasses.replace(baseline.meta, version=_next_version(session), accepted_at=when, accepted_by=who,
                               action="accept", accepted_items=len(chosen), tool_version=__version__,
                               parent_sha256=baseline.sha256, note=req.note)
    path = session.files.save(meta, entries, dict(baseline.volatile))
    entry = _record(session, BaselineAcceptContent, meta, meta.accepted_items, who)
    return AcceptOutcome(len(result.items), chosen, path, meta, entry, current.limited)


__all__ = [
    "AcceptRequest",
    "BaselineTarget",
    "CaptureRequest",
    "accept",
    "capture",
    "diff",
    "history",
    "load",
    "open_session",
]
