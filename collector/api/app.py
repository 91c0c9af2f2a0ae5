"""The FastAPI application: routes, error bodies (never a bare 500), the body-size limit, request latency."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, DBAPIError, OperationalError, SQLAlchemyError, StatementError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector import __version__
from collector.api.context import AppContext
from collector.api.dashboard import routes as dashboard
from collector.api.dashboard.web import PREFIX as DASHBOARD_PREFIX
from collector.api.dashboard.web import error_page
from collector.api.metrics import Metrics
from collector.api.routes import agent, findings, ops, people, work
from collector.core.errors import ApiError

log = logging.getLogger(__name__)
DB_RETRY_AFTER_S = 5


def _error(status: int, code: str, en: str, zh: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": en, "message_zh": zh}, status_code=status, headers=headers)


class BodyLimit:
    """413 before the application sees a body over the limit: by its declared length, or, for a chunked body,
    counted while it is read here in full (up to the limit) and then handed on."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _error(413, "too-large", f"request body over {self.limit} bytes",
                     f"请求体超过 {self.limit} 字节")(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                declared = value
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.limit:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        buffered: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)


class Timing:
    """Request latency by route, as a plain ASGI middleware: ``@app.middleware("http")`` (BaseHTTPMiddleware)
    costs a task group and memory streams per request, a large share of a signed poll's CPU."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        await self.app(scope, receive, send)
        path = getattr(scope.get("route"), "path", "unmatched")  # the router adds the matched route to the scope
        self.metrics.latency.labels(scope["method"], path).observe(time.perf_counter() - start)


def _document_wire_bodies(app: FastAPI) -> None:
    """Request bodies a route validates itself (ingest: from the raw bytes) are still documented with their
    model: its JSON schema and those it refers to are added to the OpenAPI components."""
    from agent.wire.collector_api import IngestBatch

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            body = IngestBatch.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in body.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components.setdefault(IngestBatch.__name__, body)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(ctx: AppContext) -> FastAPI:
    app = FastAPI(title="precaution collector", version=__version__,
                  description="Central collector of the precaution agents (Provisions 2021, Art. 24-28): "
                              "enrolment, ingest, rectification tracking, notices and tasks.")
    app.state.ctx = ctx
    metrics = Metrics(ctx.db)
    app.state.metrics = metrics

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        if request.url.path.startswith(DASHBOARD_PREFIX + "/"):  # a person's browser: the same refusal as a page
            return error_page(request, exc.status, exc.en, exc.zh)
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))[:300]}
                  for e in errors[:20]]
        return JSONResponse({"error": "invalid-request", "message": f"{where}: {first.get('msg')}"[:500],
                             "message_zh": f"请求无效：{where}"[:500], "detail": detail}, status_code=422)

    @app.exception_handler(SQLAlchemyError)
    async def _database(_request: Request, exc: SQLAlchemyError) -> JSONResponse:
        if isinstance(exc, DataError) or (isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)):
            # a value the database cannot hold (a NUL character in PostgreSQL text, an out-of-range number):
            # the request's fault, and nothing was stored (the transaction rolled back)
            log.info("value refused by the database: %s", str(exc).splitlines()[0][:200])
            return _error(422, "invalid-value", "a value cannot be stored (NUL character or out of range)",
                          "某个值无法存储（含 NUL 字符或超出范围）")
        metrics.db_errors.inc()
        if isinstance(exc, OperationalError | DBAPIError) and getattr(exc, "connection_invalidated", True):
            log.warning("database unavailable: %s", exc.__class__.__name__)
        else:
            log.error("database error: %s", str(exc).splitlines()[0][:300])
        return _error(503, "database-unavailable", "the database is unavailable; retry later",
                      "数据库暂不可用，请稍后重试", {"Retry-After": str(DB_RETRY_AFTER_S)})

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return _error(500, "internal-error", "internal error (logged)", "内部错误（已记录）")

    for module in (ops, agent, people, findings, work):
        app.include_router(module.router)
    dashboard.install(app)
    _document_wire_bodies(app)
    app.add_middleware(Timing, metrics=metrics)
    app.add_middleware(BodyLimit, limit=ctx.settings.max_batch_bytes)
    return app
