"""The dashboard's pages under /ui: log in and out, a unit's overview, findings and one finding with its lifecycle
actions, one host, notices and tasks, and the printable rectification report (Art. 27, 28).

Every page reads through collector.crud.queries (the indexed queries the API uses) and every change goes
through collector.crud.lifecycle, exactly as the API's routes do; permissions are the API's ``Principal``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from collector.api.context import AppContext
from collector.api.dashboard import web
from collector.api.deps import Principal, context, principal_for_token
from collector.api.schemas import FindingPk
from collector.core.clock import utcnow
from collector.core.errors import ApiError
from collector.core.workdays import CHINA
from collector.crud import lifecycle, people, queries
from collector.models import Finding
from collector.models.findings import STATES, awaiting_retest_filter
from collector.models.people import ALL_UNITS

router = APIRouter(prefix=web.PREFIX, include_in_schema=False)
PAGE_SIZE = 50
REPORT_ROWS = 50  # per section by default; ?rows= up to MAX_REPORT_ROWS prints more
MAX_REPORT_ROWS = 5000
# the order the action forms appear in, each a target of lifecycle.MANUAL
ACTIONS = (("rectification_ordered", "do_order"), ("reported_rectified", "do_report"),
           ("risk_accepted", "do_accept"), ("false_positive", "do_false_positive"), ("open", "do_reopen"))


class NeedLogin(Exception):
    """No valid dashboard session: the page answers with a redirect to the login form."""


@dataclass(frozen=True, slots=True)
class Viewer:
    who: Principal
    token: str

    @property
    def csrf(self) -> str:
        return web.csrf_for(self.token)


def viewer(request: Request, ctx: AppContext = Depends(context)) -> Viewer:
    token = request.cookies.get(web.SESSION_COOKIE, "")[:200]
    who = principal_for_token(ctx, token) if token else None
    if who is None:
        raise NeedLogin
    return Viewer(who, token)


def _check_form(request: Request, v: Viewer, fields: dict[str, str]) -> None:
    if not web.same_origin(request) or not web.csrf_matches(v.csrf, fields.get("csrf")):
        raise ApiError(403, "csrf-refused", web.t("csrf_refused", "en"), web.t("csrf_refused", "zh-CN"))


def _units(session: Session, who: Principal) -> list[str]:
    """The units this person may see: every unit with agents for a role on "*", else their own."""
    if who.units() is None:
        return sorted(set(queries.units_with_agents(session)) | {u for u in who.roles if u != ALL_UNITS})
    return sorted(u for u in who.roles if u != ALL_UNITS)


def _pick_unit(session: Session, v: Viewer, unit: str | None) -> tuple[list[str], str | None]:
    units = _units(session, v.who)
    if unit is not None:
        v.who.require(unit, "viewer")
        return units, unit
    return units, units[0] if units else None


def _page(request: Request, template: str, v: Viewer, units: list[str], unit: str | None, *, status: int = 200,
          **context: Any) -> Response:
    return web.render(request, template, status=status, who=v.who, csrf=v.csrf, units=units, unit=unit,
                      role=v.who.role_for(unit) if unit else None, **context)


# -- session ------------------------------------------------------------------------------------------------


@router.get("/")
def home() -> Response:
    return RedirectResponse(f"{web.PREFIX}/overview", status_code=303)


@router.get("/static/{name}")
def static(name: str) -> Response:
    return web.static_file(name)


@router.get("/lang/{lang}")
def switch_language(request: Request, lang: str, next: str | None = Query(None, max_length=2000)) -> Response:
    response = RedirectResponse(web.safe_next(next), status_code=303)
    if lang in web.LANGS:
        web.set_cookie(response, request, web.LANG_COOKIE, lang, max_age=365 * 86400)
    return response


def _login_form(request: Request, *, error: str | None = None, notice: str | None = None, status: int = 200,
                next_url: str | None = None) -> Response:
    token = web.new_login_csrf()
    response = web.render(request, "login.html.j2", status=status, who=None, units=[], unit=None, csrf=token,
                          error=error, notice=notice, next_url=web.safe_next(next_url))
    web.set_cookie(response, request, web.LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = Query(None, max_length=2000),
               out: int = Query(0, ge=0, le=1)) -> Response:
    return _login_form(request, next_url=next, notice="logged_out" if out else None)


@router.post("/login")
def login(request: Request, fields: dict[str, str] = Depends(web.form_fields),
          ctx: AppContext = Depends(context)) -> Response:
    if not web.same_origin(request) or not web.csrf_matches(request.cookies.get(web.LOGIN_CSRF_COOKIE),
                                                            fields.get("csrf")):
        return web.error_page(request, 403, web.t("csrf_refused", "en"), web.t("csrf_refused", "zh-CN"))
    username, password = fields.get("username", "")[:100], fields.get("password", "")[:1000]
    try:
        with ctx.db.write() as session:
            token, _expires = people.login(session, username, password, utcnow(), ctx.settings.session_hours)
    except PermissionError:
        return _login_form(request, error="bad_login", status=401, next_url=fields.get("next"))
    response = RedirectResponse(web.safe_next(fields.get("next")), status_code=303)
    web.set_cookie(response, request, web.SESSION_COOKIE, token)
    web.clear_cookie(response, request, web.LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, fields: dict[str, str] = Depends(web.form_fields), v: Viewer = Depends(viewer),
           ctx: AppContext = Depends(context)) -> Response:
    _check_form(request, v, fields)
    with ctx.db.write() as session:
        people.logout(session, v.token)
    response = RedirectResponse(f"{web.PREFIX}/login?out=1", status_code=303)
    web.clear_cookie(response, request, web.SESSION_COOKIE)
    return response


# -- overview -------------------------------------------------------------------------------------------------


@router.get("/overview")
def overview(request: Request, unit: str | None = Query(None, max_length=200), v: Viewer = Depends(viewer),
             ctx: AppContext = Depends(context)) -> Response:
    now = utcnow()
    with ctx.db.read() as session:
        units, unit = _pick_unit(session, v, unit)
        if unit is None:
            return _page(request, "overview.html.j2", v, units, None, data=None)
        agents = queries.unit_agents(session, unit, PAGE_SIZE)
        states = queries.agent_state_counts(session, unit, now)
        data = {
            "agent_states": states, "agent_total": sum(states.values()), "agents": agents,
            "agent_state": {a.id: queries.agent_state(a, now) for a in agents},
            "agent_alerts": queries.alert_kinds_by_agent(session, [a.id for a in agents]),
            "alert_agents": queries.alert_agent_counts(session, unit),
            "severity": queries.severity_counts(session, unit),
            "overdue": queries.overdue_count(session, unit, now),
            "retests": queries.count(session, [Finding.unit == unit, awaiting_retest_filter()]),
            "retests_overdue": queries.retests_overdue_count(session, unit, now),
            "alerts": queries.unit_alerts(session, unit, 20),
        }
        return _page(request, "overview.html.j2", v, units, unit, data=data, severities=queries.SEVERITY_ORDER)


# -- findings -------------------------------------------------------------------------------------------------


@router.get("/findings")
def findings(request: Request, unit: str | None = Query(None, max_length=200),
             severity: str | None = Query(None, max_length=10), state: str | None = Query(None, max_length=30),
             host: str | None = Query(None, max_length=255), agent: str | None = Query(None, max_length=64),
             page: int = Query(1, ge=1, le=200_000), v: Viewer = Depends(viewer),
             ctx: AppContext = Depends(context)) -> Response:
    severity, host, agent, state = severity or None, host or None, agent or None, state or "active"
    if severity is not None and severity not in queries.SEVERITY_ORDER:
        raise ApiError(422, "bad-severity", f"unknown severity {severity!r}", f"未知严重程度 {severity!r}")
    with ctx.db.read() as session:
        units, unit = _pick_unit(session, v, unit or None)
        if unit is None:
            return _page(request, "findings.html.j2", v, units, None, rows=[], total=0, page=1, pages=1,
                         filters={"unit": None, "severity": severity, "state": state, "host": host, "agent": agent},
                         severities=queries.SEVERITY_ORDER, states=STATES)
        where = [Finding.unit == unit, *queries.list_filters(state=state, severity=severity, host=host,
                                                              agent_id=agent)]
        if severity is None and agent is None:  # one agent's findings: its own index, most recent first
            total, rows = queries.page_by_severity(session, where, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        else:
            total, rows = queries.page(session, where, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        filters = {"unit": unit, "severity": severity, "state": state, "host": host, "agent": agent}
        return _page(request, "findings.html.j2", v, units, unit, rows=rows, total=total, page=page, pages=pages,
                     filters=filters, severities=queries.SEVERITY_ORDER, states=STATES)


def _finding_page(request: Request, session: Session, v: Viewer, finding_id: FindingPk, *, status: int = 200,
                  error: str | None = None, saved: bool = False) -> Response:
    finding = queries.visible_finding(session, finding_id, lambda u: v.who.can(u, "viewer"))
    actions = [(to, label) for to, label in ACTIONS if finding.state in lifecycle.MANUAL[to]]
    doc = finding.document or {}
    return _page(request, "finding.html.j2", v, _units(session, v.who), finding.unit, status=status, f=finding,
                 doc=doc, audit=queries.audit_trail(session, finding.id), actions=actions,
                 can_act=v.who.can(finding.unit, "operator"), can_retest=finding.state == "reported_rectified",
                 error=error, saved=saved)


@router.get("/findings/{finding_id}")
def finding(request: Request, finding_id: FindingPk, saved: int = Query(0, ge=0, le=1), v: Viewer = Depends(viewer),
            ctx: AppContext = Depends(context)) -> Response:
    with ctx.db.read() as session:
        return _finding_page(request, session, v, finding_id, saved=bool(saved))


def _expiry(text: str) -> dt.datetime | None:
    """A date from the form: the end of that day in China's time."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ApiError(422, "bad-time", f"expiry: not a date: {text[:20]!r}", "到期日期格式无效") from None
    return dt.datetime.combine(day, dt.time(23, 59, 59), CHINA).astimezone(dt.UTC)


def _act(request: Request, ctx: AppContext, v: Viewer, finding_id: FindingPk, fields: dict[str, str],
         change: Any) -> Response:
    """Run ``change(session, finding, now)`` as an operator of the finding's unit; on refusal show the page again
    with the reason, in the reader's language."""
    _check_form(request, v, fields)
    lang = web.lang_of(request)
    try:
        with ctx.db.write() as session:
            f = queries.visible_finding(session, finding_id, lambda u: v.who.can(u, "viewer"))
            v.who.require(f.unit, "operator")
            change(session, f, utcnow())
    except ApiError as exc:
        if exc.code == "unknown-finding":
            raise
        with ctx.db.read() as session:
            return _finding_page(request, session, v, finding_id, status=exc.status,
                                 error=exc.zh if lang == "zh-CN" else exc.en)
    return RedirectResponse(f"{web.PREFIX}/findings/{finding_id}?saved=1", status_code=303)


@router.post("/findings/{finding_id}/transition")
def transition(request: Request, finding_id: FindingPk, fields: dict[str, str] = Depends(web.form_fields),
               v: Viewer = Depends(viewer), ctx: AppContext = Depends(context)) -> Response:
    def change(session: Session, f: Finding, now: dt.datetime) -> None:
        to = fields.get("to", "")
        if to not in lifecycle.MANUAL:
            raise ApiError(422, "bad-state", f"{to[:40]!r} cannot be set by a person", f"{to[:40]!r} 不能由人工设置")
        lifecycle.transition(session, f, lifecycle.Change(to, fields.get("note", ""), v.who.username,
                                                          fields.get("approver", "")[:200] or None,
                                                          _expiry(fields.get("expires", ""))),
                             now, ctx.settings.retest_working_days)

    return _act(request, ctx, v, finding_id, fields, change)


@router.post("/findings/{finding_id}/retest")
def retest(request: Request, finding_id: FindingPk, fields: dict[str, str] = Depends(web.form_fields),
           v: Viewer = Depends(viewer), ctx: AppContext = Depends(context)) -> Response:
    def change(session: Session, f: Finding, now: dt.datetime) -> None:
        lifecycle.schedule_retest(session, f, v.who.username, now, None)

    return _act(request, ctx, v, finding_id, fields, change)


# -- host, notices and tasks, report ------------------------------------------------------------------------


@router.get("/hosts/{agent_id}")
def host(request: Request, agent_id: str, v: Viewer = Depends(viewer), ctx: AppContext = Depends(context)) -> Response:
    now = utcnow()
    with ctx.db.read() as session:
        agent = queries.visible_agent(session, agent_id, lambda u: v.who.can(u, "viewer"))
        total, rows = queries.page(session, queries.list_filters(state="active", agent_id=agent.id), PAGE_SIZE, 0)
        return _page(request, "host.html.j2", v, _units(session, v.who), agent.unit, agent=agent,
                     state=queries.agent_state(agent, now),
                     alerts=sorted(queries.alert_kinds_by_agent(session, [agent.id]).get(agent.id, set())),
                     rows=rows, total=total, runs=queries.agent_runs(session, agent.id, 20))


@router.get("/work")
def work(request: Request, unit: str | None = Query(None, max_length=200), v: Viewer = Depends(viewer),
         ctx: AppContext = Depends(context)) -> Response:
    with ctx.db.read() as session:
        units, unit = _pick_unit(session, v, unit)
        if unit is None:
            return _page(request, "work.html.j2", v, units, None, notices=[], acks={}, tasks=[], task_states={},
                         names={})
        notices, acks = queries.unit_notices(session, unit, 100)
        tasks = queries.unit_tasks(session, unit, 200)
        names = queries.hostnames(session, sorted({a.agent_id for rows in acks.values() for a in rows}
                                                  | {task.agent_id for task in tasks}))
        return _page(request, "work.html.j2", v, units, unit, notices=notices, acks=acks, tasks=tasks,
                     task_states=queries.task_state_counts(session, unit), names=names)


@router.get("/report")
def report(request: Request, unit: str | None = Query(None, max_length=200),
           rows: int = Query(REPORT_ROWS, ge=1, le=MAX_REPORT_ROWS), v: Viewer = Depends(viewer),
           ctx: AppContext = Depends(context)) -> Response:
    now = utcnow()
    with ctx.db.read() as session:
        units, unit = _pick_unit(session, v, unit)
        if unit is None:
            return _page(request, "report.html.j2", v, units, None, data=None, now=now, rows=rows)
        severity = queries.severity_counts(session, unit)
        deadlines_total, deadlines = queries.with_deadline(session, unit, rows)
        overdue_total, overdue = queries.overdue(session, [Finding.unit == unit], now, rows)
        retests_total, retests = queries.awaiting_retest(session, unit, rows)
        data = {"severity": severity, "active": sum(severity.values()), "deadlines": deadlines,
                "deadlines_total": deadlines_total, "overdue": overdue, "overdue_total": overdue_total,
                "retests": retests, "retests_total": retests_total,
                "without_deadline": sum(severity.values()) - deadlines_total}
        return _page(request, "report.html.j2", v, units, unit, data=data, now=now, rows=rows,
                     severities=queries.SEVERITY_ORDER, max_rows=MAX_REPORT_ROWS)


def install(app: FastAPI) -> None:
    """Add the pages, and answer a missing or expired session with the login form."""

    @app.exception_handler(NeedLogin)
    async def _need_login(request: Request, _exc: NeedLogin) -> Response:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = f"{web.PREFIX}/login" + (f"?next={web.quote(here)}" if request.method == "GET" else "")
        response = RedirectResponse(target, status_code=303)
        if request.cookies.get(web.SESSION_COOKIE):
            web.clear_cookie(response, request, web.SESSION_COOKIE)
        return response

    app.include_router(router)

