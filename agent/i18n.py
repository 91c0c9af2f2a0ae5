"""Words of the interface (headers, severities, actions) in the message catalogue (probes.i18n), under
``ui.<key>``; sentences live in agent.messages, rule texts in the profile. ``t(key, lang)`` has no fallback:
an unknown key is a bug, not an English word in a Chinese table."""

from __future__ import annotations

from probes.i18n import CATALOGUE, LANGS, Message, message

__all__ = ["LANGS", "t", "word"]

_STRINGS: dict[str, tuple[str, str]] = {
    "title": ("precaution self-inspection", "反间谍安全防范技术自查"),
    "title_netscan": ("precaution network test (Art. 24(2))", "网络技术检测（第二十四条第二项）"),
    "title_remote": ("precaution remote technical test (Art. 24(3))", "远程技术检测（第二十四条第三项）"),
    "title_onsite": ("precaution on-site technical inspection (Art. 24(1))", "现场技术检查（第二十四条第一项）"),
    "host": ("Host", "主机"),
    "profile": ("Profile", "检查策略"),
    "severity": ("Severity", "严重程度"),
    "rule": ("Rule", "规则"),
    "subject": ("Subject", "对象"),
    "finding": ("Finding", "发现问题"),
    "remediation": ("Remediation", "整改措施"),
    "action": ("Action", "处置方式"),
    "command": ("Command", "参考命令"),
    "evidence": ("Evidence", "证据"),
    "references": ("References", "依据"),
    "rationale": ("Rationale", "理由"),
    "probe": ("Probe", "探针"),
    "status": ("Status", "状态"),
    "duration": ("Duration", "耗时"),
    "observations": ("Observations", "观测项"),
    "message": ("Message", "说明"),
    "findings": ("Findings", "发现问题"),
    "no_findings": ("No findings: the host matches the profile.", "未发现问题：主机符合检查策略。"),
    "waived": ("waived", "已豁免"),
    "probes": ("Probes", "探针"),
    "summary": ("Summary", "摘要"),
    "note": ("note", "说明"),
    "notes": ("Notes", "说明"),
    "baseline": ("Baseline", "基线"),
    "limited": ("Limited probes (results incomplete):", "受限探针（结果不完整）："),
    "probe_errors": ("Probe errors:", "探针错误："),
    "expired_waivers": ("Expired waivers (no longer applied):", "已过期豁免（不再生效）："),
    "unevaluated": ("Rules not evaluated (probe did not run):", "未评估规则（探针未运行）："),
    "started": ("Started", "开始时间"),
    "finished": ("Finished", "结束时间"),
    "as_root": ("Run as root", "以 root 运行"),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    "info": ("info", "提示"),
    "low": ("low", "低危"),
    "medium": ("medium", "中危"),
    "high": ("high", "高危"),
    "critical": ("critical", "严重"),
    "block": ("block", "阻断"),
    "isolate": ("isolate", "隔离"),
    "dismantle": ("dismantle", "拆除"),
    "stop_use": ("stop use", "停止使用"),
    "reconfigure": ("reconfigure", "重新配置"),
    "investigate": ("investigate", "调查核实"),
    "basis": (
        "Basis: Provisions on Counter-espionage Security Precautions (2021), Art. 9, 10, 23-26.",
        "依据：《反间谍安全防范工作规定》（2021）第九、十、二十三至二十六条。",
    ),
}


for _key, (_en, _zh) in _STRINGS.items():
    message(f"ui.{_key}", _en, _zh)


def t(key: str, lang: str = "en") -> str:
    return CATALOGUE[f"ui.{key}"].text(lang)


def word(key: str) -> Message:
    """A word of the interface as a template parameter (rendered in each language)."""
    return CATALOGUE[f"ui.{key}"]()
