"""The agent's own trouble as findings the collector tracks: a damaged spool set aside, results dropped under
spool pressure. Each event becomes a run of the pseudo-probe ``agent_spool`` marked ``limited``, so that a
later event never resolves an earlier one: a person closes them at the collector.

Built here, in the daemon, as the JSON of a ``RunReport`` (agent.wire.collector_api) without importing the wire
models (the idle footprint); tests/daemon/test_push.py validates it with them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from baselines.model import finding_id

PROBE = "agent_spool"
RULE_DAMAGED, RULE_DROPPED = "PC-AGENT-001", "PC-AGENT-002"


def _text(en: str, zh: str) -> dict[str, str]:
    return {"en": en, "zh-CN": zh}


def event_report(key: str, body: dict[str, Any], host: str) -> dict[str, Any]:
    """The run report (``RunReport`` JSON) of one spool event."""
    when = str(body.get("time") or dt.datetime.now(dt.UTC).isoformat())
    if body.get("event") == "spool_damaged":
        rule, severity, subject = RULE_DAMAGED, "high", str(body.get("set_aside"))
        title = _text("The agent's spool was damaged and set aside; results waiting in it may be lost",
                      "代理本地缓存队列损坏并已隔离，其中待发送的结果可能丢失")
        steps = _text(f"Check the disk and file system of {host}; the damaged file is kept at {subject} "
                      f"({body.get('salvaged_items', 0)} item(s) were salvaged from it).",
                      f"检查 {host} 的磁盘和文件系统；损坏文件保留在 {subject}（已从中恢复 "
                      f"{body.get('salvaged_items', 0)} 项）。")
    else:
        rule, severity, subject = RULE_DROPPED, "medium", when
        title = _text(f"The agent dropped {body.get('items', 0)} low-priority result(s) because its spool was full",
                      f"代理本地缓存已满，丢弃了 {body.get('items', 0)} 项低优先级结果")
        steps = _text("Restore the connection to the collector, or raise [spool] max_bytes in agent.toml; record "
                      "entries and critical/high findings were kept.",
                      "恢复与汇聚端的连接，或调大 agent.toml 中的 [spool] max_bytes；检查记录和严重/高危发现均已保留。")
    finding = {
        "id": finding_id(host, PROBE, subject, rule), "rule_id": rule, "kind": "integrity", "host": host,
        "probe": PROBE, "subject": subject, "severity": severity, "title": title,
        "rationale": _text("Results that never reach the collector cannot be tracked to rectification (Art. 27, 28).",
                           "未送达汇聚端的结果无法跟踪整改（第二十七、二十八条）。"),
        "remediation": {"action": "investigate", "steps": steps, "command": None},
        "evidence": {k: v for k, v in body.items() if isinstance(v, str | int | float | bool)},
        "references": ["Art. 25", "Art. 27"], "waived": None}
    probe = {"id": PROBE, "title": "agent spool", "status": "limited", "duration_s": 0.0, "observations": 0,
             "message": None, "limitations": ["agent health event; later runs do not resolve it"]}
    return {"run_id": f"agent-{key.replace(':', '-')}"[:200], "kind": "scan", "host": host, "started": when,
            "finished": when, "task_id": None, "notice_id": None, "login_failed": False, "probes": [probe],
            "findings": [finding], "coverage": None}
