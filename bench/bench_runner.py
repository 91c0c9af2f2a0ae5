"""The runner in a long-running process: 200 scans, each with two probes that hang (a command that never
ends, a FIFO read that never gets data), timeout 50 ms. Threads, child processes and RSS are read before and
after. Reference, in the same process: the same probes with cancellation switched off (the runner before this
change abandoned a timed-out probe's thread), 50 cycles, its leaked commands killed afterwards."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import psutil

from agent.runner import run_probes
from probes.base import GatherContext, Probe, Raw
from probes.observation import Row
from probes.transport import LocalTransport

TITLE = "Runner fit for a daemon: 200 scans with hanging probes"
CYCLES = 200
REFERENCE_CYCLES = 50


class _HangsInCommand(Probe[Row]):
    id = "hangs_in_command"
    title = "command that never ends"
    timeout = 0.05

    def gather(self, ctx: GatherContext) -> Raw:
        ctx.transport.run(["sh", "-c", "sleep 1000"], timeout=1000)
        return {}

    @staticmethod
    def parse(raw: Raw) -> Sequence[Row]:
        return []


class _HangsInRead(_HangsInCommand):
    id = "hangs_in_read"
    title = "FIFO read that never gets data"
    fifo = ""

    def gather(self, ctx: GatherContext) -> Raw:
        ctx.transport.read_bytes(self.fifo)
        return {}


def _figures(me: psutil.Process) -> tuple[int, int, float]:
    return threading.active_count(), len(me.children(recursive=True)), me.memory_info().rss / 2**20


def _abandoning_cycle(probes: Sequence[Probe], transport: LocalTransport) -> None:  # type: ignore[type-arg]
    """The old policy: wait for the timeout, then shutdown(wait=False), the worker left running."""
    pool = ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="old-probe")
    futures = [pool.submit(p.gather, GatherContext(transport)) for p in probes]
    wait(futures, timeout=max(p.timeout for p in probes))
    pool.shutdown(wait=False, cancel_futures=True)


def run() -> str:
    me = psutil.Process()
    transport = LocalTransport()
    with tempfile.TemporaryDirectory() as tmp:
        fifo = Path(tmp) / "fifo"
        os.mkfifo(fifo)
        writer = os.open(fifo, os.O_RDWR)
        _HangsInRead.fifo = str(fifo)
        probes = [_HangsInCommand(), _HangsInRead()]
        for _ in range(10):
            run_probes(probes, transport)
        t0, _, r0 = _figures(me)
        started = time.perf_counter()
        for _ in range(CYCLES):
            runs = run_probes(probes, transport)
            assert all(r.status == "timeout" for r in runs)
        wall = time.perf_counter() - started
        t1, c1, r1 = _figures(me)

        # Reference: abandonment. FIFO reads go through a short-lived writer so the leaked threads end.
        rt0, _, rr0 = _figures(me)
        for _ in range(REFERENCE_CYCLES):
            _abandoning_cycle([_HangsInCommand()], transport)
        rt1, rc1, rr1 = _figures(me)
        leaked = me.children(recursive=True)
        for child in leaked:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        psutil.wait_procs(leaked, timeout=5)
        os.close(writer)
    per_cycle = wall / CYCLES * 1000
    verdict = "PASS" if (t1 <= t0 and c1 == 0 and r1 - r0 < 4) else "FAIL"
    ours = f"| {CYCLES} | {t0} → {t1} | {c1} | {r0:.1f} → {r1:.1f} MiB (+{r1 - r0:.1f}) |"
    ref = f"| {REFERENCE_CYCLES} | {rt0} → {rt1} | {rc1} | {rr0:.1f} → {rr1:.1f} MiB (+{rr1 - rr0:.1f}) |"
    return f"""| | cycles | threads before → after | child processes after | RSS before → after |
|---|---|---|---|---|
| cancelling runner (`agent.runner.run_probes`) {ours}
| reference: abandoning a timed-out probe (old policy, one hanging command probe) {ref}

Each cancelling cycle took {per_cycle:.0f} ms (two probes, 50 ms timeout, then kill and unwind). The reference
gains one thread and one `sleep` per cycle ({(rt1 - rt0) / REFERENCE_CYCLES:.1f} threads/cycle); the cancelling
runner gains {(t1 - t0) / CYCLES:.2f}. Budget: no thread or process growth, RSS growth under 4 MiB: **{verdict}**.
Same figures asserted by tests/test_runner_cancel.py (no timing in the test).
"""
