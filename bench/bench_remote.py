"""Remote host tests over SSH (10 namespace test hosts, parallel vs sequential) and the inspection record
(append and verify rates, verify of 100k entries)."""

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TITLE = "Remote SSH inspection and inspection record"

N_HOSTS = 10
VERIFY_ENTRIES = 100_000


def _scan_host(ip: str, key: Path, known: Path) -> float:
    from agent.scan import run_scan, select_probes
    from baselines.profile import load_profile
    from probes.remote.ssh_transport import SSHEndpoint, SSHOptions, SSHTransport

    started = time.perf_counter()
    options = SSHOptions(key_file=str(key), use_agent=False, known_hosts=known, accept_new_host_key=True)
    with SSHTransport(SSHEndpoint(ip), options) as transport:
        result = run_scan(transport, load_profile(None), [], select_probes())
    if result.probe_errors:
        raise RuntimeError(f"{ip}: probe errors: {[(r.probe, r.message) for r in result.probe_errors]}")
    return time.perf_counter() - started


def _ssh_section() -> list[str]:
    from tests.remote.conftest import build_ssh_lab, close_ssh_lab_parts

    lab = build_ssh_lab(N_HOSTS)
    try:
        ips = [h.ip for h in lab.hosts]
        known = Path(tempfile.mkdtemp()) / "known_hosts"
        _scan_host(ips[0], lab.client_key, known)  # warm-up; records every host key below
        for ip in ips[1:]:
            _scan_host(ip, lab.client_key, known)
        one = statistics.median(_scan_host(ips[0], lab.client_key, known) for _ in range(3))
        t0 = time.perf_counter()
        for ip in ips:
            _scan_host(ip, lab.client_key, known)
        sequential = time.perf_counter() - t0
        t0 = time.perf_counter()
        with ThreadPoolExecutor(N_HOSTS) as pool:
            list(pool.map(lambda ip: _scan_host(ip, lab.client_key, known), ips))
        parallel = time.perf_counter() - t0
    finally:
        close_ssh_lab_parts(lab.lab, lab.hosts, lab.dir)
    budget = 2 * one
    verdict = "within budget" if parallel <= budget else "OVER budget"
    return [
        f"All host probes, default profile, over SSH (key auth, SFTP) to namespace test hosts "
        f"(OpenSSH {_openssh_version()}).",
        "",
        "| run | wall time |",
        "|---|---|",
        f"| 1 host (median of 3) | {one:.2f} s |",
        f"| {N_HOSTS} hosts sequentially | {sequential:.2f} s |",
        f"| {N_HOSTS} hosts in parallel | {parallel:.2f} s ({sequential / parallel:.1f}x faster than sequential) |",
        "",
        f"Budget: {N_HOSTS} hosts in parallel within 2x one host ({budget:.2f} s): **{verdict}** "
        f"({parallel / one:.2f}x).",
    ]


def _openssh_version() -> str:
    import subprocess

    out = subprocess.run(["ssh", "-V"], capture_output=True, text=True)
    return (out.stderr or out.stdout).split(",")[0].strip()


def _record_section() -> list[str]:
    from agent import record
    from agent.keys import agent_signing_key, key_fingerprint

    state = Path(tempfile.mkdtemp(prefix="precaution-bench-record-"))
    n_append = 300
    t0 = time.perf_counter()
    for i in range(n_append):
        record.append("scan", "bench", tests=("accounts", "listeners"), summary={"findings": {"high": i % 3}},
                      results={"i": i}, state=state)
    append_rate = n_append / (time.perf_counter() - t0)
    path = state / record.RECORD_FILE
    t0 = time.perf_counter()
    assert record.verify(path).ok
    small_verify = time.perf_counter() - t0

    # A 100k-entry record, built with the same seal() the appender uses (one write, not 100k fsyncs).
    big = Path(tempfile.mkdtemp(prefix="precaution-bench-record-"))
    key = agent_signing_key(big)
    fp = key_fingerprint(key.public_key())
    prev = record.GENESIS
    now = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    with open(big / record.RECORD_FILE, "wb") as fh:
        for seq in range(1, VERIFY_ENTRIES + 1):
            body = record.make_body(seq, prev, fp, "scan", "bench", time=now, tests=("accounts", "listeners"),
                                    summary={"findings": {"high": seq % 3, "medium": 1}, "probe_errors": 0},
                                    results={"seq": seq})
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
