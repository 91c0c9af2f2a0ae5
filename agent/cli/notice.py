"""`precaution notice keygen|issue|verify|ack|trust`: advance notices of remote testing (Art. 25 ¶2)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from agent.config import load_config
from agent.errors import UserError
from agent.notice import (
    TEST_KINDS,
    Notice,
    NoticeSettings,
    RateLimits,
    add_trusted,
    describe,
    generate_issuer_key,
    load_issuer_key,
    load_public_key_file,
    load_trusted,
    parse_duration,
    parse_time,
    settings_from,
    sign_notice,
)
from agent.state import atomic_write


def add_notice_options(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that reads a notice."""
    p.add_argument("--unit", metavar="NAME", help="this agent's unit, as notices name it (default: [notice] unit "
                                                   "in the config)")
    p.add_argument("--lead-time", metavar="DURATION",
                   help="minimum time between acknowledging a notice and its window opening (default 24h)")
    p.add_argument("--config", metavar="FILE", help="agent config (default: config.toml in the state directory)")


def notice_settings(args: argparse.Namespace) -> NoticeSettings:
    return settings_from(load_config(args.config, args.state), args.unit, args.lead_time)


def register(sub: Any) -> None:
    p = sub.add_parser("notice", help="issue, verify and acknowledge notices of remote testing",
                       description="Remote technical testing is lawful only after the subject was told its time "
                                   "and scope (Art. 25 ¶2). Notices are signed JSON documents.")
    ps = p.add_subparsers(dest="notice_command", metavar="ACTION")
    ps.required = True

    kg = ps.add_parser("keygen", help="create an issuer signing key (KEYFILE and KEYFILE.pub)")
    kg.add_argument("keyfile")
    kg.set_defaults(handler=_keygen)

    iss = ps.add_parser("issue", help="create and sign a notice (for issuing bodies and tests)")
    iss.add_argument("--key", required=True, metavar="KEYFILE", help="issuer private key (from notice keygen)")
    iss.add_argument("--id", required=True, dest="notice_id")
    iss.add_argument("--issuer", required=True, help="issuing body")
    iss.add_argument("--unit", required=True, help="subject unit (as its agent is configured)")
    iss.add_argument("--contact", default="", help="who to call about the test")
    iss.add_argument("--target", action="append", required=True, metavar="T",
                     help="host, CIDR or user@host:port (repeatable)")
    iss.add_argument("--kind", action="append", required=True, choices=TEST_KINDS, help="test kind (repeatable)")
    iss.add_argument("--start", required=True, help="window start: ISO 8601, or relative (+24h)")
    iss.add_argument("--end", required=True, help="window end: ISO 8601, or relative to now (+26h)")
    iss.add_argument("--lead-time", default="24h", help="advance notice promised (default 24h)")
    iss.add_argument("--rate-pps", type=int, help="packet rate limit")
    iss.add_argument("--max-parallel", type=int, help="hosts tested at once")
    iss.add_argument("--issued-at", default="now", help="issue time (default now)")
    iss.add_argument("-o", "--output", required=True, metavar="FILE")
    iss.set_defaults(handler=_issue)

    ver = ps.add_parser("verify", help="show a notice in plain words and check it")
    ver.add_argument("file")
    ver.add_argument("--lang", choices=("en", "zh-CN", "both"), default="both")
    ver.add_argument("--json", action="store_true")
    add_notice_options(ver)
    ver.set_defaults(handler=_verify)

    ack = ps.add_parser("ack", help="record this unit's acknowledgement of a notice (delivery time)")
    ack.add_argument("file")
    add_notice_options(ack)
    ack.set_defaults(handler=_ack)

    tr = ps.add_parser("trust", help="manage the issuers whose notices this agent accepts")
    ts = tr.add_subparsers(dest="trust_command", metavar="ACTION")
    ts.required = True
    add = ts.add_parser("add", help="trust an issuer public key")
    add.add_argument("keyfile")
    add.add_argument("--name", required=True, help="the issuing body's name")
    add.set_defaults(handler=_trust_add)
    ls = ts.add_parser("list", help="list trusted issuers")
    ls.set_defaults(handler=_trust_list)


def _keygen(args: argparse.Namespace) -> int:
    pub = generate_issuer_key(Path(args.keyfile))
    sys.stdout.write(f"issuer key written to {args.keyfile}; public key ({args.keyfile}.pub): {pub}\n")
    return 0


def _issue(args: argparse.Namespace) -> int:
    now = dt.datetime.now(dt.UTC)
    try:
        data = Notice(
            id=args.notice_id, issuer=args.issuer, subject_unit=args.unit, contact=args.contact,
            targets=tuple(args.target), kinds=tuple(dict.fromkeys(args.kind)),
            window_start=parse_time(args.start, now), window_end=parse_time(args.end, now),
            rate=RateLimits(args.rate_pps, args.max_parallel), lead_time=parse_duration(args.lead_time),
            issued_at=parse_time(args.issued_at, now),
        ).to_json()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    notice = Notice.from_json(data)  # the same validation a reader applies
    signed = sign_notice(notice, load_issuer_key(Path(args.key)))
    atomic_write(Path(args.output), signed.to_document(), mode=0o644)
    sys.stdout.write(f"notice {notice.id} signed and written to {args.output}\n")
    return 0


def _request(args: argparse.Namespace) -> Any:
    from agent.services.notice import NoticeRequest

    return NoticeRequest(Path(args.file), args.unit, args.lead_time)


def _verify(args: argparse.Namespace) -> int:
    from agent.services import notice as service
    from agent.services.context import AgentContext

    outcome = service.verify(AgentContext.load(args.state, args.config), _request(args))
    signed, result = outcome.signed, outcome.result
    if args.json:
        sys.stdout.write(json.dumps({"notice": signed.notice.to_json(), "signed": bool(signed.signature),
                                     "issuer": result.issuer.name if result.issuer else None,
                                     "ok": result.ok, "problems": [{"code": p.code, "en": p.en, "zh-CN": p.zh}
                                                                   for p in result.problems]},
                                    ensure_ascii=False, indent=2) + "\n")
    else:
        langs = ("en", "zh-CN") if args.lang == "both" else (args.lang,)
        for lang in langs:
            sys.stdout.write(describe(signed, lang) + "\n\n")
        if result.issuer:
            sys.stdout.write(f"Signed by trusted issuer: {result.issuer.name} ({result.issuer.fingerprint})\n")
    if result.ok:
        if not args.json:
            sys.stdout.write("Notice is valid: signed by a trusted issuer, addressed to this unit, acknowledged in "
                             "time. / 通知有效。\n")
        return 0
    for p in result.problems:
        sys.stderr.write(f"precaution: notice {signed.notice.id}: {p.en} / {p.zh}\n")
    return 2


def _ack(args: argparse.Namespace) -> int:
    from agent.services import notice as service
    from agent.services.context import AgentContext

    ctx = AgentContext.load(args.state, args.config)
    outcome = service.acknowledge(ctx, _request(args))
    sys.stdout.write(f"notice {outcome.signed.notice.id} acknowledged at {outcome.acknowledged_at.isoformat()} "
                     f"by {ctx.recorder.actor}\n")
    if outcome.late:
        sys.stderr.write(f"precaution: error: {outcome.late.en}; tests under this notice will be refused\n")
        return 2
    return 0


def _trust_add(args: argparse.Namespace) -> int:
    key = load_public_key_file(Path(args.keyfile))
    entry = add_trusted(args.name, key, args.state)
    sys.stdout.write(f"trusting {entry.name}: {entry.fingerprint}\n")
    return 0


def _trust_list(args: argparse.Namespace) -> int:
    for i in load_trusted(args.state):
        sys.stdout.write(f"{i.name}\t{i.fingerprint}\tadded {i.added}\n")
    return 0
