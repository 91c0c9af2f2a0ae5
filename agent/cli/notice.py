"""`precaution notice keygen|issue|verify|ack|trust`: advance notices of remote testing (Art. 25 ¶2)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from agent import messages as msg
from agent.cli.main import error_line
from agent.config import load_config
from agent.errors import UserError
from agent.i18n import LANGS
from agent.notice import TEST_KINDS, NoticeSettings, describe, settings_from
from probes.i18n import LocalTime, Message


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
    _lang_option(kg)
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
    _lang_option(iss)
    iss.set_defaults(handler=_issue)

    ver = ps.add_parser("verify", help="show a notice in plain words and check it")
    ver.add_argument("file")
    ver.add_argument("--lang", choices=("en", "zh-CN", "both"), default="both",
                     help="language of the description and messages (default both)")
    ver.add_argument("--json", action="store_true", help="print the result as JSON")
    add_notice_options(ver)
    ver.set_defaults(handler=_verify)

    ack = ps.add_parser("ack", help="record this unit's acknowledgement of a notice (delivery time)")
    ack.add_argument("file")
    add_notice_options(ack)
    _lang_option(ack)
    ack.set_defaults(handler=_ack)

    tr = ps.add_parser("trust", help="manage the issuers whose notices this agent accepts")
    ts = tr.add_subparsers(dest="trust_command", metavar="ACTION")
    ts.required = True
    add = ts.add_parser("add", help="trust an issuer public key")
    add.add_argument("keyfile")
    add.add_argument("--name", required=True, help="the issuing body's name")
    _lang_option(add)
    add.set_defaults(handler=_trust_add)
    rm = ts.add_parser("remove", help="stop trusting an issuer (notices it signed are refused from now on)")
    rm.add_argument("issuer", metavar="NAME|FINGERPRINT", help="the issuer's name or key fingerprint (see list)")
    rm.add_argument("--lang", choices=("en", "zh-CN"), default="en", help="language of the output (default en)")
    rm.set_defaults(handler=_trust_remove)
    ls = ts.add_parser("list", help="list trusted issuers")
    _lang_option(ls)
    ls.set_defaults(handler=_trust_list)


def _lang_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lang", choices=LANGS, default="en", help="language of the output (default en)")


def _say(text: Message, lang: str, out: TextIO | None = None) -> None:
    """One message in the chosen language, or in both (English first) with --lang both."""
    langs = ("en", "zh-CN") if lang == "both" else (lang,)
    for one in langs:
        (out or sys.stdout).write(text.get(one) + "\n")


def _keygen(args: argparse.Namespace) -> int:
    from agent.services import issuer

    pub = issuer.keygen(Path(args.keyfile))
    _say(msg.NOTICE_KEY_WRITTEN(path=args.keyfile, key=pub), args.lang)
    return 0


def _issue(args: argparse.Namespace) -> int:
    from agent.services import issuer

    notice = issuer.issue(issuer.IssueRequest(
        key=Path(args.key), notice_id=args.notice_id, issuer=args.issuer, unit=args.unit, contact=args.contact,
        targets=tuple(args.target), kinds=tuple(args.kind), start=args.start, end=args.end,
        lead_time=args.lead_time, rate_pps=args.rate_pps, max_parallel=args.max_parallel,
        issued_at=args.issued_at, output=Path(args.output)))
    _say(msg.NOTICE_ISSUED(id=notice.id, path=args.output), args.lang)
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
            _say(msg.NOTICE_SIGNED_BY(name=result.issuer.name, fingerprint=result.issuer.fingerprint), args.lang)
    if result.ok:
        if not args.json:
            _say(msg.NOTICE_VALID(), args.lang)
        return 0
    for p in result.problems:
        _say(msg.NOTICE_PROBLEM_LINE(id=signed.notice.id, problem=p.message), args.lang, sys.stderr)
    return 2


def _ack(args: argparse.Namespace) -> int:
    from agent.services import notice as service
    from agent.services.context import AgentContext

    ctx = AgentContext.load(args.state, args.config)
    outcome = service.acknowledge(ctx, _request(args))
    _say(msg.NOTICE_ACKNOWLEDGED(id=outcome.signed.notice.id, time=LocalTime(outcome.acknowledged_at),
                                 actor=ctx.recorder.actor), args.lang)
    if outcome.late:
        sys.stderr.write(error_line(UserError(msg.NOTICE_LATE_REFUSED(problem=outcome.late.message)), args.lang)
                         + "\n")
        return 2
    return 0


def _trust_add(args: argparse.Namespace) -> int:
    from agent.services import issuer

    entry = issuer.trust(args.state, args.name, Path(args.keyfile))
    _say(msg.TRUSTING(name=entry.name, fingerprint=entry.fingerprint), args.lang)
    return 0


def _trust_remove(args: argparse.Namespace) -> int:
    from agent.services import issuer

    gone = issuer.distrust(args.state, args.issuer)
    _say(msg.NO_LONGER_TRUSTING(name=gone.name, fingerprint=gone.fingerprint), args.lang)
    return 0


def _trust_list(args: argparse.Namespace) -> int:
    from agent.services import issuer

    issuers = issuer.trusted(args.state)
    if not issuers:
        _say(msg.NO_TRUSTED(), args.lang, sys.stderr)
    for i in issuers:
        _say(msg.TRUSTED_LINE(name=i.name, fingerprint=i.fingerprint, added=LocalTime.from_iso(i.added)), args.lang)
    return 0
