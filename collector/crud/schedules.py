"""Schedules: a cron expression or an RRULE; each window gets its notice at least the lead time ahead, then one
task per agent of the unit. Each window is created once (its primary key), whichever replica gets there."""

from __future__ import annotations

import datetime as dt

from croniter import croniter
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dateutil.rrule import rrulestr
from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.core.errors import ApiError
from collector.crud.identity import _insert
from collector.crud.work import create_tasks, issue_notice
from collector.models import Schedule, ScheduleOccurrence

HORIZON = dt.timedelta(days=1)  # windows this far past the lead time are prepared on each tick


def occurrences(rule: str, after: dt.datetime, until: dt.datetime, limit: int = 100) -> list[dt.datetime]:
    """Window starts in (after, until], UTC. ValueError for a rule that is neither cron nor RRULE."""
    text = rule.strip()
    out: list[dt.datetime] = []
    if text.upper().startswith(("RRULE:", "DTSTART", "FREQ=")):
        try:
            rr = rrulestr(text, dtstart=after.replace(second=0, microsecond=0))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"RRULE: {exc}") from None
        for start in rr:
            start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
            if start <= after:
                continue
            if start > until or len(out) >= limit:
                break
            out.append(start.astimezone(dt.UTC))
        return out
    if not croniter.is_valid(text):
        raise ValueError("not a cron expression (5 fields) nor an RRULE")
    it = croniter(text, after)
    while len(out) < limit:
        start = it.get_next(dt.datetime)
        if start > until:
            break
        out.append(start.astimezone(dt.UTC))
    return out


def add_schedule(session: Session, *, unit: str, name: str, rule: str, duration_s: int, lead_s: int,
                 kinds: list[str], targets: list[str], now: dt.datetime) -> Schedule:
    try:
        occurrences(rule, now, now + dt.timedelta(days=400), limit=1)
    except ValueError as exc:
        raise ApiError(422, "bad-rule", str(exc), "排程规则无效（需为 cron 表达式或 RRULE）") from None
    row = Schedule(unit=unit, name=name, rule=rule, duration_s=duration_s, lead_s=lead_s, kinds=kinds,
                   targets=targets, created_at=now)
    session.add(row)
    session.flush()
    return row


def run_schedules(session: Session, key: Ed25519PrivateKey, issuer: str, now: dt.datetime) -> int:
    """Create the notices (and tasks) of every window due to be announced now. Returns how many."""
    created = 0
    for sched in list(session.scalars(select(Schedule))):
        lead = dt.timedelta(seconds=sched.lead_s)
        for start in occurrences(sched.rule, now + lead, now + lead + HORIZON):
            notice_id = f"S{sched.id}-{start:%Y%m%dT%H%MZ}"
            fresh = session.execute(_insert(session, ScheduleOccurrence).values(
                schedule_id=sched.id, start=start, notice_id=notice_id, created_at=now)
                .on_conflict_do_nothing().returning(ScheduleOccurrence.notice_id)).first()
            if fresh is None:
                continue
            end = start + dt.timedelta(seconds=sched.duration_s)
            notice = issue_notice(session, key, issuer=issuer, notice_id=notice_id, unit=sched.unit,
                                  targets=sched.targets, kinds=sched.kinds, start=start, end=end, lead_time=lead,
                                  contact="", by=f"schedule {sched.name}", now=now, schedule_id=sched.id)
            create_tasks(session, unit=sched.unit, agent_ids=None, notice=notice, tests=sched.kinds,
                         targets=sched.targets, not_before=start, expires_at=end, reason="schedule", now=now)
            created += 1
    return created
