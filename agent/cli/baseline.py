"""`precaution baseline capture|show|diff|accept|history`: the known-good state of this host and its drift.

`diff` exits like ndiff: 0 no drift, 1 drift, 2 error (including a baseline that fails verification).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from agent import __version__
from agent.baseline_files import BaselineFiles, BaselineMissing, host_scope, login_user, now_iso
from agent.cli.scan import cache_dir, check_root, load_profile_or_refuse
from agent.config import load_config
from agent.errors import UserError
from agent.runner import ProbeRun, run_probes
from agent.scan import HostIdentity, compare_runs, select_probes
from baselines.diff import Diff, DriftItem, apply, index, volatile_of
from baselines.drift import DriftFinding, item_id
from baselines.profile import Profile
from baselines.store import Baseline, BaselineInvalid, BaselineMeta, Scope
from probes.base import Probe, ProbeSettings
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
    q.add_argument("--lang", choices=("en", "zh-CN"), default="en")
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
    profile = load_profile_or_refuse(args.profile or config.profile)
    check_root(args.root)
    transport = LocalTransport(root=args.root)
    scope = host_scope(args.root)
    if getattr(args, "network_scope", None):
        from agent.cli.netscan import network_scope_id
        from agent.scope import Scope as NetScope

        scope = Scope("network", network_scope_id(NetScope.parse(args.network_scope)))
    return _Context(BaselineFiles(), scope, transport, HostIdentity.read(transport), profile,
                    ProbeSettings(cache_dir=cache_dir(), options=config.probes))


def _load(ctx: _Context) -> Baseline:
    try:
        return ctx.files.load(ctx.scope, ctx.host.hostname, ctx.host.machine_id)
    except BaselineMissing:
        raise UserError(f"no baseline for {ctx.scope.label} yet: run `precaution baseline capture`") from None
    except BaselineInvalid as exc:
        raise UserError(f"baseline {ctx.scope.label} failed verification: {exc.message} "
                        f"({ctx.files.current_path(ctx.scope)})") from None


def _run(ctx: _Context, probes: list[Probe]) -> list[ProbeRun]:  # type: ignore[type-arg]
    runs = run_probes(probes, ctx.transport)
    failed = [r for r in runs if r.status in ("error", "timeout")]
    if failed:
        detail = "; ".join(f"{r.probe}: {r.message}" for r in failed)
        raise UserError(f"probe(s) failed, baseline left unchanged: {detail}")
    for r in runs:
        if r.status == "limited":
            sys.stderr.write(f"precaution: warning: {r.probe} limited: {'; '.join(r.limitations)}\n")
    return runs


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
        raise UserError("--scope, --ports and --no-services go with --network")
    with ctx.files.writing(ctx.scope):  # one writer per scope: the version number and the file agree
        return _capture(args, ctx, network_observations)


def _capture(args: argparse.Namespace, ctx: _Context, network_observations: list[Observation] | None) -> int:
    previous: Baseline | None = None
    if ctx.files.exists(ctx.scope):
        try:
            previous = ctx.files.load(ctx.scope, ctx.host.hostname, ctx.host.machine_id)
        except BaselineInvalid as exc:
            if not args.force:
                raise UserError(f"existing baseline {ctx.scope.label} failed verification ({exc.message}); "
                                "check the host, then use --force to replace it") from None
        if previous is not None and not args.force:
            raise UserError(f"baseline {ctx.scope.label} exists (version {previous.meta.version}); use "
                            "`baseline accept` for drift or `capture --force` to replace it")
    if network_observations is not None:
        runs: list[ProbeRun] = []
        observations = network_observations
        probe_ids = tuple(sorted({o.probe for o in observations}))
    else:
        runs = _run(ctx, select_probes(args.probe, settings=ctx.settings))
        ran = [r for r in runs if r.ran]
        if not ran:
            raise UserError("no probe could run here, baseline left unchanged")
        observations = [o for r in ran for o in r.observations]
        probe_ids = tuple(r.probe for r in ran)
    who, when = args.by or login_user(), now_iso()
    version = ctx.files.next_version(ctx.scope)
    meta = BaselineMeta(scope=ctx.scope, version=version, created_at=when, created_by=who, accepted_at=when,
                        accepted_by=who, action="capture", accepted_items=0, tool_version=__version__,
                        hostname=ctx.host.hostname, machine_id=ctx.host.machine_id, profile_id=ctx.profile.id,
                        probes=probe_ids,
                        parent_sha256=previous.sha256 if previous else None, note=args.note)
    path = ctx.files.save(meta, index(observations), volatile_of(observations))
    skipped = [r for r in runs if not r.ran]
    if args.json:
        _emit({"path": str(path), "meta": meta.to_json(), "observations": len(observations),
               "skipped": {r.probe: r.message for r in skipped}})
    else:
        print(f"baseline {ctx.scope.label} version {version} captured: {len(observations)} observations from "
              f"{len(probe_ids)} probe(s), accepted by {who} ({path})")
        for r in skipped:
            print(f"  not captured: {r.probe} ({r.status}: {r.message})")
    return 0


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
    print(f"baseline {m.scope.label} version {m.version} ({m.action}), signed {baseline.key_fingerprint}")
    print(f"  host: {m.hostname}  machine-id: {m.machine_id or '-'}  profile: {m.profile_id}  "
          f"tool: {m.tool_version}")
    print(f"  created {m.created_at} by {m.created_by}; accepted {m.accepted_at} by {m.accepted_by}")
    if m.note:
        print(f"  note: {m.note}")
    print(f"  observations: {len(baseline.entries)}")
    for probe in sorted(counts):
        print(f"    {probe:<20} {counts[probe]}")
    return 0


def _compare(ctx: _Context, baseline: Baseline, only: list[str]) -> tuple[Diff, list[DriftFinding]]:
    known = {p.id for p in select_probes(settings=ctx.settings)}
    wanted = [p for p in baseline.meta.probes if p in known and (not only or p in only)]
    unknown = [p for p in only if p not in baseline.meta.probes]
    if unknown:
        raise UserError(f"probe(s) not in baseline {ctx.scope.label}: {', '.join(unknown)} "
                        f"(baseline has: {', '.join(baseline.meta.probes)})")
    runs = _run(ctx, select_probes(wanted, settings=ctx.settings)) if wanted else []
    return compare_runs(baseline, runs, ctx.profile, ctx.host.hostname)


def handle_diff(args: argparse.Namespace) -> int:
    ctx = _context(args)
    baseline = _load(ctx)
    result, drift = _compare(ctx, baseline, args.probe)
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
    print(f"baseline {m.scope.label} version {m.version} (accepted {m.accepted_at} by {m.accepted_by}): "
          f"{counts['added']} added, {counts['removed']} removed, {counts['changed']} changed "
          f"in {', '.join(result.probes) or 'no probes'}")
    marks = {"added": "+", "removed": "-", "changed": "~"}
    for d in drift:
        f = d.finding
        print(f"{f.severity.value.upper():<8} {f.rule_id:<18} {f.id}  {f.title.get(lang)}")
        for item in d.items[:20]:
            iid = item_id(ctx.host.hostname, item)
            print(f"   {marks[item.change]} {item.probe} {item.subject}  [{iid}]  {item.summary()}")
        if len(d.items) > 20:
            print(f"   ... and {len(d.items) - 20} more")
    for reason, n in sorted(result.ignored.items()):
        print(f"ignored {n}: {reason}")
    if result.empty:
        print("no drift")


def handle_accept(args: argparse.Namespace) -> int:
    if not args.all and not args.ids:
        raise UserError("name the drift items to accept (ids from `baseline diff`) or use --all")
    if args.all and args.ids:
        raise UserError("give either --all or ids, not both")
    ctx = _context(args)
    with ctx.files.writing(ctx.scope):  # one writer per scope: the version number and the file agree
        return _accept(args, ctx)


def _accept(args: argparse.Namespace, ctx: _Context) -> int:
    baseline = _load(ctx)
    result, drift = _compare(ctx, baseline, [])
    if args.all:
        chosen = list(result.items)
    else:
        by_id: dict[str, tuple[DriftItem, ...]] = {item_id(ctx.host.hostname, i): (i,) for i in result.items}
        by_id.update({d.finding.id: d.items for d in drift})
        unknown = [i for i in args.ids if i not in by_id]
        if unknown:
            raise UserError(f"no current drift item with id {', '.join(unknown)} (see `precaution baseline diff`)")
        seen: dict[tuple[str, str, str], DriftItem] = {}
        for ident in args.ids:
            for item in by_id[ident]:
                seen[(item.change, *item.key)] = item
        chosen = list(seen.values())
    if not chosen:
        print("no drift to accept; baseline unchanged")
        return 0
    who, when = args.by or login_user(), now_iso()
    entries = apply(baseline.entries, chosen)
    volatile = dict(baseline.volatile)
    meta = dataclasses.replace(baseline.meta, version=ctx.files.next_version(ctx.scope), accepted_at=when,
                               accepted_by=who, action="accept", accepted_items=len(chosen), tool_version=__version__,
                               parent_sha256=baseline.sha256, note=args.note)
    path = ctx.files.save(meta, entries, volatile)
    if args.json:
        _emit({"path": str(path), "meta": meta.to_json(), "accepted": [i.to_json() for i in chosen]})
    else:
        print(f"accepted {len(chosen)} of {len(result.items)} drift item(s) into baseline {ctx.scope.label} "
              f"version {meta.version} (by {who})")
    return 0


def handle_history(args: argparse.Namespace) -> int:
    ctx = _context(args)
    entries = ctx.files.history(ctx.scope)
    if not entries:
        raise UserError(f"no baseline for {ctx.scope.label} yet: run `precaution baseline capture`")
    if args.json:
        _emit([{"path": str(e.path), "sha256_prefix": e.sha256_prefix, **e.meta.to_json()} for e in entries])
        return 0
    for e in entries:
        m = e.meta
        extra = f", {m.accepted_items} item(s)" if m.action == "accept" else ""
        note = f"  {m.note}" if m.note else ""
        print(f"v{m.version:<4} {m.accepted_at}  {m.action:<8} by {m.accepted_by}{extra}  {e.sha256_prefix}{note}")
    return 0
