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
from typing import Any

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


IDLE_TOML = ('[schedule.self_inspection]\ninterval = "30d"\n[schedule.file_integrity]\ninterval = "30d"\n'
             '[schedule.own_networks]\ninterval = "30d"\n')
KINDS = ("self_inspection", "file_integrity", "own_networks")


def _idle_agent(tmp: Path, idle_s: float, enrolled: bool) -> dict[str, float]:
    """One agent through its first runs, then idle for ``idle_s``; enrolled: with a real collector over TLS,
    everything pushed and its connection held (task polls every 30 s, the collector's default)."""
    from tests.daemon.agentproc import AgentProcess, ran_ok

    with contextlib.ExitStack() as stack:
        agent = AgentProcess(tmp / ("enrolled" if enrolled else "idle"), IDLE_TOML)
        pushed = ran_ok("self_inspection")
        if enrolled:
            from tests.collector.conftest import running_collector, unit_name

            collector = stack.enter_context(running_collector(tmp, "sqlite"))
            agent.state.mkdir(parents=True)
            unit = unit_name()
            subprocess.run([sys.executable, "-m", "agent.cli.main", "agent", "enroll", collector.url, "--token",
                            collector.token(unit), "--unit", unit, "--ca", collector.ca, "--config",
                            str(agent.config)], cwd=ROOT, env=agent.env, check=True, capture_output=True)

            def pushed(f: Any) -> bool:
                return (sum(f.by("precaution_agent_spool_items", "priority").values()) == 0
                        and (f.get("precaution_agent_last_successful_push_timestamp_seconds") or 0) > 0)
        agent.start()
        try:
            figures = agent.wait_for(lambda f: all(ran_ok(k)(f) for k in KINDS) and pushed(f), timeout=900)
            assert agent.proc is not None
            proc = psutil.Process(agent.proc.pid)
            time.sleep(6)  # one housekeeping round after the last run
            max_rss, mean_rss, cpu, uss = _sample(proc, idle_s)
            peaks = {k: figures.get("precaution_agent_run_peak_resident_memory_bytes", kind=k) or 0.0 for k in KINDS}
            up = (agent.figures() or figures).get("precaution_agent_collector_up") or 0.0
        finally:
            agent.stop(signal.SIGTERM)
    return {"max_rss": max_rss, "mean_rss": mean_rss, "cpu": cpu, "uss": uss, "collector_up": up,
            **{f"peak_{k}": v for k, v in peaks.items()}}


def _idle(tmp: Path, idle_s: float) -> dict[str, float]:
    out = _idle_agent(tmp, idle_s, enrolled=False)
    out.update({f"enrolled_{k}": v for k, v in _idle_agent(tmp, idle_s, enrolled=True).items()})
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    try:
        time.sleep(1)
        bare_max, _, bare_cpu, bare_uss = _sample(psutil.Process(bare.pid), min(idle_s, 30))
    finally:
        bare.kill()
        bare.wait()
    return {**out, "bare_rss": bare_max, "bare_cpu": bare_cpu, "bare_uss": bare_uss}


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
    cpu_ok = idle["cpu"] <= 0.1 and idle["enrolled_cpu"] <= 0.1
    e = "enrolled_"

    def rss_row(label: str, p: str) -> str:
        ok = idle[f"{p}max_rss"] <= 40e6  # the 40 MB, read as decimal megabytes
        return (f"| idle RSS over {idle_s:.0f} s, {label} (max / mean) | **{idle[f'{p}max_rss'] / 1e6:.1f} MB** "
                f"({idle[f'{p}max_rss'] / MiB:.1f} MiB) / {idle[f'{p}mean_rss'] / MiB:.1f} MiB | "
                f"{idle['bare_rss'] / MiB:.1f} MiB ({idle[f'{p}max_rss'] / idle['bare_rss']:.1f}x) | "
                f"<= 40 MB: {'PASS' if ok else 'OVER'} |")

    lines = [
        "| what | precaution agent | reference: bare Python interpreter (same run) | budget |",
        "|---|---|---|---|",
        rss_row("not enrolled", ""),
        rss_row("enrolled, connected to a collector over TLS" if idle[f"{e}collector_up"] else
                "enrolled (collector NOT reachable at the end)", e),
        f"| idle USS, not enrolled / enrolled (memory the agent alone holds; RSS also counts shared library "
        f"pages) | {idle['uss'] / MiB:.1f} / {idle[f'{e}uss'] / MiB:.1f} MiB | {idle['bare_uss'] / MiB:.1f} MiB | |",
        f"| idle CPU over {idle_s:.0f} s, not enrolled / enrolled | **{idle['cpu']:.3f} / {idle[f'{e}cpu']:.3f} %** "
        f"| {idle['bare_cpu']:.3f} % | <= 0.1 %: {'PASS' if cpu_ok else 'OVER'} |",
        f"| peak RSS of a full self-inspection (its child process) | {idle['peak_self_inspection'] / MiB:.1f} MiB"
        " | | |",
        f"| peak RSS of a file-integrity run (child, default paths) | {idle['peak_file_integrity'] / MiB:.1f} MiB"
        " | | |",
        f"| peak RSS of the own-network test (loopback scan, child) | {idle['peak_own_networks'] / MiB:.1f} MiB"
        " | | |",
        f"| run end to collector storing it, {len(lat)} self-inspections (p50 / p99) | "
        f"{_pct(lat, 0.5) * 1000:.0f} / {_pct(lat, 0.99) * 1000:.0f} ms | | |",
    ]
    note = ("\nWhere the idle RSS goes (VmRSS after each import or step, measured separately on this machine): "
            "the bare interpreter ~10.6 MiB; pydantic ~11 MiB (its import, the models it builds, importlib.metadata "
            "that its plugin loader pulls in, and the touched pages of pydantic-core's shared object); "
            "prometheus-client with its HTTP server (urllib.request, hence ssl and libcrypto) and sqlite3 ~5 MiB; "
            "typing/dataclasses/argparse ~3.5 MiB. Enrolled, about 3.5 MiB more: PyNaCl with cffi and libsodium "
            "for the request signatures ~0.9 MiB, the TLS context pinned to the collector CA ~0.7 MiB, the push "
            "thread with its own spool connection, and the TLS connection. The daemon imports none of the wire "
            "models (it reads the collector's answers with agent.wire.collector_answers and splices batches from "
            "the spooled JSON, design note 20), not httpx (http.client), not config.toml's models; each spool "
            "connection keeps at most 256 KiB of pages (SQLite's default 2 MiB stayed after a batch); "
            "tests/test_cli_imports.py checks these imports. Probes, scapy and the profile are never imported by "
            "the daemon: runs are child processes, so its RSS is the same before and after them. After a run and "
            "after the spool is drained the daemon collects garbage and calls malloc_trim; it allows two malloc "
            "arenas for its threads (agent.daemon.footprint). The enrolled agent holds one TLS connection to the "
            "collector (task polls every 30 s, the collector's default). "
            f"The idle window is {idle_s:.0f} s (PRECAUTION_BENCH_IDLE_S; the issue's 10 minutes is 600); both "
            "agents had finished their first self-inspection, file integrity and own-network runs (and the "
            "enrolled one had pushed them) before the window opened, and had nothing due during it. osquery's "
            "watchdog allows 200 MB and 10 % CPU; the Wazuh agent uses about 35 MB (issue 11). Latency: the "
            "collector's received_at minus the run's finish time, with the daemon pushing as soon as a run has "
            f"spooled (sample of {len(lat)}: p99 is the largest value or close to it).\n")
    if max(idle["max_rss"], idle["enrolled_max_rss"]) > 40e6:
        note += (f"\nOVER the 40 MB budget (by {max(0.0, idle['max_rss'] - 40e6) / 1e6:.1f} MB not enrolled, "
                 f"{max(0.0, idle['enrolled_max_rss'] - 40e6) / 1e6:.1f} MB enrolled). What is left is mostly "
                 "pydantic itself (~11 MiB: agent.toml, the enrolment file, run outcomes and the collector's "
                 "answers are validated with it), prometheus-client (~5 MiB) and, enrolled, PyNaCl and TLS. "
                 "Getting under needs a daemon without pydantic (those few documents checked by hand, or in the "
                 "child processes that import it anyway) or a lighter metrics endpoint. Not done yet.\n")
    return "\n".join(lines) + "\n" + note
