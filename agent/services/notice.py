"""Notices on the subject's side: verify one, acknowledge its delivery. Every outcome is recorded."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from agent.notice import (
    CheckResult,
    NoticeError,
    NoticeSettings,
    Problem,
    SignedNotice,
    check,
    load_ack,
    load_signed,
    load_trusted,
    save_ack,
    settings_from,
)
from agent.record import Entry
from agent.services.context import AgentContext
from agent.wire.contents import (
    AcknowledgementContent,
    AcknowledgementSummary,
    Applied,
    NoticeContent,
    NoticeSummary,
    RefusalContent,
    RefusalSummary,
)
from agent.wire.notice import NoticeBody


@dataclass(frozen=True, slots=True)
class NoticeRequest:
    path: Path
    unit: str | None = None  # overrides of [notice] unit / lead_time
    lead_time: str | None = None


@dataclass(frozen=True, slots=True)
class VerifyOutcome:
    signed: SignedNotice
    result: CheckResult
    entry: Entry

    @property
    def ok(self) -> bool:
        return self.result.ok


@dataclass(frozen=True, slots=True)
class AckOutcome:
    signed: SignedNotice
    acknowledged_at: dt.datetime
    late: Problem | None  # late-delivery: acknowledged, but tests under it will be refused
    entry: Entry


def _settings(ctx: AgentContext, req: NoticeRequest) -> tuple[NoticeSettings, Applied]:
    settings = settings_from(ctx.config, req.unit, req.lead_time)
    overrides = {k: v for k, v in (("unit", req.unit), ("lead_time", req.lead_time)) if v is not None}
    applied = Applied(unit=settings.unit, lead_time_s=int(settings.lead_time.total_seconds()), overrides=overrides)
    return settings, applied


def load_or_refuse(ctx: AgentContext, path: Path, action: str) -> SignedNotice:
    """A notice that cannot even be read (unsigned, tampered, not JSON) is a refusal for the record."""
    try:
        return load_signed(path)
    except NoticeError as exc:
        ctx.recorder.write(RefusalContent(summary=RefusalSummary(code=exc.code, message=str(exc), file=str(path),
                                                                 action=action)))
        raise


def _body(signed: SignedNotice) -> NoticeBody:
    return NoticeBody.model_validate(signed.notice.to_json())


def verify(ctx: AgentContext, req: NoticeRequest, now: dt.datetime | None = None) -> VerifyOutcome:
    settings, applied = _settings(ctx, req)
    signed = load_or_refuse(ctx, req.path, "verify")
    result = check(signed, now=now or dt.datetime.now(dt.UTC), trusted=load_trusted(ctx.state), settings=settings,
                   ack=load_ack(signed.notice.id, ctx.state))
    codes = [p.code for p in result.problems]
    if result.ok:
        entry = ctx.recorder.write(NoticeContent(
            notice_id=signed.notice.id, scope=_body(signed), applied=applied,
            summary=NoticeSummary(verdict="valid", file=str(req.path), codes=codes)))
    else:
        entry = ctx.recorder.write(RefusalContent(notice_id=signed.notice.id, applied=applied, summary=RefusalSummary(
            code=codes[0], message="; ".join(p.en for p in result.problems), file=str(req.path), action="verify",
            codes=codes)))
    return VerifyOutcome(signed, result, entry)


def acknowledge(ctx: AgentContext, req: NoticeRequest, now: dt.datetime | None = None) -> AckOutcome:
    """Record delivery (the first acknowledgement stands). A notice that fails its checks is refused
    (NoticeError, recorded); one acknowledged too late is acknowledged and the lateness recorded as a refusal."""
    settings, applied = _settings(ctx, req)
    signed = load_or_refuse(ctx, req.path, "ack")
    now = now or dt.datetime.now(dt.UTC)
    result = check(signed, now=now, trusted=load_trusted(ctx.state), settings=settings, ack=None, require_ack=False)
    if not result.ok:
        first = result.problems[0]
        ctx.recorder.write(RefusalContent(notice_id=signed.notice.id, applied=applied, summary=RefusalSummary(
            code=first.code, message=first.en, file=str(req.path), action="ack")))
        raise NoticeError(first.code, f"notice {signed.notice.id} not acknowledged: {first.en}")
    ack = save_ack(signed, ctx.recorder.actor, now, ctx.state)
    entry = ctx.recorder.write(AcknowledgementContent(
        notice_id=signed.notice.id, scope=_body(signed), applied=applied,
        summary=AcknowledgementSummary(acknowledged_at=ack.acknowledged_at.isoformat(), digest=ack.digest)))
    late = check(signed, now=now, trusted=load_trusted(ctx.state), settings=settings, ack=ack)
    delivery = [p for p in late.problems if p.code == "late-delivery"]
    if delivery:
        ctx.recorder.write(RefusalContent(notice_id=signed.notice.id, applied=applied, summary=RefusalSummary(
            code="late-delivery", message=delivery[0].en, file=str(req.path), action="ack")))
    return AckOutcome(signed, ack.acknowledged_at, delivery[0] if delivery else None, entry)
