"""What the collector sent, handled in a run's child process: notices acknowledged, tasks run under their notice.

A task runs only when its notice verifies here, on the agent, with the agent's own clock, trusted issuers,
unit and lead time (``agent.enforce`` through the netscan service): a task without a valid notice is refused,
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
    from agent.services.context import AgentContext
    from agent.wire.collector_api import TaskItem

log = logging.getLogger(__name__)

NETWORK_TESTS = {"discovery", "portscan", "service"}


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


def run_task(ctx: AgentContext, spool: Spool, task: TaskItem, inbox: Path, run_id: str) -> tuple[str, str, bool]:
    """(outcome, message, spooled) with outcome completed | refused | failed; writes the done file."""
    from agent.daemon.results import run_report, spool_run
    from agent.services import netscan

    outcome, message, spooled = "refused", "", True
    notice_path: Path | None = None
    try:
        unsupported = sorted(set(task.tests) - NETWORK_TESTS)
        if unsupported:
            from agent.enforce import refuse

            raise refuse(ctx.recorder, "unsupported-test", f"task {task.task_id}: this agent runs network tests "
                         f"({', '.join(sorted(NETWORK_TESTS))}) for the collector, not {', '.join(unsupported)}",
                         notice_id=task.notice_id, targets=task.targets)
        if task.notice is not None:
            notice_path = inbox / f"task-{task.task_id}.notice.json"
            atomic_write(notice_path, task.notice.model_dump_json(by_alias=True).encode())
            refused = acknowledge(ctx, spool, notice_path)
            if refused:
                raise UserError(refused)
        request = netscan.NetscanRequest(targets=list(task.targets), notice=notice_path,
                                         discovery="discovery" in task.tests, services="service" in task.tests,
                                         scope=None if notice_path else ",".join(task.targets))
        net = netscan.run(ctx, request)
    except UserError as exc:  # refused before anything was sent: recorded by the service that refused
        message = f"refused on the agent: {exc}"
        log.error("task %s %s", task.task_id, message)
    else:
        report = run_report(run_id, "netscan", net.result, task_id=task.task_id, notice_id=task.notice_id)
        refusal = spool_run(spool, report)
        spooled = refusal is None
        outcome = "completed" if not net.result.probe_errors else "failed"
        message = refusal or ("" if outcome == "completed" else "a test stage failed")
    status = "done" if outcome == "completed" else "failed"
    done = {"task_id": task.task_id, "outcome": outcome,
            "completion": {"status": status, "run_id": run_id if outcome != "refused" else None,
                           "message": message[:2000]}}
    atomic_write(inbox / f"done-{task.task_id}.json", json.dumps(done).encode())
    return outcome, message, spooled
