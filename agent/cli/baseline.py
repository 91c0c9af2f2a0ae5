"""`precaution baseline capture|show|diff|accept|history`: the known-good state of this host and its drift.

`diff` exits like ndiff: 0 no drift, 1 drift, 2 error (including a baseline that fails verification).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len

from agent import messages as msg
from agent.errors import UserError
from agent.i18n import LANGS, t
from agent.runner import ProbeRun
from agent.services import baseline as service
from agent.services.context import AgentContext
from baselines.drift import item_id
from baselines.model import Severity
from probes.i18n import Joined, LocalTime, Message


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
    q.add_argument("--services", action="store_true",
                   help="with --network: check the services on open ports, as netscan --services (the default)")
    q.add_argument("--no-services", action="store_true", help="with --network: skip service checks")
    q.add_argument("--iface", metavar="IFACE",
                   help="with --network: interface for ARP discovery, as for netscan (the baseline then holds MAC "
                        "addresses, and netscan --iface compares them)")
    q.add_argument("--no-discovery", action="store_true",
                   help="with --network: port-scan every approved address instead of only the hosts that answer")
    q.add_argument("--allow-empty", action="store_true",
                   help="with --network: record a segment where no host answers instead of refusing")
    q.set_defaults(handler=handle_capture)

    q = cmds.add_parser("show", help="metadata and observation counts of the current baseline")
    common(q)
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.add_argument("--network-scope", metavar="CIDR[,CIDR...]", help="the network baseline of this scope")
    q.set_defaults(handler=handle_show)

    q = cmds.add_parser("diff", help="drift since the baseline (exit 0 none, 1 drift, 2 error)")
    common(q)
    q.add_argument("--probe", action="append", default=[], metavar="ID", help="compare only this probe")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(handler=handle_diff)

    q = cmds.add_parser("accept", help="accept drift items into a new baseline version")
    common(q)
    q.add_argument("ids", nargs="*", metavar="ID", help="drift item or finding ids (from `baseline diff`)")
    q.add_argument("--all", action="store_true", help="accept every drift item")
    q.add_argument("--by", metavar="NAME", help="who accepts (default: login user)")
    q.add_argument("--note", metavar="TEXT", help="why the drift is accepted")
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.set_defaults(handler=handle_accept)

    q = cmds.add_parser("history", help="every stored version: who accepted what, when")
    common(q)
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    q.add_argument("--network-scope", metavar="CIDR[,CIDR...]", help="the network baseline of this scope")
    q.set_defaults(handler=handle_history)


def _session(args: argparse.Namespace) -> service.BaselineSession:
    ctx = AgentContext.load(args.state, args.config)
    return service.open_session(ctx, service.BaselineTarget(root=args.root, profile=args.profile,
                                                            network_scope=getattr(args, "network_scope", None)))


def _warn_limited(runs: Sequence[ProbeRun], lang: str) -> None:
    for r in runs:
        reasons = Joined(r.limitations, "; ", "；")
        sys.stderr.write(msg.LIMITED_WARNING(probe=r.probe, reasons=reasons).get(lang) + "\n")


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def handle_capture(args: argparse.Namespace) -> int:
    if args.services and args.no_services:
        raise UserError(msg.SERVICES_BOTH())
    if args.services and not args.network:
        raise UserError(msg.NETWORK_OPTIONS_ERR(options=service.NETWORK_ONLY))
    session = _session(args)
    out = service.capture(session, service.CaptureRequest(
        probes=tuple(args.probe), by=args.by, note=args.note, force=args.force, network=tuple(args.network or ()),
        scope=args.scope, ports=args.ports, engine=args.engine, services=not args.no_services, iface=args.iface,
        discovery=not args.no_discovery, allow_empty=args.allow_empty))
    _warn_limited(out.limited, args.lang)
    if args.json:
        _emit({"path": str(out.path), "meta": out.meta.to_json(), "observations": out.observations,
               "skipped": {r.probe: str(r.message) for r in out.skipped}})
    else:
        print(msg.CAPTURED(scope=session.scope.label, version=out.meta.version, observations=out.observations,
                           probes=len(out.probes), by=out.meta.accepted_by, path=out.path).get(args.lang))
        for r in out.skipped:
            print(msg.NOT_CAPTURED(probe=r.probe, status=msg.STATUS[r.status](), message=r.message or "-")
                  .get(args.lang))
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


def handle_diff(args: argparse.Namespace) -> int:
    session = _session(args)
    out = service.diff(session, args.probe)
    _warn_limited(out.limited, args.lang)
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
    print(msg.DIFF_HEAD(scope=m.scope.label, version=m.version, at=LocalTime.from_iso(m.accepted_at),
                        by=m.accepted_by, added=counts["added"], removed=counts["removed"], changed=counts["changed"],
                        probes=list(result.probes) or msg.NO_PROBES()).get(lang))
    marks = {"added": "+", "removed": "-", "changed": "~"}
    width = max((cell_len(t(s.value, lang)) for s in Severity), default=8) + 1
    for d in out.drift:
        f = d.finding
        label = t(f.severity.value, lang).upper()
        print(f"{label}{' ' * (width - cell_len(label))}{f.rule_id:<18} {f.id}  {f.title.get(lang)}")
        for item in d.items[:20]:
            iid = item_id(session.host.hostname, item)
            print(f"   {marks[item.change]} {item.probe} {item.subject}  [{iid}]  {item.summary(lang)}")
        if len(d.items) > 20:
            print(msg.DIFF_MORE(count=len(d.items) - 20).get(lang))
    for reason, n in sorted(result.ignored.items()):
        print(msg.DIFF_IGNORED(count=n, reason=reason).get(lang))
    if result.empty:
        print(msg.NO_DRIFT().get(lang))


def handle_accept(args: argparse.Namespace) -> int:
    session = _session(args)
    out = service.accept(session, service.AcceptRequest(ids=tuple(args.ids), all=args.all, by=args.by,
                                                        note=args.note))
    _warn_limited(out.limited, args.lang)
    if out.meta is None:
        print(msg.NOTHING_TO_ACCEPT().get(args.lang))
        return 0
    if args.json:
        _emit({"path": str(out.path), "meta": out.meta.to_json(), "accepted": [i.to_json() for i in out.chosen]})
    else:
        print(msg.ACCEPTED(chosen=len(out.chosen), total=out.drift_items, scope=session.scope.label,
                           version=out.meta.version, by=out.meta.accepted_by).get(args.lang))
    return 0


def handle_history(args: argparse.Namespace) -> int:
    entries = service.history(_session(args))
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
