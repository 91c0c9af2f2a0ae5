"""`precaution inspect --on-site --inspector NAME:ID --inspector NAME:ID`: an on-site technical inspection
(Art. 24(1)). Art. 25 ¶1: not fewer than two inspectors, each with identification; both go into the record."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from agent import record
from agent.cli.notice import add_notice_options, notice_settings
from agent.cli.scan import exit_code, judging_inputs
from agent.config import load_config
from agent.errors import UserError
from agent.i18n import LANGS
from agent.notice import NoticeError, check_file
from agent.scan import run_scan, select_probes
from agent.state import state_dir
from probes.base import ProbeSettings
from probes.transport import LocalTransport

MIN_INSPECTORS = 2


def register(sub: Any) -> None:
    p = sub.add_parser("inspect", help="on-site inspection by two or more named inspectors",
                       description="Run the local inspection on behalf of on-site inspectors (at least two, with "
                                   "identification, Art. 25 ¶1) and write it to the inspection record.")
    p.add_argument("--on-site", action="store_true", required=True, help="an on-site inspection (Art. 24(1))")
    p.add_argument("--inspector", action="append", default=[], metavar="NAME:ID",
                   help="inspector and identification number (at least two, repeatable)")
    p.add_argument("--notice", metavar="FILE", help="the notice or order the inspection runs under, if any")
    p.add_argument("--json", action="store_true")
    p.add_argument("--lang", choices=LANGS, default="en")
    p.add_argument("--fail-on", default=None, metavar="SEVERITY")
    p.add_argument("--profile", metavar="FILE")
    p.add_argument("--waivers", metavar="FILE")
    p.add_argument("--probe", action="append", default=[], metavar="ID")
    add_notice_options(p)
    p.set_defaults(handler=handle)


def check_inspectors(texts: list[str]) -> list[record.Inspector]:
    """Parse NAME:ID pairs; UserError unless at least two distinct identifications are given."""
    inspectors = [record.Inspector.parse(t) for t in texts]
    distinct = list({i.id: i for i in inspectors}.values())
    if len(distinct) < MIN_INSPECTORS:
        raise UserError(f"an on-site inspection needs at least {MIN_INSPECTORS} inspectors with distinct "
                        f"identification (Art. 25 ¶1); got {len(distinct)} "
                        "(give --inspector NAME:ID for each)")
    return distinct


def handle(args: argparse.Namespace) -> int:
    actor = record.local_actor()
    try:
        inspectors = check_inspectors(args.inspector)
    except UserError as exc:
        named = []
        for text in args.inspector:
            try:
                named.append(record.Inspector.parse(text))
            except UserError:
                continue
        record.append("refusal", actor, inspectors=named, tests=("on-site",),
                      summary={"code": "inspectors", "message": str(exc)})
        raise
    config = load_config(args.config)
    notice_id = None
    if args.notice:
        checked = check_file(Path(args.notice), notice_settings(args), require_ack=False)
        notice_id = checked.signed.notice.id
        if not checked.ok:
            first = checked.problems[0]
            record.append("refusal", actor, inspectors=inspectors, notice_id=notice_id, tests=("on-site",),
                          summary={"code": first.code, "message": first.en})
            raise NoticeError(first.code, f"notice {notice_id}: {first.en}")
    fail_on, profile, waivers = judging_inputs(args, config)
    probes = select_probes(args.probe, settings=ProbeSettings(cache_dir=state_dir() / "cache", options=config.probes))
    started = dt.datetime.now(dt.UTC)
    result = run_scan(LocalTransport(), profile, waivers, probes)
    data = result.to_json()
    data["inspection"] = {"on_site": True, "inspectors": [i.to_json() for i in inspectors], "notice": notice_id,
                          "started": started.isoformat()}
    record.append("inspection", actor, inspectors=inspectors, notice_id=notice_id,
                  scope={"host": result.host.hostname, "on_site": True}, tests=tuple(p.id for p in probes),
                  summary={"findings": result.counts(), "probe_errors": len(result.probe_errors),
                           "host": result.host.hostname}, results=data)
    if args.json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    else:
        from rich.console import Console

        from agent.report.table import render_table

        console = Console(highlight=False)
        who = ", ".join(f"{i.name} ({i.id})" for i in inspectors)
        console.print(("现场检查人员：" if args.lang == "zh-CN" else "On-site inspectors: ") + who)
        render_table(result, console, args.lang, heading="title_onsite")
    return exit_code(result, fail_on)
