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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import messages as msg
from agent.duration import MAX_DURATION
from agent.duration import parse_duration as parse_duration
from agent.errors import UserError
from agent.state import StateDir, atomic_write, read_state_file
from agent.wire.signatures import notice_digest
from baselines import ed25519
from baselines.canonical_json import canonical_json
from baselines.model import Text
from probes.endpoint import EndpointError, parse_endpoint
from probes.i18n import Duration, Joined, Localized, LocalTime, Message
from probes.test_kinds import TEST_KINDS as TEST_KINDS

if TYPE_CHECKING:
    from agent.scope import Scope
    from baselines.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)

SCHEMA = "precaution.notice/v1"
DEFAULT_LEAD_TIME = dt.timedelta(hours=24)
CLOCK_SKEW = dt.timedelta(minutes=5)  # an issued-at this far ahead of our clock is still accepted
TRUST_FILE = "trusted-issuers.json"
ACK_DIR = "notices"



class NoticeError(UserError):
    """A notice that cannot be used; ``code`` names the reason (for the record and tests)."""

    def __init__(self, code: str, message: str | Localized, zh: str | None = None) -> None:
        super().__init__(message, zh)
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
            problems = [msg.NOTICE_FIELD_PROBLEM(field=".".join(map(str, e["loc"])) or "notice", detail=e["msg"])
                        for e in exc.errors()]
            raise NoticeError("malformed", msg.NOTICE_MALFORMED(problems=Joined(problems, "; ", "；"))) from None
        try:
            for target in body.targets:
                parse_target(target)
            notice = cls(
                id=body.id, issuer=body.issuer, subject_unit=body.subject_unit, contact=body.contact,
                targets=tuple(body.targets), kinds=tuple(body.kinds), window_start=parse_time(body.window.start),
                window_end=parse_time(body.window.end),
                rate=RateLimits(body.rate_limits.packets_per_second, body.rate_limits.max_parallel),
                lead_time=_lead_time(body.lead_time_s), issued_at=parse_time(body.issued_at),
                basis=body.basis,
            )
        except (ValueError, OverflowError) as exc:
            raise NoticeError("malformed", msg.NOTICE_BAD_VALUE(detail=exc)) from None
        if notice.window_end <= notice.window_start:
            raise NoticeError("malformed", msg.NOTICE_WINDOW_REVERSED())
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
        return notice_digest(self.body, self.signature)

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
    message: Message

    @property
    def en(self) -> str:
        return self.message.en

    @property
    def zh(self) -> str:
        return self.message.zh

    def text(self, lang: str = "en") -> str:
        return self.message.get(lang)


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


def _lead_time(seconds: int) -> dt.timedelta:
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"lead_time_s {seconds} is more than ten years")
    return dt.timedelta(seconds=seconds)


def parse_time(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """ISO 8601 (a time without zone is UTC), or relative to now: "now", "+2h", "-30m"."""
    text = text.strip()
    if text == "now" or text[:1] in "+-":
        base = now or dt.datetime.now(dt.UTC)
        if text == "now":
            return base
        delta = parse_duration(text[1:])
        try:
            return base + delta if text[0] == "+" else base - delta
        except OverflowError:
            raise ValueError(f"time {text!r} is out of range") from None
    if len(text) > 64:
        raise ValueError(f"not a time: {text[:64]!r}...")
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
        raise NoticeError("malformed", msg.NOTICE_NOT_JSON(detail=exc)) from None
    except RecursionError:
        raise NoticeError("malformed", msg.NOTICE_TOO_DEEP()) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("notice"), dict):
        raise NoticeError("malformed", msg.NOTICE_NO_OBJECT())
    notice = Notice.from_json(doc["notice"])
    sig = doc.get("signature")
    if sig is None:
        return SignedNotice(notice, canonical(doc["notice"]), None, None)
    if not isinstance(sig, dict) or sig.get("algorithm") != "ed25519":
        raise NoticeError("malformed", msg.NOTICE_BAD_SIGNATURE_FIELD())
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


def _p(code: str, text: Message) -> Problem:
    return Problem(code, text)


def _fmt(value: dt.datetime) -> LocalTime:
    return LocalTime(value)


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
        return CheckResult(signed, (_p("unsigned", msg.NOTICE_UNSIGNED()),))
    issuer = next((t for t in trusted if t.public_key == signed.public_key), None)
    if not _signature_valid(signed, signed.public_key):
        return CheckResult(signed, (_p("tampered", msg.NOTICE_TAMPERED()),))
    if issuer is None:
        return CheckResult(signed, (_p("untrusted", msg.NOTICE_UNTRUSTED(issuer=n.issuer)),))
    problems: list[Problem] = []
    if n.issued_at > now + CLOCK_SKEW:
        problems.append(_p("future-issued", msg.NOTICE_FUTURE(time=_fmt(n.issued_at))))
    if n.window_end <= now:
        problems.append(_p("expired", msg.NOTICE_EXPIRED(time=_fmt(n.window_end))))
    if settings.unit is None:
        problems.append(_p("wrong-subject", msg.NOTICE_NO_UNIT()))
    elif _norm(n.subject_unit) != _norm(settings.unit):
        problems.append(_p("wrong-subject", msg.NOTICE_WRONG_SUBJECT(subject=n.subject_unit, unit=settings.unit)))
    lead = max(n.lead_time, settings.lead_time)
    if ack is not None and ack.digest != signed.digest:
        ack = None  # an acknowledgement of another notice under the same id does not count
    if ack is None:
        if require_ack:
            problems.append(_p("not-acknowledged", msg.NOTICE_NOT_ACKNOWLEDGED(id=n.id)))
    elif ack.acknowledged_at + lead > n.window_start:
        problems.append(_p("late-delivery", msg.NOTICE_LATE(acked=_fmt(ack.acknowledged_at), lead=Duration.of(lead),
                                                            start=_fmt(n.window_start))))
    if require_open and n.window_start > now:
        problems.append(_p("not-open", msg.NOTICE_NOT_OPEN(time=_fmt(n.window_start))))
    return CheckResult(signed, tuple(problems), issuer)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def describe(signed: SignedNotice, lang: str = "en") -> str:
    """The notice in plain words."""
    return description(signed).get(lang)


def description(signed: SignedNotice) -> Message:
    n = signed.notice
    rate: list[Message] = []
    if n.rate.packets_per_second:
        rate.append(msg.RATE_PPS(n=n.rate.packets_per_second))
    if n.rate.max_parallel:
        rate.append(msg.RATE_PARALLEL(n=n.rate.max_parallel))
    return msg.NOTICE_DESCRIPTION(
        id=n.id, issuer=n.issuer, contact=n.contact or msg.NOT_GIVEN(), unit=n.subject_unit,
        start=_fmt(n.window_start), end=_fmt(n.window_end), targets=Joined(n.targets, ", ", "，"),
        kinds=Joined([msg.TEST_KIND[k]() for k in n.kinds]),
        rate=Joined(rate, ", ", "，") if rate else msg.NONE_STATED(),
        lead=Duration.of(n.lead_time), issued=_fmt(n.issued_at), basis=basis_text(n.basis),
        signature=msg.PRESENT() if signed.signature else msg.ABSENT())


_BASIS_RE = re.compile(r"\s*Provisions\s+2021\s*,\s*Art\.\s*(?P<articles>.+?)\s*$")
_ARTICLE_RE = re.compile(r"\s*(?P<n>\d{1,2})(?:\((?P<item>\d{1,2})\))?\s*$")


def basis_text(basis: str) -> Message | str:
    """The usual basis, "Provisions 2021, Art. 24(3), 25", in either language (第二十四条第三项、第二十五条);
    a basis the issuer worded otherwise is shown as written."""
    m = _BASIS_RE.match(basis)
    if not m:
        return basis
    articles = [_ARTICLE_RE.match(part) for part in m.group("articles").split(",")]
    if not all(articles):
        return basis
    zh = "、".join(f"第{chinese_number(int(a['n']))}条" + (f"第{chinese_number(int(a['item']))}项" if a["item"] else "")
                  for a in articles if a)
    return msg.PROVISIONS_BASIS(articles=Text("Art. " + m.group("articles"), zh))


def chinese_number(n: int) -> str:
    """1..99 as Chinese numerals (article and item numbers): 9 九, 10 十, 24 二十四."""
    digits = "零一二三四五六七八九"
    if not 0 < n < 100:
        return str(n)
    tens, ones = divmod(n, 10)
    return (("" if tens == 1 else digits[tens]) + "十" if tens else "") + (digits[ones] if ones else "")


# ------------------------------------------------------------------------------------------------ files


def load_signed(path: Path) -> SignedNotice:
    from baselines.input_file import InputFileError, read_input_bytes

    try:
        data = read_input_bytes(path, "notice", 1024 * 1024)  # never blocks on a FIFO, refuses devices
    except InputFileError as exc:
        raise NoticeError("malformed", exc.message, exc.zh) from None
    return parse_document(data)


def generate_issuer_key(path: Path) -> str:
    """Write a new issuer private key (PEM, 0600) and PATH.pub (base64); return the public key."""
    if path.exists():
        raise UserError(msg.KEY_EXISTS(path=path))
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
    from baselines.input_file import InputFileError, read_input_bytes

    try:
        data = read_input_bytes(path, "key", 64 * 1024)
    except InputFileError as exc:
        raise UserError(exc.message, exc.zh) from None
    if b"PRIVATE KEY" in data:
        return load_issuer_key(path).public_key()
    try:
        return ed25519.load_public(data)
    except ed25519.KeyFormatError as exc:
        raise UserError(msg.KEY_BAD_PUBLIC(detail=f"{path}: {exc}" if b"PUBLIC KEY" in data else exc)) from None


def load_trusted(state: StateDir) -> list[TrustedIssuer]:
    path = state.path / TRUST_FILE
    try:
        data = json.loads(read_state_file(path))
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


def remove_trusted(name_or_fingerprint: str, state: StateDir) -> TrustedIssuer:
    """Stop trusting an issuer, named by its name or key fingerprint; UserError when none matches."""
    issuers = load_trusted(state)
    gone = [i for i in issuers if name_or_fingerprint in (i.name, i.fingerprint)]
    if not gone:
        known = ", ".join(f"{i.name} ({i.fingerprint})" for i in issuers) or "none"
        raise UserError(f"no trusted issuer named {name_or_fingerprint!r} (trusted: {known})",
                        f"信任列表中没有“{name_or_fingerprint}”（已信任：{known}）")
    kept = [i for i in issuers if i not in gone]
    doc = {"issuers": [{"name": i.name, "public_key": i.public_key, "fingerprint": i.fingerprint, "added": i.added}
                       for i in kept]}
    atomic_write(state.path / TRUST_FILE, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
    return gone[0]


def _ack_path(state: StateDir, notice_id: str) -> Path:
    safe = hashlib.sha256(notice_id.encode()).hexdigest()[:32]
    return state.path / ACK_DIR / f"{safe}.ack.json"


def _recorded_ack(notice_id: str, state: StateDir) -> Acknowledgement | None:
    """The acknowledgement as the signed inspection record holds it (the newest entry for this notice id)."""
    from agent import record

    entry = record.last_entry_with(state.record, b'"kind":"acknowledgement"',
                                   lambda e: e.kind == "acknowledgement" and e.notice_id == notice_id)
    if entry is None or not isinstance(entry.summary, dict):
        return None
    try:
        when = parse_time(str(entry.summary["acknowledged_at"]))
        return Acknowledgement(notice_id, str(entry.summary["digest"]), when, entry.actor)
    except (KeyError, ValueError):
        return None


def load_ack(notice_id: str, state: StateDir) -> Acknowledgement | None:
    """The acknowledgement of a notice. Its time comes from the signed record: the file in notices/ is a
    convenience copy, and one that disagrees with the record (or that the record never saw) is tampering."""
    path = _ack_path(state, notice_id)
    recorded = _recorded_ack(notice_id, state)
    try:
        data = json.loads(read_state_file(path))
        on_file = Acknowledgement(str(data["notice_id"]), str(data["digest"]),
                                  parse_time(data["acknowledged_at"]), str(data["actor"]))
    except FileNotFoundError:
        return recorded
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NoticeError("tampered-ack", f"{path}: damaged acknowledgement: {exc}",
                          f"{path}：通知确认文件已损坏") from None
    if recorded is None or recorded.digest != on_file.digest:
        raise NoticeError("tampered-ack", f"{path}: the acknowledgement of notice {notice_id} is not in the signed "
                          "inspection record: it was not made by `precaution notice ack` on this agent",
                          f"{path}：通知 {notice_id} 的确认不在已签名的检查记录中，并非本机确认")
    if recorded.acknowledged_at != on_file.acknowledged_at:
        raise NoticeError("tampered-ack", f"{path}: acknowledgement time {_fmt(on_file.acknowledged_at)} differs from "
                          f"the signed record ({_fmt(recorded.acknowledged_at)}): the file was altered",
                          f"{path}：确认时间 {_fmt(on_file.acknowledged_at)} 与已签名记录"
                          f"（{_fmt(recorded.acknowledged_at)}）不符，文件被篡改")
    return recorded


def planned_ack(signed: SignedNotice, actor: str, now: dt.datetime, state: StateDir) -> Acknowledgement:
    """The acknowledgement to record: the one the record already holds for this signed notice (a first
    acknowledgement stands: acknowledging again later must not move the delivery time, nor the lead time), else
    a new one at ``now``."""
    existing = _recorded_ack(signed.notice.id, state)
    if existing is not None and existing.digest == signed.digest:
        return existing
    return Acknowledgement(signed.notice.id, signed.digest, now, actor)


def write_ack_file(signed: SignedNotice, ack: Acknowledgement, state: StateDir) -> None:
    """The convenience copy in notices/, written after the record entry (which is what counts)."""
    path = state.subdir(ACK_DIR) / _ack_path(state, signed.notice.id).name
    atomic_write(path, (json.dumps({**ack.to_json(), "notice": json.loads(signed.to_document())}, indent=2,
                                   ensure_ascii=False) + "\n").encode())


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
    """The config's [notice] table (``unit``, ``lead_time``), with --unit / --lead-time applied.

    An override may only make the agent stricter: --lead-time may lengthen the configured minimum, never
    shorten it; --unit may name the unit when none is configured, never a different one. Either would let a
    notice through that the operator's configuration refuses. Every override used is recorded with the run
    (``applied.overrides`` of its record entry)."""
    section = getattr(config, "notice", None)
    cfg_unit = getattr(section, "unit", None) if section is not None else None
    cfg_lead = getattr(section, "lead_time", None) if section is not None else None
    try:
        configured = parse_duration(str(cfg_lead)) if cfg_lead is not None else DEFAULT_LEAD_TIME
        lead = parse_duration(str(lead_time)) if lead_time is not None else configured
    except ValueError as exc:
        raise UserError(f"lead time: {exc}", f"提前通知期：{exc}") from None
    if lead < configured:
        raise UserError(f"--lead-time {lead_time} is shorter than the configured minimum lead time of "
                        f"{_duration_text(configured)} ([notice] lead_time in config.toml): an override may lengthen "
                        "it, never shorten it",
                        f"--lead-time {lead_time} 短于配置的最短提前通知期 {_duration_text(configured)}"
                        "（config.toml 中的 [notice] lead_time）：只能延长，不能缩短")
    if unit is not None and cfg_unit is not None and _norm(unit) != _norm(cfg_unit):
        raise UserError(f"--unit {unit!r} differs from the configured unit {cfg_unit!r} ([notice] unit in "
                        "config.toml): notices addressed to another unit are never accepted",
                        f"--unit “{unit}” 与配置的本单位“{cfg_unit}”（config.toml 中的 [notice] unit）不符："
                        "不接受发给其他单位的通知")
    return NoticeSettings(unit=unit or cfg_unit, lead_time=lead)


def _duration_text(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for size, name in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {name}"
    return f"{delta.total_seconds():g} s"
