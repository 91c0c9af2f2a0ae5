"""`precaution probe list|run`: see what probes exist and what one observes (raw data for golden files)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent import messages as msg
from agent.errors import UserError
from probes.registry import all_probes, get_probe
from probes.transport import LocalTransport


def register(sub: Any) -> None:
    p = sub.add_parser("probe", help="list probes or run one and show its observations")
    ps = p.add_subparsers(dest="probe_command", metavar="ACTION")
    ps.required = True
    ls = ps.add_parser("list", help="list probes and what they need")
    ls.set_defaults(handler=_list)
    run = ps.add_parser("run", help="run one probe and print its observations (or --raw data) as JSON")
    run.add_argument("probe_id")
    run.add_argument("--raw", action="store_true", help="print what the probe read, for a golden file")
    run.add_argument("--root", default="/", metavar="DIR")
    run.set_defaults(handler=_run)


def _list(args: argparse.Namespace) -> int:
    for cls in all_probes():
        req = cls.requires
        needs = ", ".join(filter(None, ["root" if req.root else "", "/".join(req.binaries_any)])) or "-"
        sys.stdout.write(f"{cls.id:<18} {cls.kind:<8} {cls.title}  [needs: {needs}]\n")
    return 0


def _run(args: argparse.Namespace) -> int:
    from agent.runner import run_probes

    try:
        probe = get_probe(args.probe_id)()
    except KeyError:
        raise UserError(msg.UNKNOWN_PROBE(id=args.probe_id)) from None
    run = run_probes([probe], LocalTransport(root=args.root), keep_raw=args.raw)[0]
    if not run.ran:  # skipped, failed or timed out: the runner's reason, as one line
        raise UserError(msg.PROBE_RUN_FAILED(probe=run.probe, status=msg.STATUS[run.status],
                                             reason=run.message or ""))
    if args.raw:
        out: Any = run.raw
    else:
        out = {"limitations": [m.en for m in run.limitations],
               "observations": [o.to_json() for o in run.observations]}
    sys.stdout.write(json.dumps(out, indent=1, ensure_ascii=False, default=str) + "\n")
    return 0
