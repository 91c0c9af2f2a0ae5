"""What agents send (batches, runs, findings, record entries) and the rectification lifecycle kept on it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from collector.models.base import Base, BigId, UtcDateTime

# Lifecycle states (docs/collector.md, "Rectification").
STATES = ("open", "rectification_ordered", "reported_rectified", "retest_scheduled", "fix_verified", "reopened",
          "risk_accepted", "false_positive", "resolved")
ACTIVE_STATES = ("open", "rectification_ordered", "reported_rectified", "retest_scheduled", "reopened")
AWAITING_RETEST = ("reported_rectified", "retest_scheduled")


def _state_in(states: tuple[str, ...]) -> str:
    return "state IN (" + ", ".join(f"'{s}'" for s in states) + ")"


# Partial-index predicates. A query uses such an index only when it states the same condition with literal
# values (SQLite matches the term itself; a generic PostgreSQL plan cannot prove it from bind parameters):
# see ``active_filter`` below.
ACTIVE_PREDICATE = _state_in(ACTIVE_STATES)
AWAITING_RETEST_PREDICATE = _state_in(AWAITING_RETEST)


def _partial(name: str, predicate: str, *columns: Any) -> Index:
    return Index(name, *columns, sqlite_where=text(predicate), postgresql_where=text(predicate))


class Batch(Base):
    __tablename__ = "batches"
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    accepted: Mapped[int] = mapped_column(Integer)
    duplicate: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("agent_id", "run_id"), Index("ix_runs_agent_host", "agent_id", "host"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    host: Mapped[str] = mapped_column(String(255))
    started: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    finished: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    task_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    notice_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    login_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    probes_ok: Mapped[list[str]] = mapped_column(JSON)  # probes that ran completely (status ok)
    probes_failed: Mapped[list[str]] = mapped_column(JSON)  # error, timeout, limited, skipped
    # what the run covered (agent.wire.coverage.RunCoverage); None: an older agent, host-level findings only
    coverage: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    findings: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Finding(Base):
    __tablename__ = "findings"
    __table_args__ = (
        UniqueConstraint("agent_id", "finding_id"),
        Index("ix_findings_unit_state_severity", "unit", "state", "severity"),
        Index("ix_findings_agent_state", "agent_id", "state"),
        Index("ix_findings_state_deadline", "state", "deadline"),
        Index("ix_findings_state_retest_due", "state", "retest_due"),
        # the dashboard's queries (0002): each matches one query's WHERE + ORDER BY (+ LIMIT) over active rows
        _partial("ix_findings_active_unit_severity_seen", ACTIVE_PREDICATE, "unit", "severity", "last_seen", "id",
                 "state"),
        _partial("ix_findings_active_agent_seen", ACTIVE_PREDICATE, "agent_id", "last_seen", "id"),
        _partial("ix_findings_active_unit_deadline", ACTIVE_PREDICATE, "unit", "deadline", "state"),
        _partial("ix_findings_retest_unit_due", AWAITING_RETEST_PREDICATE, "unit", "retest_due"),
        # resolution of absent findings (0004): one agent's active findings of some probes, by target
        _partial("ix_findings_active_agent_probe_target", ACTIVE_PREDICATE, "agent_id", "probe", "target",
                 "last_seen"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    unit: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    finding_id: Mapped[str] = mapped_column(String(200))
    rule_id: Mapped[str] = mapped_column(String(200))
    probe: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(10))
    title_en: Mapped[str] = mapped_column(Text)
    title_zh: Mapped[str] = mapped_column(Text)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # the latest wire Finding as received
    first_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    first_run: Mapped[str] = mapped_column(String(200))
    last_run: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(30), default="open")
    resolved_run: Mapped[str | None] = mapped_column(String(200), nullable=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)  # that run's end
    deadline: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)  # rectification deadline
    reported_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    retest_due: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    calendar_warning: Mapped[str | None] = mapped_column(Text, nullable=True)
    accepted_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # what the finding is about (agent.wire.coverage.finding_target): None for the host itself, else a network
    # target (an address, "link:<iface>"); only a run whose coverage holds it can resolve the finding
    target: Mapped[str | None] = mapped_column(String(255), nullable=True)


class FindingRun(Base):
    """Item key of an ingested finding: (agent, finding id, run id). Inserted ON CONFLICT DO NOTHING."""

    __tablename__ = "finding_runs"
    __table_args__ = (Index("ix_finding_runs_agent_id_run_id", "agent_id", "run_id"),)  # the purge of old runs
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    finding_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class RecordEntry(Base):
    __tablename__ = "record_entries"
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(30))
    time: Mapped[str] = mapped_column(String(40))
    line: Mapped[str] = mapped_column(Text)  # exactly as the agent wrote it: re-verifiable here
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class FindingAudit(Base):
    __tablename__ = "finding_audit"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    finding: Mapped[int] = mapped_column(ForeignKey("findings.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    from_state: Mapped[str] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30))
    note: Mapped[str] = mapped_column(Text)


class UnitSettings(Base):
    """Per-unit SLA days per severity (None: the default)."""

    __tablename__ = "unit_settings"
    unit: Mapped[str] = mapped_column(String(200), primary_key=True)
    sla_critical: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sla_high: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sla_medium: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sla_low: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sla_info: Mapped[int | None] = mapped_column(Integer, nullable=True)


class CalendarOverride(Base):
    """A day the holiday library does not know (or gets wrong for a unit): working day or not. Unit "*": all."""

    __tablename__ = "calendar_overrides"
    unit: Mapped[str] = mapped_column(String(200), primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(Text, default="")


def active_filter() -> Any:
    """``state IN (active states)`` written as the partial indexes' predicate, with literal values."""
    return text(ACTIVE_PREDICATE)


def awaiting_retest_filter() -> Any:
    return text(AWAITING_RETEST_PREDICATE)
