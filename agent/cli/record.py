"""`precaution record verify|show`: the inspection record (Art. 25 ¶3)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent import record
from agent.i18n import LANGS

_KIND_ZH = {"scan": "自查", "remote": "远程检测", "netscan": "网络检测", "inspection": "现场检查",
            "refusal": "拒绝执行", "notice": "通知核验", "acknowledgement": "确认接收通知",
            "baseline-accept": "基线确认",
            "host-key": "主机密钥登记"}
_HEAD = {"en": ("seq", "time", "kind", "actor", "notice", "inspectors", "tests", "summary"),
         "zh-CN": ("序号", "时间", "类型", "执行人", "通知", "检查人员", "检测项目", "摘要")}


def register(sub: Any) -> None:
    p = sub.add_parser("record", help="verify or show the inspection record",
                       description="The append-only, hash-chained, signed record of every inspection, test, "
                                   "refusal, notice and acknowledgement.")
    ps = p.add_subparsers(dest="record_command", metavar="ACTION")
    ps.required = True
    v = ps.add_parser("verify", help="check every entry's hash, the chain and the signatures (exit 2 if broken)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(handler=_verify)
    s = ps.add_parser("show", help="print the record")
    s.add_argument("--json", action="store_true")
    s.add_argument("--lang", choices=LANGS, default="en")
    s.add_argument("--last", type=int, metavar="N", help="only the last N entries")
    s.set_defaults(handler=_show)


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
