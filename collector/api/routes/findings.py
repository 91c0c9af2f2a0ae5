"""Findings and their rectification lifecycle; per-unit SLA days and working-day calendar overrides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from agent.wire.collector_api import ErrorBody
from collector.api.context import AppContext
from collector.api.deps import Principal, context, current_user
from collector.api.schemas import (
    AuditView,
    FindingDetail,
    FindingPage,
    FindingPk,
    FindingSummary,
    FindingView,
    RetestRequest,
    RetestResponse,
    TransitionRequest,
    UnitSettingsBody,
)
from collector.core.clock import iso, parse_iso, utcnow
from collector.core.errors import ApiError
from collector.crud import lifecycle, queries
from collector.crud.queries import SEVERITY_ORDER
from collector.models import CalendarOverride, Finding, UnitSettings

router = APIRouter(prefix="/api/v1", tags=["findings"])
ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 503)}


def _t(value: dt.datetime | None) -> str | None:
    return iso(value) if value is not None else None


def _view(f: Any) -> FindingView:  # a Finding or a row of _VIEW_COLUMNS
    return FindingView(id=f.id, agent_id=f.agent_id, unit=f.unit, host=f.host, finding_id=f.finding_id,
                       rule_id=f.rule_id, probe=f.probe, subject=f.subject, target=f.target,
                       severity=f.severity,
                       title={"en": f.title_en, "zh-CN": f.title_zh}, state=f.state, first_seen=iso(f.first_seen),
                       last_seen=iso(f.last_seen), first_run=f.first_run, last_run=f.last_run,
                       resolved_run=f.resolved_run, deadline=_t(f.deadline), reported_at=_t(f.reported_at),
                       retest_due=_t(f.retest_due), calendar_warning=f.calendar_warning,
                       accepted_until=_t(f.accepted_until))


def _scope(who: Principal, unit: str | None) -> list[Any]:
    if unit is not None:
        who.require(unit, "viewer")
        return [Finding.unit == unit]
    return queries.unit_scope(who.units())


def _json(page: FindingPage) -> Response:
    """The page as JSON straight from its model: up to 1,000 rows, built and validated once (returning the model
    would have FastAPI validate and serialise it a second time through ``response_model``)."""
    return Response(page.model_dump_json(), media_type="application/json")


_VIEW_NAMES = tuple(c.name for c in queries.VIEW_COLUMNS)
_VIEW_TIMES = ("first_seen", "last_seen", "deadline", "reported_at", "retest_due", "accepted_until")


def _rows_page(total: int, rows: Iterable[Any]) -> FindingPage:
    """A page from rows of queries.VIEW_COLUMNS, validated in one call. Timestamps are formatted once per distinct
    value: the findings of one run share its times, and formatting was most of a 1,000-row page's cost."""
    times: dict[dt.datetime, str] = {}
    items = []
    for row in rows:
        d = dict(zip(_VIEW_NAMES, row, strict=True))
        d["title"] = {"en": d.pop("title_en"), "zh-CN": d.pop("title_zh")}
        del d["resolved_at"], d["updated_at"]
        for name in _VIEW_TIMES:
            value = d[name]
            if value is not None:
                text = times.get(value)
                if text is None:
                    text = times[value] = iso(value)
                d[name] = text
        items.append(d)
    return FindingPage.model_validate({"total": total, "items": items})


@router.get("/findings", response_model=FindingPage, responses=ERRORS)
def list_findings(
    unit: str | None = Query(None, max_length=200), severity: str | None = Query(None, max_length=10),
    state: str | None = Query(None, max_length=30, description="a state, or 'active' (default) or 'all'"),
    agent_id: str | None = Query(None, max_length=64), host: str | None = Query(None, max_length=255),
    limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=10_000_000),
    who: Principal = Depends(current_user), ctx: AppContext = Depends(context),
) -> Response:
    """Findings by unit, severity, state, agent or host; most severe and most recent first."""
    where = _scope(who, unit) + queries.list_filters(state=state, severity=severity, agent_id=agent_id, host=host)
    with ctx.db.read() as session:
        total, rows = queries.page(session, where, limit, offset)
        return _json(_rows_page(total, rows))


@router.get("/findings/summary", response_model=FindingSummary, responses=ERRORS)
def summary(unit: str = Query(..., max_length=200), who: Principal = Depends(current_user),
            ctx: AppContext = Depends(context)) -> FindingSummary:
    """Active findings of a unit by severity (the dashboard's first figure), and how many are overdue."""
    who.require(unit, "viewer")
    now = utcnow()
    with ctx.db.read() as session:
        return FindingSummary(unit=unit, active=queries.severity_counts(session, unit),
                              overdue=queries.overdue_count(session, unit, now))


@router.get("/findings/overdue", response_model=FindingPage, responses=ERRORS)
def overdue(unit: str | None = Query(None, max_length=200), limit: int = Query(100, ge=1, le=1000),
            who: Principal = Depends(current_user), ctx: AppContext = Depends(context)) -> Response:
    """Active findings past their rectification deadline, or past their re-test due date."""
    scope = _scope(who, unit)
    with ctx.db.read() as session:
        total, rows = queries.overdue(session, scope, utcnow(), limit)
        return _json(_rows_page(total, rows))


def _get(session: Session, who: Principal, finding_id: int) -> Finding:
    return queries.visible_finding(session, finding_id, lambda unit: who.can(unit, "viewer"))


def _detail(session: Session, f: Finding) -> FindingDetail:
    return FindingDetail(**_view(f).model_dump(), document=f.document,
                         audit=[AuditView(actor=a.actor, at=iso(a.at), from_state=a.from_state, to_state=a.to_state,
                                          note=a.note) for a in queries.audit_trail(session, f.id)])


@router.get("/findings/{finding_id}", response_model=FindingDetail, responses=ERRORS)
def get_finding(finding_id: FindingPk, who: Principal = Depends(current_user),
                ctx: AppContext = Depends(context)) -> FindingDetail:
    """One finding with its whole audit trail (who, when, from, to, note)."""
    with ctx.db.read() as session:
        return _detail(session, _get(session, who, finding_id))


@router.post("/findings/{finding_id}/transition", response_model=FindingDetail, responses=ERRORS)
def transition(finding_id: FindingPk, req: TransitionRequest, who: Principal = Depends(current_user),
               ctx: AppContext = Depends(context)) -> FindingDetail:
    now = utcnow()
    try:
        expires = parse_iso(req.expires) if req.expires else None
    except ValueError as exc:
        raise ApiError(422, "bad-time", f"expires: {exc}", "expires 时间格式无效") from None
    with ctx.db.write() as session:
        finding = _get(session, who, finding_id)
        who.require(finding.unit, "operator")
        lifecycle.transition(session, finding, lifecycle.Change(req.to, req.note, who.username, req.approver,
                                                                expires), now, ctx.settings.retest_working_days)
        session.flush()
        return _detail(session, finding)


@router.post("/findings/{finding_id}/retest", response_model=RetestResponse, responses=ERRORS)
def retest(finding_id: FindingPk, req: RetestRequest, who: Principal = Depends(current_user),
           ctx: AppContext = Depends(context)) -> RetestResponse:
    """Schedule the re-test of a reported rectification (a task for the agent of that host)."""
    now = utcnow()
    try:
        not_before = parse_iso(req.not_before) if req.not_before else None
    except ValueError as exc:
        raise ApiError(422, "bad-time", f"not_before: {exc}", "not_before 时间格式无效") from None
    with ctx.db.write() as session:
        finding = _get(session, who, finding_id)
        who.require(finding.unit, "operator")
        task_id = lifecycle.schedule_retest(session, finding, who.username, now, not_before)
        return RetestResponse(task_id=task_id, state=finding.state)


@router.get("/units/{unit}/settings", response_model=UnitSettingsBody, responses=ERRORS)
def get_unit_settings(unit: str, who: Principal = Depends(current_user),
                      ctx: AppContext = Depends(context)) -> UnitSettingsBody:
    who.require(unit, "viewer")
    with ctx.db.read() as session:
        days = {sev: lifecycle.sla_days(session, unit, sev) for sev in SEVERITY_ORDER}
        cal = session.scalars(select(CalendarOverride).where(CalendarOverride.unit == unit)
                              .order_by(CalendarOverride.day))
        return UnitSettingsBody.model_validate({"sla_days": days, "calendar": [
            {"day": c.day.isoformat(), "workday": c.workday, "note": c.note} for c in cal]})


@router.put("/units/{unit}/settings", response_model=UnitSettingsBody, responses=ERRORS)
def put_unit_settings(unit: str, req: UnitSettingsBody, who: Principal = Depends(current_user),
                      ctx: AppContext = Depends(context)) -> UnitSettingsBody:
    """SLA days per severity, and the unit's calendar overrides (replaced as a whole)."""
    who.require(unit, "admin")
    if any(not 0 < v <= 3650 for v in req.sla_days.values()):
        raise ApiError(422, "bad-sla", "SLA days are 1 to 3650", "整改期限应为 1 到 3650 天")
    try:
        days = [(dt.date.fromisoformat(c.day), c) for c in req.calendar]
    except ValueError as exc:
        raise ApiError(422, "bad-date", f"calendar: {exc}", "日历日期无效") from None
    with ctx.db.write() as session:
        row = session.get(UnitSettings, unit) or UnitSettings(unit=unit)
        for sev, value in req.sla_days.items():
            setattr(row, f"sla_{sev}", value)
        session.add(row)
        session.execute(delete(CalendarOverride).where(CalendarOverride.unit == unit))
        for day, c in dict((d, c) for d, c in days).items():
            session.add(CalendarOverride(unit=unit, day=day, workday=c.workday, note=c.note))
    return get_unit_settings(unit, who, ctx)
