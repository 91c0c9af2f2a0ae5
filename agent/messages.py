"""Sentences the agent shows a person (notes, summaries, command output), in the catalogue of probes.i18n.

Words of the interface (headers, severities) are in agent.i18n; probe limitations in probes.messages; drift
and waiver wording in baselines.messages.
"""

from __future__ import annotations

from probes.i18n import message

# --- scan notes (the comparison with the saved baseline)
NO_BASELINE = message(
    "scan.no-baseline",
    "no baseline for {scope} yet: drift not checked; run `precaution baseline capture` to record this host's "
    "known-good state",
    "尚无 {scope} 的基线：未检查偏离；请运行 `precaution baseline capture` 记录本主机的可信状态。")
BASELINE_NOT_USED = message("scan.baseline-not-used", "baseline {scope} NOT USED: {reason}",
                            "基线 {scope} 未予使用：{reason}")
BASELINE_COMPARED = message(
    "scan.baseline-compared",
    "baseline {scope} v{version} (accepted by {by} {at}): {items} drift item(s) in {findings} finding(s)",
    "基线 {scope} 第 {version} 版（{by} 于 {at} 确认）：{items} 项偏离，归为 {findings} 个问题。")
PROBES_NOT_COMPARED = message("scan.probes-not-compared",
                              "baseline probes not compared (did not run now): {probes}",
                              "基线中的以下探针本次未运行，未作比对：{probes}。")
PROBES_NOT_IN_BASELINE = message("scan.probes-not-in-baseline",
                                 "probes not in baseline {scope} v{version} (no drift check): {probes}",
                                 "以下探针不在基线 {scope} 第 {version} 版中（未检查偏离）：{probes}。")
LIMITED_COMPARED = message("scan.limited-compared",
                           "limited probes compared with the baseline (drift may reflect missing permissions): "
                           "{probes}",
                           "以下受限探针已与基线比对（偏离可能源于权限不足）：{probes}。")

# --- table and report lines
NOTE_LINE = message("report.note", "note: {text}", "说明：{text}")
LIMITED_LINE = message("report.limited", "  {probe}: {reasons}", "  {probe}：{reasons}")
PROBE_ERROR_LINE = message("report.probe-error", "  {probe} ({status}): {message}", "  {probe}（{status}）：{message}")
EXPIRED_WAIVER_LINE = message("report.expired-waiver", "  {target} {subject} expired {date}",
                              "  {target} {subject} 已于 {date} 过期")
PROBES_RAN = message("report.probes-ran", "{ran}/{total}  {took}", "{ran}/{total}  耗时 {took}")
WAIVED_TAG = message("report.waived", "[waived: {justification}]", "【已豁免：{justification}】")
REMEDIATION_ACTION = message("report.action", "{action}: ", "{action}：")
COUNT_LINE = message("report.count", "{label}: {count}", "{label}：{count}")
FINDINGS_LINE = message("report.findings", "{label}: {summary}", "{label}：{summary}")

# --- probe statuses (table, HTML)
STATUS = {
    "ok": message("status.ok", "ok", "正常"),
    "limited": message("status.limited", "limited", "受限"),
    "error": message("status.error", "error", "出错"),
    "timeout": message("status.timeout", "timeout", "超时"),
    "skipped": message("status.skipped", "skipped", "已跳过"),
}
BASELINE_STATUS = {
    "compared": message("baseline-status.compared", "compared", "已比对"),
    "missing": message("baseline-status.missing", "missing", "尚无基线"),
    "invalid": message("baseline-status.invalid", "invalid", "校验失败"),
}
BASELINE_VERSION = message("report.baseline-version", "v{version}, accepted by {by}", "第 {version} 版，{by} 确认")
TIME_TAKEN = message("report.time-taken", "{time} ({took})", "{time}（耗时 {took}）")
