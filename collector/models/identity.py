"""Enrolment tokens, agents and what identifies them, replay nonces, rate windows, identity alerts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from collector.models.base import Base, BigId, UtcDateTime


class EnrolToken(Base):
    __tablename__ = "enrol_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    unit: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    used_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    unit: Mapped[str] = mapped_column(String(200), index=True)
    hostname: Mapped[str] = mapped_column(String(255))
    machine_id: Mapped[str] = mapped_column(String(128))
    boot_id: Mapped[str] = mapped_column(String(128))
    identity_key: Mapped[str] = mapped_column(String(100))  # base64 raw Ed25519, certified by cert_pem
    record_key: Mapped[str] = mapped_column(String(100))  # base64 raw Ed25519 that signs the agent's record
    cert_serial: Mapped[str] = mapped_column(String(64))
    cert_pem: Mapped[str] = mapped_column(Text)
    cert_not_after: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    agent_version: Mapped[str] = mapped_column(String(64), default="")
    enrolled_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    record_seq: Mapped[int] = mapped_column(Integer, default=0)  # head of the agent's record held here
    record_link: Mapped[str] = mapped_column(String(64), default="0" * 64)
    record_broken: Mapped[str | None] = mapped_column(Text, nullable=True)  # why the chain stopped verifying


class AgentBoot(Base):
    """Every boot id an agent identity was seen with: a boot id coming back after another is a second host."""

    __tablename__ = "agent_boots"
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    boot_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    machine_id: Mapped[str] = mapped_column(String(128))
    hostname: Mapped[str] = mapped_column(String(255))
    first_seen: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class AgentAlert(Base):
    """Identity and record-integrity events, shown through the API and metrics; never merged away."""

    __tablename__ = "agent_alerts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # clone-suspected | record-wiped | record-forked | ...
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class RequestNonce(Base):
    __tablename__ = "request_nonces"
    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)


class RateWindow(Base):
    """Requests per agent per minute, counted in the database so every replica enforces the same limit."""

    __tablename__ = "rate_windows"
    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    window: Mapped[int] = mapped_column(Integer, primary_key=True)  # unix minute
    count: Mapped[int] = mapped_column(Integer)


Index("ix_rate_windows_window", RateWindow.window)
