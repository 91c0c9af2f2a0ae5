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


@dataclass(slots=True)
class PartResult:
    """What one part of a task produced: run reports for the spool, and what went wrong (empty: all well)."""

    reports: list[RunReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def run_network(ctx: AgentContext, config: DaemonConfig, task: TaskItem, notice: Path | None,
                run_id: str) -> PartResult:
    from agent.daemon.results import run_report
    from agent.enforce import refuse
    from agent.services import netscan

    tests = set(task.tests)
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
    out = PartResult([run_report(run_id, "netscan", net.result, task_id=task.task_id, notice_id=task.notice_id)])
    if net.result.probe_errors:
        out.problems.append("a network test stage failed: " + "; ".join(
            f"{r.probe}: {r.message.en if r.message else r.status}" for r in net.result.probe_errors))
    return out


def run_own_host(ctx: AgentContext, config: DaemonConfig, task: TaskItem, targets: list[str],
                 notice: Path | None, run_id: str) -> PartResult:
    """Host probes on this host. Under a notice, the notice must allow host tests of these targets."""
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
    probes = tuple(config.remote.probes) or tuple(p.id for p in select_probes() if p.id != "files")
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
