"""`precaution inspect --on-site --inspector NAME:ID --inspector NAME:ID`: an on-site technical inspection
(Art. 24(1)). Art. 25 ¶1: not fewer than two inspectors, each with identification; both go into the record."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli.notice import add_notice_options
from agent.cli.options import add_inspection_options
from agent.i18n import LANGS

MIN_INSPECTORS = 2


def register(sub: Any) -> None:
    p = sub.add_parser("inspect", help="on-site inspection by two or more named inspectors",
                       description="Run the local inspection on behalf of on-site inspectors (at least two, with "
                                   "identification, Art. 25 ¶1) and write it to the inspection record.")
    p.add_argument("--on-site", action="store_true", required=True, help="an on-site inspection (Art. 24(1))")
    p.add_argument("--inspector", action="append", default=[], metavar="NAME:ID",
                   help="inspector and identification number (at least two, repeatable)")
    p.add_argument("--notice", metavar="FILE", help="the notice or order the inspection runs under, if any")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--lang", choices=LANGS, default="en", help="language of the table (default en)")
    add_inspection_options(p)
    add_notice_options(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from agent.services import inspect as service
    from agent.services.context import AgentContext

    ctx = AgentContext.load(args.state, args.config)
    outcome = service.run(ctx, service.InspectRequest(
        inspectors=tuple(args.inspector), notice=Path(args.notice) if args.notice else None, probes=tuple(args.probe),
        profile=args.profile, waivers=args.waivers, fail_on=args.fail_on, unit=args.unit, lead_time=args.lead_time))
    if args.json:
        sys.stdout.write(json.dumps(outcome.document().to_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        from rich.console import Console

        from agent.report.table import render_table

        console = Console(highlight=False)
        who = ", ".join(f"{i.name} ({i.id})" for i in outcome.inspectors)
        console.print(("现场检查人员：" if args.lang == "zh-CN" else "On-site inspectors: ") + who)
        render_table(outcome.result, console, args.lang, heading="title_onsite")
    return outcome.exit_code
