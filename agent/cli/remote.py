"""`precaution remote HOST... --notice FILE`: host probes on agentless targets over SSH (Art. 24(3)), only under a
valid, acknowledged notice whose window contains now and whose scope holds each host (Art. 25 ¶2).

Thin: arguments -> ``agent.services.remote.RemoteRequest`` -> ``agent.services.remote.run`` -> JSON
(``precaution.remote/v2``, agent.wire.remote) or tables."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.cli.notice import add_notice_options
from agent.cli.options import add_inspection_options
from agent.i18n import LANGS


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} out of range 1-65535")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser("remote", help="inspect agentless hosts over SSH under a notice",
                       description="Run the host probes on remote hosts over SSH. Needs a signed, acknowledged "
                                   "notice whose window is open and whose scope names each host. Exit 0 clean, "
                                   "1 findings at or above --fail-on, 2 refusal or error.")
    p.add_argument("hosts", nargs="+", metavar="HOST", help="HOST, USER@HOST or USER@HOST:PORT")
    p.add_argument("--notice", required=True, metavar="FILE",
                   help="the signed, acknowledged notice authorising this test (Art. 25)")
    p.add_argument("--user", default="root", help="SSH user (default root)")
    p.add_argument("--key", metavar="FILE", help="private key file (default: ssh-agent)")
    p.add_argument("--port", type=_port, default=22, help="SSH port when a HOST names none (default 22)")
    p.add_argument("--jump", metavar="HOST", help="jump host (USER@HOST:PORT), like ssh -J")
    p.add_argument("--sudo", action="store_true", help="run reads and commands through sudo -n")
    p.add_argument("--accept-new-host-key", action="store_true",
                   help="record an unknown host key (it is written to the record); changed keys are still refused")
    p.add_argument("--parallel", type=int, default=8, metavar="N", help="hosts at once (default 8)")
    p.add_argument("--timeout", type=float, default=300.0, metavar="S", help="per-host limit (default 300 s)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                   help="give up connecting to a host after S seconds (default 10)")
    p.add_argument("--retries", type=int, default=2, metavar="N",
                   help="connection attempts after the first (default 2)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (docs/notice-and-record.md)")
    p.add_argument("--observations", action="store_true", help="include observations in --json")
    p.add_argument("--lang", choices=LANGS, default="en", help="language of the table (default en)")
    add_inspection_options(p)
    add_notice_options(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from agent.services import remote as service
    from agent.services.context import AgentContext

    ctx = AgentContext.load(args.state, args.config)
    outcome = service.run(ctx, service.RemoteRequest(
        hosts=tuple(args.hosts), notice=Path(args.notice), user=args.user, key=args.key, port=args.port,
        jump=args.jump, sudo=args.sudo, accept_new_host_key=args.accept_new_host_key, parallel=args.parallel,
        timeout=args.timeout, connect_timeout=args.connect_timeout, retries=args.retries, probes=tuple(args.probe),
        profile=args.profile, waivers=args.waivers, fail_on=args.fail_on, unit=args.unit, lead_time=args.lead_time))
    if args.json:
        sys.stdout.write(json.dumps(outcome.document(args.observations).to_json(), ensure_ascii=False,
                                    indent=2) + "\n")
        return outcome.exit_code
    from rich.console import Console

    from agent import messages as msg
    from agent.report.table import render_table

    console = Console(highlight=False)
    for o in outcome.hosts:
        status = msg.REMOTE_STATUS.get(o.status)
        console.rule(msg.HOST_HEADING(target=o.target, address=o.address, status=status() if status else o.status)
                     .get(args.lang))
        if o.message:
            console.print(o.message if isinstance(o.message, str) else o.message.get(args.lang), markup=False)
        if o.result is not None:
            render_table(o.result, console, args.lang, heading="title_remote")
    return outcome.exit_code
