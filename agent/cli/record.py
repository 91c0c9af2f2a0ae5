"""`precaution record verify|show`: the inspection record (Art. 25 ¶3)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from agent import messages as msg
from agent import record
from agent.errors import UserError
from agent.i18n import LANGS, word
from probes.i18n import Joined, Localized, LocalTime, Message


def register(sub: Any) -> None:
    p = sub.add_parser("record", help="verify or show the inspection record",
                       description="The append-only, hash-chained, signed record of every inspection, test, "
                                   "refusal, notice and acknowledgement.")
    ps = p.add_subparsers(dest="record_command", metavar="ACTION")
    ps.required = True
    v = ps.add_parser("verify", help="check every entry's hash, the chain and the signatures (exit 2 if broken)")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.add_argument("--lang", choices=LANGS, default="en", help="language of the output (default en)")
    v.set_defaults(handler=_verify)
    a = ps.add_parser("acknowledge", help="acknowledge the problems `record verify` reports (written into the "
                                          "record; verify then passes until a new problem appears)")
    a.add_argument("--by", required=True, metavar="NAME", help="the operator who checked and acknowledges them")
    a.add_argument("--reason", required=True, metavar="TEXT", help="what was found and why it is acknowledged")
    a.add_argument("--lang", choices=LANGS, default="en", help="language of the output (default en)")
    a.set_defaults(handler=_acknowledge)
    s = ps.add_parser("show", help="print the record")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.add_argument("--lang", choices=LANGS, default="en", help="language of the output (default en)")
    s.add_argument("--last", type=_positive, metavar="N", help="only the last N entries (N >= 1)")
    s.set_defaults(handler=_show)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number of entries")
    return value


def _verify(args: argparse.Namespace) -> int:
    result = record.verify(args.state.record)
    if args.json:
        sys.stdout.write(json.dumps({"ok": result.ok, "entries": result.entries, "bad_seq": result.bad_seq,
                                     "bad_line": result.bad_line, "reason": result.reason}) + "\n")
    elif result.ok and result.acknowledged:
        sys.stdout.write(msg.RECORD_ACKED_EARLIER(entries=result.entries, count=len(result.acknowledged))
                         .get(args.lang) + "\n")
    elif result.ok:
        sys.stdout.write(msg.RECORD_INTACT(entries=result.entries).get(args.lang) + "\n")
    if not result.ok:
        sys.stderr.write(damage(result).get(args.lang) + "\n")
        return 2
    return 0


def damage(result: record.VerifyResult) -> Message:
    """Where the record is damaged and why; the English line keeps the verifier's exact reason."""
    if result.bad_seq is None:
        where = msg.RECORD_WHERE_FILE()
    elif result.bad_line is None:
        where = msg.RECORD_WHERE_ENTRY(seq=result.bad_seq)
    else:
        where = msg.RECORD_WHERE_LINE(seq=result.bad_seq, line=result.bad_line)
    reason = result.reason or ""
    template = next((m for prefix, m in msg.RECORD_REASON.items() if reason.startswith(prefix)),
                    msg.RECORD_REASON_OTHER)
    return msg.RECORD_DAMAGED(where=where, reason=template(reason=reason))


SEVERITIES = ("critical", "high", "medium", "low", "info")


def summary(entry: record.Entry) -> Localized | str:
    """An entry's summary in plain words, per kind."""
    s = entry.summary if isinstance(entry.summary, dict) else {}
    kind = entry.kind
    parts: list[Message | str] = []
    if kind in ("scan", "inspection", "netscan") and isinstance(s.get("findings"), dict):
        found = s["findings"]
        counts = [msg.COUNT_LINE(label=word(k), count=found[k]) for k in SEVERITIES if found.get(k)]
        parts.append(msg.SUMMARY_FINDINGS(counts=Joined(counts, ", ", "，") if counts else 0))
        if s.get("probe_errors"):
            parts.append(msg.SUMMARY_PROBE_ERRORS(count=s["probe_errors"]))
        if s.get("baseline") in msg.BASELINE_STATUS:
            parts.append(msg.SUMMARY_BASELINE(status=msg.BASELINE_STATUS[s["baseline"]]()))
        if "hosts_up" in s:
            parts.append(msg.SUMMARY_HOSTS_UP(count=s["hosts_up"]))
        if s.get("failures"):
            parts.append(msg.SUMMARY_NETSCAN_FAILED(tests=[str(f.get("test")) for f in s["failures"]]))
    elif kind == "refusal" and "code" in s:
        code = str(s["code"])
        template = msg.REFUSAL.get(code)
        parts.append(msg.SUMMARY_REFUSAL(code=template() if template else msg.REFUSAL_OTHER(code=code),
                                         message=str(s.get("message", ""))))
        if s.get("targets"):
            parts.append(msg.SUMMARY_TARGETS(targets=[str(t) for t in s["targets"]]))
    elif kind == "notice" and s.get("verdict") == "valid":
        parts.append(msg.SUMMARY_VALID(file=Path(str(s.get("file", ""))).name))  # the path is in --json
    elif kind == "acknowledgement" and "acknowledged_at" in s:
        parts.append(msg.SUMMARY_ACKNOWLEDGED(time=LocalTime.from_iso(str(s["acknowledged_at"]))))
    elif kind in ("baseline-capture", "baseline-accept") and "version" in s:
        parts.append(msg.SUMMARY_VERSION(version=s["version"], items=s.get("items", 0)))
        if s.get("note"):
            parts.append(msg.SUMMARY_NOTE(note=str(s["note"])))
    elif kind == "host-key" and "fingerprint" in s:
        event = msg.HOST_KEY_EVENT.get(str(s.get("event", "accepted-new")))
        parts.append(msg.SUMMARY_HOST_KEY(host=str(s.get("host", "")), key_type=str(s.get("key_type", "")),
                                          fingerprint=str(s["fingerprint"]),
                                          event=event() if event else str(s.get("event"))))
    elif kind == "record-break" and isinstance(s.get("problems"), list):
        parts.append(msg.SUMMARY_RECORD_BREAK(count=len(s["problems"]), message=str(s.get("message", ""))))
    elif kind == "record-recovery" and "set_aside" in s:
        parts.append(msg.SUMMARY_RECORD_RECOVERY(torn_bytes=s.get("torn_bytes", 0), set_aside=str(s["set_aside"])))
    elif kind == "record-acknowledgement" and isinstance(s.get("problems"), list):
        parts.append(msg.SUMMARY_RECORD_ACK(count=len(s["problems"]), by=str(s.get("by", "")),
                                            reason=str(s.get("message", ""))))
    elif kind == "agent-key" and str(s.get("event")) in msg.SUMMARY_AGENT_KEY:
        parts.append(msg.SUMMARY_AGENT_KEY[str(s["event"])](previous=str(s.get("previous") or "-"),
                                                             new=str(s.get("new") or "-")))
    elif kind == "task-failed" and "task_id" in s:
        parts.append(msg.SUMMARY_TASK_FAILED(task=str(s["task_id"]), reason=str(s.get("reason", ""))))
        if s.get("targets"):
            parts.append(msg.SUMMARY_TARGETS(targets=[str(t) for t in s["targets"]]))
    elif kind == "remote" and isinstance(s.get("hosts"), dict):
        for target, brief in s["hosts"].items():
            status = msg.REMOTE_STATUS.get(str(brief.get("status")))
            parts.append(msg.SUMMARY_REMOTE_HOST(target=target,
                                                 status=status() if status else str(brief.get("status"))))
    if parts:
        return Joined(parts, "; ", "；")
    return json.dumps(entry.summary, ensure_ascii=False)[:200] if entry.summary else ""


def _acknowledge(args: argparse.Namespace) -> int:
    if not args.by.strip() or len(args.reason.strip()) < 3:
        raise UserError(msg.RECORD_ACK_NEEDS_WHO())
    from agent.wire.contents import RecordAcknowledgementContent, RecordAcknowledgementSummary

    before = record.verify(args.state.record)
    if before.ok and not before.problems:
        sys.stdout.write(msg.RECORD_NOTHING_TO_ACK().get(args.lang) + "\n")
        return 0
    recorder = record.Recorder(args.state, f"{args.by.strip()} ({record.local_actor()})")
    entry = recorder.write(RecordAcknowledgementContent(summary=RecordAcknowledgementSummary(
        message=args.reason.strip(), by=args.by.strip(), problems=list(before.problems))))
    after = record.verify(args.state.record)
    if not after.ok:
        sys.stderr.write(damage(after).get(args.lang) + "\n")
        return 2
    sys.stdout.write(msg.RECORD_ACK_WRITTEN(count=len(before.problems), seq=entry.seq, by=args.by.strip())
                     .get(args.lang) + "\n")
    return 0


def _show(args: argparse.Namespace) -> int:
    entries = record.read_entries(args.state.record)
    if args.last:
        entries = entries[-args.last:]
    if args.json:
        sys.stdout.write(json.dumps([e.to_json() for e in entries], ensure_ascii=False, indent=2) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    from agent.report.wrap import WrappedText  # here: `record --help` and verify stay without rich

    lang = args.lang
    table = Table(title=msg.RECORD_TITLE().get(lang), show_lines=True, expand=True)
    # seq, time, kind, actor, notice, inspectors, tests, summary: the summary gets the room; the time column is
    # in the host's zone, named once in its header
    zone = LocalTime(dt.datetime.now(dt.UTC)).zone_name(lang)
    for i, name in enumerate(msg.RECORD_HEAD):
        table.add_column(name(zone=zone).get(lang), overflow="fold", no_wrap=i < 5,
                         ratio={5: 1, 6: 2, 7: 4}.get(i), min_width=16 if i == 6 else None)
    for e in entries:
        kind = msg.RECORD_KIND.get(e.kind)
        text = summary(e)
        when = LocalTime.from_iso(e.time)
        table.add_row(str(e.seq), when if isinstance(when, str) else when.stamp(),
                      kind().get(lang) if kind else e.kind, e.actor, e.notice_id or "-",
                      WrappedText(Joined([f"{i.name} ({i.id})" for i in e.inspectors], ", ", "，").get(lang) or "-"),
                      WrappedText(Joined(list(e.tests), ", ", "、").get(lang) or "-"),
                      WrappedText(text if isinstance(text, str) else text.get(lang)))
    # piped or logged output is read in files and mail: 140 columns, as scan does
    wide = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 140
    Console(highlight=False, width=wide).print(table)
    return 0
