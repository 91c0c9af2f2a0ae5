"""`precaution baseline capture|show|diff|accept|history`: the known-good state of this host and its drift.

`diff` exits like ndiff: 0 no drift, 1 drift, 2 error (including a baseline that fails verification).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from rich.cells import cell_len

from agent import __version__
from agent import messages as msg
from agent.baseline_files import BaselineFiles, BaselineMissing, host_scope, login_user, now_iso
from agent.config import load_config
from agent.errors import UserError
from agent.i18n import LANGS, t
from agent.runner import ProbeRun, run_probes
from agent.scan import HostIdentity, compare_runs, select_probes
from agent.state import state_dir
from baselines.diff import Diff, DriftItem, apply, index, volatile_of
from baselines.drift import DriftFinding, item_id
from baselines.model import Severity
from baselines.profile import Profile, ProfileError, load_profile
from baselines.store import Baseline, BaselineInvalid, BaselineMeta, Scope
from probes.base import Probe, ProbeSettings
from probes.i18n import Joined, LocalTime, Message
from probes.observation import Observation
from probes.transport import LocalTransport


def register(sub: Any) -> None:
    p = sub.add_parser("baseline", help="capture the known-good state and report drift from it",
                       description="A baseline is the signed, versioned known-good state of this host. "
                                   "`scan` compares with it automatically; these commands manage it.")
    cmds = p.add_subparsers(dest="baseline_command", metavar="ACTION")
    cmds.required = True

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--root", default="/", metavar="DIR", help="inspect a mounted file tree instead of /")
        q.add_argument("--config", metavar="FILE", help="agent config (default: config.toml in the state dir)")
        q.add_argument("--profile", metavar="FILE", help="policy profile with drift and ignore rules")
        q.add_argument("--lang", choices=LANGS, default="en", help="language of the output (default en)")

    q = cmds.add_parser("capture", help="run the host probes and store their observations as the baseline")
    common(q)
    q.add_argument("--probe", action="append", default=[], metavar="ID", help="capture only this probe (repeatable)")
    q.add_argument("--by", metavar="NAME", help="who accepts this state as known-good (default: login user)")
    q.add_argument("--note", metavar="TEXT", help="why this baseline was captured")
    q.add_argument("--force", action="store_true", help="replace an existing (or invalid) baseline")
    q.add_argument("--json", action="store_true", help="print the new baseline's metadata as JSON")
    q.add_argument("--network", nargs="+", metavar="TARGET",
                   help="capture a network segment's baseline instead (hosts, ports, services), as netscan sees it")
    q.add_argument("--scope", metavar="CIDR[,CIDR...]", help="with --network: the allowed scope (default loopback)")
    q.add_argument("--ports", metavar="SPEC", help="with --network: ports to scan (default: netscan's)")
    q.add_argument("--engine", choices=("auto", "nmap", "builtin"), default="auto", help="with --network")
    q.add_argument("--no-services", action="store_true", help="with --network: skip service checks")
    q.set_defaults(handler=handle_capture)

    q = cmds.add_parser("show", help="metadata and observation counts of the current baseline")
    common(q)
    q.add_argument("--json", action="store_true")
    q.add_argument("--network-scope", metavar="CIDR[,CIDR...]", help="the network baseline of this scope")
    q.set_defaults(handler=handle_show)

    q = cmds.add_parser("diff", help="drift since the baseline (exit 0 none, 1 drift, 2 error)")
    common(q)
    q.add_argument("--probe", action="append", default=[], metavar="ID", help="compare only this probe")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=handle_diff)

    q = cmds.add_parser("accept", help="accept drift items into a new baseline version")
    common(q)
    q.add_argument("ids", nargs="*", metavar="ID", help="drift item or finding ids (from `baseline diff`)")
    q.add_argument("--all", action="store_true", help="accept every drift item")
    q.add_argument("--by", metavar="NAME", help="who accepts (default: login user)")
    q.add_argument("--note", metavar="TEXT", help="why the drift is accepted")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=handle_accept)

    q = cmds.add_parser("history", help="every stored version: who accepted what, when")
    common(q)
    q.add_argument("--json", action="store_true")
    q.add_argument("--network-scope", metavar="CIDR[,CIDR...]", help="the network baseline of this scope")
    q.set_defaults(handler=handle_history)


@dataclasses.dataclass(slots=True)
class _Context:
    files: BaselineFiles
    scope: Scope
    transport: LocalTransport
    host: HostIdentity
    profile: Profile
    settings: ProbeSettings


def _context(args: argparse.Namespace) -> _Context:
    config = load_config(args.config)
    try:
        profile = load_profile(args.profile or config.profile)
    except ProfileError as exc:
        raise UserError(str(exc)) from None
    if not Path(args.root).is_dir():
        raise UserError(f"--root {args.root}: not a directory")
    transport = LocalTransport(root=args.root)
    scope = host_scope(args.root)
    if getattr(args, "network_scope", None):
        from agent.cli.netscan import network_scope_id
        from agent.scope import Scope as NetScope

        scope = Scope("network", network_scope_id(NetScope.parse(args.network_scope)))
    return _Context(BaselineFiles(), scope, transport, HostIdentity.read(transport), profile,
                    ProbeSettings(cache_dir=state_dir() / "cache", options=config.probes))


def _load(ctx: _Context) -> Baseline:
    try:
        return ctx.files.load(ctx.scope, ctx.host.hostname, ctx.host.machine_id)
    except BaselineMissing:
        raise UserError(msg.BASELINE_MISSING_ERR(scope=ctx.scope.label)) from None
    except BaselineInvalid as exc:
        raise UserError(msg.BASELINE_FAILED_ERR(scope=ctx.scope.label, reason=exc.localized,
                                                path=ctx.files.current_path(ctx.scope))) from None


def _run(ctx: _Context, probes: list[Probe], lang: str) -> list[ProbeRun]:  # type: ignore[type-arg]
    runs = run_probes(probes, ctx.transport)
    failed = [r for r in runs if r.status in ("error", "timeout")]
    if failed:
        detail = Joined([msg.PROBE_DETAIL(probe=r.probe, message=r.message or "-") for r in failed], "; ", "；")
        raise UserError(msg.PROBES_FAILED_ERR(detail=detail))
    for r in runs:
        if r.status == "limited":
            reasons = Joined(r.limitations, "; ", "；")
            sys.stderr.write(msg.LIMITED_WARNING(probe=r.probe, reasons=reasons).get(lang) + "\n")
    return runs


def _record(kind: str, who: str, ctx: _Context, meta: BaselineMeta, items: int) -> None:
    """Baseline acceptance goes into the inspection record (Art. 25 para. 3): who accepted what, when."""
    from agent import record

    record.append(kind, who, scope={"baseline": ctx.scope.label},
                  summary={"version": meta.version, "items": items, "note": meta.note},
                  results=meta.to_json())


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def handle_capture(args: argparse.Namespace) -> int:
    ctx = _context(args)
    network_observations: list[Observation] | None = None
    if args.network:
        from agent.cli.netscan import network_scope_id, observations_for_baseline

        net_scope, network_observations = observations_for_baseline(
            args.network, args.scope, args.ports, services=not args.no_services, engine=args.engine)
        ctx.scope = Scope("network", network_scope_id(net_scope))
    elif args.scope or args.ports or args.no_services:
        raise UserError(msg.NETWORK_OPTIONS_ERR())
    previous: Baseline | None = None
    if ctx.files.exists(ctx.scope):
        try:
            previous = ctx.files.load(ctx.scope, ctx.host.hostname, ctx.host.machine_id)
        except BaselineInvalid as exc:
            if not args.force:
                raise UserError(msg.EXISTING_INVALID_ERR(scope=ctx.scope.label, reason=exc.localized)) from None
        if previous is not None and not args.force:
            raise UserError(msg.EXISTS_ERR(scope=ctx.scope.label, version=previous.meta.version))
    if network_observations is not None:
        runs: list[ProbeRun] = []
        observations = network_observations
        probe_ids = tuple(sorted({o.probe for o in observations}))
    else:
        runs = _run(ctx, select_probes(args.probe, settings=ctx.settings), args.lang)
        ran = [r for r in runs if r.ran]
        if not ran:
            raise UserError(msg.NO_PROBE_RAN_ERR())
        observations = [o for r in ran for o in r.observations]
        probe_ids = tuple(r.probe for r in ran)
    who, when = args.by or login_user(), now_iso()
    version = _next_version(ctx)
    meta = BaselineMeta(scope=ctx.scope, version=version, created_at=when, created_by=who, accepted_at=when,
                        accepted_by=who, action="capture", accepted_items=0, tool_version=__version__,
                        hostname=ctx.host.hostname, machine_id=ctx.host.machine_id, profile_id=ctx.profile.id,
                        probes=probe_ids,
                        parent_sha256=previous.sha256 if previous else None, note=args.note)
    path = ctx.files.save(meta, index(observations), volatile_of(observations))
    _record("baseline-capture", who, ctx, meta, len(observations))
    skipped = [r for r in runs if not r.ran]
    if args.json:
        _emit({"path": str(path), "meta": meta.to_json(), "observations": len(observations),
               "skipped": {r.probe: str(r.message) for r in skipped}})
    else:
        print(msg.CAPTURED(scope=ctx.scope.label, version=version, observations=len(observations),
                           probes=len(probe_ids), by=who, path=path).get(args.lang))
        for r in skipped:
            print(msg.NOT_CAPTURED(probe=r.probe, status=msg.STATUS[r.status](), message=r.message or "-")
                  .get(args.lang))
    return 0


def _next_version(ctx: _Context) -> int:
    return max((e.meta.version for e in ctx.files.history(ctx.scope)), default=0) + 1


def handle_show(args: argparse.Namespace) -> int:
    ctx = _context(args)
    baseline = _load(ctx)
    counts = baseline.counts()
    if args.json:
        _emit({"path": str(ctx.files.current_path(ctx.scope)), "meta": baseline.meta.to_json(),
               "sha256": baseline.sha256, "key": baseline.key_fingerprint, "counts": counts,
               "observations": len(baseline.entries)})
        return 0
    m = baseline.meta
    lang = args.lang
    print(msg.SHOW_HEAD(scope=m.scope.label, version=m.version, action=_action(m.action),
                        key=baseline.key_fingerprint).get(lang))
    print(msg.SHOW_HOST(host=m.hostname, machine_id=m.machine_id or "-", profile=m.profile_id,
                        tool=m.tool_version).get(lang))
    print(msg.SHOW_WHO(created=LocalTime.from_iso(m.created_at), created_by=m.created_by,
                       accepted=LocalTime.from_iso(m.accepted_at), accepted_by=m.accepted_by).get(lang))
    if m.note:
        print(msg.SHOW_NOTE(note=m.note).get(lang))
    print(msg.SHOW_OBSERVATIONS(count=len(baseline.entries)).get(lang))
    for probe in sorted(counts):
        print(f"    {probe:<20} {counts[probe]}")
    return 0


def _action(action: str) -> Message | str:
    template = msg.ACTION.get(action)
    return template() if template else action


def _compare(ctx: _Context, baseline: Baseline, only: list[str], lang: str) -> tuple[Diff, list[DriftFinding]]:
    known = {p.id for p in select_probes(settings=ctx.settings)}
    wanted = [p for p in baseline.meta.probes if p in known and (not only or p in only)]
    unknown = [p for p in only if p not in baseline.meta.probes]
    if unknown:
        raise UserError(msg.PROBES_NOT_IN_BASELINE_ERR(scope=ctx.scope.label, probes=unknown,
                                                       known=list(baseline.meta.probes)))
    runs = _run(ctx, select_probes(wanted, settings=ctx.settings), lang) if wanted else []
    return compare_runs(baseline, runs, ctx.profile, ctx.host.hostname)


def handle_diff(args: argparse.Namespace) -> int:
    ctx = _context(args)
    baseline = _load(ctx)
    result, drift = _compare(ctx, baseline, args.probe, args.lang)
    if args.json:
        _emit({"scope": ctx.scope.label, "baseline": baseline.meta.to_json(), "diff": result.to_json(),
               "items": {item_id(ctx.host.hostname, i): i.to_json() for i in result.items},
               "findings": [d.finding.to_json() for d in drift]})
    else:
        _print_diff(ctx, baseline, result, drift, args.lang)
    return 1 if not result.empty else 0


def _print_diff(ctx: _Context, baseline: Baseline, result: Diff, drift: list[DriftFinding], lang: str) -> None:
    m = baseline.meta
    counts = result.counts()
    print(msg.DIFF_HEAD(scope=m.scope.label, version=m.version, at=LocalTime.from_iso(m.accepted_at),
                        by=m.accepted_by, added=counts["added"], removed=counts["removed"], changed=counts["changed"],
                        probes=list(result.probes) or msg.NO_PROBES()).get(lang))
    marks = {"added": "+", "removed": "-", "changed": "~"}
    width = max((cell_len(t(s.value, lang)) for s in Severity), default=8) + 1
    for d in drift:
        f = d.finding
        label = t(f.severity.value, lang).upper()
        print(f"{label}{' ' * (width - cell_len(label))}{f.rule_id:<18} {f.id}  {f.title.get(lang)}")
        for item in d.items[:20]:
            iid = item_id(ctx.host.hostname, item)
            print(f"   {marks[item.change]} {item.probe} {item.subject}  [{iid}]  {item.summary(lang)}")
        if len(d.items) > 20:
            print(msg.DIFF_MORE(count=len(d.items) - 20).get(lang))
    for reason, n in sorted(result.ignored.items()):
        print(msg.DIFF_IGNORED(count=n, reason=reason).get(lang))
    if result.empty:
        print(msg.NO_DRIFT().get(lang))


def handle_accept(args: argparse.Namespace) -> int:
    if not args.all and not args.ids:
        raise UserError(msg.ACCEPT_WHAT_ERR())
    if args.all and args.ids:
        raise UserError(msg.ACCEPT_BOTH_ERR())
    ctx = _context(args)
    baseline = _load(ctx)
    result, drift = _compare(ctx, baseline, [], args.lang)
    if args.all:
        chosen = list(result.items)
    else:
        by_id: dict[str, tuple[DriftItem, ...]] = {item_id(ctx.host.hostname, i): (i,) for i in result.items}
        by_id.update({d.finding.id: d.items for d in drift})
        unknown = [i for i in args.ids if i not in by_id]
        if unknown:
            raise UserError(msg.ACCEPT_UNKNOWN_ERR(ids=unknown))
        seen: dict[tuple[str, str, str], DriftItem] = {}
        for ident in args.ids:
            for item in by_id[ident]:
                seen[(item.change, *item.key)] = item
        chosen = list(seen.values())
    if not chosen:
        print(msg.NOTHING_TO_ACCEPT().get(args.lang))
        return 0
    who, when = args.by or login_user(), now_iso()
    entries = apply(baseline.entries, chosen)
    volatile = dict(baseline.volatile)
    meta = dataclasses.replace(baseline.meta, version=_next_version(ctx), accepted_at=when, accepted_by=who,
                               action="accept", accepted_items=len(chosen), tool_version=__version__,
                               parent_sha256=baseline.sha256, note=args.note)
    path = ctx.files.save(meta, entries, volatile)
    _record("baseline-accept", meta.accepted_by, ctx, meta, meta.accepted_items)
    if args.json:
        _emit({"path": str(path), "meta": meta.to_json(), "accepted": [i.to_json() for i in chosen]})
    else:
        print(msg.ACCEPTED(chosen=len(chosen), total=len(result.items), scope=ctx.scope.label, version=meta.version,
                           by=who).get(args.lang))
    return 0


def handle_history(args: argparse.Namespace) -> int:
    ctx = _context(args)
    entries = ctx.files.history(ctx.scope)
    if not entries:
        raise UserError(msg.BASELINE_MISSING_ERR(scope=ctx.scope.label))
    if args.json:
        _emit([{"path": str(e.path), "sha256_prefix": e.sha256_prefix, **e.meta.to_json()} for e in entries])
        return 0
    for e in entries:
        m = e.meta
        extra = msg.HISTORY_ITEMS(count=m.accepted_items) if m.action == "accept" else ""
        action = _action(m.action)
        shown = f"{action.get('en'):<8}" if args.lang == "en" and not isinstance(action, str) else action
        print(msg.HISTORY_LINE(version=m.version, at=LocalTime.from_iso(m.accepted_at), action=shown, by=m.accepted_by,
                               extra=extra, sha=e.sha256_prefix, note=f"  {m.note}" if m.note else "")
              .get(args.lang))
    return 0
