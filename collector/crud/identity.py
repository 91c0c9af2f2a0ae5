"""Enrolment tokens, enrolment, the per-request agent check (signature, replay, rate, clone), revocation."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from agent.wire.collector_api import EnrolRequest, HostIdentity
from agent.wire.signatures import raw_public_key
from collector.core import ca as ca_mod
from collector.core.errors import ApiError
from collector.core.security import b64_raw_key_ok, new_secret, request_signature_ok, secret_digest
from collector.models import Agent, AgentAlert, AgentBoot, EnrolToken, RateWindow, RequestNonce
from collector.models.base import UtcDateTime

TOKEN_PREFIX = "pcenrol_"


def _insert(session: Session, table: type) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT for this session's dialect (the statement compiles the same on both)."""
    maker = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return maker(table)


_STATEMENTS: dict[tuple[str, str], Any] = {}


def _cached(session: Session, name: str) -> Any:
    """The per-request statements of the agent check, built once per dialect with bind parameters (building
    and cache-keying a statement costs more than running it)."""
    dialect = session.get_bind().dialect.name
    stmt = _STATEMENTS.get((dialect, name))
    if stmt is None:
        if name == "nonce":
            stmt = (_insert(session, RequestNonce).values(agent_id=bindparam("a"), nonce=bindparam("n"),
                                                          seen_at=bindparam("t", type_=UtcDateTime()))
                    .on_conflict_do_nothing().returning(RequestNonce.nonce))
        else:
            base = _insert(session, RateWindow).values(agent_id=bindparam("a"), window=bindparam("w"), count=1)
            stmt = base.on_conflict_do_update(index_elements=[RateWindow.agent_id, RateWindow.window],
                                              set_={"count": RateWindow.count + 1}).returning(RateWindow.count)
        _STATEMENTS[(dialect, name)] = stmt
    return stmt


def create_token(session: Session, unit: str, expires: dt.timedelta, by: str, now: dt.datetime) -> str:
    token = TOKEN_PREFIX + new_secret(24)
    session.add(EnrolToken(token_hash=secret_digest(token), unit=unit, created_at=now, created_by=by,
                           expires_at=now + expires))
    return token


def _refuse(status: int, code: str, en: str, zh: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(status, code, en, zh, headers)


@dataclass(frozen=True, slots=True)
class Enrolled:
    agent: Agent
    cert: ca_mod.ClientCert


def enrol(session: Session, req: EnrolRequest, authority: ca_mod.Authority, cert_days: float,
          now: dt.datetime) -> Enrolled:
    """Spend a one-time token: refused when unknown, used, expired or for another unit. The token row is
    locked by the conditional UPDATE, so two agents racing with one token cannot both enrol."""
    row = session.scalars(select(EnrolToken).where(EnrolToken.token_hash == secret_digest(req.token))).first()
    if row is None:
        raise _refuse(401, "unknown-token", "enrolment token unknown", "注册令牌无效")
    if row.used_at is not None:
        raise _refuse(401, "token-used", "enrolment token already used", "注册令牌已被使用")
    if row.expires_at <= now:
        raise _refuse(401, "token-expired", "enrolment token expired", "注册令牌已过期")
    if row.unit != req.unit:
        raise _refuse(403, "wrong-unit", f"the token is for another unit than {req.unit!r}",
                      f"该令牌不属于单位 {req.unit!r}")
    if not b64_raw_key_ok(req.record_public_key):
        raise _refuse(422, "bad-record-key", "record_public_key is not a base64 Ed25519 key",
                      "record_public_key 不是 base64 编码的 Ed25519 公钥")
    try:
        csr = ca_mod.parse_csr(req.csr_pem)
    except ValueError as exc:
        raise _refuse(422, "bad-csr", f"certificate signing request refused: {exc}", "证书签名请求无效") from None
    agent_id = uuid.uuid4().hex
    spent = session.execute(update(EnrolToken).where(EnrolToken.id == row.id, EnrolToken.used_at.is_(None))
                            .values(used_at=now, used_by=agent_id))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise _refuse(401, "token-used", "enrolment token already used", "注册令牌已被使用")
    cert = ca_mod.sign_agent_csr(authority, csr, agent_id, req.unit, cert_days)
    agent = Agent(id=agent_id, unit=req.unit, hostname=req.host.hostname, machine_id=req.host.machine_id,
                  boot_id=req.host.boot_id, identity_key=base64.b64encode(raw_public_key(cert.public_key)).decode(),
                  record_key=req.record_public_key, cert_serial=cert.serial, cert_pem=cert.pem,
                  cert_not_after=cert.not_after, agent_version=req.agent_version, enrolled_at=now, last_seen=now,
                  record_seq=0, record_link="0" * 64)
    session.add(agent)
    session.flush()
    session.add(AgentBoot(agent_id=agent_id, boot_id=req.host.boot_id, machine_id=req.host.machine_id,
                          hostname=req.host.hostname, first_seen=now))
    return Enrolled(agent, cert)


def renew(session: Session, agent: Agent, csr_pem: str, authority: ca_mod.Authority,
          cert_days: float) -> ca_mod.ClientCert:
    try:
        csr = ca_mod.parse_csr(csr_pem)
    except ValueError as exc:
        raise _refuse(422, "bad-csr", f"certificate signing request refused: {exc}", "证书签名请求无效") from None
    cert = ca_mod.sign_agent_csr(authority, csr, agent.id, agent.unit, cert_days)
    session.execute(update(Agent).where(Agent.id == agent.id).values(
        identity_key=base64.b64encode(raw_public_key(cert.public_key)).decode(), cert_serial=cert.serial,
        cert_pem=cert.pem, cert_not_after=cert.not_after))
    return cert


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    agent_id: str
    timestamp: str
    nonce: str
    signature: str
    boot_id: str | None


def authenticate(session: Session, h: SignedHeaders, method: str, path_qs: str, body: bytes, *,
                 now: dt.datetime, skew_s: int, rate_per_minute: int) -> tuple[Agent, ApiError | None]:
    """Check one signed agent request; every refusal is a 401/409/429 with a code. Runs in a write
    transaction: the nonce and the rate window are kept in the database, shared by every replica. An identity
    conflict (clone) is returned, not raised, so that its alert is committed before the caller refuses."""
    agent = session.get(Agent, h.agent_id)
    if agent is None:
        raise _refuse(401, "unknown-agent", "unknown agent identity", "未知的代理身份")
    if not request_signature_ok(agent.identity_key, h.signature, method, path_qs, h.timestamp, h.nonce, body):
        raise _refuse(401, "bad-signature", "request signature does not verify with the enrolled key",
                      "请求签名与注册的密钥不符")
    if agent.revoked_at is not None:
        raise _refuse(401, "revoked", "this agent's certificate was revoked", "该代理的证书已被吊销")
    if agent.cert_not_after <= now:
        raise _refuse(401, "certificate-expired", "this agent's certificate has expired; enrol again",
                      "该代理的证书已过期，请重新注册")
    try:
        sent = dt.datetime.fromtimestamp(int(h.timestamp), dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise _refuse(401, "bad-time", "X-Precaution-Time is not a unix time",
                      "X-Precaution-Time 不是 Unix 时间") from None
    if abs((now - sent).total_seconds()) > skew_s:
        raise _refuse(401, "clock-skew", f"request time is more than {skew_s} s away from the collector's clock",
                      f"请求时间与采集端时钟相差超过 {skew_s} 秒")
    if not 16 <= len(h.nonce) <= 64:
        raise _refuse(401, "bad-nonce", "X-Precaution-Nonce must be 16 to 64 characters", "随机数长度应为 16 到 64")
    fresh = session.execute(_cached(session, "nonce"), {"a": agent.id, "n": h.nonce, "t": now}).first()
    if fresh is None:
        raise _refuse(401, "replayed-request", "this request was already received (replay)", "重复的请求（重放）")
    window = int(now.timestamp()) // 60
    count = session.execute(_cached(session, "rate"), {"a": agent.id, "w": window}).scalar_one()
    if count > rate_per_minute:
        retry = 60 - int(now.timestamp()) % 60
        raise _refuse(429, "rate-limited", f"more than {rate_per_minute} requests a minute from this agent",
                      f"该代理每分钟请求超过 {rate_per_minute} 次", {"Retry-After": str(retry)})
    conflict = _check_boot(session, agent, h.boot_id, now) if h.boot_id else None
    if conflict is None:
        agent.last_seen = now
    return agent, conflict


def _alert(session: Session, agent_id: str, kind: str, detail: str, now: dt.datetime) -> None:
    exists = session.scalars(select(AgentAlert.id).where(AgentAlert.agent_id == agent_id, AgentAlert.kind == kind,
                                                         AgentAlert.detail == detail)).first()
    if exists is None:
        session.add(AgentAlert(agent_id=agent_id, kind=kind, detail=detail, created_at=now))


def _conflict(en: str, zh: str) -> ApiError:
    return ApiError(409, "identity-conflict", en, zh)


def _check_boot(session: Session, agent: Agent, boot_id: str, now: dt.datetime) -> ApiError | None:
    """One host reports one boot id until it reboots. A boot id seen before that is not the current one means
    two machines share this identity (a cloned VM): reported, and that machine's requests refused."""
    if boot_id == agent.boot_id:
        return None
    known = session.get(AgentBoot, (agent.id, boot_id))
    if known is not None:
        _alert(session, agent.id, "clone-suspected",
               f"boot id {boot_id} came back after {agent.boot_id}: two hosts present this identity", now)
        return _conflict("another host is using this agent's identity (cloned machine?); re-enrol this host",
                         "另一台主机正在使用该代理身份（克隆的虚拟机？），请为本主机重新注册")
    session.add(AgentBoot(agent_id=agent.id, boot_id=boot_id, machine_id=agent.machine_id,
                          hostname=agent.hostname, first_seen=now))
    agent.boot_id = boot_id
    return None


def check_host(session: Session, agent: Agent, host: HostIdentity, now: dt.datetime) -> ApiError | None:
    """A batch names its machine: another machine id under this identity is a clone, never merged."""
    if host.machine_id != agent.machine_id:
        _alert(session, agent.id, "clone-suspected",
               f"machine id {host.machine_id} ({host.hostname}) differs from the enrolled {agent.machine_id}", now)
        return _conflict("this identity was enrolled on another machine; re-enrol this host",
                         "该身份注册于另一台主机，请为本主机重新注册")
    if host.hostname != agent.hostname:
        agent.hostname = host.hostname
    return None


def revoke(session: Session, agent_id: str, by: str, now: dt.datetime) -> bool:
    result = session.execute(update(Agent).where(Agent.id == agent_id, Agent.revoked_at.is_(None))
                             .values(revoked_at=now, revoked_by=by))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def prune(session: Session, now: dt.datetime, nonce_age_s: int) -> None:
    """Drop nonces older than the replay window (a request that old is refused by its time anyway)."""
    session.execute(delete(RequestNonce).where(RequestNonce.seen_at < now - dt.timedelta(seconds=nonce_age_s)))
    session.execute(delete(RateWindow).where(RateWindow.window < int(now.timestamp()) // 60 - 5))


def agents_by_state(session: Session, now: dt.datetime) -> dict[str, int]:
    """online: seen in the last 15 minutes; offline: longer ago; revoked."""
    cutoff = now - dt.timedelta(minutes=15)
    state = case((Agent.revoked_at.is_not(None), "revoked"), (Agent.last_seen >= cutoff, "online"),
                 else_="offline")
    out = {"online": 0, "offline": 0, "revoked": 0}
    for name, count in session.execute(select(state, func.count()).group_by(state)):
        out[str(name)] = int(count)
    return out
