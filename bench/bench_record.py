"""The inspection record: append rate, and verification of a 100,000-entry record by this tree and, side by side
in the same run, by the trees before the change (same file, same launch path, alternating rounds).

Trees to compare: $PRECAUTION_BENCH_BEFORE (the tree before issue 8, e.g. `git archive 89ef654 | tar -x -C DIR`)
and $PRECAUTION_BENCH_REFERENCE (any other checkout, e.g. main before a performance change). Each verification
runs in its own `python -S -c` process with that tree first on sys.path, so every tree pays the same start-up.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

TITLE = "Inspection record: append and verify"

VERIFY_ENTRIES = 100_000
ROUNDS = 3
BUDGET_S = 5.0
TREE_ENVS = ("PRECAUTION_BENCH_BEFORE", "PRECAUTION_BENCH_REFERENCE")
HERE_TREE = str(Path(__file__).resolve().parent.parent)


def _verify_in(tree: str, path: Path) -> float:
    """Seconds ``tree``'s agent.record.verify takes on ``path`` (in a fresh process; imports not counted)."""
    site = sysconfig.get_paths()["purelib"]
    code = (f"import sys, time; sys.path[:0] = [{tree!r}, {site!r}]; from pathlib import Path; "
            "from agent import record; t = time.perf_counter(); "
            f"r = record.verify(Path({str(path)!r})); s = time.perf_counter() - t; "
            f"assert r.ok and r.entries == {VERIFY_ENTRIES}, r.message(); print(s)")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def _build(folder: Path) -> tuple[Path, float, float, float]:
    from agent import record
    from agent.keys import agent_signing_key, key_fingerprint
    from agent.state import StateDir
    from agent.wire.base import SeverityCounts
    from agent.wire.record import HostScope, ScanContent, ScanSummaryDoc

    def content(high: int) -> ScanContent:
        return ScanContent(scope=HostScope(host="bench"), tests=["accounts", "listeners"], summary=ScanSummaryDoc(
            findings=SeverityCounts(info=0, low=0, medium=1, high=high, critical=0), probe_errors=0, baseline=None))

    small = folder / "small"
    recorder = record.Recorder(StateDir(small), "bench")
    n_append = 300
    t0 = time.perf_counter()
    for i in range(n_append):
        recorder.write(content(i % 3), results={"i": i})
    append_rate = n_append / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    assert record.verify(small / record.RECORD_FILE).ok
    small_verify = time.perf_counter() - t0

    # A 100k-entry record, built with the same seal() the appender uses (one write, not 100k fsyncs).
    big = folder / "big"
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
    build_rate = VERIFY_ENTRIES / (time.perf_counter() - t0)
    return big / record.RECORD_FILE, append_rate, small_verify, build_rate


def run() -> str:
    trees = [("this tree", HERE_TREE)] + [(f"`{env}`: {Path(os.environ[env]).name}", os.environ[env])
                                          for env in TREE_ENVS if os.environ.get(env)]
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="precaution-bench-record-") as tmp:
        path, append_rate, small_verify, build_rate = _build(Path(tmp))
        size_mb = path.stat().st_size / 2**20
        times: dict[str, list[float]] = {label: [] for label, _ in trees}
        _verify_in(HERE_TREE, path)  # page cache, bytecode
        for _ in range(ROUNDS):  # alternating, so that a change of load hits every tree alike
            for label, tree in trees:
                times[label].append(_verify_in(tree, path))
    load_end = os.getloadavg()
    ours = statistics.median(times["this tree"])
    lines = [
        f"Record of {VERIFY_ENTRIES:,} scan entries ({size_mb:.0f} MiB, the entry format of this tree), verified "
        f"by each tree in its own process; median of {ROUNDS} alternating rounds (min, max).",
        "",
        "| verify 100,000 entries | median | min | max | entries/s | vs this tree |",
        "|---|---|---|---|---|---|",
    ]
    for label, _ in trees:
        series = times[label]
        med = statistics.median(series)
        lines.append(f"| {label} | {med:.2f} s | {min(series):.2f} s | {max(series):.2f} s | "
                     f"{VERIFY_ENTRIES / med:.0f} | {med / ours:.2f}x |")
    verdict = "within budget" if ours <= BUDGET_S else "OVER budget"
    lines += [
        "",
        "| record operation (this tree) | figure |",
        "|---|---|",
        f"| append (hash, Ed25519 sign, fsync, head update, flock) | {append_rate:.0f} entries/s |",
        f"| verify 300 entries | {small_verify * 1000:.1f} ms |",
        f"| sign-and-chain without fsync (building the 100k record) | {build_rate:.0f} entries/s |",
        "",
        f"Load average (1/5/15 min, {os.cpu_count()} cores) at the start: "
        f"{'/'.join(f'{x:.1f}' for x in load_start)}, at the end: {'/'.join(f'{x:.1f}' for x in load_end)}; "
        "on a loaded machine compare the rows with each other (same run, same file).",
        "",
        f"Budget: verify of {VERIFY_ENTRIES:,} entries <= {BUDGET_S:.0f} s: **{verdict}** ({ours:.2f} s). Every "
        "hash, link and sequence number is checked and every body parsed; one Ed25519 verification (the last "
        "entry's) covers the chain, individual signatures are checked only to name a bad entry. Bodies are parsed "
        "with orjson (json's parser for what orjson refuses), most of the time a verify took before.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
