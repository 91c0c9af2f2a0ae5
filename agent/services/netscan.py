"""Network tests of approved targets (Art. 24(2)) judged by the profile, recorded truthfully.

Every address goes through the ScopeGuard first (default scope: loopback only; without a notice, also the
unit's own declared networks); all input is checked before the first packet. Each stage (discovery, port
scan, service checks, passive link checks) is a network-kind probe run by ``agent.runner.run_probes``, stage
by stage: the runner's one catch-all and timeout policy apply, and a stage that fails after packets went out
is a failed test in the record, with what was sent to whom. The result is compared with the saved network
baseline through the same path as host baselines (an invalid one is a critical integrity finding).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import ipaddress
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from agent import messages as msg
from agent.errors import UserError
from agent.record import Entry
from agent.runner import ProbeRun, run_probes
from agent.scan import BaselineComparison, HostIdentity, ScanResult, sorted_findings
from agent.scope import Refusal, Scope, ScopeGuard
from agent.services.context import AgentContext, Judging, exit_code, judging
from agent.wire.contents import (
    FailedTest,
    NetscanContent,
    NetscanSummary,
    NetworkScope,
    RefusalContent,
    RefusalSummary,
    SentTo,
)
from baselines.evaluate import evaluate
from baselines.model import Finding, Text
from baselines.netdrift import Coverage
from baselines.profile import Profile
from probes import messages as probe_msg
from probes.base import GatherContext, Probe
from probes.errors import ProbeFailedAfterSend, ProbeInputError, SentTraffic
from probes.i18n import Duration, Joined, Message
from probes.network.ports import PortSet
from probes.observation import Observation, Row
from probes.transport import LocalTransport, Transport

if TYPE_CHECKING:
    from agent.wire.netscan import NetscanDocument
    from probes.network.passive import Heard

log = logging.getLogger(__name__)

PROBE_HOSTS = "hosts"
PROBE_PORTS = "ports"
NETWORK_PROBES = ("hosts", "ports", "services", "tls", "ssh_algos", "link")
BASELINE_PROBES = ("hosts", "ports", "services", "tls", "ssh_algos")  # link events are transient, not a baseline
MAX_DURATION = 3600.0
STAGE_TIMEOUT = 3600.0  # a stage stops itself at the approved targets' deadline; this is the runner's backstop

Say = Callable[[Message], None]  # progress lines, shown in the command's language


@dataclass(slots=True)
class NetscanRequest:
    targets: list[str]
    scope: str | None = None  # CIDRs; default loopback (not with a notice: the notice sets the scope)
    ports: str | None = None
    engine: str = "auto"
    services: bool = False
    discovery: bool = True
    portscan: bool = True  # False: no port scan (and so no service checks), e.g. passive link checks alone
    iface: str | None = None  # for ARP discovery on a directly connected segment
    passive: str | None = None
    duration: float = 10.0
    dns_servers: tuple[str, ...] = ()
    dhcp_servers: tuple[str, ...] = ()
    gateway: str | None = None  # IP[=MAC]
    notice: Path | None = None
    profile: str | None = None
    fail_on: str | None = None
    compare_baseline: bool = True
    allow_empty: bool = False  # a segment where nothing answers is expected (else that is an error)


@dataclass(slots=True)
class NetScanOptions:
    """The checked request: parsed scope, ports and link policy."""

    targets: list[str]
    scope: Scope
    ports: PortSet | None = None
    engine: str = "auto"
    services: bool = False
    discovery: bool = True
    portscan: bool = True
    iface: str | None = None
    passive: str | None = None
    duration: float = 10.0
    dns_servers: frozenset[str] | None = None
    dhcp_servers: frozenset[str] | None = None
    gateway_ip: str | None = None
    gateway_mac: str | None = None
    allow_empty: bool = False

    def kinds(self) -> list[str]:
        kinds = ["portscan"] if self.portscan else []
        if self.discovery:
            kinds.insert(0, "discovery")
        if self.services and self.portscan:
            kinds.append("service")
        if self.passive:
            kinds.append("passive")
        return kinds


@dataclass(slots=True)
class NetScanOutcome:
    result: ScanResult
    targets: list[str]
    scope: list[str]
    engine: str
    hosts_up: list[str]
    failures: list[FailedTest] = field(default_factory=list)
    notes: list[Message] = field(default_factory=list)
    entry: Entry | None = None
    exit_code: int = 0
    messages: list[Text] = field(default_factory=list)  # notes in both languages (the JSON takes the English)
    coverage: Coverage | None = None  # what this run tested (None: the port scan did not run)
    compared: Coverage | None = None  # what the baseline comparison covered (both this run and the baseline)
    # the TCP ports the port scan tried on each address it scanned (the collector's resolution coverage)
    scanned_ports: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    passive_iface: str | None = None  # the link the passive stage listened on

    @property
    def nothing_answered(self) -> bool:
        """The port scan ran and not one address answered discovery or the scan (no route, all down)."""
        return self.coverage is not None and not self.hosts_up

    def document(self, include_observations: bool = False) -> NetscanDocument:
        from agent.documents import netscan_document

        return netscan_document(self, include_observations)


# --- input -----------------------------------------------------------------------------------------------------

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _ip(text: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise UserError(msg.NOT_AN_IP(option=what, text=text)) from None


def _input(call: Callable[[], Any]) -> Any:
    """A probe's input error is the user's: one line, exit 2, before anything is sent."""
    try:
        return call()
    except ProbeInputError as exc:
        raise UserError(str(exc)) from None


def options_from_request(req: NetscanRequest) -> NetScanOptions:
    """Check every argument; nothing is sent before this returns."""
    if req.notice is not None and req.scope:
        raise UserError(msg.SCOPE_WITH_NOTICE())
    scope = Scope.parse(req.scope) if req.scope else Scope.loopback()
    ports = _input(lambda: PortSet.parse(req.ports or "")) if req.ports is not None else None
    if not 0 < req.duration <= MAX_DURATION:
        raise UserError(msg.BAD_DURATION(limit=MAX_DURATION))
    gateway_ip = gateway_mac = None
    if req.gateway:
        ip_text, _, mac = req.gateway.partition("=")
        gateway_ip = _ip(ip_text, "--gateway")
        if mac:
            gateway_mac = mac.strip().lower().replace("-", ":")
            if not _MAC.match(gateway_mac):
                raise UserError(msg.NOT_A_MAC(gateway=req.gateway, mac=mac))
    return NetScanOptions(
        targets=list(req.targets), scope=scope, ports=ports, engine=req.engine, services=req.services,
        discovery=req.discovery, portscan=req.portscan, iface=req.iface, passive=req.passive, duration=req.duration,
        dns_servers=frozenset(_ip(a, "--dns-server") for a in req.dns_servers) if req.dns_servers else None,
        dhcp_servers=frozenset(_ip(a, "--dhcp-server") for a in req.dhcp_servers) if req.dhcp_servers else None,
        gateway_ip=gateway_ip, gateway_mac=gateway_mac, allow_empty=req.allow_empty,
    )


def _interface_addresses(iface: str) -> list[str]:
    import socket

    import psutil

    addrs = psutil.net_if_addrs().get(iface, [])
    return [a.address.split("%", 1)[0] for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6)]


# --- authorisation ---------------------------------------------------------------------------------------------

def authorise(ctx: AgentContext, opts: NetScanOptions, notice: Path | None) -> tuple[ScopeGuard, str | None]:
    """The guard this run is held to: the notice's scope and window, or (no notice) loopback plus the unit's
    own declared networks. Every refusal is recorded before the user sees it."""
    from agent import enforce
    from agent.notice import NoticeError, settings_from

    notice_id: str | None = None

    def on_refusal(r: Refusal) -> None:
        ctx.recorder.write(RefusalContent(
            notice_id=notice_id, scope=NetworkScope(allowed=opts.scope.entries()), tests=[r.kind],
            summary=RefusalSummary(code="out-of-scope", message=r.describe(), targets=[r.target])))

    if notice is not None:
        try:
            auths = [enforce.authorize(notice, settings_from(ctx.config), kind=kind, recorder=ctx.recorder,
                                       targets=opts.targets) for kind in opts.kinds()]
        except NoticeError as exc:
            raise UserError(exc.localized) from None
        notice_id = auths[0].notice_id
        opts.scope = auths[0].scope
        return ScopeGuard(opts.scope, on_refusal=on_refusal, deadline=auths[0].deadline), notice_id
    require_own_networks(ctx, opts)
    return ScopeGuard(opts.scope, on_refusal=on_refusal,
                      scope_name=msg.SCOPE_NAME_RUN()), None


def require_own_networks(ctx: AgentContext, opts: NetScanOptions) -> None:
    """Without a notice, the scope must be loopback or inside the unit's own networks; else refuse (recorded)."""
    own = ctx.config.netscan.own_networks
    foreign = [e for e in opts.scope.entries() if not _within(e, own)]
    # A target that is neither loopback nor one of the unit's own networks needs a notice whatever --scope says
    # ("outside the notified scope" would wrongly suggest there was a notice). Host names are judged by the scope
    # guard once resolved.
    foreign += [t for t in opts.targets if _is_network(t) and not _within(t, own)
                and not _in_scope(t, opts.scope) and t not in foreign]
    if foreign:
        message = msg.NEEDS_NOTICE(targets=Joined(foreign))
        ctx.recorder.write(RefusalContent(tests=opts.kinds(), summary=RefusalSummary(
            code="no-notice", message=message.en, targets=list(opts.targets))))
        raise UserError(message)


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _in_scope(target: str, scope: Scope) -> bool:
    net = ipaddress.ip_network(target, strict=False)
    return any(net.version == n.version and net.subnet_of(n) for n in scope.networks)  # type: ignore[arg-type]


def _within(entry: str, own_networks: Sequence[str]) -> bool:
    """A scope entry is loopback or inside one of the unit's own networks (host names never are)."""
    try:
        net = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    if net.is_loopback:
        return True
    for own in own_networks:  # validated CIDRs (agent.config)
        mine = ipaddress.ip_network(own, strict=False)
        if net.version == mine.version and net.subnet_of(mine):  # type: ignore[arg-type]
            return True
    return False


# --- the plan: everything approved before the first packet ------------------------------------------------------

@dataclass(slots=True)
class Plan:
    discovery: list[Any]
    portscan: list[Any]
    service: list[Any]
    passive_iface: str | None
    engine: str


def plan(opts: NetScanOptions, guard: ScopeGuard) -> Plan:
    from probes.network.portscan import choose_engine

    engine = _input(lambda: choose_engine(opts.engine))  # missing nmap: a clear error before anything is sent
    if opts.iface:
        from probes.network.discovery import iface_info

        _input(lambda: iface_info(opts.iface or ""))  # an unknown interface is an input error
    discovery = guard.approve(opts.targets, "discovery") if opts.discovery else []
    portscan = guard.approve(opts.targets, "portscan", opts.ports) if opts.portscan else []
    service = guard.approve(opts.targets, "service", opts.ports) if opts.services and opts.portscan else []
    iface = None
    if opts.passive:
        from probes.network.passive import CaptureUnavailable, check_interface

        try:
            _input(lambda: check_interface(opts.passive or ""))
        except CaptureUnavailable as exc:
            raise UserError(str(exc)) from None
        addrs = _interface_addresses(opts.passive)
        if not addrs:
            raise UserError(msg.PASSIVE_NO_ADDRESS(iface=opts.passive))
        # Listening on a segment is a test of that segment: the interface's own address must be in scope.
        guard.approve(addrs[:1], "passive")
        iface = opts.passive
    return Plan(discovery, portscan, service, iface, engine)


# --- stages: network-kind probes over approved targets ----------------------------------------------------------

class NetworkStage(Probe[Row]):
    """One netscan stage as a probe for the runner. ``body`` sends to the approved targets and returns
    observations; ``planned`` is the traffic it is approved to send, so a failure can say what went out."""

    kind: ClassVar[str] = "network"
    timeout: ClassVar[float] = STAGE_TIMEOUT

    def __init__(self, stage_id: str, title: tuple[str, str], planned: SentTraffic,
                 body: Callable[[GatherContext], list[Observation]]) -> None:
        # A stage is a probe instance, so its id and title are per instance (probes declare them per class).
        self.id = stage_id  # type: ignore[misc]
        self.title, self.title_zh = title  # type: ignore[misc]
        self.planned, self.body = planned, body
        self.sent: SentTraffic | None = None  # what a failure reported as sent

    def unmet(self, transport: Transport, system: str | None = None) -> Message | None:
        return None  # what a stage needs (nmap, an interface, root) was checked when it was planned

    def observe(self, ctx: GatherContext) -> list[Observation]:
        self.sent = self.planned  # from the first packet on, a failure is a failed test of these targets
        try:
            return self.body(ctx)
        except ProbeFailedAfterSend as exc:
            self.sent = exc.sent
            raise
        except ProbeInputError:
            self.sent = None  # refused its input before sending anything: a failed test that sent nothing
            raise


def _sent_to(traffic: SentTraffic) -> list[SentTo]:
    what = traffic.tool + (f" ports {traffic.ports}" if traffic.ports else "")
    if traffic.command:
        what += f" ({' '.join(traffic.command)})"
    return [SentTo(target=t, what=what) for t in traffic.targets]


def run_netscan(opts: NetScanOptions, profile: Profile, approved: Plan, say: Say | None = None) -> NetScanOutcome:
    """Run the approved stages, one after the other (each needs the one before), through the runner."""
    started = dt.datetime.now(dt.UTC)
    tell = say or (lambda _s: None)
    transport = LocalTransport()
    runs: list[ProbeRun] = []
    stages: list[NetworkStage] = []
    hosts_up: list[str] = []
    open_ports: dict[str, set[int]] = {}
    engine_used = approved.engine
    discovered: dict[str, Any] = {}
    ports_text = str(opts.ports) if opts.ports else "default"
    coverage: list[Coverage] = []
    scanned_ports: dict[str, tuple[tuple[int, int], ...]] = {}
    messages: list[Text] = []
    discovery_partial = False

    def run_stage(stage: NetworkStage) -> ProbeRun:
        stages.append(stage)
        (result,) = run_probes([stage], transport)
        runs.append(result)
        return result

    if approved.discovery:
        def discovery_stage(ctx: GatherContext) -> list[Observation]:
            nonlocal discovery_partial
            from probes.network.discovery import discover

            tell(msg.DISCOVERING(count=len(approved.discovery)))
            res = discover(approved.discovery, iface=opts.iface)
            discovered.update((r.ip, r) for r in res.rows)
            discovery_partial = res.partial
            for limit in res.limitations:
                ctx.limited(limit)
            return [Observation.from_row(PROBE_HOSTS, r) for r in res.rows]

        run_stage(NetworkStage("discovery", ("Host discovery", "主机发现"),
                               SentTraffic("discovery", tuple(t.address for t in approved.discovery)),
                               discovery_stage))

    if opts.portscan and (not approved.discovery or runs[-1].ran):
        targets = approved.portscan
        if approved.discovery:
            targets = [t for t in targets if t.address in discovered]

        def ports_stage(ctx: GatherContext) -> list[Observation]:
            nonlocal engine_used
            from probes.network.discovery import DiscoveredHost
            from probes.network.portscan import DEFAULT_TCP_PORTS, ScanOptions, scan

            tell(msg.PORT_SCANNING(engine=approved.engine, count=len(targets)))
            res = scan(targets, ScanOptions(engine=approved.engine, ports=opts.ports))
            engine_used = res.engine
            scanned_ports.update((t.address, (opts.ports or t.ports or DEFAULT_TCP_PORTS).ranges) for t in targets)
            coverage.append(run_coverage(opts, approved, res.engine,
                                         complete=not res.partial and not discovery_partial))
            hosts_up.extend([*discovered, *res.hosts_up])
            open_ports.update(res.open_ports())
            for limit in res.limitations:
                ctx.limited(limit)
            obs = [Observation.from_row(PROBE_PORTS, r) for r in res.rows]
            # Hosts that answered only the port scan (no discovery, or discovery missed them) are hosts too.
            obs += [Observation.from_row(PROBE_HOSTS, DiscoveredHost(h, "", "", "portscan", None))
                    for h in res.hosts_up if h not in discovered]
            return obs

        run_stage(NetworkStage(PROBE_PORTS, ("Port scan", "端口扫描"),
                               SentTraffic(approved.engine, tuple(t.address for t in targets), ports=ports_text),
                               ports_stage))

    if approved.service and runs and runs[-1].probe == PROBE_PORTS and runs[-1].ran:
        def services_stage(ctx: GatherContext) -> list[Observation]:
            from probes.network.services import check_services

            n = sum(len(v) for v in open_ports.values())
            tell(msg.SERVICE_CHECKING(count=n))
            res = check_services(approved.service, open_ports)
            if res.skipped:
                ctx.limited(probe_msg.PORTS_NOT_CHECKED(count=res.skipped))
                coverage[:] = [dataclasses.replace(c, complete=False) for c in coverage]
            return res.observations()

        run_stage(NetworkStage("services", ("Service checks", "服务识别"),
                               SentTraffic("service-checks", tuple(sorted(open_ports)),
                                           ports=",".join(str(p) for p in sorted({p for v in open_ports.values()
                                                                                   for p in v}))),
                               services_stage))

    if approved.passive_iface:
        iface = approved.passive_iface

        def link_stage(ctx: GatherContext) -> list[Observation]:
            from probes.network import passive

            tell(msg.LISTENING(iface=iface, duration=Duration(opts.duration)))
            cap = passive.capture(iface, opts.duration)
            policy = passive.LinkPolicy(opts.dhcp_servers, opts.dns_servers, opts.gateway_ip, opts.gateway_mac)
            if cap.truncated:
                ctx.limited(probe_msg.CAPTURE_CUT_SHORT())
            events = passive.analyse(cap.frames, policy)
            messages.append(heard_note(iface, opts.duration, passive.heard(cap.frames), len(events)))
            return passive.observations(events)

        run_stage(NetworkStage("link", ("Passive link checks", "被动链路检查"),
                               SentTraffic("passive-listen", (iface,)), link_stage))

    failures = [FailedTest(test=s.id, message=r.message.en if r.message else r.status,
                           sent=_sent_to(s.sent) if s.sent else [])
                for s, r in zip(stages, runs, strict=True) if r.status in ("error", "timeout")]
    ran = ran_probes(runs)
    observations = [o for r in runs for o in r.observations]
    findings = _evaluate(profile, observations, ran, iface=approved.passive_iface)
    identity = HostIdentity.read(transport)
    return NetScanOutcome(
        result=ScanResult(host=identity, transport="network", as_root=transport.is_root, started=started,
                          finished=dt.datetime.now(dt.UTC), profile_id=profile.id, probes=runs,
                          findings=sorted_findings(findings),
                          unevaluated_rules=tuple(r.id for r in profile.rules
                                                  if r.probe in NETWORK_PROBES and r.probe not in ran)),
        targets=opts.targets, scope=opts.scope.entries(), engine=engine_used, hosts_up=sorted(set(hosts_up)),
        failures=failures, messages=messages, coverage=coverage[0] if coverage else None,
        scanned_ports=scanned_ports, passive_iface=approved.passive_iface,
    )


NOTHING_ANSWERED = Text(
    "Nothing answered: no host in {targets} replied to discovery or the port scan (no route, or every host is "
    "down). Nothing was tested; use --allow-empty if an empty segment is expected.",
    "无任何应答：{targets} 中没有主机响应主机发现或端口扫描（无路由，或主机全部离线）。未检测任何对象；"
    "如该网段本应为空，请使用 --allow-empty。")
NOTHING_ANSWERED_SHORT = Text(
    "no host answered: nothing was tested (use --allow-empty if an empty segment is expected)",
    "无任何主机应答：未检测任何对象（如该网段本应为空，请使用 --allow-empty）")


def run_coverage(opts: NetScanOptions, approved: Plan, engine: str, complete: bool = True) -> Coverage:
    """What this run tested: the approved port-scan addresses, their TCP ports, discovery (ARP when an
    interface was named), service checks, and the engine that scanned."""
    from probes.network.portscan import DEFAULT_TCP_PORTS

    ranges: set[tuple[int, int]] = set()
    for t in approved.portscan:
        ranges.update((opts.ports or t.ports or DEFAULT_TCP_PORTS).ranges)
    discovery = bool(approved.discovery)
    return Coverage.of([t.ip for t in approved.portscan], ranges, discovery,
                       discovery and opts.iface is not None, bool(approved.service), engine, complete)


def heard_note(iface: str, duration: float, heard: Heard, events: int) -> Text:
    """What the passive stage heard: a quiet link and a capture that heard nothing are not the same."""
    values = {"iface": iface, "duration": f"{duration:g}", "frames": heard.frames, "arp": heard.arp,
              "dhcp": heard.dhcp, "dns": heard.dns, "tcp": heard.tcp, "events": events}
    return Text("link {iface} ({duration} s): heard {frames} frame(s): {arp} ARP, {dhcp} DHCP, {dns} DNS, "
                "{tcp} on login ports; {events} link event(s)",
                "链路 {iface}（{duration} 秒）：收到 {frames} 帧，其中 ARP {arp} 帧、DHCP {dhcp} 帧、DNS {dns} 帧、"
                "登录端口 TCP {tcp} 帧；链路事件 {events} 个").format(values)


def ran_probes(runs: Sequence[ProbeRun]) -> set[str]:
    """The observation probes whose stage ran (rules over them are evaluated; the baseline compares them)."""
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


# --- baseline ---------------------------------------------------------------------------------------------------

def network_scope_id(scope: Scope) -> str:
    """The baseline scope id of a network scope: readable when short, a digest otherwise."""
    text = "_".join(sorted(scope.entries()))
    readable = re.sub(r"[^A-Za-z0-9._-]", "-", text)
    if len(readable) <= 100 and readable[:1].isalnum():
        return readable
    return "net-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def baseline_observations(observations: Sequence[Observation]) -> list[Observation]:
    """The observations a network baseline keeps (what ``baseline capture --network`` stores)."""
    return [o for o in observations if o.probe in BASELINE_PROBES]


def compare_baseline(ctx: AgentContext, outcome: NetScanOutcome, scope: Scope, profile: Profile) -> None:
    """Through the same path as host baselines (agent.scan.compare_scope)."""
    from agent.baseline_files import BaselineFiles
    from agent.scan import compare_scope
    from baselines.store import Scope as BaselineScope

    bscope = BaselineScope("network", network_scope_id(scope))
    result = outcome.result
    ran = ran_probes(result.probes) & set(BASELINE_PROBES)
    limited = {p for r in result.probes if r.status == "limited" for p in ran_probes([r])}
    # Like with like: only the addresses, ports and test kinds that both this run and the baseline covered.
    compared: list[Coverage] = []
    extra, comparison, notes = compare_scope(BaselineFiles(ctx.state), bscope, result.host, ran,
                                             baseline_observations(result.observations), limited, profile,
                                             bscope.label, network=outcome.coverage, compared=compared)
    result.findings = sorted_findings([*result.findings, *extra])
    result.baseline = comparison
    outcome.notes.extend(notes)
    outcome.compared = compared[0] if compared else None
    if outcome.compared is not None and not outcome.compared.complete:
        outcome.messages.append(Text(
            "the scan was cut short (the notice window ended): what it did not see is not reported as gone",
            "检测因通知时间窗口结束而中止：未检测到的对象不报告为已消失"))


# --- the action -------------------------------------------------------------------------------------------------

def run(ctx: AgentContext, request: NetscanRequest, say: Say | None = None) -> NetScanOutcome:
    """Check, authorise and plan (refusals recorded), run the stages, compare, record the test (a stage that
    failed after sending is in the record as failed, naming what was sent to whom)."""
    opts = options_from_request(request)
    judged = judging(ctx, profile=request.profile, fail_on=request.fail_on, use_waivers=False)
    guard, notice_id = authorise(ctx, opts, request.notice)
    approved = plan(opts, guard)
    outcome = run_netscan(opts, judged.profile, approved, say)
    if outcome.nothing_answered:
        outcome.messages.insert(0, NOTHING_ANSWERED.format({"targets": ", ".join(opts.targets)}))
    elif request.compare_baseline:  # with nothing reached, every host of the baseline would look "gone"
        compare_baseline(ctx, outcome, opts.scope, judged.profile)
    outcome.result.finished = dt.datetime.now(dt.UTC)
    worst = outcome.result.worst()
    outcome.exit_code = exit_code(len(outcome.result.probe_errors), worst.rank if worst else None, judged.fail_on)
    if outcome.nothing_answered and not opts.allow_empty:
        outcome.exit_code = 2
    outcome.entry = _record(ctx, request, opts, judged, notice_id, outcome)
    return outcome


def _record(ctx: AgentContext, request: NetscanRequest, opts: NetScanOptions, judged: Judging,
            notice_id: str | None, outcome: NetScanOutcome) -> Entry:
    from agent.documents import severity_counts

    overrides = dict(judged.overrides)
    for name, value in (("scope", request.scope), ("ports", request.ports), ("iface", request.iface),
                        ("passive", request.passive)):
        if value is not None:
            overrides[name] = value
    if request.engine != "auto":
        overrides["engine"] = request.engine
    if not request.discovery:
        overrides["no_discovery"] = "true"
    result = outcome.result
    content = NetscanContent(
        notice_id=notice_id, scope=NetworkScope(allowed=opts.scope.entries(), targets=list(outcome.targets)),
        tests=opts.kinds(),
        summary=NetscanSummary(status="failed" if outcome.failures or result.probe_errors else "completed",
                               findings=severity_counts(result.counts()), hosts_up=len(outcome.hosts_up),
                               probe_errors=len(result.probe_errors), failures=outcome.failures),
        applied=Judging(judged.profile, judged.waivers, judged.fail_on, overrides).applied(ctx, engine=outcome.engine))
    return ctx.recorder.write(content, results=outcome.document().to_json())


def observations_for_baseline(ctx: AgentContext, targets: Sequence[str], scope: str | None, ports: str | None = None,
                              services: bool = True, engine: str = "auto", iface: str | None = None,
                              discovery: bool = True,
                              allow_empty: bool = False) -> tuple[Scope, list[Observation], NetScanOutcome]:
    """For ``baseline capture --network``: scan like netscan (same gate, refusals recorded; the same discovery
    options, so that later runs compare like with like) and return the scope and the observations a network
    baseline keeps, with the coverage row that says what was tested. Raises UserError on bad input, before
    anything is sent, when a stage failed (no baseline from a partial scan) and when nothing answered (unless
    ``allow_empty``)."""
    req = NetscanRequest(targets=list(targets), scope=scope, ports=ports, engine=engine, services=services,
                         iface=iface, discovery=discovery, allow_empty=allow_empty)
    opts = options_from_request(req)
    guard, _ = authorise(ctx, opts, None)
    approved = plan(opts, guard)
    profile = Profile("none", Text("no rules", "无规则"), 1, (), "<none>")
    outcome = run_netscan(opts, profile, approved)
    if outcome.result.probe_errors:
        failed = Joined([msg.PROBE_DETAIL(probe=r.probe, message=r.message or "-")
                         for r in outcome.result.probe_errors], "; ", "；")
        raise UserError(msg.NETSCAN_FAILED_NO_BASELINE(detail=failed))
    if outcome.nothing_answered and not allow_empty:
        raise UserError(msg.NOTHING_ANSWERED_NO_BASELINE(targets=Joined(targets)))
    kept = baseline_observations(outcome.result.observations)
    if outcome.coverage is not None:
        kept.append(outcome.coverage.to_observation())
    return opts.scope, kept, outcome


__all__ = ["BASELINE_PROBES", "NETWORK_PROBES", "BaselineComparison", "NetScanOutcome", "NetscanRequest", "run"]
