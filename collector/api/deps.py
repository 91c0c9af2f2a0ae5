"""Request dependencies: the shared context, the signed agent, and the logged-in person with their roles."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy import select

from agent.wire.collector_api import HEADER_AGENT, HEADER_BOOT, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIME
from collector.api.context import AppContext
from collector.core.clock import utcnow
from collector.core.errors import ApiError
from collector.core.security import secret_digest
from collector.crud.identity import SignedHeaders, authenticate
from collector.models import Agent, User, UserRole, UserSession
from collector.models.people import ALL_UNITS, ROLES


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def raw_body(request: Request) -> bytes:
    return await request.body()


def signed_agent(request: Request, body: bytes = Depends(raw_body),
                 ctx: AppContext = Depends(context)) -> Agent:
    """The enrolled agent that signed this request, or a 401/409/429 with a code (docs/collector.md)."""
    h = request.headers
    missing = [n for n in (HEADER_AGENT, HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE) if not h.get(n)]
    if missing:
        raise ApiError(401, "unsigned", f"missing {', '.join(missing)}: agent requests must be signed",
                       f"缺少 {', '.join(missing)}：代理请求必须签名")
    # the path exactly as sent (percent-encoding kept), as the agent signed it; not the decoded path
    raw_path = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else request.url.path
    path_qs = path + (f"?{request.url.query}" if request.url.query else "")
    signed = SignedHeaders(h[HEADER_AGENT][:64], h[HEADER_TIME][:20], h[HEADER_NONCE][:100],
                           h[HEADER_SIGNATURE][:200], (h.get(HEADER_BOOT) or "")[:128] or None)
    with ctx.db.write() as session:
        agent, conflict = authenticate(session, signed, request.method, path_qs, body, now=utcnow(),
                                       skew_s=ctx.settings.clock_skew_s,
                                       rate_per_minute=ctx.settings.rate_limit_per_minute)
        session.flush()
        session.expunge(agent)
    if conflict is not None:
        raise conflict
    return agent


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    username: str
    roles: dict[str, str]  # unit ("*" for all) -> role

    def role_for(self, unit: str) -> str | None:
        return self.roles.get(unit) or self.roles.get(ALL_UNITS)

    def can(self, unit: str, role: str) -> bool:
        have = self.role_for(unit)
        return have is not None and ROLES.index(have) >= ROLES.index(role)

    def require(self, unit: str, role: str) -> None:
        if not self.can(unit, role):
            # the same answer whether the unit exists or not: nobody learns about another unit's data
            raise ApiError(403, "forbidden", f"needs the {role} role for unit {unit!r}",
                           f"需要单位 {unit!r} 的 {role} 角色")

    def units(self, role: str = "viewer") -> list[str] | None:
        """Units this person may see at ``role``; None: every unit."""
        every = self.roles.get(ALL_UNITS)
        if every is not None and ROLES.index(every) >= ROLES.index(role):
            return None
        return [u for u, r in self.roles.items() if ROLES.index(r) >= ROLES.index(role)]


def principal_for_token(ctx: AppContext, token: str) -> Principal | None:
    """The person a session token (API bearer or dashboard cookie) belongs to, with their roles; None when the
    session is unknown, expired or the account disabled."""
    now = utcnow()
    with ctx.db.read() as session:
        row = session.execute(select(UserSession, User).join(User, User.id == UserSession.user_id)
                              .where(UserSession.token_hash == secret_digest(token.strip()))).first()
        if row is None or row[0].expires_at <= now or row[1].disabled:
            return None
        user = row[1]
        roles = {r.unit: r.role for r in session.scalars(select(UserRole).where(UserRole.user_id == user.id))}
    return Principal(user.id, user.username, roles)


def current_user(request: Request, ctx: AppContext = Depends(context)) -> Principal:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "login-required", "log in first (Authorization: Bearer <token>)",
                       "请先登录（Authorization: Bearer <令牌>）", {"WWW-Authenticate": "Bearer"})
    who = principal_for_token(ctx, token)
    if who is None:
        raise ApiError(401, "session-invalid", "session unknown or expired: log in again",
                       "会话无效或已过期，请重新登录", {"WWW-Authenticate": "Bearer"})
    return who


def session_expiry(ctx: AppContext, now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(hours=ctx.settings.session_hours)
