"""`precaution baseline capture|show|diff|accept|history`: the known-good state of this host and its drift.

`diff` exits like ndiff: 0 no drift, 1 drift, 2 error (including a baseline that fails verification).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from agent.runner import ProbeRun
from agent.services import baseline as service
from agent.services.context import AgentContext
from baselines.drift import item_id


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


def _session(args: argparse.Namespace) -> service.BaselineSession:
    ctx = AgentContext.load(args.state, args.config)
    return service.open_session(ctx, service.BaselineTarget(root=args.root, profile=args.profile,
                                                            network_scope=getattr(args, "network_scope", None)))


def _warn_limited(runs: Sequence[ProbeRun]) -> None:
    for r in runs:
        sys.stderr.write(f"precaution: warning: {r.probe} limited: {'; '.join(r.limitations)}\n")


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def handle_capture(args: argparse.Namespace) -> int:
    session = _session(args)
    out = service.capture(session, service.CaptureRequest(
        probes=tuple(args.probe), by=args.by, note=args.note, force=args.force, network=tuple(args.network or ()),
        scope=args.scope, ports=args.ports, engine=args.engine, services=not args.no_services))
    _warn_limited(out.limited)
    if args.json:
        _emit({"path": str(out.path), "meta": out.meta.to_json(), "observations": out.observations,
               "skipped": {r.probe: r.message for r in out.skipped}})
    else:
        print(f"baseline {session.scope.label} version {out.meta.version} captured: {out.observations} observations "
              f"from {len(out.probes)} probe(s), accepted by {out.meta.accepted_by} ({out.path})")
        for r in out.skipped:
            print(f"  not captured: {r.probe} ({r.status}: {r.message})")
    return 0


def handle_show(args: argparse.Namespace) -> int:
    session = _session(args)
    baseline = service.load(session)
    counts = baseline.counts()
    if args.json:
        _emit({"path": str(session.files.current_path(session.scope)), "meta": baseline.meta.to_json(),
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


def handle_diff(args: argparse.Namespace) -> int:
    session = _session(args)
    out = service.diff(session, args.probe)
    _warn_limited(out.limited)
    result, drift = out.diff, out.drift
    if args.json:
        _emit({"scope": session.scope.label, "baseline": out.baseline.meta.to_json(), "diff": result.to_json(),
               "items": {item_id(session.host.hostname, i): i.to_json() for i in result.items},
               "findings": [d.finding.to_json() for d in drift]})
    else:
        _print_diff(session, out, args.lang)
    return 1 if not result.empty else 0


def _print_diff(session: service.BaselineSession, out: service.DiffOutcome, lang: str) -> None:
    m, result = out.baseline.meta, out.diff
    counts = result.counts()
    print(f"baseline {m.scope.label} version {m.version} (accepted {m.accepted_at} by {m.accepted_by}): "
          f"{counts['added']} added, {counts['removed']} removed, {counts['changed']} changed "
          f"in {', '.join(result.probes) or 'no probes'}")
    marks = {"added": "+", "removed": "-", "changed": "~"}
    for d in out.drift:
        f = d.finding
        print(f"{f.severity.value.upper():<8} {f.rule_id:<18} {f.id}  {f.title.get(lang)}")
        for item in d.items[:20]:
            iid = item_id(session.host.hostname, item)
            print(f"   {marks[item.change]} {item.probe} {item.subject}  [{iid}]  {item.summary()}")
        if len(d.items) > 20:
            print(f"   ... and {len(d.items) - 20} more")
    for reason, n in sorted(result.ignored.items()):
        print(f"ignored {n}: {reason}")
    if result.empty:
        print("no drift")


def handle_accept(args: argparse.Namespace) -> int:
    session = _session(args)
    out = service.accept(session, service.AcceptRequest(ids=tuple(args.ids), all=args.all, by=args.by,
                                                        note=args.note))
    _warn_limited(out.limited)
    if out.meta is None:
        print("no drift to accept; baseline unchanged")
        return 0
    if args.json:
        _emit({"path": str(out.path), "meta": out.meta.to_json(), "accepted": [i.to_json() for i in out.chosen]})
    else:
        print(f"accepted {len(out.chosen)} of {out.drift_items} drift item(s) into baseline {session.scope.label} "
              f"version {out.meta.version} (by {out.meta.accepted_by})")
    return 0


def handle_history(args: argparse.Namespace) -> int:
    entries = service.history(_session(args))
    if args.json:
        _emit([{"path": str(e.path), "sha256_prefix": e.sha256_prefix, **e.meta.to_json()} for e in entries])
        return 0
    for e in entries:
        m = e.meta
        extra = f", {m.accepted_items} item(s)" if m.action == "accept" else ""
        note = f"  {m.note}" if m.note else ""
        print(f"v{m.version:<4} {m.accepted_at}  {m.action:<8} by {m.accepted_by}{extra}  {e.sha256_prefix}{note}")
    return 0
