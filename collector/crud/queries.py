"""The read queries the API and the dashboard share, each shaped for one of the indexes of migration 0002.

Callers check permissions first (``collector.api.deps.Principal``) and pass the units a person may see;
every query here is limited by unit or by agent. Lists read plain rows (``VIEW_COLUMNS``: no stored wire
document) and count straight over the filtered table, so a page costs one index range and one index count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Row, case, func, select
from sqlalchemy.orm import Session

from collector.core.errors import ApiError
from collector.models import Agent, AgentAlert, Finding, FindingAudit, IssuedNotice, NoticeAck, Run, Task
from collector.models.findings import STATES, active_filter, awaiting_retest_filter

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")
ONLINE_WINDOW = dt.timedelta(minutes=15)

# What a list shows (not the stored wire document, which only the detail view carries).
VIEW_COLUMNS = tuple(c for c in Finding.__table__.c if c.name != "document")
NEWEST_FIRST = (Finding.last_seen.desc(), Finding.id.desc())


def unit_scope(units: Sequence[str] | None) -> list[Any]:
    """The WHERE terms for findings of these units (None: every unit)."""
    return [] if units is None else [Finding.unit.in_(list(units))]


def list_filters(*, state: str | None, severity: str | None = None, agent_id: str | None = None,
                 host: str | None = None) -> list[Any]:
    """WHERE terms of a findings list: a state, or "active" (the default) or "all"; severity, agent, host."""
    where: list[Any] = []
    state = state or "active"
    if state == "active":
        where.append(active_filter())
    elif state != "all":
        if state not in STATES:
            raise ApiError(422, "bad-state", f"unknown state {state!r}", f"未知状态 {state!r}")
        where.append(Finding.state == state)
    if severity is not None:
        where.append(Finding.severity == severity)
    if agent_id is not None:
        where.append(Finding.agent_id == agent_id)
    if host is not None:
        where.append(Finding.host == host)
    return where


def count(session: Session, where: list[Any]) -> int:
    return int(session.execute(select(func.count()).select_from(Finding).where(*where)).scalar_one())


def page(session: Session, where: list[Any], limit: int, offset: int,
         order: tuple[Any, ...] = NEWEST_FIRST) -> tuple[int, list[Row[Any]]]:
    """The total, then one page of plain rows; most recent first."""
    total = count(session, where)
    rows = session.execute(select(*VIEW_COLUMNS).where(*where).order_by(*order).limit(limit).offset(offset))
    return total, list(rows)


def page_by_severity(session: Session, where: list[Any], limit: int, offset: int) -> tuple[int, list[Row[Any]]]:
    """The most severe first, then the most recent: one grouped count by severity (the total, and where each
    severity's rows start), then only the severities the page covers, each an ordered range of the index on
    (unit, severity, last seen, id). Ordering a whole unit by last seen alone would sort every active row."""
    counts = {str(sev): int(n) for sev, n in session.execute(
        select(Finding.severity, func.count()).where(*where).group_by(Finding.severity))}
    rows: list[Row[Any]] = []
    skip = offset
    for sev in SEVERITY_ORDER:
        have = counts.get(sev, 0)
        if skip >= have:
            skip -= have
            continue
        rows += session.execute(select(*VIEW_COLUMNS).where(*where, Finding.severity == sev).order_by(*NEWEST_FIRST)
                                .limit(limit - len(rows)).offset(skip))
        skip = 0
        if len(rows) >= limit:
            break
    return sum(counts.values()), rows


def severity_counts(session: Session, unit: str) -> dict[str, int]:
    """Active findings of a unit by severity (every severity present, zero or not)."""
    counts = dict.fromkeys(SEVERITY_ORDER, 0)
    for sev, n in session.execute(select(Finding.severity, func.count()).where(
            Finding.unit == unit, active_filter()).group_by(Finding.severity)):
        counts[sev] = int(n)
    return counts


def overdue_count(session: Session, unit: str, now: dt.datetime) -> int:
    return count(session, [Finding.unit == unit, active_filter(), Finding.deadline < now])


def overdue(session: Session, scope: list[Any], now: dt.datetime, limit: int) -> tuple[int, list[Row[Any]]]:
    """Active findings past their rectification deadline, or past their re-test due date; by deadline."""
    late = [*scope, active_filter(), Finding.deadline < now]
    # due for re-test and not already in ``late`` (a NULL deadline sorts last, on both databases)
    retest = [*scope, awaiting_retest_filter(), Finding.retest_due < now,
              Finding.deadline.is_(None) | (Finding.deadline >= now)]
    # the OR of the two conditions as two disjoint queries, each over its own partial index: one OR
    # ordered by deadline walks every active finding without a deadline first
    total = count(session, late) + count(session, retest)
    rows = [*session.execute(select(*VIEW_COLUMNS).where(*late).order_by(Finding.deadline, Finding.id).limit(limit)),
            *session.execute(select(*VIEW_COLUMNS).where(*retest)
                             .order_by(Finding.deadline.is_(None), Finding.deadline, Finding.id).limit(limit))]
    rows.sort(key=lambda r: (r.deadline is None, r.deadline or now, r.id))
    return total, rows[:limit]


def with_deadline(session: Session, unit: str, limit: int) -> tuple[int, list[Row[Any]]]:
    """Active findings of a unit that have a rectification deadline, the nearest first."""
    where = [Finding.unit == unit, active_filter(), Finding.deadline.is_not(None)]
    total = count(session, where)
    rows = session.execute(select(*VIEW_COLUMNS).where(*where).order_by(Finding.deadline, Finding.id).limit(limit))
    return total, list(rows)


def awaiting_retest(session: Session, unit: str, limit: int) -> tuple[int, list[Row[Any]]]:
    """Reported rectifications of a unit waiting for their re-test (Art. 28), the earliest due first."""
    where = [Finding.unit == unit, awaiting_retest_filter()]
    total = count(session, where)
    rows = session.execute(select(*VIEW_COLUMNS).where(*where).order_by(Finding.retest_due, Finding.id)
                           .limit(limit))
    return total, list(rows)


def retests_overdue_count(session: Session, unit: str, now: dt.datetime) -> int:
    return count(session, [Finding.unit == unit, awaiting_retest_filter(), Finding.retest_due < now])


def visible_finding(session: Session, finding_id: int, can_view: Callable[[str], bool]) -> Finding:
    """One finding, or 404 whether it does not exist or belongs to a unit the caller may not see."""
    finding = session.get(Finding, finding_id)
    if finding is None or not can_view(finding.unit):
        raise ApiError(404, "unknown-finding", "no such finding", "没有该问题")
    return finding


def audit_trail(session: Session, finding_id: int) -> list[FindingAudit]:
    return list(session.scalars(select(FindingAudit).where(FindingAudit.finding == finding_id)
                                .order_by(FindingAudit.id)))


# -- agents, alerts, notices, tasks ------------------------------------------------------------------------


def agent_state(agent: Any, now: dt.datetime) -> str:
    if agent.revoked_at is not None:
        return "revoked"
    return "online" if agent.last_seen >= now - ONLINE_WINDOW else "offline"


def visible_agent(session: Session, agent_id: str, can_view: Callable[[str], bool]) -> Agent:
    agent = session.get(Agent, agent_id[:64])
    if agent is None or not can_view(agent.unit):
        raise ApiError(404, "unknown-agent", "no such agent", "没有该代理")
    return agent


def units_with_agents(session: Session) -> list[str]:
    return list(session.scalars(select(Agent.unit).distinct().order_by(Agent.unit)))


def agent_state_counts(session: Session, unit: str, now: dt.datetime) -> dict[str, int]:
    state = case((Agent.revoked_at.is_not(None), "revoked"), (Agent.last_seen >= now - ONLINE_WINDOW, "online"),
                 else_="offline")
    out = {"online": 0, "offline": 0, "revoked": 0}
    for name, n in session.execute(select(state, func.count()).where(Agent.unit == unit).group_by(state)):
        out[str(name)] = int(n)
    return out


def unit_agents(session: Session, unit: str, limit: int) -> list[Agent]:
    """A unit's agents, the longest unseen first (the ones that need a look)."""
    return list(session.scalars(select(Agent).where(Agent.unit == unit).order_by(Agent.last_seen, Agent.id)
                                .limit(limit)))


def alert_kinds_by_agent(session: Session, agent_ids: Sequence[str]) -> dict[str, set[str]]:
    """The alert kinds raised for each of these agents (one query for a whole table of agents)."""
    out: dict[str, set[str]] = {}
    if agent_ids:
        for agent_id, kind in session.execute(select(AgentAlert.agent_id, AgentAlert.kind).distinct()
                                              .where(AgentAlert.agent_id.in_(list(agent_ids)))):
            out.setdefault(agent_id, set()).add(kind)
    return out


def unit_alerts(session: Session, unit: str, limit: int) -> list[Row[Any]]:
    """Identity and record-chain alerts of a unit's agents, newest first: (alert, agent hostname)."""
    return list(session.execute(select(AgentAlert, Agent.hostname).join(Agent, Agent.id == AgentAlert.agent_id)
                                .where(Agent.unit == unit).order_by(AgentAlert.created_at.desc(), AgentAlert.id.desc())
                                .limit(limit)))


def alert_agent_counts(session: Session, unit: str) -> dict[str, int]:
    """How many of a unit's agents have raised each alert kind (clone suspected, record wiped, ...)."""
    return {str(kind): int(n) for kind, n in session.execute(
        select(AgentAlert.kind, func.count(AgentAlert.agent_id.distinct())).join(Agent, Agent.id == AgentAlert.agent_id)
        .where(Agent.unit == unit).group_by(AgentAlert.kind))}


def agent_runs(session: Session, agent_id: str, limit: int) -> list[Run]:
    return list(session.scalars(select(Run).where(Run.agent_id == agent_id).order_by(Run.finished.desc())
                                .limit(limit)))


def hostnames(session: Session, agent_ids: Sequence[str]) -> dict[str, str]:
    if not agent_ids:
        return {}
    rows = session.execute(select(Agent.id, Agent.hostname).where(Agent.id.in_(list(agent_ids))))
    return {str(agent_id): str(name) for agent_id, name in rows}


def unit_notices(session: Session, unit: str, limit: int) -> tuple[list[IssuedNotice], dict[str, list[NoticeAck]]]:
    """A unit's notices (latest window first) and their acknowledgements, in two queries."""
    notices = list(session.scalars(select(IssuedNotice).where(IssuedNotice.unit == unit)
                                   .order_by(IssuedNotice.window_start.desc()).limit(limit)))
    acks: dict[str, list[NoticeAck]] = {n.id: [] for n in notices}
    if notices:
        for ack in session.scalars(select(NoticeAck).where(NoticeAck.notice_id.in_(list(acks)))
                                   .order_by(NoticeAck.acknowledged_at)):
            acks[ack.notice_id].append(ack)
    return notices, acks


def unit_tasks(session: Session, unit: str, limit: int, state: str | None = None) -> list[Task]:
    query = select(Task).where(Task.unit == unit).order_by(Task.created_at.desc()).limit(limit)
    if state is not None:
        query = query.where(Task.state == state)
    return list(session.scalars(query))


def task_state_counts(session: Session, unit: str) -> dict[str, int]:
    return {str(s): int(n) for s, n in session.execute(select(Task.state, func.count()).where(Task.unit == unit)
                                                       .group_by(Task.state))}
