"""Notices (Art. 25 ¶2), tasks and schedules, issued by operators of a unit."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from agent.wire.collector_api import ErrorBody
from collector.api.context import AppContext
from collector.api.deps import Principal, context, current_user
from collector.api.schemas import (
    AckView,
    NoticeRequest,
    NoticeView,
    ScheduleRequest,
    ScheduleView,
    TaskRequest,
    TaskView,
)
from collector.core.clock import iso, parse_iso, utcnow
from collector.core.errors import ApiError
from collector.crud import schedules, work
from collector.models import IssuedNotice, NoticeAck, Schedule, Task

router = APIRouter(prefix="/api/v1", tags=["notices and tasks"])
ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 503)}


def _time(name: str, text: str) -> dt.datetime:
    try:
        return parse_iso(text)
    except ValueError as exc:
        raise ApiError(422, "bad-time", f"{name}: {exc}", f"{name} 时间格式无效") from None


def _notice_view(session, n: IssuedNotice) -> NoticeView:  # type: ignore[no-untyped-def]
    acks = session.scalars(select(NoticeAck).where(NoticeAck.notice_id == n.id).order_by(NoticeAck.acknowledged_at))
    return NoticeView(id=n.id, unit=n.unit, issued_at=iso(n.issued_at), window_start=iso(n.window_start),
                      window_end=iso(n.window_end), document=n.document,
                      acknowledgements=[AckView(agent_id=a.agent_id, acknowledged_at=iso(a.acknowledged_at),
                                                received_at=iso(a.received_at)) for a in acks])


@router.post("/notices", response_model=NoticeView, responses=ERRORS)
def issue(req: NoticeRequest, who: Principal = Depends(current_user), ctx: AppContext = Depends(context)) -> NoticeView:
    """Issue a notice signed with the collector's issuer key; it is delivered to the unit's agents."""
    who.require(req.unit, "operator")
    now = utcnow()
    with ctx.db.write() as session:
        row = work.issue_notice(session, ctx.issuer_key, issuer=ctx.issuer_name, notice_id=req.id, unit=req.unit,
                                targets=req.targets, kinds=req.kinds, start=_time("start", req.start),
                                end=_time("end", req.end), lead_time=dt.timedelta(seconds=req.lead_time_s),
                                contact=req.contact, by=who.username, now=now)
        return _notice_view(session, row)


@router.get("/notices", response_model=list[NoticeView], responses=ERRORS)
def list_notices(unit: str = Query(..., max_length=200), who: Principal = Depends(current_user),
                 ctx: AppContext = Depends(context)) -> list[NoticeView]:
    """A unit's notices with every acknowledgement and its time."""
    who.require(unit, "viewer")
    with ctx.db.read() as session:
        rows = session.scalars(select(IssuedNotice).where(IssuedNotice.unit == unit)
                               .order_by(IssuedNotice.window_start.desc()).limit(500))
        return [_notice_view(session, n) for n in rows]


def _task_view(t: Task) -> TaskView:
    return TaskView(id=t.id, agent_id=t.agent_id, unit=t.unit, notice_id=t.notice_id, reason=t.reason, tests=t.tests,
                    targets=t.targets, state=t.state, not_before=iso(t.not_before), expires_at=iso(t.expires_at),
                    leases=t.leases, run_id=t.run_id, message=t.message)


@router.post("/tasks", response_model=list[TaskView], responses=ERRORS)
def create_tasks(req: TaskRequest, who: Principal = Depends(current_user),
                 ctx: AppContext = Depends(context)) -> list[TaskView]:
    """Run these tests on these targets (under this notice), at or after ``not_before``: one task per agent.
    Under a notice the task waits for its window and expires when the window closes."""
    who.require(req.unit, "operator")
    now = utcnow()
    with ctx.db.write() as session:
        notice = None
        if req.notice_id is not None:
            notice = session.get(IssuedNotice, req.notice_id)
            if notice is None or notice.unit != req.unit:
                raise ApiError(404, "unknown-notice", "no such notice for this unit", "该单位没有此通知")
        not_before = _time("not_before", req.not_before) if req.not_before else (notice.window_start if notice
                                                                                 else now)
        expires = (_time("expires_at", req.expires_at) if req.expires_at
                   else notice.window_end if notice else now + dt.timedelta(days=7))
        if notice is not None:
            not_before, expires = max(not_before, notice.window_start), min(expires, notice.window_end)
        if expires <= not_before:
            raise ApiError(422, "bad-window", "the task expires before it may start", "任务在开始前已过期")
        tasks = work.create_tasks(session, unit=req.unit, agent_ids=req.agent_ids, notice=notice, tests=req.tests,
                                  targets=req.targets, not_before=not_before, expires_at=expires, reason="manual",
                                  now=now)
        return [_task_view(t) for t in tasks]


@router.get("/tasks", response_model=list[TaskView], responses=ERRORS)
def list_tasks(unit: str = Query(..., max_length=200), state: str | None = Query(None, max_length=20),
               who: Principal = Depends(current_user), ctx: AppContext = Depends(context)) -> list[TaskView]:
    who.require(unit, "viewer")
    query = select(Task).where(Task.unit == unit).order_by(Task.created_at.desc()).limit(1000)
    if state is not None:
        query = query.where(Task.state == state)
    with ctx.db.read() as session:
        return [_task_view(t) for t in session.scalars(query)]


def _schedule_view(s: Schedule, now: dt.datetime) -> ScheduleView:
    starts = schedules.occurrences(s.rule, now, now + dt.timedelta(days=400), limit=3)
    return ScheduleView(id=s.id, unit=s.unit, name=s.name, rule=s.rule, duration_s=s.duration_s, lead_s=s.lead_s,
                        next_windows=[iso(t) for t in starts])


@router.post("/schedules", response_model=ScheduleView, responses=ERRORS)
def add_schedule(req: ScheduleRequest, who: Principal = Depends(current_user),
                 ctx: AppContext = Depends(context)) -> ScheduleView:
    """Recurring tests: each window's notice is issued at least ``lead_s`` ahead, then its tasks."""
    who.require(req.unit, "operator")
    now = utcnow()
    with ctx.db.write() as session:
        row = schedules.add_schedule(session, unit=req.unit, name=req.name, rule=req.rule, duration_s=req.duration_s,
                                     lead_s=req.lead_s, kinds=list(req.kinds), targets=req.targets, now=now)
        return _schedule_view(row, now)


@router.get("/schedules", response_model=list[ScheduleView], responses=ERRORS)
def list_schedules(unit: str = Query(..., max_length=200), who: Principal = Depends(current_user),
                   ctx: AppContext = Depends(context)) -> list[ScheduleView]:
    who.require(unit, "viewer")
    now = utcnow()
    with ctx.db.read() as session:
        return [_schedule_view(s, now) for s in session.scalars(select(Schedule).where(Schedule.unit == unit))]
