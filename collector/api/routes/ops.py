"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from collector.api.context import AppContext
from collector.api.deps import context
from collector.core.errors import ApiError
from collector.core.migrate import head_revision
from collector.core.security import same_secret

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "database unreachable or schema not current"}})
def readyz(ctx: AppContext = Depends(context)) -> JSONResponse:
    """The database answers and its schema is at the head revision."""
    try:
        with ctx.db.read() as session:
            current = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503,
                            headers={"Retry-After": "5"})
    head = head_revision()
    if current != head:
        return JSONResponse({"status": "unavailable", "database": "ok", "schema": current, "head": head},
                            status_code=503, headers={"Retry-After": "30"})
    return JSONResponse({"status": "ok", "database": "ok", "schema": current})


@router.get("/metrics", response_class=Response, responses={401: {"description": "bearer token required"}})
def metrics(request: Request, ctx: AppContext = Depends(context)) -> Response:
    """Prometheus exposition; needs ``Authorization: Bearer <metrics_token>`` (from config.toml)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expected = ctx.settings.metrics_token
    if not expected or scheme.lower() != "bearer" or not same_secret(token.strip(), expected):
        raise ApiError(401, "metrics-token", "metrics need the bearer token from the collector's config",
                       "指标接口需要采集端配置中的令牌", {"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
