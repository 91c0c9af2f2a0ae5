"""What agents call: enrolment (with a one-time token), then signed requests only (docs/collector.md)."""

from __future__ import annotations

import asyncio
from collections import Counter

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from agent.wire.collector_api import (
    EnrolRequest,
    EnrolResponse,
    ErrorBody,
    IngestBatch,
    IngestResult,
    NoticeDelivery,
    RenewRequest,
    RenewResponse,
    TaskCompletion,
    TaskItem,
    TaskLease,
    TrustedIssuerInfo,
)
from agent.wire.notice import NoticeDocument
from collector.api.context import AppContext
from collector.api.deps import context, raw_body, signed_agent
from collector.core.clock import iso, utcnow
from collector.core.errors import ApiError
from collector.crud import identity, ingest, work
from collector.models import Agent, IssuedNotice

router = APIRouter(prefix="/api/v1", tags=["agents"])
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (401, 403, 409, 413, 422, 429, 503)}


@router.post("/enroll", response_model=EnrolResponse, responses=ERRORS)
def enroll(req: EnrolRequest, ctx: AppContext = Depends(context)) -> EnrolResponse:
    """Spend a one-time enrolment token: the CSR's Ed25519 key becomes this agent's identity."""
    with ctx.db.write() as session:
        done = identity.enrol(session, req, ctx.authority, ctx.settings.cert_days, utcnow())
        agent_id, unit = done.agent.id, done.agent.unit
    return EnrolResponse(agent_id=agent_id, unit=unit, certificate_pem=done.cert.pem, ca_pem=ctx.authority.cert_pem,
                         not_after=iso(done.cert.not_after),
                         issuers=[TrustedIssuerInfo(name=ctx.issuer_name,
                                                    public_key=work.issuer_public_b64(ctx.issuer_key))],
                         poll_interval_s=ctx.settings.task_poll_interval_s)


@router.post("/agent/renew", response_model=RenewResponse, responses=ERRORS)
def renew(req: RenewRequest, agent: Agent = Depends(signed_agent), ctx: AppContext = Depends(context)) -> RenewResponse:
    """A new certificate (and optionally a new identity key) before the current one expires."""
    with ctx.db.write() as session:
        row = session.get(Agent, agent.id)
        assert row is not None
        cert = identity.renew(session, row, req.csr_pem, ctx.authority, ctx.settings.cert_days)
    return RenewResponse(certificate_pem=cert.pem, not_after=iso(cert.not_after))


# The body is documented as IngestBatch (collector.api.app adds the wire schemas to the OpenAPI components) and
# validated here from the raw bytes in one pydantic-core call: FastAPI's own body handling parses the JSON into
# Python objects first and validates those, which cost several times as much for a batch of findings.
INGEST_BODY = {"required": True,
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestBatch"}}}}


def _batch(body: bytes) -> IngestBatch:
    try:
        return IngestBatch.model_validate_json(body)
    except ValidationError as exc:  # the same 422 answer as FastAPI's own body validation
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


@router.post("/agent/ingest", response_model=IngestResult, responses=ERRORS,
             openapi_extra={"requestBody": INGEST_BODY})
def ingest_batch(request: Request, body: bytes = Depends(raw_body), agent: Agent = Depends(signed_agent),
                 ctx: AppContext = Depends(context)) -> Response:
    """Findings, runs, record entries and acknowledgements: each item acknowledged accepted, duplicate or
    rejected. Re-sending a batch is safe: it changes nothing."""
    batch = _batch(body)
    metrics = request.app.state.metrics
    items = (len(batch.runs) + sum(len(r.findings) for r in batch.runs) + len(batch.record_lines)
             + len(batch.acknowledgements))
    if items > ctx.settings.max_batch_items:
        metrics.batches.labels("too-large").inc()
        raise ApiError(413, "too-many-items", f"{items} items in one batch (limit {ctx.settings.max_batch_items})",
                       f"单批 {items} 项，超过上限 {ctx.settings.max_batch_items}")
    now = utcnow()
    result = None
    with ctx.db.write() as session:  # one write transaction per batch
        row = session.get(Agent, agent.id, with_for_update=True)
        assert row is not None
        conflict = identity.check_host(session, row, batch.host, now)
        if conflict is None:
            result = ingest.ingest(session, row, batch, now)
        # else: the clone alert is committed with this block, and nothing of the batch is stored
    if conflict is not None:
        metrics.batches.labels("identity-conflict").inc()
        raise conflict
    assert result is not None
    metrics.batches.labels("replayed" if result.replayed_batch else "stored").inc()
    for (kind, status), count in Counter((item.kind, item.status) for item in result.items).items():
        metrics.items.labels(kind, status).inc(count)
    # serialised here, once: the declared response_model documents it, and re-validating the answer that was
    # just built (FastAPI's default for a returned model) would cost as much as building it
    return Response(result.model_dump_json(by_alias=True), media_type="application/json")


@router.get("/agent/notices", response_model=NoticeDelivery, responses=ERRORS)
def notices(agent: Agent = Depends(signed_agent), ctx: AppContext = Depends(context)) -> NoticeDelivery:
    """Signed notices for this agent's unit not yet acknowledged by it (acknowledge through ingest)."""
    with ctx.db.read() as session:
        return NoticeDelivery(notices=work.pending_notices(session, agent, utcnow()))


def _lease(ctx: AppContext, agent: Agent) -> list[TaskItem]:
    now = utcnow()
    with ctx.db.write() as session:
        tasks = work.lease_tasks(session, agent, now, ctx.settings.task_lease_s)
        out = []
        for t in tasks:
            notice = session.get(IssuedNotice, t.notice_id) if t.notice_id else None
            out.append(TaskItem(task_id=t.id, notice_id=t.notice_id, tests=t.tests, targets=t.targets,
                                not_before=iso(t.not_before), expires_at=iso(t.expires_at),
                                lease_until=iso(t.lease_until or now),
                                notice=NoticeDocument.model_validate(notice.document) if notice else None))
    return out


@router.get("/agent/tasks", response_model=TaskLease, responses=ERRORS)
async def tasks(wait: int = Query(0, ge=0, le=120, description="long poll: seconds to wait for a task"),
                agent: Agent = Depends(signed_agent), ctx: AppContext = Depends(context)) -> TaskLease:
    """Lease the tasks due for this agent. With ``wait`` the answer waits (up to the server's limit) until a
    task is due; otherwise poll again after ``poll_interval_s``."""
    wait = min(wait, ctx.settings.long_poll_max_s)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        leased = await run_in_threadpool(_lease, ctx, agent)
        if leased or loop.time() >= deadline:
            return TaskLease(tasks=leased, poll_interval_s=ctx.settings.task_poll_interval_s)
        await asyncio.sleep(min(1.0, max(0.0, deadline - loop.time())))


@router.post("/agent/tasks/{task_id}/complete", responses=ERRORS)
def complete(task_id: str, req: TaskCompletion, agent: Agent = Depends(signed_agent),
             ctx: AppContext = Depends(context)) -> dict[str, str]:
    """Report a leased task finished (its results arrive through ingest, naming the task)."""
    with ctx.db.write() as session:
        task = work.complete_task(session, agent, task_id[:64], req.status, req.run_id, req.message, utcnow())
        return {"task_id": task.id, "state": task.state}
