"""Request and response bodies of the people-facing API (the agent protocol is in agent.wire.collector_api)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Schema):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class LoginResponse(Schema):
    token: str
    expires_at: str
    roles: dict[str, str]


class TokenRequest(Schema):
    unit: str = Field(min_length=1, max_length=200)
    expires_hours: float = Field(default=24, gt=0, le=24 * 30)


class TokenResponse(Schema):
    token: str
    unit: str
    expires_at: str


class AgentView(Schema):
    id: str
    unit: str
    hostname: str
    state: str
    enrolled_at: str
    last_seen: str
    cert_not_after: str
    record_seq: int
    record_broken: str | None
    revoked_at: str | None


class AlertView(Schema):
    id: int
    agent_id: str
    unit: str
    hostname: str
    kind: str
    detail: str
    created_at: str


class FindingView(Schema):
    id: int
    agent_id: str
    unit: str
    host: str
    finding_id: str
    rule_id: str
    probe: str
    subject: str
    target: str | None = None  # the network target it is about; None: the host itself
    severity: str
    title: dict[str, str]
    state: str
    first_seen: str
    last_seen: str
    first_run: str
    last_run: str
    resolved_run: str | None
    deadline: str | None
    reported_at: str | None
    retest_due: str | None
    calendar_warning: str | None
    accepted_until: str | None


class AuditView(Schema):
    actor: str
    at: str
    from_state: str
    to_state: str
    note: str


class FindingDetail(FindingView):
    document: dict[str, object]
    audit: list[AuditView]


class FindingPage(Schema):
    total: int
    items: list[FindingView]


class FindingSummary(Schema):
    unit: str
    active: dict[str, int]
    overdue: int


class TransitionRequest(Schema):
    to: Literal["rectification_ordered", "reported_rectified", "risk_accepted", "false_positive", "open",
                "fix_verified", "resolved", "retest_scheduled", "reopened"]
    note: str = Field(min_length=1, max_length=4000)
    approver: str | None = Field(default=None, max_length=200)
    expires: str | None = Field(default=None, max_length=40)


class RetestRequest(Schema):
    not_before: str | None = Field(default=None, max_length=40)


class RetestResponse(Schema):
    task_id: str
    state: str


class UnitSettingsBody(Schema):
    sla_days: dict[Literal["critical", "high", "medium", "low", "info"], int] = Field(default_factory=dict)
    calendar: list[CalendarDay] = Field(default_factory=list)


class CalendarDay(Schema):
    day: str = Field(max_length=10, pattern=r"^\d{4}-\d{2}-\d{2}$")
    workday: bool
    note: str = Field(default="", max_length=500)


class NoticeRequest(Schema):
    unit: str = Field(min_length=1, max_length=200)
    id: str | None = Field(default=None, max_length=200)
    targets: list[str] = Field(min_length=1, max_length=1000)
    kinds: list[Literal["host", "discovery", "portscan", "service", "passive"]] = Field(min_length=1)
    start: str = Field(max_length=40)
    end: str = Field(max_length=40)
    lead_time_s: int = Field(default=86400, ge=0, le=365 * 86400)
    contact: str = Field(default="", max_length=500)


class AckView(Schema):
    agent_id: str
    acknowledged_at: str
    received_at: str


class NoticeView(Schema):
    id: str
    unit: str
    issued_at: str
    window_start: str
    window_end: str
    document: dict[str, object]
    acknowledgements: list[AckView]


class TaskRequest(Schema):
    unit: str = Field(min_length=1, max_length=200)
    agent_ids: list[str] | None = Field(default=None, max_length=10000)
    notice_id: str | None = Field(default=None, max_length=200)
    tests: list[str] = Field(min_length=1, max_length=100)
    targets: list[str] = Field(default_factory=list, max_length=1000)
    not_before: str | None = Field(default=None, max_length=40)
    expires_at: str | None = Field(default=None, max_length=40)


class TaskView(Schema):
    id: str
    agent_id: str
    unit: str
    notice_id: str | None
    reason: str
    tests: list[str]
    targets: list[str]
    state: str
    not_before: str
    expires_at: str
    leases: int
    run_id: str | None
    message: str


class ScheduleRequest(Schema):
    unit: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    rule: str = Field(min_length=1, max_length=1000, description="cron expression (5 fields) or an RRULE")
    duration_s: int = Field(gt=0, le=30 * 86400)
    lead_s: int = Field(default=86400, ge=0, le=90 * 86400)
    kinds: list[Literal["host", "discovery", "portscan", "service", "passive"]] = Field(min_length=1)
    targets: list[str] = Field(min_length=1, max_length=1000)


class ScheduleView(Schema):
    id: int
    unit: str
    name: str
    rule: str
    duration_s: int
    lead_s: int
    next_windows: list[str]


UnitSettingsBody.model_rebuild()


# a finding's id is a BIGINT: a larger number in a path is a 422, not an overflow in the database driver
FindingPk = Annotated[int, Path(ge=1, le=2**63 - 1)]
