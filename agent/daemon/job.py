"""One scheduled run in a child process: ``python -m agent.daemon.job KIND [--config FILE]``.

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

from agent.daemon.config import DaemonConfig, load_config
from agent.daemon.outcome import ProbeTiming, RunOutcome
from agent.state import state_dir

log = logging.getLogger(__name__)

KINDS = ("self_inspection", "file_integrity")
ACTOR = "precaution-agent"


def lower_priority(config: DaemonConfig) -> tuple[int, int]:
    import os

    import psutil

    os.nice(config.self_inspection.nice)
    proc = psutil.Process()
    if config.self_inspection.ionice_idle:
        proc.ionice(psutil.IOPRIO_CLASS_IDLE)
    return os.nice(0), int(proc.ionice().ioclass)


def run(kind: str, config: DaemonConfig, state: Path) -> RunOutcome:
    from agent.daemon.results import SHRINKERS, spool_scan
    from agent.daemon.spool import Spool

    nice, ioclass = lower_priority(config) if kind == "file_integrity" else (0, 0)
    started = time.time()
    run_id = f"{kind}-{uuid.uuid4().hex}"
    result = _scan(kind, config, state)
    spool = Spool(config.spool_path(state), config.spool.max_bytes, config.spool.min_free_bytes,
                  shrinkers=SHRINKERS, check=False)
    refused = spool_scan(spool, run_id, result)
    spool.close()
    counts = result.counts()
    drift = dict(result.baseline.counts) if result.baseline and result.baseline.status == "compared" else {}
    return RunOutcome(kind=kind, run_id=run_id, ok=not result.probe_errors, started=started, finished=time.time(),
                      probes=[ProbeTiming(probe=r.probe, status=r.status, duration_s=r.duration_s)
                              for r in result.probes],
                      findings=counts, drift=drift, spooled=refused is None, spool_refused=refused, nice=nice,
                      ionice_class=ioclass)


def _scan(kind: str, config: DaemonConfig, state: Path):  # type: ignore[no-untyped-def]
    from agent import record
    from agent.baseline_files import BaselineFiles, host_scope
    from agent.config import load_config as load_probe_config
    from agent.scan import run_scan, select_probes
    from baselines.profile import load_profile
    from baselines.waivers import load_waivers
    from probes.base import ProbeSettings
    from probes.transport import LocalTransport

    probe_config = load_probe_config()
    options = dict(probe_config.probes)
    if kind == "file_integrity":
        options["files"] = {**options.get("files", {}),
                            "paths": [str(p) for p in config.self_inspection.file_integrity_paths]}
    settings = ProbeSettings(cache_dir=state / "cache", options=options)
    probes = select_probes(settings=settings)
    probes = [p for p in probes if (p.id == "files") == (kind == "file_integrity")]
    waivers_file = Path(probe_config.waivers) if probe_config.waivers else state / "waivers.yaml"
    waivers = load_waivers(waivers_file) if waivers_file.exists() else []
    profile = load_profile(probe_config.profile)
    result = run_scan(LocalTransport(), profile, waivers, probes, baselines=BaselineFiles(), scope=host_scope("/"))
    record.append("scan", ACTOR, scope={"host": result.host.hostname, "root": "/", "schedule": kind},
                  tests=tuple(r.probe for r in result.probes),
                  summary={"findings": result.counts(), "probe_errors": len(result.probe_errors),
                           "baseline": result.baseline.status if result.baseline else None},
                  results=result.to_json(), state=state)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agent.daemon.job")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--config", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    outcome = run(args.kind, config, state_dir())
    import resource

    peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    outcome = outcome.model_copy(update={"peak_rss_bytes": peak_kib * 1024})
    sys.stdout.write(outcome.model_dump_json() + "\n")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
