"""`precaution netscan`: network tests of approved targets (Art. 24(2)) judged by the profile.

Every address goes through the ScopeGuard first (default scope: this machine's loopback only); all input is
checked before the first packet. Stages: discovery (when the discovery module is available), port scan,
optional service checks (--services), optional passive link checks (--passive IFACE --duration S). Rows become
observations (probe ids ``hosts``, ``ports``, ``services``, ``tls``, ``ssh_algos``, ``link``), the profile is
evaluated per scanned host, and the result is compared with the saved network baseline of the same scope when
there is one. Exit 0 clean, 1 findings at or above --fail-on, 2 error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import logging
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.cli.scan import exit_code as scan_exit_code
from agent.cli.scan import parse_fail_on
from agent.errors import UserError
from agent.runner import ProbeRun
from agent.scan import HostIdentity, ScanResult, sorted_findings
from agent.scope import Scope, ScopeGuard
from baselines.evaluate import evaluate
from baselines.model import Finding, Severity
from baselines.profile import Profile, ProfileError, load_profile
from probes.network.ports import PortSet
from probes.observation import Observation
from probes.transport import LocalTransport

log = logging.getLogger(__name__)

SCHEMA = "precaution.netscan/v1"
PROBE_HOSTS = "hosts"
PROBE_PORTS = "ports"
NETWORK_PROBES = ("hosts", "ports", "services", "tls", "ssh_algos", "link")
BASELINE_PROBES = ("hosts", "ports", "services", "tls", "ssh_algos")  # link events are transient, not a baseline
MAX_DURATION = 3600.0


@dataclass(slots=True)
class NetScanOptions:
    targets: list[str]
    scope: Scope
    ports: PortSet | None = None
    engine: str = "auto"
    services: bool = False
    discovery: bool = True
    iface: str | None = None  # for ARP discovery on a directly connected segment
    passive: str | None = None
    duration: float = 10.0
    dns_servers: frozenset[str] | None = None
    dhcp_servers: frozenset[str] | None = None
    gateway_ip: str | None = None
    gateway_mac: str | None = None


@dataclass(slots=True)
class NetScanOutcome:
    result: ScanResult
    targets: list[str]
    scope: list[str]
    engine: str
    hosts_up: list[str]
    baseline: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


# --- argument handling ---------------------------------------------------------------------------------------

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
    p.add_argument("--observations", action="store_true", help="include observations in --json")
    p.add_argument("--lang", choices=("en", "zh-CN"), default="en", help="language of the table")
    p.add_argument("--fail-on", default="high", metavar="SEVERITY",
                   help="exit 1 when a finding is at or above this severity (default high)")
    p.add_argument("--profile", metavar="FILE", help="policy profile (default: the built-in default profile)")
    p.add_argument("--notice", metavar="FILE",
                   help="advance notice authorising this test (Art. 25); its targets, kinds and window set the "
                        "scope. Without one, only loopback and the unit's own networks ([netscan] own_networks "
                        "in config.toml) may be tested")
    p.add_argument("--config", metavar="FILE", help="agent config (default: config.toml in the state directory)")
    p.set_defaults(handler=handle)


def _ip(text: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise UserError(f"{what} {text!r}: not an IP address") from None


_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def options_from_args(args: argparse.Namespace) -> NetScanOptions:
    """Check every argument; nothing is sent before this returns."""
    scope = Scope.parse(args.scope) if args.scope else Scope.loopback()
    ports = PortSet.parse(args.ports) if args.ports is not None else None
    if not 0 < args.duration <= MAX_DURATION:
        raise UserError(f"--duration must be more than 0 and at most {MAX_DURATION:.0f} seconds")
    gateway_ip = gateway_mac = None
    if args.gateway:
        ip_text, _, mac = args.gateway.partition("=")
        gateway_ip = _ip(ip_text, "--gateway")
        if mac:
            gateway_mac = mac.strip().lower().replace("-", ":")
            if not _MAC.match(gateway_mac):
                raise UserError(f"--gateway {args.gateway!r}: {mac!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    return NetScanOptions(
        targets=list(args.targets), scope=scope, ports=ports, engine=args.engine, services=args.services,
        discovery=not args.no_discovery, iface=args.iface, passive=args.passive, duration=args.duration,
        dns_servers=frozenset(_ip(a, "--dns-server") for a in args.dns_server) if args.dns_server else None,
        dhcp_servers=frozenset(_ip(a, "--dhcp-server") for a in args.dhcp_server) if args.dhcp_server else None,
        gateway_ip=gateway_ip, gateway_mac=gateway_mac,
    )


def _interface_addresses(iface: str) -> list[str]:
    import socket

    import psutil

    addrs = psutil.net_if_addrs().get(iface, [])
    return [a.address.split("%", 1)[0] for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6)]


# --- the run ------------------------------------------------------------------------------------------------

Stage = Callable[[str], None]


@dataclass(slots=True)
class _Plan:
    """Everything approved before the first packet."""

    discovery: list[Any]
    portscan: list[Any]
    service: list[Any]
    passive_iface: str | None
    engine: str


def plan(opts: NetScanOptions, guard: ScopeGuard) -> _Plan:
    from probes.network.portscan import choose_engine

    engine = choose_engine(opts.engine)  # missing nmap: a clear error before anything is sent
    if opts.iface:
        from probes.network.discovery import iface_info

        iface_info(opts.iface)  # an unknown interface is an input error, found before sending
    discovery = guard.approve(opts.targets, "discovery") if opts.discovery else []
    portscan = guard.approve(opts.targets, "portscan", opts.ports)
    service = guard.approve(opts.targets, "service", opts.ports) if opts.services else []
    iface = None
    if opts.passive:
        from probes.network.passive import CaptureUnavailable, check_interface

        try:
            check_interface(opts.passive)
        except CaptureUnavailable as exc:
            raise UserError(str(exc)) from None
        addrs = _interface_addresses(opts.passive)
        if not addrs:
            raise UserError(f"--passive {opts.passive}: the interface has no IP address to check against the scope")
        # Listening on a segment is a test of that segment: the interface's own address must be in scope.
        guard.approve(addrs[:1], "passive")
        iface = opts.passive
    return _Plan(discovery, portscan, service, iface, engine)


def _stage(name: str, title: str, body: Callable[[], tuple[list[Observation], list[str]]]) -> ProbeRun:
    started = time.perf_counter()
    try:
        observations, limitations = body()
    except UserError:
        raise
    except Exception as exc:  # the one catch-all per stage, as agent.runner has per probe
        log.warning("netscan stage %s failed", name, exc_info=True)
        return ProbeRun(name, title, "error", time.perf_counter() - started, message=f"{type(exc).__name__}: {exc}")
    return ProbeRun(name, title, "limited" if limitations else "ok", time.perf_counter() - started,
                    observations, limitations=limitations)


def run_netscan(opts: NetScanOptions, profile: Profile, progress: Stage | None = None,
                guard: ScopeGuard | None = None, compare: bool = True,
                approved: _Plan | None = None) -> NetScanOutcome:
    approved = approved or plan(opts, guard or ScopeGuard(opts.scope))
    started = dt.datetime.now(dt.UTC)
    say = progress or (lambda _s: None)
    runs: list[ProbeRun] = []
    hosts_up: list[str] = []
    open_ports: dict[str, set[int]] = {}
    engine_used = approved.engine

    discovered: dict[str, Any] = {}

    def discovery_stage() -> tuple[list[Observation], list[str]]:
        from probes.network.discovery import discover

        say(f"discovery of {len(approved.discovery)} address(es)")
        res = discover(approved.discovery, iface=opts.iface)
        discovered.update((r.ip, r) for r in res.rows)
        return [Observation.from_row(PROBE_HOSTS, r) for r in res.rows], list(res.limitations)

    if approved.discovery:
        runs.append(_stage("discovery", "Host discovery", discovery_stage))

    def ports_stage() -> tuple[list[Observation], list[str]]:
        nonlocal engine_used
        from probes.network.discovery import DiscoveredHost
        from probes.network.portscan import ScanOptions, scan

        targets = approved.portscan
        if approved.discovery:
            targets = [t for t in targets if t.address in discovered]
        say(f"port scan ({approved.engine}) of {len(targets)} host(s)")
        res = scan(targets, ScanOptions(engine=approved.engine, ports=opts.ports))
        engine_used = res.engine
        hosts_up.extend([*discovered, *res.hosts_up])
        open_ports.update(res.open_ports())
        obs = [Observation.from_row(PROBE_PORTS, r) for r in res.rows]
        # Hosts that answered only the port scan (no discovery, or discovery missed them) are hosts too.
        obs += [Observation.from_row(PROBE_HOSTS, DiscoveredHost(h, "", "", "portscan", None))
                for h in res.hosts_up if h not in discovered]
        return obs, list(res.limitations)

    if not approved.discovery or runs[-1].ran:
        runs.append(_stage(PROBE_PORTS, "Port scan", ports_stage))

    if approved.service:
        def services_stage() -> tuple[list[Observation], list[str]]:
            from probes.network.services import check_services

            n = sum(len(v) for v in open_ports.values())
            say(f"service checks on {n} open port(s)")
            res = check_services(approved.service, open_ports)
            limits = [f"{res.skipped} port(s) not checked: deadline passed"] if res.skipped else []
            return res.observations(), limits

        runs.append(_stage("services", "Service checks", services_stage))

    if approved.passive_iface:
        iface = approved.passive_iface

        def link_stage() -> tuple[list[Observation], list[str]]:
            from probes.network import passive

            say(f"listening on {iface} for {opts.duration:g} s")
            cap = passive.capture(iface, opts.duration)
            policy = passive.LinkPolicy(opts.dhcp_servers, opts.dns_servers, opts.gateway_ip, opts.gateway_mac)
            limits = ["packet limit reached: capture cut short"] if cap.truncated else []
            return passive.observations(passive.analyse(cap.frames, policy)), limits

        runs.append(_stage("link", "Passive link checks", link_stage))

    ran = _ran_probes(runs)
    observations = [o for r in runs for o in r.observations]
    findings = _evaluate(profile, observations, ran, iface=approved.passive_iface)
    identity = HostIdentity.read(LocalTransport())
    outcome = NetScanOutcome(
        result=ScanResult(host=identity, transport="network", as_root=LocalTransport().is_root, started=started,
                          finished=dt.datetime.now(dt.UTC), profile_id=profile.id, probes=runs,
                          findings=sorted_findings(findings),
                          unevaluated_rules=tuple(r.id for r in profile.rules
                                                  if r.probe in NETWORK_PROBES and r.probe not in ran)),
        targets=opts.targets, scope=opts.scope.entries(), engine=engine_used, hosts_up=sorted(set(hosts_up)),
    )
    if compare:
        _compare_baseline(outcome, opts.scope, profile, identity)
    outcome.result.finished = dt.datetime.now(dt.UTC)
    return outcome


def _ran_probes(runs: Sequence[ProbeRun]) -> set[str]:
    ran: set[str] = set()
    for r in runs:
        if not r.ran:
            continue
        if r.probe in (PROBE_PORTS, "discovery"):
            ran |= {PROBE_PORTS, PROBE_HOSTS} if r.probe == PROBE_PORTS else {PROBE_HOSTS}
        elif r.probe == "services":
            ran |= {"services", "tls", "ssh_algos"}
        else:
            ran.add(r.probe)
    return ran


def _evaluate(profile: Profile, observations: Sequence[Observation], ran: set[str],
              iface: str | None) -> list[Finding]:
    """Per scanned host (so {host} in a remediation is that host and finding ids are per host); link events
    are judged against the segment, named after the interface."""
    groups: dict[str, list[Observation]] = defaultdict(list)
    for o in observations:
        host = o.attrs.get("host") or o.attrs.get("ip")
        groups[str(host) if host else f"link:{iface or '-'}"].append(o)
    network_only = Profile(profile.id, profile.title, profile.version,
                           tuple(r for r in profile.rules if r.probe in NETWORK_PROBES), profile.source,
                           profile.drift, profile.ignore)
    findings: list[Finding] = []
    for host, obs in sorted(groups.items()):
        findings.extend(evaluate(network_only, obs, host, ran).findings)
    return findings


# --- baseline comparison ------------------------------------------------------------------------------------

def network_scope_id(scope: Scope) -> str:
    """The baseline scope id of a network scope: readable when short, a digest otherwise."""
    text = "_".join(sorted(scope.entries()))
    readable = re.sub(r"[^A-Za-z0-9._-]", "-", text)
    if len(readable) <= 100 and readable[:1].isalnum():
        return readable
    return "net-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def baseline_observations(observations: Sequence[Observation]) -> list[Observation]:
    """The observations a network baseline keeps (what ``baseline capture --network`` should store)."""
    return [o for o in observations if o.probe in BASELINE_PROBES]


def _compare_baseline(outcome: NetScanOutcome, scope: Scope, profile: Profile, identity: HostIdentity) -> None:
    from agent.baseline_files import BaselineFiles, BaselineMissing
    from baselines.diff import diff
    from baselines.drift import drift_findings
    from baselines.store import BaselineInvalid
    from baselines.store import Scope as BaselineScope

    bscope = BaselineScope("network", network_scope_id(scope))
    files = BaselineFiles()
    if not files.exists(bscope):
        outcome.notes.append(f"no network baseline for {bscope.label}: not compared")
        return
    try:
        baseline = files.load(bscope, identity.hostname, identity.machine_id)
    except (BaselineMissing, BaselineInvalid) as exc:
        raise UserError(f"network baseline {bscope.label}: {exc}") from None
    ran = _ran_probes(outcome.result.probes)
    compared = tuple(p for p in BASELINE_PROBES if p in ran and p in baseline.meta.probes)
    current = [o for o in outcome.result.observations if o.probe in compared]
    old = [o for o in baseline.observations() if o.probe in compared]
    d = diff(old, current, profile.ignore, compared)
    drift = drift_findings(d, profile.drift, bscope.label)
    outcome.result.findings = sorted_findings([*outcome.result.findings, *(x.finding for x in drift)])
    outcome.baseline = {"scope": bscope.label, "version": baseline.meta.version, **d.to_json()}


# --- output -------------------------------------------------------------------------------------------------

def to_json(outcome: NetScanOutcome, include_observations: bool) -> dict[str, Any]:
    data = outcome.result.to_json(include_observations=include_observations)
    data["schema"] = SCHEMA
    data["netscan"] = {"targets": outcome.targets, "scope": outcome.scope, "engine": outcome.engine,
                       "hosts_up": outcome.hosts_up, "baseline": outcome.baseline}
    data["notes"] = [*data.get("notes", []), *outcome.notes]
    return data


def exit_code(outcome: NetScanOutcome, fail_on: Severity) -> int:
    return scan_exit_code(outcome.result, fail_on)


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Stage | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("netscan: approving targets") as status:
        yield lambda text: status.update(f"netscan: {text}")


def _kinds(opts: NetScanOptions) -> list[str]:
    kinds = ["portscan"]
    if opts.discovery:
        kinds.insert(0, "discovery")
    if opts.services:
        kinds.append("service")
    if opts.passive:
        kinds.append("passive")
    return kinds


def authorise(args: argparse.Namespace, opts: NetScanOptions, actor: str) -> tuple[ScopeGuard, str | None]:
    """The guard this run is held to: the notice's scope and window, or (no notice) loopback plus the unit's
    own declared networks. Every refusal is recorded before the user sees it."""
    from pathlib import Path

    from agent import enforce, record
    from agent.config import load_config
    from agent.notice import NoticeError, settings_from
    from agent.scope import Refusal

    config = load_config(args.config)

    def on_refusal(r: Refusal) -> None:
        record.append("refusal", actor, notice_id=notice_id, scope={"allowed": scope.entries()}, tests=(r.kind,),
                      summary={"code": "out-of-scope", "message": r.describe(), "targets": [r.target]})

    notice_id: str | None = None
    if args.notice:
        if args.scope:
            raise UserError("--scope and --notice do not go together: the notice sets the scope")
        try:
            auths = [enforce.authorize(Path(args.notice), settings_from(config), kind=kind, actor=actor,
                                       targets=opts.targets) for kind in _kinds(opts)]
        except NoticeError as exc:
            raise UserError(str(exc)) from None
        notice_id, scope = auths[0].notice_id, auths[0].scope
        opts.scope = scope
        return ScopeGuard(scope, on_refusal=on_refusal, deadline=auths[0].deadline), notice_id
    scope = opts.scope
    require_own_networks(opts, config.netscan.own_networks, actor)
    return ScopeGuard(scope, on_refusal=on_refusal), None


def require_own_networks(opts: NetScanOptions, own_networks: list[str], actor: str) -> None:
    """Without a notice, the scope must be loopback or inside the unit's own networks; else refuse (recorded)."""
    from agent import record

    foreign = [e for e in opts.scope.entries() if not _within(e, own_networks)]
    # A target that is neither loopback nor one of the unit's own networks needs a notice whatever --scope says
    # (host names are judged by the scope guard once resolved).
    foreign += [t for t in opts.targets if _is_network(t) and not _within(t, own_networks)
                and not _in_scope(t, opts.scope) and t not in foreign]
    if foreign:
        message = (f"testing {', '.join(foreign)} needs an advance notice (--notice FILE, Art. 25): without one, "
                   "only loopback and the unit's own networks ([netscan] own_networks in config.toml) may be "
                   "tested")
        record.append("refusal", actor, tests=tuple(_kinds(opts)),
                      summary={"code": "no-notice", "message": message, "targets": opts.targets})
        raise UserError(message)


def _is_network(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _in_scope(target: str, scope: Scope) -> bool:
    import ipaddress

    net = ipaddress.ip_network(target, strict=False)
    return any(net.version == n.version and net.subnet_of(n) for n in scope.networks)  # type: ignore[arg-type]


def _within(entry: str, own_networks: list[str]) -> bool:
    """A scope entry is loopback or inside one of the unit's own networks (host names never are)."""
    import ipaddress

    try:
        net = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    if net.is_loopback:
        return True
    for own in own_networks:
        try:
            mine = ipaddress.ip_network(own, strict=False)
        except ValueError:
            raise UserError(f"config [netscan] own_networks: {own!r} is not a network") from None
        if net.version == mine.version and net.subnet_of(mine):  # type: ignore[arg-type]
            return True
    return False


def handle(args: argparse.Namespace) -> int:
    from agent import record

    fail_on = parse_fail_on(args.fail_on)
    opts = options_from_args(args)
    actor = record.local_actor()
    guard, notice_id = authorise(args, opts, actor)
    approved = plan(opts, guard)  # all input checked (and approved) before the profile loads
    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        raise UserError(str(exc)) from None
    with _progress(sys.stderr.isatty() and not args.json) as progress:
        outcome = run_netscan(opts, profile, progress, approved=approved)
    result_json = to_json(outcome, False)
    record.append("netscan", actor, notice_id=notice_id,
                  scope={"allowed": opts.scope.entries(), "targets": outcome.targets}, tests=tuple(_kinds(opts)),
                  summary={"findings": outcome.result.counts(), "hosts_up": len(outcome.hosts_up),
                           "probe_errors": len(outcome.result.probe_errors)}, results=result_json)
    if args.json:
        sys.stdout.write(json.dumps(to_json(outcome, args.observations), ensure_ascii=False, indent=2) + "\n")
    else:
        _render(outcome, args.lang)
    return exit_code(outcome, fail_on)


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
    ports = [o for o in outcome.result.observations if o.probe == PROBE_PORTS]
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
    if outcome.baseline is not None:
        counts = outcome.baseline["counts"]
        console.print(f"{'与网络基线比较' if zh else 'baseline'} {outcome.baseline['scope']} "
                      f"v{outcome.baseline['version']}: +{counts['added']} -{counts['removed']} "
                      f"~{counts['changed']}")
    for note in outcome.notes:
        console.print(f"[dim]{note}[/dim]")
    render_table(outcome.result, console, lang, heading="title_netscan")


def observations_for_baseline(targets: Sequence[str], scope: str | None, ports: str | None = None,
                              services: bool = True, engine: str = "auto",
                              iface: str | None = None) -> tuple[Scope, list[Observation]]:
    """Hook for ``precaution baseline capture --network``: scan like netscan and return the scope and the
    observations a network baseline keeps. Raises UserError on bad input, before anything is sent."""
    sc = Scope.parse(scope) if scope else Scope.loopback()
    opts = NetScanOptions(targets=list(targets), scope=sc, ports=PortSet.parse(ports) if ports else None,
                          engine=engine, services=services, iface=iface)
    from agent import record
    from agent.config import load_config

    require_own_networks(opts, load_config().netscan.own_networks, record.local_actor())
    profile = Profile("none", load_profile().title, 1, (), "<none>")
    outcome = run_netscan(opts, profile, compare=False)
    if outcome.result.probe_errors:
        failed = "; ".join(f"{r.probe}: {r.message}" for r in outcome.result.probe_errors)
        raise UserError(f"network scan failed, no baseline captured: {failed}")
    return sc, baseline_observations(outcome.result.observations)
