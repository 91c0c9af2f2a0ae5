"""The parts of a collector task, each run by the service the CLI uses for it (no orchestration of its own here).

- network tests (discovery, portscan, service, passive) through ``agent.services.netscan``; passive link checks
  listen on ``[passive] interface`` for ``[passive] duration``;
- host tests of remote targets (Art. 24(3)) over SSH through ``agent.services.remote``, with the credentials of
  ``[remote]`` (a target without a key or a trusted host key is refused, recorded, and reported);
- a host test of the agent's own host (a loopback target): the host probes through ``agent.services.scan``, as
  the scheduled self-inspection runs them. It is not an on-site inspection (Art. 25 ¶1 wants two named
  inspectors present, which a collector cannot vouch for); it is the unit inspecting its own asset (Art. 9(9)).

Every part verifies the task's notice on the agent itself (the services call ``agent.enforce``): signature,
trust, unit, lead time, window, test kind and target scope. A refusal raises UserError after it was recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import UserError

if TYPE_CHECKING:
    from agent.daemon.config import DaemonConfig
    from agent.services.context import AgentContext
    from agent.services.remote import HostLogin
    from agent.wire.collector_api import RunReport, TaskItem

log = logging.getLogger(__name__)

NETWORK_TESTS = ("discovery", "portscan", "service", "passive")
HOST_TEST = "host"
# A re-test task (the collector's Art. 28 re-test of one finding) names the finding's probe, not a test kind,
# and the run's host as target. A host probe of this host is re-run here. A network probe is not: the collector
# names the agent's host, not the scanned addresses, so a network finding is re-tested by a network task that
# names its targets (under a notice when they are not the unit's own).


@dataclass(frozen=True, slots=True)
class Plan:
    """What a task asks for, in the terms of the services: network test kinds and host probes."""

    network: frozenset[str]  # discovery | portscan | service | passive
    host: bool  # host tests (all of [remote] probes, or ``probes``)
    probes: tuple[str, ...] = ()  # host probes a re-test names (only on this host)


def plan(tests: list[str]) -> tuple[Plan, list[str]]:
    """The plan, and the tests this agent does not know (neither a test kind nor a probe it can re-test)."""
    from agent.scan import select_probes
    from probes.test_kinds import TEST_KINDS

    network: set[str] = {t for t in tests if t in NETWORK_TESTS}
    probes: list[str] = []
    unknown: list[str] = []
    host_probes: set[str] | None = None
    for test in tests:
        if test in TEST_KINDS:
            continue
        if host_probes is None:
            host_probes = {p.id for p in select_probes()}
        (probes if test in host_probes else unknown).append(test)
    return Plan(frozenset(network), HOST_TEST in tests, tuple(probes)), unknown


def own_host_names() -> set[str]:
    """The names by which a task can mean this host besides loopback: its host name as runs report it."""
    from agent.scan import HostIdentity
    from probes.transport import LocalTransport

    name = HostIdentity.read(LocalTransport()).hostname.lower().rstrip(".")
    return {name} if name and name != "unknown" else set()


@dataclass(slots=True)
class PartResult:
    """What one part of a task produced: run reports for the spool, and what went wrong (empty: all well)."""

    reports: list[RunReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def run_network(ctx: AgentContext, config: DaemonConfig, task: TaskItem, tests: frozenset[str], notice: Path | None,
                run_id: str) -> PartResult:
    from agent.daemon.results import netscan_coverage, run_report
    from agent.enforce import refuse
    from agent.services import netscan

    passive = config.passive
    if "passive" in tests and passive.interface is None:
        raise refuse(ctx.recorder, "not-configured", f"task {task.task_id}: passive link checks need the "
                     "interface to listen on ([passive] interface in agent.toml); none is configured",
                     notice_id=task.notice_id, targets=task.targets, kind="passive")
    portscan = bool(tests & {"portscan", "service"})  # service checks need the port scan's open ports
    request = netscan.NetscanRequest(
        targets=list(task.targets), notice=notice, scope=None if notice else ",".join(task.targets),
        discovery="discovery" in tests, portscan=portscan, services="service" in tests,
        passive=passive.interface if "passive" in tests else None, duration=passive.duration,
        dns_servers=tuple(passive.dns_servers), dhcp_servers=tuple(passive.dhcp_servers), gateway=passive.gateway,
        compare_baseline=portscan, allow_empty=not portscan)
    net = netscan.run(ctx, request)
    out = PartResult([run_report(run_id, "netscan", net.result, task_id=task.task_id, notice_id=task.notice_id,
                                coverage=netscan_coverage(net))])
    if net.result.probe_errors:
        out.problems.append("a network test stage failed: " + "; ".join(
            f"{r.probe}: {r.message.en if r.message else r.status}" for r in net.result.probe_errors))
    return out


def run_own_host(ctx: AgentContext, config: DaemonConfig, task: TaskItem, targets: list[str],
                 notice: Path | None, run_id: str, probes: tuple[str, ...] = ()) -> PartResult:
    """Host probes on this host (``probes``, else ``[remote] probes``, else all but file integrity). Under a
    notice, the notice must allow host tests of these targets."""
    from agent.daemon.results import run_report
    from agent.scan import select_probes
    from agent.services import scan

    if notice is not None:
        from agent.enforce import approve, authorize
        from agent.notice import NoticeError, settings_from

        try:
            auth = authorize(notice, settings_from(ctx.config), kind=HOST_TEST, recorder=ctx.recorder,
                             targets=targets)
            approve(auth, targets, HOST_TEST, recorder=ctx.recorder)
        except NoticeError as exc:
            raise UserError(exc.localized) from None
    # [remote] probes, like a host test of a remote target; file integrity keeps its own schedule
    probes = probes or tuple(config.remote.probes) or tuple(p.id for p in select_probes() if p.id != "files")
    outcome = scan.run(ctx, scan.ScanRequest(probes=probes))
    out = PartResult([run_report(run_id, "scan", outcome.result, task_id=task.task_id, notice_id=task.notice_id)])
    if outcome.result.probe_errors:
        out.problems.append("host probes failed: " + ", ".join(r.probe for r in outcome.result.probe_errors))
    return out


def ssh_logins(ctx: AgentContext, config: DaemonConfig, task: TaskItem,
               targets: list[str]) -> tuple[dict[str, HostLogin], list[str]]:
    """The login for each target from ``[remote]``; targets without a key or a trusted host key are refused
    (recorded) and named in the second list with the reason."""
    from agent.enforce import refuse
    from agent.notice import parse_target
    from agent.services.remote import HostLogin

    logins: dict[str, HostLogin] = {}
    refused: list[str] = []
    for text in targets:
        try:
            host = parse_target(text).host
            settings = config.remote.for_target(host)
        except ValueError as exc:
            why = f"{text}: {exc}"
        else:
            known_hosts = settings.known_hosts or ctx.state.known_hosts
            if settings.key is None:
                why = (f"{text}: no SSH credentials configured for this target (set [remote] key or "
                       f'[remote.targets."{host}"] key in agent.toml)')
            elif not settings.host_keys and not known_hosts.exists():
                why = (f"{text}: no trusted host key for this target ({known_hosts} does not exist and no "
                       f'[remote.targets."{host}"] host_keys are pinned): the agent never trusts a key on first use')
            else:
                logins[text] = HostLogin(user=settings.user or "root", port=settings.port or 22, key=str(settings.key),
                                         known_hosts=known_hosts, host_keys=tuple(settings.host_keys),
                                         sudo=bool(settings.sudo))
                continue
        refuse(ctx.recorder, "no-credentials", f"task {task.task_id}: {why}", notice_id=task.notice_id,
               targets=[text], kind=HOST_TEST)
        refused.append(why)
    return logins, refused


def run_remote(ctx: AgentContext, config: DaemonConfig, task: TaskItem, targets: list[str], notice: Path | None,
               run_id: str) -> PartResult:
    from agent.daemon.results import run_report
    from agent.enforce import refuse
    from agent.services import remote

    if notice is None:
        raise refuse(ctx.recorder, "no-notice", f"task {task.task_id}: a remote test of {', '.join(targets)} "
                     "needs an advance notice (Art. 25) and the task carries none", targets=targets, kind=HOST_TEST)
    logins, refused = ssh_logins(ctx, config, task, targets)
    if not logins:
        raise UserError("; ".join(refused))
    cfg = config.remote
    request = remote.RemoteRequest(
        hosts=tuple(logins), notice=notice, user=cfg.user, port=cfg.port, parallel=cfg.parallel,
        timeout=cfg.timeout, connect_timeout=cfg.connect_timeout, probes=tuple(cfg.probes),
        logins=logins)
    done = remote.run(ctx, request)
    out = PartResult(problems=[f"refused: {why}" for why in refused])
    for host in done.hosts:
        if host.result is not None:
            rid = run_id if not out.reports else f"{run_id}.{len(out.reports)}"
            out.reports.append(run_report(rid, "remote", host.result, task_id=task.task_id,
                                          notice_id=task.notice_id))
            if host.result.probe_errors:
                out.problems.append(f"{host.target}: probes failed: "
                                    + ", ".join(r.probe for r in host.result.probe_errors))
        if host.status != "ok":
            out.problems.append(f"{host.target}: {host.status}: {host.message}")
    return out
