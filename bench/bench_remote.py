"""Remote host tests over SSH (10 namespace test hosts, parallel vs sequential) and the inspection record
(append and verify rates, verify of 100k entries)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from baselines.profile import Profile

TITLE = "Remote SSH inspection and inspection record"

N_HOSTS = 10
VERIFY_ENTRIES = 100_000
# The budget is measured on the host-configuration probes; "files" (file integrity over the dpkg database,
# hundreds of reads) and "processes"/"connections" (every /proc entry of the shared PID namespace, so ~10x the
# work when 10 namespace hosts share one kernel) are timed once on one host beside it.
BUDGET_PROBES = ("accounts", "authorized_keys", "cron", "firewall", "listeners", "mounts", "sshd", "sudoers",
                 "sysctl", "startup_files", "systemd_units")


_PROFILE: list[Profile] = []  # loaded once, before the worker processes fork (as `precaution remote` does)


def _profile() -> Profile:
    from baselines.profile import load_profile

    if not _PROFILE:
        # Parsing the default profile (pure-Python YAML) costs ~0.5 s of CPU: once per run, not once per host.
        _PROFILE.append(load_profile(None))
    return _PROFILE[0]


def _scan_host(ip: str, key: Path, known: Path, only: tuple[str, ...] = BUDGET_PROBES) -> tuple[float, int]:
    """Wall time of one host's scan and its number of probe errors (timeouts under load count here)."""
    from agent.scan import run_scan, select_probes
    from probes.remote.ssh_transport import SSHEndpoint, SSHOptions, SSHTransport

    profile = _profile()
    started = time.perf_counter()
    options = SSHOptions(key_file=str(key), use_agent=False, known_hosts=known, accept_new_host_key=True)
    with SSHTransport(SSHEndpoint(ip), options) as transport:
        known_ids = {p.id for p in select_probes()}
        result = run_scan(transport, profile, [], select_probes([p for p in only if p in known_ids]))
    return time.perf_counter() - started, len(result.probe_errors)


def _login_cost(ip: str, key: Path, known: Path) -> float:
    """Wall time of one bare command on a new channel: what each channel costs in login-shell start-up."""
    from probes.remote.ssh_transport import SSHEndpoint, SSHOptions, SSHTransport

    options = SSHOptions(key_file=str(key), use_agent=False, known_hosts=known)
    with SSHTransport(SSHEndpoint(ip), options) as transport:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            transport._exec("true", 10.0)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _busy() -> float:
    """CPU seconds the whole machine has spent busy (all processes, all cores)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _ssh_section() -> list[str]:
    from tests.remote.conftest import build_ssh_lab, close_ssh_lab_parts

    lab = build_ssh_lab(N_HOSTS)
    try:
        ips = [h.ip for h in lab.hosts]
        known = Path(tempfile.mkdtemp()) / "known_hosts"
        _scan_host(ips[0], lab.client_key, known)  # warm-up; records every host key below
        for ip in ips[1:]:
            _scan_host(ip, lab.client_key, known)
        login = _login_cost(ips[0], lab.client_key, known)
        idle0, t_idle = _busy(), time.perf_counter()
        time.sleep(2.0)
        background = (_busy() - idle0) / (time.perf_counter() - t_idle)  # cores other work keeps busy
        one = statistics.median(_scan_host(ips[0], lab.client_key, known)[0] for _ in range(3))
        busy0 = _busy()
        t0 = time.perf_counter()
        seq_errors = sum(_scan_host(ip, lab.client_key, known)[1] for ip in ips)
        sequential = time.perf_counter() - t0
        cpu_host = (_busy() - busy0) / N_HOSTS
        # One process per host, and threads of one process (as `precaution remote` runs them).
        t0 = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(N_HOSTS) as pool:
            par = pool.starmap(_scan_host, [(ip, lab.client_key, known) for ip in ips])
        parallel = time.perf_counter() - t0
        par_errors = sum(e for _, e in par)
        busy0 = _busy()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(N_HOSTS) as threads:
            thr = list(threads.map(lambda ip: _scan_host(ip, lab.client_key, known), ips))
        threaded = time.perf_counter() - t0
        busy_threaded = (_busy() - busy0) / threaded
        thr_errors = sum(e for _, e in thr)
        full_one, full_errors = _scan_host(ips[0], lab.client_key, known, only=())
    finally:
        close_ssh_lab_parts(lab.lab, lab.hosts, lab.dir)
    load = os.getloadavg()[0]
    budget = 2 * one
    best = min(parallel, threaded)
    verdict = "within budget" if best <= budget else "OVER budget"
    cores = os.cpu_count() or 1
    return [
        f"All host probes, default profile, over SSH (key auth, one batch shell per host) to namespace test hosts "
        f"(OpenSSH {_openssh_version()}).",
        "",
        f"Probes: {', '.join(BUDGET_PROBES)}.",
        "",
        "| run | wall time |",
        "|---|---|",
        f"| 1 host (median of 3) | {one:.2f} s |",
        f"| {N_HOSTS} hosts sequentially | {sequential:.2f} s ({seq_errors} probe errors) |",
        f"| {N_HOSTS} hosts in parallel, one process each | {parallel:.2f} s ({sequential / parallel:.1f}x faster "
        f"than sequential; {par_errors} probe errors) |",
        f"| {N_HOSTS} hosts in parallel, threads of one process | {threaded:.2f} s ({thr_errors} probe errors) |",
        f"| 1 host, every host probe (incl. files, processes, connections) | {full_one:.2f} s "
        f"({full_errors} probe errors) |",
        "",
        f"Budget: {N_HOSTS} hosts in parallel within 2x one host ({budget:.2f} s): **{verdict}** "
        f"({best / one:.2f}x). Load average during the run: {load:.1f} on {cores} cores.",
        "",
        f"Where the time goes: during the sequential run the machine was busy {cpu_host:.2f} CPU-seconds per host "
        f"(client, sshd and the commands on the test host together; {background:.1f} cores were busy with other "
        f"work just before), and the threaded parallel run kept {busy_threaded:.1f} of the {cores} cores busy: "
        "the test hosts share this machine's CPUs with the client, so the parallel run is bound by CPU here, not "
        f"by round trips. Every SSH channel starts the target user's login shell, {login * 1000:.0f} ms for a bare "
        "command here (root's ~/.bashrc on this machine runs `pyenv init`): a scan opens one channel, a batch "
        "shell that all probes share for batched reads and commands. Against real hosts the work on the target "
        "runs on the target's CPU.",
    ]


def _openssh_version() -> str:
    import subprocess

    out = subprocess.run(["ssh", "-V"], capture_output=True, text=True)
    return (out.stderr or out.stdout).split(",")[0].strip()


def _record_section() -> list[str]:
    from agent import record
    from agent.keys import agent_signing_key, key_fingerprint
    from agent.state import StateDir
    from agent.wire.base import SeverityCounts
    from agent.wire.record import HostScope, ScanContent, ScanSummaryDoc

    def content(high: int) -> ScanContent:
        return ScanContent(scope=HostScope(host="bench"), tests=["accounts", "listeners"], summary=ScanSummaryDoc(
            findings=SeverityCounts(info=0, low=0, medium=1, high=high, critical=0), probe_errors=0, baseline=None))

    state = Path(tempfile.mkdtemp(prefix="precaution-bench-record-"))
    recorder = record.Recorder(StateDir(state), "bench")
    n_append = 300
    t0 = time.perf_counter()
    for i in range(n_append):
        recorder.write(content(i % 3), results={"i": i})
    append_rate = n_append / (time.perf_counter() - t0)
    path = state / record.RECORD_FILE
    t0 = time.perf_counter()
    assert record.verify(path).ok
    small_verify = time.perf_counter() - t0

    # A 100k-entry record, built with the same seal() the appender uses (one write, not 100k fsyncs).
    big = Path(tempfile.mkdtemp(prefix="precaution-bench-record-"))
    key = agent_signing_key(StateDir(big))
    fp = key_fingerprint(key.public_key())
    prev = record.GENESIS
    now = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    with open(big / record.RECORD_FILE, "wb") as fh:
        for seq in range(1, VERIFY_ENTRIES + 1):
            body = record.make_body(seq, prev, fp, "bench", content(seq % 3), time=now, results={"seq": seq})
            line, entry = record.seal(body, key)
            fh.write(line)
            prev = entry.link
    build = time.perf_counter() - t0
    size_mb = os.path.getsize(big / record.RECORD_FILE) / 2**20
    t0 = time.perf_counter()
    result = record.verify(big / record.RECORD_FILE)
    verify_big = time.perf_counter() - t0
    assert result.ok and result.entries == VERIFY_ENTRIES, result.message()
    verdict = "within budget" if verify_big <= 5.0 else "OVER budget"
    return [
        "",
        "| record operation | figure |",
        "|---|---|",
        f"| append (hash, Ed25519 sign, fsync, head update, flock) | {append_rate:.0f} entries/s |",
        f"| verify {n_append} entries | {small_verify * 1000:.1f} ms |",
        f"| sign-and-chain without fsync (building the 100k record) | {VERIFY_ENTRIES / build:.0f} entries/s |",
        f"| verify {VERIFY_ENTRIES:,} entries ({size_mb:.0f} MiB) | {verify_big:.2f} s "
        f"({VERIFY_ENTRIES / verify_big:.0f} entries/s) |",
        "",
        f"Budget: verify of {VERIFY_ENTRIES:,} entries <= 5 s: **{verdict}**. Every hash, link and sequence number "
        "is checked; one Ed25519 verification (the last entry's) covers the chain, individual signatures are "
        "checked only to name a bad entry.",
    ]


def run() -> str:
    return "\n".join(_ssh_section() + _record_section())
