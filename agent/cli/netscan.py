"""`precaution netscan`: network tests of approved targets (Art. 24(2)) judged by the profile.

Thin: arguments -> ``agent.services.netscan.NetscanRequest`` -> ``agent.services.netscan.run`` -> JSON
(``precaution.netscan/v2``, agent.wire.netscan) or a table. Exit 0 clean, 1 findings at or above --fail-on,
2 error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.services.netscan import NetScanOutcome

Say = Callable[[str], None]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "netscan", help="test network targets within a scope (discovery, ports, services, link)",
        description="Discover hosts, scan ports, optionally check services and listen passively on one interface, "
                    "all within --scope (default: loopback only), then judge the results with the profile. Exit 0 "
                    "clean, 1 findings at or above --fail-on, 2 error (bad input, or a stage failed).")
    p.add_argument("targets", nargs="+", metavar="TARGET", help="addresses, CIDRs, ranges or host names")
    p.add_argument("--scope", default=None, metavar="CIDR[,CIDR...]",
                   help="what may be tested (default: 127.0.0.0/8 and ::1 only)")
    p.add_argument("--ports", default=None, metavar="SPEC", help="TCP ports, e.g. 22,80,1000-2000 (default: common)")
    p.add_argument("--engine", choices=("auto", "nmap", "builtin"), default="auto", help="port scan engine")
    p.add_argument("--services", action="store_true", help="check the services on open ports (banners, TLS, SSH)")
    p.add_argument("--no-discovery", action="store_true",
                   help="port-scan every approved address instead of only the hosts that answer discovery")
    p.add_argument("--iface", metavar="IFACE", help="interface for ARP discovery of a directly connected segment")
    p.add_argument("--passive", metavar="IFACE", help="also listen on this interface for link checks")
    p.add_argument("--duration", type=float, default=10.0, metavar="S", help="passive listening time (default 10)")
    p.add_argument("--dns-server", action="append", default=[], metavar="IP",
                   help="an allowed DNS resolver (repeatable); without any, resolvers are listed but not judged")
    p.add_argument("--dhcp-server", action="append", default=[], metavar="IP",
                   help="an allowed DHCP server (repeatable); without any, DHCP servers are listed but not judged")
    p.add_argument("--gateway", metavar="IP[=MAC]", help="the segment gateway and its expected MAC address")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--observations", action="store_true",
                   help="also include every observation (TLS and SSH details too) in --json; hosts, open ports and "
                        "services are always included")
    p.add_argument("--lang", choices=("en", "zh-CN"), default="en", help="language of the table")
    p.add_argument("--fail-on", default=None, metavar="SEVERITY",
                   help="exit 1 when a finding is at or above this severity (default high)")
    p.add_argument("--profile", metavar="FILE", help="policy profile (default: the built-in default profile)")
    p.add_argument("--notice", metavar="FILE",
                   help="advance notice authorising this test (Art. 25); its targets, kinds and window set the "
                        "scope. Without one, only loopback and the unit's own networks ([netscan] own_networks "
                        "in config.toml) may be tested")
    p.add_argument("--config", metavar="FILE", help="agent config (default: config.toml in the state directory)")
    p.set_defaults(handler=handle)


def request_from_args(args: argparse.Namespace) -> Any:
    from agent.services.netscan import NetscanRequest

    return NetscanRequest(
        targets=list(args.targets), scope=args.scope, ports=args.ports, engine=args.engine, services=args.services,
        discovery=not args.no_discovery, iface=args.iface, passive=args.passive, duration=args.duration,
        dns_servers=tuple(args.dns_server), dhcp_servers=tuple(args.dhcp_server), gateway=args.gateway,
        notice=Path(args.notice) if args.notice else None, profile=args.profile, fail_on=args.fail_on)


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Say | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("netscan: approving targets") as status:
        yield lambda text: status.update(f"netscan: {text}")


def handle(args: argparse.Namespace) -> int:
    from agent.services import netscan
    from agent.services.context import AgentContext

    ctx = AgentContext.load(args.state, args.config)
    request = request_from_args(args)
    with _progress(sys.stderr.isatty() and not args.json) as progress:
        outcome = netscan.run(ctx, request, progress)
    if args.json:
        sys.stdout.write(json.dumps(outcome.document(args.observations).to_json(), ensure_ascii=False,
                                    indent=2) + "\n")
    else:
        _render(outcome, args.lang)
    return outcome.exit_code


def _render(outcome: NetScanOutcome, lang: str) -> None:
    from rich.console import Console

    from agent.report.table import render_table

    console = Console(highlight=False)
    zh = lang == "zh-CN"
    console.print(f"[bold]{'网络检测' if zh else 'netscan'}[/bold]  "
                  f"{'目标' if zh else 'targets'}: {', '.join(outcome.targets)}  "
                  f"{'范围' if zh else 'scope'}: {', '.join(outcome.scope)}  "
                  f"{'引擎' if zh else 'engine'}: {outcome.engine}  "
                  f"{'在线主机' if zh else 'hosts up'}: {len(outcome.hosts_up)}")
    ports = [o for o in outcome.result.observations if o.probe == "ports"]
    services = {o.subject: o for o in outcome.result.observations if o.probe == "services"}
    if ports:
        from rich.table import Table

        table = Table(title="开放端口" if zh else "Open ports", expand=False)
        for col in (("主机", "host"), ("端口", "port"), ("服务", "service"), ("说明", "detail")):
            table.add_column(col[0] if zh else col[1])
        for o in ports:
            a = o.attrs
            svc = services.get(f"{a.get('host')}|{a.get('port')}")
            name = str(svc.attrs.get("service")) if svc else str(a.get("service") or "")
            detail = str(svc.attrs.get("banner") or "") if svc else str(a.get("product") or "")
            table.add_row(str(a.get("host")), f"{a.get('port')}/{a.get('proto')}", name, detail[:60])
        console.print(table)
    for note in [*outcome.result.notes, *outcome.notes]:
        console.print(f"[dim]{note}[/dim]")
    render_table(outcome.result, console, lang, heading="title_netscan")
