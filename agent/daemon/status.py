"""``precaution agent status``: the agent's metrics for a person, in English or Simplified Chinese.

Read from the running agent's /metrics (the same figures Prometheus sees). When nothing answers there, the
spool and the scheduler state are read from the state directory instead, and the report says the agent is
not running.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from agent.daemon.config import DaemonConfig

_T: dict[str, tuple[str, str]] = {
    "running": ("precaution agent: running (metrics at {url})", "precaution 代理：运行中（指标地址 {url}）"),
    "stopped": ("precaution agent: NOT running (no answer at {url}); figures below are from {state}",
                "precaution 代理：未运行（{url} 无响应）；以下数据读取自 {state}"),
    "enrolled": ("Enrolled with a collector", "已注册到汇聚端"),
    "collector": ("Collector reachable", "汇聚端可达"),
    "last_push": ("Last acknowledged push", "最近一次确认推送"),
    "runs": ("Last successful runs", "最近成功运行"),
    "findings": ("Findings (last self-inspection)", "发现问题（最近一次自查）"),
    "drift": ("Drift from baseline", "基线偏离"),
    "spool": ("Spool", "本地缓存队列"),
    "spool_line": ("{items} item(s), {mib:.1f} MiB of {max_mib:.0f} MiB, oldest {age}",
                   "{items} 项，{mib:.1f} MiB / {max_mib:.0f} MiB，最早一项 {age}"),
    "pressure": ("Spool pressure", "缓存压力"),
    "pressure0": ("none", "无"),
    "pressure1": ("over 90 % of its bound: info summarised, low priority dropped",
                  "超过上限 90%：提示类已汇总，低优先级数据被丢弃"),
    "pressure2": ("DISK FULL: low-priority data refused", "磁盘已满：拒收低优先级数据"),
    "process": ("Agent process", "代理进程"),
    "process_line": ("RSS {rss:.1f} MiB (budget {limit:.0f} MiB), CPU {cpu:.2f} % (budget {cpu_limit:.1f} %)",
                     "常驻内存 {rss:.1f} MiB（上限 {limit:.0f} MiB），CPU {cpu:.2f}%（上限 {cpu_limit:.1f}%）"),
    "never": ("never", "从未"),
    "ago": ("{when} ({ago} ago)", "{when}（{ago}前）"),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    "damaged": ("Damaged spool files set aside: {n}", "已隔离的损坏缓存文件：{n} 个"),
    "kills": ("Runs killed by the watchdog: {n}", "被看门狗终止的运行：{n} 次"),
    "self_inspection": ("self-inspection", "自查"),
    "file_integrity": ("file integrity", "文件完整性"),
    "own_networks": ("own networks", "本单位网络检测"),
    "info": ("info", "提示"), "low": ("low", "低"), "medium": ("medium", "中"), "high": ("high", "高"),
    "critical": ("critical", "严重"),
    "added": ("added", "新增"), "removed": ("removed", "移除"), "changed": ("changed", "变更"),
}


def t(key: str, lang: str, **kw: object) -> str:
    en, zh = _T[key]
    return (zh if lang == "zh-CN" else en).format(**kw)


@dataclass(slots=True)
class Figures:
    """Samples by metric name -> {frozenset(labels) -> value}."""

    samples: dict[str, dict[frozenset[tuple[str, str]], float]] = field(default_factory=dict)

    def get(self, name: str, **labels: str) -> float | None:
        return self.samples.get(name, {}).get(frozenset(labels.items()))

    def by(self, name: str, label: str) -> dict[str, float]:
        return {dict(k)[label]: v for k, v in self.samples.get(name, {}).items() if label in dict(k)}


def parse_metrics(text: str) -> Figures:
    from prometheus_client.parser import text_string_to_metric_families

    figures = Figures()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            figures.samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return figures


def scrape(listen: str, timeout: float = 3.0) -> Figures | None:
    try:
        with urllib.request.urlopen(f"http://{listen}/metrics", timeout=timeout) as resp:
            return parse_metrics(resp.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def offline_figures(config: DaemonConfig, state: Path) -> Figures:
    """What the files say when the agent is not running: spool depth and age, last runs."""
    from agent.daemon.spool import Spool

    figures = Figures()
    path = config.spool_path(state)
    if path.exists():
        spool = Spool(path, config.spool.max_bytes, config.spool.min_free_bytes, check=False)
        stats = spool.stats()
        spool.close()
        figures.samples["precaution_agent_spool_items"] = {
            frozenset({("priority", p.name.lower())}): float(n) for p, n in stats.items.items()}
        figures.samples["precaution_agent_spool_bytes"] = {frozenset(): float(stats.bytes)}
        age = 0.0 if stats.oldest_created is None else time.time() - stats.oldest_created
        figures.samples["precaution_agent_spool_oldest_item_age_seconds"] = {frozenset(): age}
        figures.samples["precaution_agent_spool_pressure"] = {frozenset(): float(int(stats.pressure))}
        figures.samples["precaution_agent_spool_damaged_files"] = {frozenset(): float(stats.damaged_files)}
    figures.samples["precaution_agent_spool_max_bytes"] = {frozenset(): float(config.spool.max_bytes)}
    try:
        sched = json.loads((state / "scheduler.json").read_text(encoding="utf-8"))
        figures.samples["precaution_agent_last_successful_run_timestamp_seconds"] = {
            frozenset({("kind", k)}): float(v["last_ok"]) for k, v in sched.items() if v.get("last_ok")}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return figures


def _ago(seconds: float, lang: str) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s" if lang != "zh-CN" else f"{seconds} 秒"
    if seconds < 7200:
        return f"{seconds // 60} min" if lang != "zh-CN" else f"{seconds // 60} 分钟"
    if seconds < 172800:
        return f"{seconds // 3600} h" if lang != "zh-CN" else f"{seconds // 3600} 小时"
    return f"{seconds // 86400} d" if lang != "zh-CN" else f"{seconds // 86400} 天"


def _when(ts: float | None, lang: str, now: float) -> str:
    if not ts:
        return t("never", lang)
    when = dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return t("ago", lang, when=when, ago=_ago(now - ts, lang))


def render(figures: Figures, running: bool, config: DaemonConfig, state: Path, lang: str,
           now: float | None = None) -> str:
    now = time.time() if now is None else now
    url = f"http://{config.metrics.listen}/metrics"
    lines = [t("running", lang, url=url) if running else t("stopped", lang, url=url, state=state)]
    yn = {True: t("yes", lang), False: t("no", lang)}
    if running:
        lines.append(f"  {t('enrolled', lang)}: {yn[bool(figures.get('precaution_agent_enrolled'))]}")
        lines.append(f"  {t('collector', lang)}: {yn[bool(figures.get('precaution_agent_collector_up'))]}")
        lines.append(f"  {t('last_push', lang)}: "
                     f"{_when(figures.get('precaution_agent_last_successful_push_timestamp_seconds'), lang, now)}")
    lines.append(f"{t('runs', lang)}:")
    last = figures.by("precaution_agent_last_successful_run_timestamp_seconds", "kind")
    for kind in ("self_inspection", "file_integrity", "own_networks"):
        if kind in last or running:
            lines.append(f"  {t(kind, lang)}: {_when(last.get(kind), lang, now)}")
    findings = figures.by("precaution_agent_findings", "severity")
    if findings:
        parts = [f"{t(s, lang)} {int(findings.get(s, 0))}" for s in ("critical", "high", "medium", "low", "info")]
        lines.append(f"{t('findings', lang)}: " + ", ".join(parts))
    drift = figures.by("precaution_agent_drift_items", "change")
    if drift:
        lines.append(f"{t('drift', lang)}: " + ", ".join(f"{t(c, lang)} {int(drift.get(c, 0))}"
                                                         for c in ("added", "removed", "changed")))
    items = sum(figures.by("precaution_agent_spool_items", "priority").values())
    spool_bytes = figures.get("precaution_agent_spool_bytes") or 0.0
    max_bytes = figures.get("precaution_agent_spool_max_bytes") or float(config.spool.max_bytes)
    age = figures.get("precaution_agent_spool_oldest_item_age_seconds") or 0.0
    lines.append(f"{t('spool', lang)}: " + t("spool_line", lang, items=int(items), mib=spool_bytes / 2**20,
                                               max_mib=max_bytes / 2**20, age=_ago(age, lang)))
    pressure = int(figures.get("precaution_agent_spool_pressure") or 0)
    lines.append(f"  {t('pressure', lang)}: {t(f'pressure{pressure}', lang)}")
    damaged = int(figures.get("precaution_agent_spool_damaged_files") or 0)
    if damaged:
        lines.append("  " + t("damaged", lang, n=damaged))
    if running:
        rss = figures.get("precaution_agent_process_resident_memory_bytes") or 0.0
        limit = figures.get("precaution_agent_watchdog_memory_limit_bytes", process="daemon") or 0.0
        cpu = figures.get("precaution_agent_watchdog_cpu_usage_ratio") or 0.0
        cpu_limit = figures.get("precaution_agent_watchdog_cpu_limit_ratio") or 0.0
        lines.append(f"{t('process', lang)}: " + t("process_line", lang, rss=rss / 2**20, limit=limit / 2**20,
                                                     cpu=cpu * 100, cpu_limit=cpu_limit * 100))
        kills = sum(figures.by("precaution_agent_watchdog_kills_total", "resource").values())
        if kills:
            lines.append("  " + t("kills", lang, n=int(kills)))
    return "\n".join(lines) + "\n"
