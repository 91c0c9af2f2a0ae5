"""The rectification lifecycle (Art. 27, 28): what a person may change, with a note, audited.

open -> rectification_ordered (deadline: SLA days per severity, per unit) -> reported_rectified (note; re-test
due within 15 working days) -> retest_scheduled -> fix_verified (set only by ingest: a complete re-test run
without the finding, without probe error or login failure) or reopened; risk_accepted (reason, approver,
expiry: reactivated when it expires); false_positive (reason).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from collector.core.errors import ApiError
from collector.core.settings import DEFAULT_SLA_DAYS
from collector.core.workdays import WorkCalendar, china_date
from collector.crud.ingest import _audit
from collector.crud.work import create_tasks
from collector.models import CalendarOverride, Finding, UnitSettings
from collector.models.findings import ACTIVE_STATES
from collector.models.people import ALL_UNITS

# target state -> the states a person may move a finding from
MANUAL: dict[str, tuple[str, ...]] = {
    "rectification_ordered": ("open", "reopened"),
    "reported_rectified": ("open", "reopened", "rectification_ordered"),
    "risk_accepted": ACTIVE_STATES,
    "false_positive": ACTIVE_STATES,
    "open": ("risk_accepted", "false_positive", "resolved"),
}


@dataclass(frozen=True, slots=True)
class Change:
    to: str
    note: str
    actor: str
    approver: str | None = None
    expires: dt.datetime | None = None


def sla_days(session: Session, unit: str, severity: str) -> int:
    row = session.get(UnitSettings, unit)
    value = getattr(row, f"sla_{severity}", None) if row is not None else None
    return int(value) if value is not None else DEFAULT_SLA_DAYS[severity]


def calendar_for(session: Session, unit: str) -> WorkCalendar:
    rows = session.scalars(select(CalendarOverride).where(CalendarOverride.unit.in_((unit, ALL_UNITS))))
    overrides: dict[dt.date, bool] = {}
    for row in sorted(rows, key=lambda r: r.unit != ALL_UNITS):  # the unit's own entry wins over "*"
        overrides[row.day] = row.workday
    return WorkCalendar(overrides)


def transition(session: Session, finding: Finding, change: Change, now: dt.datetime, retest_days: int) -> Finding:
    allowed = MANUAL.get(change.to)
    if allowed is None:
        verified = change.to == "fix_verified"
        raise ApiError(422, "bad-state", f"{change.to!r} cannot be set by a person"
                       + (" (only a re-test run verifies a fix)" if verified else ""),
                       f"{change.to!r} 不能由人工设置" + ("（只有复测才能确认整改）" if verified else ""))
    if finding.state not in allowed:
        raise ApiError(409, "bad-transition", f"cannot go from {finding.state} to {change.to}",
                       f"不能从 {finding.state} 变为 {change.to}")
    if not change.note.strip():
        raise ApiError(422, "note-required", "a note is required", "必须填写说明")
    frm = finding.state
    note = change.note.strip()
    if change.to == "rectification_ordered":
        days = sla_days(session, finding.unit, finding.severity)
        finding.deadline = now + dt.timedelta(days=days)
        note += f" [deadline {finding.deadline:%Y-%m-%d} ({days} days, {finding.severity})]"
    elif change.to == "reported_rectified":
        count = calendar_for(session, finding.unit).add_working_days(china_date(now), retest_days)
        finding.reported_at = now
        finding.retest_due = count.end_of_due_day()
        finding.calendar_warning = "; ".join(count.warnings) or None
        note += f" [re-test due by {count.due:%Y-%m-%d} ({retest_days} working days)]"
        if count.warnings:
            note += " [warning: " + "; ".join(count.warnings) + "]"
    elif change.to == "risk_accepted":
        if not change.approver or change.expires is None:
            raise ApiError(422, "acceptance-incomplete", "risk acceptance needs an approver and an expiry",
                           "风险接受需要审批人和到期时间")
        if change.expires <= now:
            raise ApiError(422, "acceptance-expired", "the expiry is in the past", "到期时间早于当前时间")
        finding.accepted_until = change.expires
        note += f" [approved by {change.approver}, until {change.expires:%Y-%m-%d}]"
    elif change.to == "open":
        finding.accepted_until = None
    finding.state, finding.updated_at = change.to, now
    _audit(session, finding.id, frm, change.to, note, now, actor=change.actor)
    return finding


def schedule_retest(session: Session, finding: Finding, actor: str, now: dt.datetime,
                    not_before: dt.datetime | None) -> str:
    """A re-test task for the host and probe of a reported rectification, due before the re-test deadline."""
    if finding.state != "reported_rectified":
        raise ApiError(409, "bad-transition", f"a re-test needs a reported rectification (state {finding.state})",
                       f"复测需要先报告整改（当前状态 {finding.state}）")
    expires = finding.retest_due or now + dt.timedelta(days=21)
    if expires <= now:
        expires = now + dt.timedelta(days=1)
    tasks = create_tasks(session, unit=finding.unit, agent_ids=[finding.agent_id], notice=None,
                         tests=[finding.probe], targets=[finding.host], not_before=not_before or now,
                         expires_at=expires, reason="retest", now=now)
    _audit(session, finding.id, finding.state, "retest_scheduled", f"re-test task {tasks[0].id}", now, actor=actor)
    finding.state, finding.updated_at = "retest_scheduled", now
    return tasks[0].id


def expire_acceptances(session: Session, now: dt.datetime) -> int:
    """Risk acceptances past their expiry: the finding is active again (audited), never silently kept."""
    rows = list(session.scalars(select(Finding).where(Finding.state == "risk_accepted",
                                                      Finding.accepted_until <= now)))
    for f in rows:
        _audit(session, f.id, "risk_accepted", "open", f"risk acceptance expired {f.accepted_until:%Y-%m-%d}", now)
    if rows:
        session.execute(update(Finding).where(Finding.id.in_([f.id for f in rows]))
                        .values(state="open", accepted_until=None, updated_at=now))
    return len(rows)
