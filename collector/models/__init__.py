"""The collector's tables (SQLAlchemy 2 declarative). Alembic migrations in collector/migrations follow them."""

from collector.models.base import Base
from collector.models.findings import (
    Batch,
    CalendarOverride,
    Finding,
    FindingAudit,
    FindingRun,
    RecordEntry,
    Run,
    UnitSettings,
)
from collector.models.identity import Agent, AgentAlert, AgentBoot, EnrolToken, RateWindow, RequestNonce
from collector.models.people import User, UserRole, UserSession
from collector.models.tasks import IssuedNotice, MetaNote, NoticeAck, Schedule, ScheduleOccurrence, Task

__all__ = ["Agent", "AgentAlert", "AgentBoot", "Base", "Batch", "CalendarOverride", "EnrolToken", "Finding",
           "FindingAudit", "FindingRun", "IssuedNotice", "MetaNote", "NoticeAck", "RateWindow", "RecordEntry",
           "RequestNonce", "Run", "Schedule", "ScheduleOccurrence", "Task", "UnitSettings", "User", "UserRole",
           "UserSession"]
