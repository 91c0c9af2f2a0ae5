"""Notices on the issuer's side and the trust list: an issuer key, a signed notice, the issuers this agent
trusts. Plain functions with typed requests and results (the CLI prints them); nothing is recorded here, as
issuing is not an act of the subject's agent and the trust list is configuration."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from agent.errors import UserError
from agent.notice import (
    Notice,
    RateLimits,
    TrustedIssuer,
    add_trusted,
    generate_issuer_key,
    load_issuer_key,
    load_public_key_file,
    load_trusted,
    parse_duration,
    parse_time,
    remove_trusted,
    sign_notice,
)
from agent.state import StateDir, write_output


def keygen(path: Path) -> str:
    """A new issuer key at ``path`` (and ``path``.pub); its public key (base64)."""
    return generate_issuer_key(path)


@dataclass(frozen=True, slots=True)
class IssueRequest:
    key: Path
    notice_id: str
    issuer: str
    unit: str
    contact: str
    targets: tuple[str, ...]
    kinds: tuple[str, ...]
    start: str  # ISO 8601 or relative to now (+24h), as typed
    end: str
    lead_time: str
    rate_pps: int | None
    max_parallel: int | None
    issued_at: str
    output: Path


def issue(req: IssueRequest, now: dt.datetime | None = None) -> Notice:
    """Build, validate (as a reader would), sign and write a notice; the notice written."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        data = Notice(
            id=req.notice_id, issuer=req.issuer, subject_unit=req.unit, contact=req.contact, targets=req.targets,
            kinds=tuple(dict.fromkeys(req.kinds)), window_start=parse_time(req.start, now),
            window_end=parse_time(req.end, now), rate=RateLimits(req.rate_pps, req.max_parallel),
            lead_time=parse_duration(req.lead_time), issued_at=parse_time(req.issued_at, now),
        ).to_json()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    notice = Notice.from_json(data)  # the same validation a reader applies
    signed = sign_notice(notice, load_issuer_key(req.key))
    write_output(req.output, signed.to_document(), "-o", mode=0o644)  # never replaces a device
    return notice


def trust(state: StateDir, name: str, keyfile: Path) -> TrustedIssuer:
    return add_trusted(name, load_public_key_file(keyfile), state)


def distrust(state: StateDir, name_or_fingerprint: str) -> TrustedIssuer:
    return remove_trusted(name_or_fingerprint, state)


def trusted(state: StateDir) -> list[TrustedIssuer]:
    return load_trusted(state)
