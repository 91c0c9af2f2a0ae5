"""What the collector sent, handled in a run's child process: notices acknowledged, tasks run under their notice.

Every test kind a notice can name runs here (network tests, passive link checks, host tests over SSH, a host
test of this host: ``agent.daemon.task_runs``), each through the service the CLI uses for it. A task runs only
when its notice verifies here, on the agent, with the agent's own clock, trusted issuers, unit and lead time
(``agent.enforce`` through those services): a task without a valid notice is refused,
the refusal is in the inspection record (and so reaches the collector), and the task is reported failed with
the reason. Loopback and the unit's own networks need no notice (Art. 9(9)); anything else does (Art. 25).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from agent.daemon.spool import Priority, Spool, SpoolItem
from agent.errors import UserError
from agent.state import atomic_write

if TYPE_CHECKING:
    from collections.abc import Callable

    from agent.daemon.config import DaemonConfig
    from agent.services.context import AgentContext
    from agent.wire.collector_api import RunReport, TaskItem

log = logging.getLogger(__name__)

def ack_item(notice_id: str, digest: str, when: dt.datetime, actor: str) -> SpoolItem:
    from agent.wire.notice import AcknowledgementDoc

    doc = AcknowledgementDoc(notice_id=notice_id, digest=digest, acknowledged_at=when.astimezone(dt.UTC).isoformat(),
                             actor=actor)
    return SpoolItem(f"ack:{notice_id}", "acknowledgement", doc.model_dump(mode="json", by_alias=True), Priority.KEEP)


def acknowledge(ctx: AgentContext, spool: Spool, path: Path) -> str | None:
    """Acknowledge one delivered notice (refusal recorded by the service when it does not verify); the refusal
    reason, or None."""
    from agent.notice import NoticeError, load_ack, load_signed
    from agent.services import notice

    try:
        signed = load_signed(path)
        existing = load_ack(signed.notice.id, ctx.state)
        if existing is not None and existing.digest == signed.digest:
            spool.put(ack_item(signed.notice.id, existing.digest, existing.acknowledged_at, existing.actor))
            return None
        done = notice.acknowledge(ctx, notice.NoticeRequest(path))
    except NoticeError as exc:
        log.error("notice %s refused: %s", path.name, exc)
        return str(exc)
    ack = load_ack(done.signed.notice.id, ctx.state)
    assert ack is not None
    spool.put(ack_item(ack.notice_id, ack.digest, ack.acknowledged_at, ack.actor))
    return None


def handle_notices(ctx: AgentContext, spool: Spool, inbox: Path) -> int:
    handled = 0
    for path in sorted(inbox.glob("notice-*.json")):
        acknowledge(ctx, spool, path)
        path.rename(path.with_suffix(".handled"))
        handled += 1
    return handled


def run_task(ctx: AgentContext, config: DaemonConfig, spool: Spool, task: TaskItem, inbox: Path,
             run_id: str) -> tuple[str, str, bool]:
    """(outcome, message, spooled) with outcome completed | refused | failed; writes the done file.

    Each kind of test goes to the service that runs it (agent.daemon.task_runs): network tests, host tests of
    remote targets over SSH, host tests of this host. A part refused (recorded by whoever refused it) does not
    stop the others; the task is refused when nothing ran, failed when anything went wrong."""
    from agent.daemon import task_runs
    from agent.daemon.results import spool_run
    from agent.enforce import is_local, refuse
    from probes.test_kinds import TEST_KINDS

    notice_path: Path | None = None
    reports: list[RunReport] = []
    problems: list[str] = []
    refusals: list[str] = []
    try:
        wanted, unknown = task_runs.plan(task.tests)
        if unknown:
            from agent.services.netscan import NETWORK_PROBES

            network = [t for t in unknown if t in NETWORK_PROBES]
            why = (f"a re-test of network probe {', '.join(network)} is a network task naming the scanned targets "
                   "(this one names the agent's host)" if network else
                   f"no such test kind or probe {', '.join(unknown)} (test kinds: {', '.join(TEST_KINDS)})")
            raise refuse(ctx.recorder, "unsupported-test", f"task {task.task_id}: {why}",
                         notice_id=task.notice_id, targets=task.targets)
        if not task.targets or not task.tests:  # nothing to test is not a test that passed
            raise refuse(ctx.recorder, "bad-target", f"task {task.task_id}: names no "
                         f"{'targets' if not task.targets else 'tests'}: nothing to run",
                         notice_id=task.notice_id, targets=task.targets)
        if task.notice is not None:
            notice_path = inbox / f"task-{task.task_id}.notice.json"
            atomic_write(notice_path, task.notice.model_dump_json(by_alias=True).encode())
            refused = acknowledge(ctx, spool, notice_path)
            if refused:
                raise UserError(refused)
    except UserError as exc:
        refusals.append(str(exc))
    else:
        names = task_runs.own_host_names() if wanted.host or wanted.probes else set()
        own = [t for t in task.targets if is_local(t) or t.lower().rstrip(".") in names]
        others = [t for t in task.targets if t not in own]
        parts: list[Callable[[], task_runs.PartResult]] = []
        if wanted.network:
            parts.append(lambda: task_runs.run_network(ctx, config, task, wanted.network, notice_path,
                                                       f"{run_id}-net"))
        if wanted.host and own:
            parts.append(lambda: task_runs.run_own_host(ctx, config, task, own, notice_path, f"{run_id}-host"))
        if wanted.host and others:
            parts.append(lambda: task_runs.run_remote(ctx, config, task, others, notice_path, f"{run_id}-ssh"))
        if wanted.probes and not wanted.host:  # a re-test of host probes: this host only
            if others:
                refusals.append(str(refuse(
                    ctx.recorder, "unsupported-test", f"task {task.task_id}: a re-test of host probes "
                    f"{', '.join(wanted.probes)} runs on this host only, not on {', '.join(others)} (a remote host is "
                    "re-tested by a host task under a notice)", notice_id=task.notice_id, targets=others)))
            if own:
                parts.append(lambda: task_runs.run_own_host(ctx, config, task, own, notice_path, f"{run_id}-host",
                                                            wanted.probes))
        for part in parts:
            try:
                result = part()
            except UserError as exc:  # refused before anything was sent: recorded by the service that refused
                refusals.append(str(exc))
                continue
            reports.extend(result.reports)
            problems.extend(result.problems)
    spooled = True
    for report in reports:
        refusal = spool_run(spool, report)
        if refusal is not None:
            spooled = False
            problems.append(refusal)
    if not reports and refusals:
        outcome, message = "refused", "refused on the agent: " + "; ".join(refusals)
    elif refusals or problems:
        outcome = "failed"
        message = "; ".join([*(f"refused on the agent: {r}" for r in refusals), *problems])
    else:
        outcome, message = "completed", ""
    if message:
        log.error("task %s %s: %s", task.task_id, outcome, message)
    write_done(inbox, task.task_id, outcome, message, reports[0].run_id if reports else None)
    return outcome, message, spooled


def write_done(inbox: Path, task_id: str, outcome: str, message: str, run_id: str | None) -> None:
    """The completion the push thread reports to the collector (``done-<task>.json``)."""
    done = {"task_id": task_id, "outcome": outcome,
            "completion": {"status": "done" if outcome == "completed" else "failed", "run_id": run_id,
                           "message": message[:2000]}}
    atomic_write(inbox / f"done-{task_id}.json", json.dumps(done).encode())


def record_failed_tasks(ctx: AgentContext, inbox: Path) -> int:
    """A ``task-failed`` record entry for each task the daemon reported failed without a result of its own
    (``failed-<task>.json``: its run killed by the watchdog, or interrupted twice)."""
    from agent.wire.contents import TaskFailedContent, TaskFailedSummary

    written = 0
    for path in sorted(inbox.glob("failed-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        task = data.get("task") or {}
        ctx.recorder.write(TaskFailedContent(
            notice_id=task.get("notice_id"), tests=[str(t) for t in task.get("tests") or []],
            summary=TaskFailedSummary(task_id=str(data["task_id"]), reason=str(data["reason"]),
                                      targets=[str(t) for t in task.get("targets") or []])))
        path.unlink()
        written += 1
    return written
