"""Notices of remote technical testing (Art. 24(3), 25 ¶2): the issuing body tells the subject, in advance, the
time and scope of a test. The notice is signed (Ed25519, canonical JSON) and the agent acts on it only when
it is signed by a trusted issuer, names this unit, was acknowledged at least the lead time before its window
opens, and its window contains now.

The first part of this module is pure (parse, check, describe); file I/O (trusted issuers, acknowledgements,
issuer keys) follows below it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.duration import parse_duration as parse_duration
from agent.errors import UserError
from agent.state import StateDir, atomic_write
from baselines import ed25519
from baselines.canonical_json import canonical_json
from probes.endpoint import EndpointError, parse_endpoint
from probes.test_kinds import TEST_KINDS as TEST_KINDS

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from agent.scope import Scope

log = logging.getLogger(__name__)

SCHEMA = "precaution.notice/v1"
DEFAULT_LEAD_TIME = dt.timedelta(hours=24)
CLOCK_SKEW = dt.timedelta(minutes=5)  # an issued-at this far ahead of our clock is still accepted
TRUST_FILE = "trusted-issuers.json"
ACK_DIR = "notices"



class NoticeError(UserError):
    """A notice that cannot be used; ``code`` names the reason (for the record and tests)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------------------ model


@dataclass(frozen=True, slots=True)
class RateLimits:
    packets_per_second: int | None = None
    max_parallel: int | None = None  # hosts tested at once

    def to_json(self) -> dict[str, Any]:
        return {"packets_per_second": self.packets_per_second, "max_parallel": self.max_parallel}


@dataclass(frozen=True, slots=True)
class Notice:
    id: str
    issuer: str
    subject_unit: str
    contact: str
    targets: tuple[str, ...]  # hosts, CIDRs, user@host:port SSH endpoints
    kinds: tuple[str, ...]
    window_start: dt.datetime
    window_end: dt.datetime
    rate: RateLimits
    lead_time: dt.timedelta
    issued_at: dt.datetime
    basis: str = "Provisions 2021, Art. 24(3), 25"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "id": self.id, "issuer": self.issuer, "subject_unit": self.subject_unit,
            "contact": self.contact, "targets": list(self.targets), "kinds": list(self.kinds),
            "window": {"start": _iso(self.window_start), "end": _iso(self.window_end)},
            "rate_limits": self.rate.to_json(), "lead_time_s": int(self.lead_time.total_seconds()),
            "issued_at": _iso(self.issued_at), "basis": self.basis,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notice:
        """Validated against the wire model (``agent.wire.notice.NoticeBody``: strict, closed); raises
        NoticeError("malformed") naming every bad field."""
        from pydantic import ValidationError

        from agent.wire.notice import NoticeBody

        try:
            body = NoticeBody.model_validate(dict(data))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'notice'}: {e['msg']}" for e in exc.errors())
            raise NoticeError("malformed", f"notice: {problems}") from None
        try:
            for target in body.targets:
                parse_target(target)
            notice = cls(
                id=body.id, issuer=body.issuer, subject_unit=body.subject_unit, contact=body.contact,
                targets=tuple(body.targets), kinds=tuple(body.kinds), window_start=parse_time(body.window.start),
                window_end=parse_time(body.window.end),
                rate=RateLimits(body.rate_limits.packets_per_second, body.rate_limits.max_parallel),
                lead_time=dt.timedelta(seconds=body.lead_time_s), issued_at=parse_time(body.issued_at),
                basis=body.basis,
            )
        except ValueError as exc:
            raise NoticeError("malformed", f"notice: {exc}") from None
        if notice.window_end <= notice.window_start:
            raise NoticeError("malformed", "notice: the window ends before it starts")
        return notice

    def to_scope(self) -> Scope:
        """The scope the scope guard enforces: these targets, these kinds, this window."""
        from agent.scope import Scope

        # SSH endpoints (user@host:port) enter the scope as their host; the user and port they name are
        # checked by agent.enforce.endpoint_allowed.
        hosts = list(dict.fromkeys(parse_target(t).host for t in self.targets))
        return Scope.parse(hosts, kinds=list(self.kinds))

    @property
    def deadline(self) -> dt.datetime:
        """Nothing under this notice may still run after this instant."""
        return self.window_end


@dataclass(frozen=True, slots=True)
class SignedNotice:
    notice: Notice
    body: bytes  # the canonical bytes that were (or should have been) signed
    signature: str | None  # base64
    public_key: str | None  # base64 raw Ed25519 key of the signer

    @property
    def digest(self) -> str:
        """Identifies exactly this signed notice (an acknowledgement is bound to it)."""
        return hashlib.sha256(self.body + b"\n" + (self.signature or "").encode()).hexdigest()

    def to_document(self) -> bytes:
        doc = {"notice": json.loads(self.body),
               "signature": None if self.signature is None else
               {"algorithm": "ed25519", "public_key": self.public_key, "value": self.signature}}
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    name: str
    public_key: str  # base64 raw
    fingerprint: str
    added: str


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    notice_id: str
    digest: str
    acknowledged_at: dt.datetime
    actor: str

    def to_json(self) -> dict[str, Any]:
        return {"notice_id": self.notice_id, "digest": self.digest, "acknowledged_at": _iso(self.acknowledged_at),
                "actor": self.actor}


@dataclass(frozen=True, slots=True)
class Problem:
    code: str  # unsigned | tampered | untrusted | future-issued | expired | wrong-subject | not-acknowledged |
    #            late-delivery | not-open | out-of-scope | malformed
    en: str
    zh: str

    def text(self, lang: str = "en") -> str:
        return self.zh if lang == "zh-CN" else self.en


@dataclass(frozen=True, slots=True)
class NoticeSettings:
    """What the agent requires of notices: its unit's name and the minimum lead time."""

    unit: str | None = None
    lead_time: dt.timedelta = DEFAULT_LEAD_TIME


@dataclass(frozen=True, slots=True)
class CheckResult:
    signed: SignedNotice
    problems: tuple[Problem, ...] = field(default_factory=tuple)
    issuer: TrustedIssuer | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


# ------------------------------------------------------------------------------------------------ pure


canonical = canonical_json  # baselines/canonical_json.py: the bytes that are hashed and signed


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """ISO 8601 (a time without zone is UTC), or relative to now: "now", "+2h", "-30m"."""
    text = text.strip()
    if text == "now" or text[:1] in "+-":
        base = now or dt.datetime.now(dt.UTC)
        if text == "now":
            return base
        delta = parse_duration(text[1:])
        return base + delta if text[0] == "+" else base - delta
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class Target:
    """One notice target: an address, a network, or an SSH endpoint."""

    text: str
    host: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    user: str | None = None
    port: int | None = None


def parse_target(text: str) -> Target:
    text = text.strip()
    try:
        net = ipaddress.ip_network(text, strict=False)
        return Target(text, str(net.network_address) if net.num_addresses == 1 else text, net)
    except ValueError:
        pass
    try:
        endpoint = parse_endpoint(text)  # the same rule as the remote test's SSH endpoints
    except EndpointError as exc:
        if exc.reason == "port":
            raise ValueError(f"target {text!r}: port out of range") from None
        raise ValueError(f"target {text!r}: expected a host, a CIDR or user@host:port") from None
    host, port = endpoint.host, endpoint.port
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    try:
        network = ipaddress.ip_network(host)
    except ValueError:
        network = None  # a host name: matched by name only
    return Target(text, host, network, endpoint.user, port)


def parse_document(data: bytes) -> SignedNotice:
    """The notice file: {"notice": {...}, "signature": {"algorithm", "public_key", "value"} | null}."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise NoticeError("malformed", f"notice file is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("notice"), dict):
        raise NoticeError("malformed", "notice file has no \"notice\" object")
    notice = Notice.from_json(doc["notice"])
    sig = doc.get("signature")
    if sig is None:
        return SignedNotice(notice, canonical(doc["notice"]), None, None)
    if not isinstance(sig, dict) or sig.get("algorithm") != "ed25519":
        raise NoticeError("malformed", "notice signature: expected {\"algorithm\": \"ed25519\", ...}")
    return SignedNotice(notice, canonical(doc["notice"]), str(sig.get("value", "")), str(sig.get("public_key", "")))


def sign_notice(notice: Notice, key: Ed25519PrivateKey) -> SignedNotice:
    body = canonical(notice.to_json())
    return SignedNotice(notice, body, ed25519.sign_b64(key, body), ed25519.public_b64(key.public_key()))


def _signature_valid(signed: SignedNotice, key_b64: str) -> bool:
    try:
        key = ed25519.load_public_b64(key_b64)
    except ed25519.KeyFormatError:
        return False
    return ed25519.verify_b64(key, signed.signature or "", signed.body)


def _p(code: str, en: str, zh: str) -> Problem:
    return Problem(code, en, zh)


def _fmt(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _hours(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


def check(
    signed: SignedNotice,
    *,
    now: dt.datetime,
    trusted: Sequence[TrustedIssuer],
    settings: NoticeSettings,
    ack: Acknowledgement | None,
    require_ack: bool = True,
    require_open: bool = False,
) -> CheckResult:
    """Every reason the notice cannot authorise a test now. Signature problems stop the checks: an unsigned or
    tampered notice says nothing reliable about its own window or subject."""
    n = signed.notice
    if not signed.signature or not signed.public_key:
        return CheckResult(signed, (_p("unsigned", "notice is not signed: only a signed notice authorises "
                                       "remote testing", "通知未签名：只有经签名的通知才能授权远程技术检测"),))
    issuer = next((t for t in trusted if t.public_key == signed.public_key), None)
    if not _signature_valid(signed, signed.public_key):
        return CheckResult(signed, (_p("tampered", "notice signature does not match its content (altered after "
                                       "signing, or signed by another key)",
                                       "通知签名与内容不符（签名后被篡改，或非所称密钥签名）"),))
    if issuer is None:
        return CheckResult(signed, (_p("untrusted", f"notice is signed by a key this agent does not trust "
                                       f"(issuer claims {n.issuer!r}); add it with `precaution notice trust add`",
                                       f"通知签名密钥不在本机信任列表中（声称签发机关：{n.issuer}）"),))
    problems: list[Problem] = []
    if n.issued_at > now + CLOCK_SKEW:
        problems.append(_p("future-issued", f"notice issued-at {_fmt(n.issued_at)} is in the future",
                           f"通知签发时间 {_fmt(n.issued_at)} 晚于当前时间"))
    if n.window_end <= now:
        problems.append(_p("expired", f"notice expired: its window ended {_fmt(n.window_end)}",
                           f"通知已过期：检测时段已于 {_fmt(n.window_end)} 结束"))
    if settings.unit is None:
        problems.append(_p("wrong-subject", "this agent's unit is not configured (set [notice] unit in the config "
                           "or pass --unit), so no notice can be matched to it",
                           "未配置本单位名称（配置 [notice] unit 或使用 --unit），无法核对通知对象"))
    elif _norm(n.subject_unit) != _norm(settings.unit):
        problems.append(_p("wrong-subject", f"notice is addressed to {n.subject_unit!r}, not to this unit "
                           f"({settings.unit!r})", f"通知对象为“{n.subject_unit}”，不是本单位（{settings.unit}）"))
    lead = max(n.lead_time, settings.lead_time)
    if ack is not None and ack.digest != signed.digest:
        ack = None  # an acknowledgement of another notice under the same id does not count
    if ack is None:
        if require_ack:
            problems.append(_p("not-acknowledged", f"notice {n.id} has not been acknowledged by the subject; run "
                               "`precaution notice ack FILE` first", f"被检测单位尚未确认接收通知 {n.id}"))
    elif ack.acknowledged_at + lead > n.window_start:
        problems.append(_p("late-delivery", f"notice was acknowledged {_fmt(ack.acknowledged_at)}, less than the "
                           f"lead time of {_hours(lead)} before the window opens ({_fmt(n.window_start)})",
                           f"通知确认时间 {_fmt(ack.acknowledged_at)} 距检测开始（{_fmt(n.window_start)}）"
                           f"不足提前期 {_hours(lead)}"))
    if require_open and n.window_start > now:
        problems.append(_p("not-open", f"the notice window opens {_fmt(n.window_start)}; testing before then is "
                           "not permitted", f"检测时段自 {_fmt(n.window_start)} 开始，之前不得检测"))
    return CheckResult(signed, tuple(problems), issuer)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def describe(signed: SignedNotice, lang: str = "en") -> str:
    """The notice in plain words."""
    n = signed.notice
    rate = []
    if n.rate.packets_per_second:
        rate.append(f"{n.rate.packets_per_second} pkt/s")
    if n.rate.max_parallel:
        rate.append(f"{n.rate.max_parallel} hosts at once" if lang != "zh-CN" else f"同时 {n.rate.max_parallel} 台")
    if lang == "zh-CN":
        kinds = "、".join(_KIND_ZH.get(k, k) for k in n.kinds)
        return "\n".join([
            f"远程技术检测通知 {n.id}",
            f"签发机关：{n.issuer}（联系方式：{n.contact or '未提供'}）",
            f"被检测单位：{n.subject_unit}",
            f"检测时段：{_fmt(n.window_start)} 至 {_fmt(n.window_end)}",
            f"检测范围：{', '.join(n.targets)}",
            f"检测方式：{kinds}",
            f"速率限制：{'，'.join(rate) or '未规定'}",
            f"提前通知期：{_hours(n.lead_time)}；签发时间：{_fmt(n.issued_at)}",
            f"依据：{n.basis}",
            f"签名：{'有' if signed.signature else '无'}",
        ])
    kinds = ", ".join(f"{k} ({_KIND_EN[k]})" for k in n.kinds)
    return "\n".join([
        f"Notice of remote technical testing {n.id}",
        f"Issued by: {n.issuer} (contact: {n.contact or 'not given'})",
        f"Subject unit: {n.subject_unit}",
        f"Window: {_fmt(n.window_start)} to {_fmt(n.window_end)}",
        f"Targets: {', '.join(n.targets)}",
        f"Tests: {kinds}",
        f"Rate limits: {', '.join(rate) or 'none stated'}",
        f"Lead time: {_hours(n.lead_time)}; issued at {_fmt(n.issued_at)}",
        f"Basis: {n.basis}",
        f"Signature: {'present' if signed.signature else 'none'}",
    ])


_KIND_EN = {"host": "host probes over SSH", "discovery": "host discovery", "portscan": "port scan",
            "service": "service detection", "passive": "passive link checks"}
_KIND_ZH = {"host": "SSH 主机检查", "discovery": "主机发现", "portscan": "端口扫描", "service": "服务识别",
            "passive": "被动链路检查"}


# ------------------------------------------------------------------------------------------------ files


def load_signed(path: Path) -> SignedNotice:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NoticeError("malformed", f"{path}: cannot read notice: {exc.strerror or exc}") from None
    return parse_document(data)


def generate_issuer_key(path: Path) -> str:
    """Write a new issuer private key (PEM, 0600) and PATH.pub (base64); return the public key."""
    if path.exists():
        raise UserError(f"{path} exists; not overwriting a key")
    key = ed25519.generate()
    atomic_write(path, ed25519.private_pem(key), mode=0o600)
    pub = ed25519.public_b64(key.public_key())
    atomic_write(Path(f"{path}.pub"), (pub + "\n").encode(), mode=0o644)
    return pub


def load_issuer_key(path: Path) -> Ed25519PrivateKey:
    from agent.keys import load_private_key_file

    return load_private_key_file(path, "an issuer key")


def load_public_key_file(path: Path) -> Ed25519PublicKey:
    """A public key file: base64 raw (as `notice keygen` writes), PEM public, or a PEM private key."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read key: {exc.strerror or exc}") from None
    if b"PRIVATE KEY" in data:
        return load_issuer_key(path).public_key()
    try:
        return ed25519.load_public(data)
    except ed25519.KeyFormatError as exc:
        raise UserError(f"{path}: {exc}" if b"PUBLIC KEY" in data else str(exc)) from None


def load_trusted(state: StateDir) -> list[TrustedIssuer]:
    path = state.path / TRUST_FILE
    try:
        data = json.loads(path.read_bytes())
        return [TrustedIssuer(str(i["name"]), str(i["public_key"]), str(i["fingerprint"]), str(i["added"]))
                for i in data["issuers"]]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: damaged trusted-issuers file: {exc}") from None


def add_trusted(name: str, key: Ed25519PublicKey, state: StateDir) -> TrustedIssuer:
    state.ensure()
    issuers = [i for i in load_trusted(state) if i.public_key != ed25519.public_b64(key) and i.name != name]
    entry = TrustedIssuer(name, ed25519.public_b64(key), ed25519.fingerprint(key), _iso(dt.datetime.now(dt.UTC)))
    issuers.append(entry)
    doc = {"issuers": [{"name": i.name, "public_key": i.public_key, "fingerprint": i.fingerprint, "added": i.added}
                       for i in issuers]}
    atomic_write(state.path / TRUST_FILE, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
    return entry


def _ack_path(state: StateDir, notice_id: str) -> Path:
    safe = hashlib.sha256(notice_id.encode()).hexdigest()[:32]
    return state.path / ACK_DIR / f"{safe}.ack.json"


def load_ack(notice_id: str, state: StateDir) -> Acknowledgement | None:
    path = _ack_path(state, notice_id)
    try:
        data = json.loads(path.read_bytes())
        return Acknowledgement(str(data["notice_id"]), str(data["digest"]),
                               parse_time(data["acknowledged_at"]), str(data["actor"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: damaged acknowledgement: {exc}") from None


def save_ack(signed: SignedNotice, actor: str, now: dt.datetime, state: StateDir) -> Acknowledgement:
    """Record the subject's acknowledgement. A first acknowledgement stands: acknowledging again later must not
    move the delivery time (nor, so, the lead time)."""
    state.ensure()
    existing = load_ack(signed.notice.id, state)
    if existing is not None and existing.digest == signed.digest:
        return existing
    ack = Acknowledgement(signed.notice.id, signed.digest, now, actor)
    path = _ack_path(state, signed.notice.id)
    atomic_write(path, (json.dumps({**ack.to_json(), "notice": json.loads(signed.to_document())}, indent=2,
                                   ensure_ascii=False) + "\n").encode())
    return ack


def check_file(
    path: Path,
    settings: NoticeSettings,
    *,
    now: dt.datetime | None = None,
    require_ack: bool = True,
    require_open: bool = False,
    state: StateDir,
) -> CheckResult:
    signed = load_signed(path)
    return check(signed, now=now or dt.datetime.now(dt.UTC), trusted=load_trusted(state), settings=settings,
                 ack=load_ack(signed.notice.id, state), require_ack=require_ack, require_open=require_open)


def settings_from(config: Any, unit: str | None = None, lead_time: str | None = None) -> NoticeSettings:
    """Options first, then the config's [notice] table (``unit``, ``lead_time``) when the config has one."""
    section = getattr(config, "notice", None)
    cfg_unit = getattr(section, "unit", None) if section is not None else None
    cfg_lead = getattr(section, "lead_time", None) if section is not None else None
    lead_text = lead_time if lead_time is not None else cfg_lead
    try:
        lead = parse_duration(str(lead_text)) if lead_text is not None else DEFAULT_LEAD_TIME
    except ValueError as exc:
        raise UserError(f"lead time: {exc}") from None
    return NoticeSettings(unit=unit or cfg_unit, lead_time=lead)
