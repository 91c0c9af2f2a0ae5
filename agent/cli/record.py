"""`precaution record verify|show`: the inspection record (Art. 25 ¶3)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent import record
from agent.errors import UserError
from agent.i18n import LANGS

_KIND_ZH = {"scan": "自查", "remote": "远程检测", "netscan": "网络检测", "inspection": "现场检查",
            "refusal": "拒绝执行", "notice": "通知核验", "acknowledgement": "确认接收通知",
            "baseline-capture": "基线采集", "baseline-accept": "基线确认",
            "host-key": "主机密钥登记", "agent-key": "本机签名密钥变更", "record-break": "记录中断",
            "record-recovery": "记录恢复", "record-acknowledgement": "记录问题确认"}
_HEAD = {"en": ("seq", "time", "kind", "actor", "notice", "inspectors", "tests", "summary"),
         "zh-CN": ("序号", "时间", "类型", "执行人", "通知", "检查人员", "检测项目", "摘要")}


def register(sub: Any) -> None:
    p = sub.add_parser("record", help="verify or show the inspection record",
                       description="The append-only, hash-chained, signed record of every inspection, test, "
                                   "refusal, notice and acknowledgement.")
    ps = p.add_subparsers(dest="record_command", metavar="ACTION")
    ps.required = True
    v = ps.add_parser("verify", help="check every entry's hash, the chain and the signatures (exit 2 if broken)")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
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
    elif result.ok:
        sys.stdout.write(result.message() + "\n")
    if not result.ok:
        sys.stderr.write(f"precaution: record damaged: {result.message()}\n")
        return 2
    return 0


def _acknowledge(args: argparse.Namespace) -> int:
    zh = args.lang == "zh-CN"
    if not args.by.strip() or len(args.reason.strip()) < 3:
        raise UserError("--by and --reason must say who acknowledges and why",
                        "--by 与 --reason 须写明确认人及原因")
    from agent.wire.contents import RecordAcknowledgementContent, RecordAcknowledgementSummary

    before = record.verify(args.state.record)
    if before.ok and not before.problems:
        sys.stdout.write(("记录完整，无需确认。" if zh else "record intact: nothing to acknowledge") + "\n")
        return 0
    recorder = record.Recorder(args.state, f"{args.by.strip()} ({record.local_actor()})")
    entry = recorder.write(RecordAcknowledgementContent(summary=RecordAcknowledgementSummary(
        message=args.reason.strip(), by=args.by.strip(), problems=list(before.problems))))
    after = record.verify(args.state.record)
    if not after.ok:
        sys.stderr.write(f"precaution: record damaged: {after.message()}\n")
        return 2
    count = len(before.problems)
    sys.stdout.write((f"已确认 {count} 个问题（记录第 {entry.seq} 条），确认人：{args.by.strip()}"
                      if zh else f"acknowledged {count} problem(s) as entry {entry.seq} by {args.by.strip()}") + "\n")
    return 0


def _summary(entry: record.Entry) -> str:
    s = entry.summary
    if isinstance(s, dict):
        parts = []
        for key in ("code", "message", "verdict", "hosts", "findings", "acknowledged_at"):
            if key in s and s[key] not in (None, "", [], {}):
                value = s[key]
                parts.append(f"{key}={json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value}")
        return "; ".join(parts) or json.dumps(s, ensure_ascii=False)[:200]
    return "" if s is None else str(s)


def _show(args: argparse.Namespace) -> int:
    entries = record.read_entries(args.state.record)
    if args.last:
        entries = entries[-args.last:]
    if args.json:
        sys.stdout.write(json.dumps([e.to_json() for e in entries], ensure_ascii=False, indent=2) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    zh = args.lang == "zh-CN"
    table = Table(title="检查检测记录" if zh else "Inspection record", show_lines=True, expand=True)
    for name in _HEAD[args.lang]:
        table.add_column(name, overflow="fold")
    for e in entries:
        table.add_row(str(e.seq), e.time[:19].replace("T", " "), _KIND_ZH.get(e.kind, e.kind) if zh else e.kind,
                      e.actor, e.notice_id or "-", ", ".join(f"{i.name} ({i.id})" for i in e.inspectors) or "-",
                      ", ".join(e.tests) or "-", _summary(e))
    Console(highlight=False).print(table)
    return 0
