"""The agent daemon: idle footprint, peak RSS of its runs, time from finding to collector.

A real `precaution agent run` process (and a real collector over TLS for the latency part). The reference
measured in the same run is a bare Python interpreter sleeping (what any Python daemon costs at least).
``PRECAUTION_BENCH_IDLE_S`` sets the idle window (default 120 s; the issue's 10 minutes with 600).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

TITLE = "Agent daemon: idle footprint, run peaks, finding-to-collector latency"
ROOT = Path(__file__).resolve().parents[1]
MiB = 2**20


def _sample(proc: psutil.Process, seconds: float) -> tuple[float, float, float, float]:
    """(max RSS, mean RSS, CPU %, USS at the end) of one process over ``seconds``."""
    rss: list[int] = []
    start_cpu = sum(proc.cpu_times()[:2])
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        rss.append(proc.memory_info().rss)
        time.sleep(1.0)
    cpu = sum(proc.cpu_times()[:2]) - start_cpu
    return max(rss), statistics.fmean(rss), 100.0 * cpu / (time.monotonic() - start), proc.memory_full_info().uss


def _idle(tmp: Path, idle_s: float) -> dict[str, float]:
    from tests.daemon.agentproc import AgentProcess, ran_ok

    agent = AgentProcess(tmp / "idle", '[schedule.self_inspection]\ninterval = "30d"\n'
                         '[schedule.file_integrity]\ninterval = "30d"\n[schedule.own_networks]\ninterval = "30d"\n')
    agent.start()
    try:
        figures = agent.wait_for(lambda f: all(ran_ok(k)(f) for k in ("self_inspection", "file_integrity",
                                                                       "own_networks")), timeout=900)
        assert agent.proc is not None
        proc = psutil.Process(agent.proc.pid)
        time.sleep(6)  # one housekeeping round after the last run
        max_rss, mean_rss, cpu, uss = _sample(proc, idle_s)
        peaks = {k: figures.get("precaution_agent_run_peak_resident_memory_bytes", kind=k) or 0.0
                 for k in ("self_inspection", "file_integrity", "own_networks")}
    finally:
        agent.stop(signal.SIGTERM)
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    try:
        time.sleep(1)
        bare_max, _, bare_cpu, bare_uss = _sample(psutil.Process(bare.pid), min(idle_s, 30))
    finally:
        bare.kill()
        bare.wait()
    return {"max_rss": max_rss, "mean_rss": mean_rss, "cpu": cpu, "uss": uss, "bare_rss": bare_max,
            "bare_cpu": bare_cpu, "bare_uss": bare_uss,
            **{f"peak_{k}": v for k, v in peaks.items()}}


def _latency(tmp: Path, window_s: float) -> list[float]:
    """Seconds from a self-inspection's end (its run report spooled) to the collector storing it."""
    from tests.collector.conftest import FAST_ENV, running_collector, unit_name
    from tests.daemon.agentproc import AgentProcess

    with running_collector(tmp, "sqlite", FAST_ENV) as collector:
        agent = AgentProcess(tmp / "lat", '[collector]\npush_interval = "30s"\n'
                             '[schedule.self_inspection]\ninterval = "4s"\nsplay = 0.0\n'
                             '[schedule.file_integrity]\ninterval = "30d"\n[schedule.own_networks]\ninterval = "30d"\n')
        agent.state.mkdir(parents=True)
        unit = unit_name()
        subprocess.run([sys.executable, "-m", "agent.cli.main", "agent", "enroll", collector.url, "--token",
                        collector.token(unit), "--unit", unit, "--ca", collector.ca, "--config", str(agent.config)],
                       cwd=ROOT, env=agent.env, check=True, capture_output=True)
        agent.start()
        time.sleep(window_s)
        agent.stop()
        with contextlib.closing(sqlite3.connect(str(collector.home / "collector.db"))) as db:
            rows = db.execute("SELECT finished, received_at FROM runs WHERE kind = 'scan' AND run_id LIKE "
                              "'self_inspection-%'").fetchall()
    import datetime as dt

    def parse(text: str) -> float:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()

    return sorted(parse(received) - parse(finished) for finished, received in rows)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[index]


def run() -> str:
    idle_s = float(os.environ.get("PRECAUTION_BENCH_IDLE_S", "120"))
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp_name:
        tmp = Path(tmp_name)
        idle = _idle(tmp, idle_s)
        lat = _latency(tmp, 60.0)
    rss_ok = idle["max_rss"] <= 40e6  # the 40 MB, read as decimal megabytes
    cpu_ok = idle["cpu"] <= 0.1
    lines = [
        "| what | precaution agent | reference: bare Python interpreter (same run) | budget |",
        "|---|---|---|---|",
        f"| idle RSS over {idle_s:.0f} s, not enrolled (max / mean) | **{idle['max_rss'] / 1e6:.1f} MB** "
        f"({idle['max_rss'] / MiB:.1f} MiB) / {idle['mean_rss'] / MiB:.1f} MiB | {idle['bare_rss'] / MiB:.1f} MiB "
        f"({idle['max_rss'] / idle['bare_rss']:.1f}x) | <= 40 MB: {'PASS' if rss_ok else 'OVER'} |",
        f"| idle USS (memory the agent alone holds; RSS also counts shared library pages) | "
        f"{idle['uss'] / MiB:.1f} MiB | {idle['bare_uss'] / MiB:.1f} MiB | |",
        f"| idle CPU over {idle_s:.0f} s | **{idle['cpu']:.3f} %** | {idle['bare_cpu']:.3f} % | <= 0.1 %: "
        f"{'PASS' if cpu_ok else 'OVER'} |",
        f"| peak RSS of a full self-inspection (its child process) | {idle['peak_self_inspection'] / MiB:.1f} MiB"
        " | | |",
        f"| peak RSS of a file-integrity run (child, default paths) | {idle['peak_file_integrity'] / MiB:.1f} MiB"
        " | | |",
        f"| peak RSS of the own-network test (loopback scan, child) | {idle['peak_own_networks'] / MiB:.1f} MiB"
        " | | |",
        f"| run end to collector storing it, {len(lat)} self-inspections (p50 / p99) | "
        f"{_pct(lat, 0.5) * 1000:.0f} / {_pct(lat, 0.99) * 1000:.0f} ms | | |",
    ]
    note = ("\nMost of the idle RSS is pydantic (validating agent.toml and the run results: +11 MiB for the first "
            "model) and prometheus-client with its HTTP server (+12 MiB over a bare interpreter); probes, scapy and "
            "the profile are never imported by the daemon. The idle agent here is not enrolled; an enrolled one also "
            "holds its collector connection and the protocol models (not measured idle here). "
            f"The idle window is {idle_s:.0f} s, shorter than the issue's 10 minutes (set "
            "PRECAUTION_BENCH_IDLE_S=600 for that); the agent had finished its first self-inspection, file "
            "integrity and own-network runs before the window opened, and had nothing due during it. Runs are "
            "child processes: the daemon's RSS is the same before and after them. osquery's watchdog allows "
            "200 MB and 10 % CPU; the Wazuh agent uses about 35 MB (issue 11). Latency: the collector's "
            "received_at minus the run's finish time, with the daemon pushing as soon as a run has spooled "
            f"(sample of {len(lat)}: p99 is the largest value or close to it).\n")
    return "\n".join(lines) + "\n" + note
