"""Notices (signed with the issuer key), their delivery and acknowledgement, tasks leased to agents, schedules.

A task is leased with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (on SQLite the write transaction
began with ``BEGIN IMMEDIATE`` and is the only writer), so it is handed out once even when several replicas
answer the same agent. Tasks wait for agents that are offline and expire, visibly, when their notice window
closes.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from agent.wire.notice import NOTICE_SCHEMA, NoticeBody, NoticeDocument, NoticeWindow, SignatureBlock
from agent.wire.signatures import canonical_json, document_digest, raw_public_key
from collector.core.clock import iso
from collector.core.errors import ApiError
from collector.models import Agent, IssuedNotice, NoticeAck, Task


def issuer_public_b64(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(raw_public_key(key.public_key())).decode("ascii")


def issue_notice(session: Session, key: Ed25519PrivateKey, *, issuer: str, notice_id: str | None, unit: str,
                 targets: Sequence[str], kinds: Sequence[str], start: dt.datetime, end: dt.datetime,
                 lead_time: dt.timedelta, contact: str, by: str, now: dt.datetime,
                 schedule_id: int | None = None) -> IssuedNotice:
    if end <= start:
        raise ApiError(422, "bad-window", "the notice window ends before it starts", "通知的时间窗口结束早于开始")
    if start - now < lead_time:
        raise ApiError(422, "short-lead-time", f"the window opens in less than the lead time ({lead_time})",
                       f"时间窗口开始前不足提前通知期（{lead_time}）")
    body = NoticeBody.model_validate({
        "schema": NOTICE_SCHEMA, "id": notice_id or f"N-{now:%Y%m%d}-{uuid.uuid4().hex[:8]}", "issuer": issuer,
        "subject_unit": unit, "contact": contact, "targets": list(targets), "kinds": list(kinds),
        "window": NoticeWindow(start=iso(start), end=iso(end)).to_json(),
        "lead_time_s": int(lead_time.total_seconds()), "issued_at": iso(now),
        "basis": "Provisions 2021, Art. 24(3), 25"})
    signature = base64.b64encode(key.sign(canonical_json(body.to_json()))).decode("ascii")
    document = NoticeDocument(notice=body, signature=SignatureBlock(algorithm="ed25519",
                                                                    public_key=issuer_public_b64(key),
                                                                    value=signature))
    if session.get(IssuedNotice, body.id) is not None:
        raise ApiError(409, "notice-exists", f"notice {body.id} was already issued", f"通知 {body.id} 已发布")
    row = IssuedNotice(id=body.id, unit=unit, document=document.to_json(), digest=document_digest(document),
                       issued_at=now, issued_by=by, window_start=start, window_end=end, schedule_id=schedule_id)
    session.add(row)
    session.flush()
    return row


def pending_notices(session: Session, agent: Agent, now: dt.datetime) -> list[NoticeDocument]:
    """Notices for the agent's unit whose window has not closed and that this agent has not acknowledged."""
    acked = select(NoticeAck.notice_id).where(NoticeAck.agent_id == agent.id)
    rows = session.scalars(select(IssuedNotice).where(IssuedNotice.unit == agent.unit, IssuedNotice.window_end > now,
                                                      IssuedNotice.id.not_in(acked))
                           .order_by(IssuedNotice.window_start).limit(50))
    return [NoticeDocument.model_validate(r.document) for r in rows]


def create_tasks(session: Session, *, unit: str, agent_ids: Sequence[str] | None, notice: IssuedNotice | None,
                 tests: Sequence[str], targets: Sequence[str], not_before: dt.datetime, expires_at: dt.datetime,
                 reason: str, now: dt.datetime) -> list[Task]:
    """One task per agent (every active agent of the unit when none is named). Offline agents keep theirs."""
    query = select(Agent.id).where(Agent.unit == unit, Agent.revoked_at.is_(None))
    if agent_ids is not None:
        query = query.where(Agent.id.in_(list(agent_ids)))
    ids = list(session.scalars(query))
    if agent_ids is not None and len(ids) != len(set(agent_ids)):
        raise ApiError(404, "unknown-agent", "an agent named is not an active agent of this unit",
                       "所列代理不是该单位的有效代理")
    tasks = [Task(id=uuid.uuid4().hex, agent_id=aid, unit=unit, notice_id=notice.id if notice else None,
                  reason=reason, tests=list(tests), targets=list(targets), not_before=not_before,
                  expires_at=expires_at, state="queued", leases=0, created_at=now, message="") for aid in ids]
    session.add_all(tasks)
    session.flush()
    return tasks


def expire_tasks(session: Session, now: dt.datetime, agent_id: str | None = None) -> int:
    stmt = update(Task).where(Task.state.in_(("queued", "leased")), Task.expires_at <= now)
    if agent_id is not None:
        stmt = stmt.where(Task.agent_id == agent_id)
    result = session.execute(stmt.values(state="expired", message="notice window closed before it ran"))
    return int(result.rowcount)  # type: ignore[attr-defined]


def lease_tasks(session: Session, agent: Agent, now: dt.datetime, lease_s: int, limit: int = 10) -> list[Task]:
    expire_tasks(session, now, agent.id)
    query = (select(Task).where(Task.agent_id == agent.id, Task.not_before <= now, Task.expires_at > now,
                                or_(Task.state == "queued", (Task.state == "leased") & (Task.lease_until < now)))
             .order_by(Task.not_before, Task.id).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    tasks = list(session.scalars(query))
    until = now + dt.timedelta(seconds=lease_s)
    for task in tasks:
        task.state, task.lease_until, task.leases = "leased", until, task.leases + 1
    session.flush()
    return tasks


def complete_task(session: Session, agent: Agent, task_id: str, status: str, run_id: str | None, message: str,
                  now: dt.datetime) -> Task:
    task = session.get(Task, task_id)
    if task is None or task.agent_id != agent.id:
        raise ApiError(404, "unknown-task", "no such task for this agent", "该代理没有此任务")
    if task.state == "done" and status == "failed" and task.completed_at is not None and not task.message:
        # Ingest marked it done when its run arrived; the agent's own completion says a part of it failed
        # (a target refused or unreachable): that is the task's state, with the reason, the run kept.
        task.state, task.message = "failed", message
        return task
    if task.state in ("done", "failed"):
        return task
    if task.state != "leased":
        raise ApiError(409, "task-not-leased", f"task is {task.state}, not leased",
                       f"任务状态为 {task.state}，未被领取")
    task.state, task.completed_at, task.run_id, task.message = status, now, run_id, message
    return task
