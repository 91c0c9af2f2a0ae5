"""Runs probes concurrently. The one catch-all per probe lives here: a probe that fails or times out becomes
a probe-error entry and never aborts the run.

A probe that overruns its timeout is stopped, not abandoned: each run has a CancelToken (probes/cancel.py)
bound to its worker thread; on timeout the runner cancels it, which kills the command the probe has in flight
(its whole process group) and makes the probe's next or current transport call raise ProbeCancelled, so the
worker returns. run_probes then waits up to ``grace`` seconds for those workers, so that a long-running
process (the daemon) does not gain a thread per cycle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal

from probes import messages as msg
from probes.base import GatherContext, Probe
from probes.cancel import CancelToken, bound_to
from probes.errors import ProbeCancelled
from probes.i18n import Duration, Message
from probes.observation import Observation
from probes.transport import Transport

log = logging.getLogger(__name__)

Status = Literal["ok", "limited", "error", "timeout", "skipped"]
GRACE_S = 2.0  # how long a cancelled probe may take to unwind before run_probes returns without it


@dataclass(slots=True)
class ProbeRun:
    probe: str
    title: str
    status: Status
    duration_s: float = 0.0
    observations: list[Observation] = field(default_factory=list)
    message: Message | None = None  # why it was skipped, failed or timed out
    limitations: list[Message] = field(default_factory=list)
    title_zh: str = ""
    raw: object = None  # what the probe read, only when asked for (``keep_raw``: `precaution probe run --raw`)

    def title_in(self, lang: str) -> str:
        return self.title_zh if lang == "zh-CN" and self.title_zh else self.title

    @property
    def ran(self) -> bool:
        """Results are usable for rule evaluation (complete or limited)."""
        return self.status in ("ok", "limited")


ProgressFn = Callable[[ProbeRun], None]


def _run_one(probe: Probe, transport: Transport, token: CancelToken,  # type: ignore[type-arg]
             keep_raw: bool = False) -> ProbeRun:
    started = time.perf_counter()
    raw: object = None
    ctx = GatherContext(transport, cancel=token)
    try:
        with bound_to(token):
            unmet = probe.unmet(transport)
            if unmet:
                return ProbeRun(probe.id, probe.title, "skipped", 0.0, message=unmet, title_zh=probe.title_zh)
            if probe.requires.root and not transport.is_root:
                ctx.limited(msg.NOT_ROOT())
            missing = probe.missing_binaries(transport)
            if missing:
                ctx.limited(missing)
            if keep_raw:
                raw, observations = probe.gather(ctx), []
            else:
                observations = probe.observe(ctx)
    except ProbeCancelled:
        return ProbeRun(probe.id, probe.title, "timeout", time.perf_counter() - started,
                        message=msg.PROBE_TIMEOUT(limit=Duration(round(probe.timeout))), title_zh=probe.title_zh)
    except Exception as exc:  # the one catch-all per probe run
        log.warning("probe %s failed", probe.id, exc_info=True)
        return ProbeRun(probe.id, probe.title, "error", time.perf_counter() - started,
                        message=msg.PROBE_ERROR(error=f"{type(exc).__name__}: {exc}"), title_zh=probe.title_zh)
    status: Status = "limited" if ctx.limitations else "ok"
    return ProbeRun(probe.id, probe.title, status, time.perf_counter() - started, observations,
                    limitations=list(ctx.limitations), title_zh=probe.title_zh, raw=raw)


def run_probes(
    probes: Sequence[Probe],  # type: ignore[type-arg]
    transport: Transport,
    progress: ProgressFn | None = None,
    max_workers: int = 8,
    grace: float = GRACE_S,
    keep_raw: bool = False,
) -> list[ProbeRun]:
    """Run every probe; results come back in the order of ``probes``. A probe still running at its timeout
    (counted from the start of the run) is cancelled and reported as "timeout". ``keep_raw``: gather only and
    keep what each probe read (``ProbeRun.raw``), no observations."""
    results: dict[str, ProbeRun] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(probes))), thread_name_prefix="probe")
    started = time.monotonic()
    tokens = {p.id: CancelToken(started + p.timeout) for p in probes}
    pending: dict[Future[ProbeRun], Probe] = {  # type: ignore[type-arg]
        pool.submit(_run_one, p, transport, tokens[p.id], keep_raw): p for p in probes
    }
    abandoned: list[Future[ProbeRun]] = []
    try:
        while pending:
            now = time.monotonic()
            # A probe's deadline counts from the start of the run: workers >= probes in the usual case.
            deadline = min(started + p.timeout for p in pending.values())
            done, _ = wait(pending, timeout=max(0.0, deadline - now), return_when=FIRST_COMPLETED)
            for fut in done:
                probe = pending.pop(fut)
                results[probe.id] = fut.result()
                if progress:
                    progress(results[probe.id])
            now = time.monotonic()
            for fut, probe in list(pending.items()):
                if now >= started + probe.timeout:
                    tokens[probe.id].cancel()  # kills its command, wakes its reads
                    if not fut.cancel():  # already running: it unwinds on its own
                        abandoned.append(fut)
                    pending.pop(fut)
                    results[probe.id] = ProbeRun(probe.id, probe.title, "timeout", now - started,
                                                 message=msg.PROBE_TIMEOUT(limit=Duration(round(probe.timeout))),
                                                 title_zh=probe.title_zh)
                    if progress:
                        progress(results[probe.id])
    finally:
        for token in tokens.values():
            token.cancel()  # an exception above (KeyboardInterrupt) stops everything still running
        pool.shutdown(wait=False, cancel_futures=True)
    if abandoned:
        _, stuck = wait(abandoned, timeout=grace)
        if stuck:  # a probe blocked outside the transport (a Python loop, a library call): it leaks a thread
            log.warning("%d probe run(s) did not stop within %.1f s of their timeout", len(stuck), grace)
    return [results[p.id] for p in probes]
