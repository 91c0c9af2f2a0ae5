"""Notices the collector issued, their acknowledgements, tasks leased to agents, and schedules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from collector.models.base import Base, BigId, UtcDateTime


class IssuedNotice(Base):
    __tablename__ = "notices"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    unit: Mapped[str] = mapped_column(String(200), index=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"notice": ..., "signature": ...}
    digest: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    issued_by: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    window_end: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    schedule_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class NoticeAck(Base):
    __tablename__ = "notice_acks"
    notice_id: Mapped[str] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    acknowledged_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(200))


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_agent_state_not_before", "agent_id", "state", "not_before"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    unit: Mapped[str] = mapped_column(String(200))
    notice_id: Mapped[str | None] = mapped_column(ForeignKey("notices.id"), nullable=True)
    reason: Mapped[str] = mapped_column(String(30))  # manual | retest | schedule
    tests: Mapped[list[str]] = mapped_column(JSON)
    targets: Mapped[list[str]] = mapped_column(JSON)
    not_before: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(20), default="queued")  # queued|leased|done|failed|expired
    lease_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    leases: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")


class Schedule(Base):
    __tablename__ = "schedules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    unit: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(Text)  # a cron expression or an RRULE (with DTSTART)
    duration_s: Mapped[int] = mapped_column(Integer)
    lead_s: Mapped[int] = mapped_column(Integer)
    kinds: Mapped[list[str]] = mapped_column(JSON)
    targets: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ScheduleOccurrence(Base):
    """One window of a schedule, created once (primary key) even when several replicas run the scheduler."""

    __tablename__ = "schedule_occurrences"
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True)
    start: Mapped[dt.datetime] = mapped_column(UtcDateTime, primary_key=True)
    notice_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class MetaNote(Base):
    """Small facts about the installation (e.g. the issuer's name)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


