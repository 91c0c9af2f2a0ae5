"""People: log in, enrolment tokens, agents and their alerts (every answer limited to the caller's units)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from agent.wire.collector_api import ErrorBody
from collector.api.context import AppContext
from collector.api.deps import Principal, context, current_user
from collector.api.schemas import AgentView, AlertView, LoginRequest, LoginResponse, TokenRequest, TokenResponse
from collector.core.clock import iso, utcnow
from collector.core.errors import ApiError
from collector.crud import identity, people
from collector.models import Agent, AgentAlert, UserRole

router = APIRouter(prefix="/api/v1", tags=["people"])
ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 503)}


@router.post("/auth/login", response_model=LoginResponse, responses=ERRORS)
def login(req: LoginRequest, ctx: AppContext = Depends(context)) -> LoginResponse:
    now = utcnow()
    with ctx.db.write() as session:
        try:
            token, expires = people.login(session, req.username, req.password, now, ctx.settings.session_hours)
        except PermissionError:
            raise ApiError(401, "bad-login", "wrong user name or password", "用户名或密码错误") from None
        user = people.get_user(session, req.username)
        roles = {r.unit: r.role for r in session.scalars(select(UserRole).where(UserRole.user_id == user.id))}
    return LoginResponse(token=token, expires_at=iso(expires), roles=roles)


@router.post("/tokens", response_model=TokenResponse, responses=ERRORS)
def create_token(req: TokenRequest, who: Principal = Depends(current_user),
                 ctx: AppContext = Depends(context)) -> TokenResponse:
    """A one-time enrolment token for ``unit`` (admin of that unit). Shown once; only its hash is stored."""
    who.require(req.unit, "admin")
    now = utcnow()
    with ctx.db.write() as session:
        token = identity.create_token(session, req.unit, dt.timedelta(hours=req.expires_hours), who.username, now)
    return TokenResponse(token=token, unit=req.unit, expires_at=iso(now + dt.timedelta(hours=req.expires_hours)))


def _agent_view(a: Agent, now: dt.datetime) -> AgentView:
    state = "revoked" if a.revoked_at else ("online" if a.last_seen >= now - dt.timedelta(minutes=15) else "offline")
    return AgentView(id=a.id, unit=a.unit, hostname=a.hostname, state=state, enrolled_at=iso(a.enrolled_at),
                     last_seen=iso(a.last_seen), cert_not_after=iso(a.cert_not_after), record_seq=a.record_seq,
                     record_broken=a.record_broken, revoked_at=iso(a.revoked_at) if a.revoked_at else None)


@router.get("/agents", response_model=list[AgentView], responses=ERRORS)
def list_agents(unit: str | None = Query(None, max_length=200), who: Principal = Depends(current_user),
                ctx: AppContext = Depends(context)) -> list[AgentView]:
    query = select(Agent).order_by(Agent.unit, Agent.hostname).limit(10000)
    if unit is not None:
        who.require(unit, "viewer")
        query = query.where(Agent.unit == unit)
    elif (units := who.units()) is not None:
        query = query.where(Agent.unit.in_(units))
    now = utcnow()
    with ctx.db.read() as session:
        return [_agent_view(a, now) for a in session.scalars(query)]


@router.post("/agents/{agent_id}/revoke", response_model=AgentView, responses=ERRORS)
def revoke_agent(agent_id: str, who: Principal = Depends(current_user),
                 ctx: AppContext = Depends(context)) -> AgentView:
    """Revoke an agent's certificate: its next request is refused."""
    now = utcnow()
    with ctx.db.write() as session:
        agent = session.get(Agent, agent_id[:64])
        if agent is None or not who.can(agent.unit, "viewer"):
            raise ApiError(404, "unknown-agent", "no such agent", "没有该代理")
        who.require(agent.unit, "admin")
        identity.revoke(session, agent.id, who.username, now)
        session.refresh(agent)
        return _agent_view(agent, now)


@router.get("/alerts", response_model=list[AlertView], responses=ERRORS)
def list_alerts(unit: str | None = Query(None, max_length=200), who: Principal = Depends(current_user),
                ctx: AppContext = Depends(context)) -> list[AlertView]:
    """Identity (cloned machine) and record-integrity alerts."""
    query = (select(AgentAlert, Agent).join(Agent, Agent.id == AgentAlert.agent_id)
             .order_by(AgentAlert.created_at.desc()).limit(1000))
    if unit is not None:
        who.require(unit, "viewer")
        query = query.where(Agent.unit == unit)
    elif (units := who.units()) is not None:
        query = query.where(Agent.unit.in_(units))
    with ctx.db.read() as session:
        return [AlertView(id=al.id, agent_id=al.agent_id, unit=ag.unit, hostname=ag.hostname, kind=al.kind,
                          detail=al.detail, created_at=iso(al.created_at)) for al, ag in session.execute(query)]
