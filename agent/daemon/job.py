"""One scheduled run in a child process: ``python -m agent.daemon.job KIND --state DIR [--config FILE]``.

The daemon starts every run here so that probes, scapy, nmap parsing and profile data are imported only by the
run that needs them and are gone with the process when it ends: the daemon stays at its idle footprint. The
child commits its results to the spool (and the inspection record) itself, then prints a RunOutcome line for
the daemon's metrics. File integrity lowers its own CPU and I/O priority first.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent.daemon.config import DaemonConfig, load_config
from agent.daemon.outcome import ProbeTiming, RunOutcome
from agent.errors import UserError
from agent.state import StateDir

if TYPE_CHECKING:
    from agent.services.context import AgentContext

log = logging.getLogger(__name__)

KINDS = ("self_inspection", "file_integrity", "own_networks", "notices", "task", "task_failed")
ACTOR = "precaution-agent"


def lower_priority(config: DaemonConfig) -> tuple[int, int]:
    import os

    import psutil

    os.nice(config.self_inspection.nice)
    proc = psutil.Process()
    if config.self_inspection.ionice_idle:
        proc.ionice(psutil.IOPRIO_CLASS_IDLE)
    return os.nice(0), int(proc.ionice().ioclass)


def context(config: DaemonConfig, state: StateDir, kind: str) -> AgentContext:
    """The services' context: config.toml (probes, profile, waivers, unit) with what agent.toml sets for the
    daemon's runs: the file-integrity paths and the unit's own networks."""
    from agent.config import load_config as load_agent_config
    from agent.record import Recorder
    from agent.services.context import AgentContext

    base = load_agent_config(None, state)
    probes = dict(base.probes)
    if kind in ("file_integrity", "task"):  # a task may re-test a file-integrity finding
        probes["files"] = {**probes.get("files", {}),
                           "paths": [str(p) for p in config.self_inspection.file_integrity_paths]}
    netscan = base.netscan.model_copy(update={"own_networks": list(config.self_inspection.own_networks)})
    notice = base.notice
    if notice.unit is None:  # the unit this agent enrolled in is the one notices must name
        from agent.daemon.identity import Identity

        enrolment = Identity(config.identity_dir(state.path)).enrolment()
        if enrolment is not None:
            notice = notice.model_copy(update={"unit": enrolment.unit})
    agent_config = base.model_copy(update={"probes": probes, "netscan": netscan, "notice": notice})
    return AgentContext(state, agent_config, Recorder(state, ACTOR))


def own_network_targets(networks: list[str]) -> list[str]:
    """Loopback networks are tested at their one real address (127.0.0.1, ::1), not 16 million of them."""
    import ipaddress

    out = []
    for text in networks:
        net = ipaddress.ip_network(text, strict=False)
        if net.is_loopback:
            out.append("127.0.0.1/32" if net.version == 4 else "::1/128")
        else:
            out.append(str(net))
    return list(dict.fromkeys(out))


def run_inbox(kind: str, config: DaemonConfig, state: StateDir, task_file: Path | None) -> RunOutcome:
    """Notices delivered by the collector, or one task (agent.daemon.inbox)."""
    from agent.daemon import inbox
    from agent.daemon.results import SHRINKERS
    from agent.daemon.spool import Spool
    from agent.wire.collector_api import TaskItem

    started = time.time()
    ctx = context(config, state, kind)
    spool = Spool(config.spool_path(state.path), config.spool.max_bytes, config.spool.min_free_bytes,
                  shrinkers=SHRINKERS, check=False)
    box = state.path / "inbox"
    try:
        if kind == "notices":
            inbox.handle_notices(ctx, spool, box)
            return RunOutcome(kind=kind, run_id="", ok=True, started=started, finished=time.time(), spooled=True)
        if kind == "task_failed":
            inbox.record_failed_tasks(ctx, box)
            return RunOutcome(kind=kind, run_id="", ok=True, started=started, finished=time.time(), spooled=True)
        assert task_file is not None
        task = TaskItem.model_validate_json(task_file.read_bytes())
        run_id = f"task-{uuid.uuid4().hex}"
        outcome, message, spooled = inbox.run_task(ctx, config, spool, task, box, run_id)
        task_file.unlink()
        return RunOutcome(kind=kind, run_id=run_id, ok=outcome == "completed", started=started, finished=time.time(),
                          spooled=spooled, error=message or None, task_outcome=outcome)
    finally:
        spool.close()


def run(kind: str, config: DaemonConfig, state: StateDir, task_file: Path | None = None) -> RunOutcome:
    from agent.daemon.results import SHRINKERS, netscan_coverage, run_report, spool_run
    from agent.daemon.spool import Spool

    if kind in ("notices", "task", "task_failed"):
        return run_inbox(kind, config, state, task_file)

    nice, ioclass = lower_priority(config) if kind == "file_integrity" else (0, 0)
    started = time.time()
    run_id = f"{kind}-{uuid.uuid4().hex}"
    ctx = context(config, state, kind)
    if kind == "own_networks":
        from agent.services import netscan

        targets = own_network_targets(config.self_inspection.own_networks)
        net = netscan.run(ctx, netscan.NetscanRequest(targets=targets, scope=",".join(targets)))
        result, report = net.result, run_report(run_id, "netscan", net.result, coverage=netscan_coverage(net))
    else:
        from agent.scan import select_probes
        from agent.services import scan

        host_probes = [p.id for p in select_probes()]
        wanted = ("files",) if kind == "file_integrity" else tuple(p for p in host_probes if p != "files")
        outcome = scan.run(ctx, scan.ScanRequest(probes=wanted))
        result, report = outcome.result, run_report(run_id, "scan", outcome.result)
    spool = Spool(config.spool_path(state.path), config.spool.max_bytes, config.spool.min_free_bytes,
                  shrinkers=SHRINKERS, check=False)
    refused = spool_run(spool, report)
    spool.close()
    drift = dict(result.baseline.counts) if result.baseline and result.baseline.status == "compared" else {}
    return RunOutcome(kind=kind, run_id=run_id, ok=not result.probe_errors, started=started, finished=time.time(),
                      probes=[ProbeTiming(probe=r.probe, status=r.status, duration_s=r.duration_s)
                              for r in result.probes],
                      findings=result.counts(), drift=drift, spooled=refused is None, spool_refused=refused,
                      nice=nice, ionice_class=ioclass)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agent.daemon.job")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--task-file", type=Path)
    parser.add_argument("--state", type=Path, required=True, help="the daemon's state directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    started = time.time()
    try:
        outcome = run(args.kind, config, StateDir(args.state), args.task_file)
    except UserError as exc:  # refused before anything ran (bad profile, scope...): a failed run, said clearly
        log.error("%s not run: %s", args.kind, exc)
        outcome = RunOutcome(kind=args.kind, run_id="", ok=False, started=started, finished=time.time(),
                             error=str(exc))
    import resource

    peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    outcome = outcome.model_copy(update={"peak_rss_bytes": peak_kib * 1024})
    sys.stdout.write(outcome.model_dump_json() + "\n")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
