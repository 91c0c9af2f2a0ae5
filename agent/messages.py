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

# --- notices (Art. 25 para. 2): why a notice cannot authorise a test, and the notice in plain words
NOTICE_UNSIGNED = message("notice.unsigned", "notice is not signed: only a signed notice authorises remote testing",
                          "通知未签名：只有经签名的通知才能授权远程技术检测。")
NOTICE_TAMPERED = message("notice.tampered", "notice signature does not match its content (altered after signing, "
                          "or signed by another key)", "通知签名与内容不符（签名后被篡改，或非所称密钥签名）。")
NOTICE_UNTRUSTED = message("notice.untrusted", "notice is signed by a key this agent does not trust (issuer claims "
                           "{issuer!r}); add it with `precaution notice trust add`",
                           "通知签名密钥不在本机信任列表中（声称签发机关：{issuer}）；"
                           "可用 `precaution notice trust add` 添加。")
NOTICE_FUTURE = message("notice.future-issued", "notice issued-at {time} is in the future",
                        "通知签发时间 {time} 晚于当前时间。")
NOTICE_EXPIRED = message("notice.expired", "notice expired: its window ended {time}",
                         "通知已过期：检测时段已于 {time} 结束。")
NOTICE_NO_UNIT = message("notice.no-unit", "this agent's unit is not configured (set [notice] unit in the config or "
                         "pass --unit), so no notice can be matched to it",
                         "未配置本单位名称（在配置文件中设置 [notice] unit 或使用 --unit），无法核对通知对象。")
NOTICE_WRONG_SUBJECT = message("notice.wrong-subject", "notice is addressed to {subject!r}, not to this unit "
                               "({unit!r})", "通知对象为“{subject}”，不是本单位（{unit}）。")
NOTICE_NOT_ACKNOWLEDGED = message("notice.not-acknowledged", "notice {id} has not been acknowledged by the subject; "
                                  "run `precaution notice ack FILE` first",
                                  "被检测单位尚未确认接收通知 {id}；请先运行 `precaution notice ack FILE`。")
NOTICE_LATE = message("notice.late-delivery", "notice was acknowledged {acked}, less than the lead time of {lead} "
                      "before the window opens ({start})",
                      "通知确认时间 {acked} 距检测开始（{start}）不足提前通知期 {lead}。")
NOTICE_NOT_OPEN = message("notice.not-open", "the notice window opens {time}; testing before then is not permitted",
                          "检测时段自 {time} 开始，此前不得检测。")

NOTICE_DESCRIPTION = message(
    "notice.describe",
    "Notice of remote technical testing {id}\n"
    "Issued by: {issuer} (contact: {contact})\n"
    "Subject unit: {unit}\n"
    "Window: {start} to {end}\n"
    "Targets: {targets}\n"
    "Tests: {kinds}\n"
    "Rate limits: {rate}\n"
    "Lead time: {lead}; issued at {issued}\n"
    "Basis: {basis}\n"
    "Signature: {signature}",
    "远程技术检测通知 {id}\n"
    "签发机关：{issuer}（联系方式：{contact}）\n"
    "被检测单位：{unit}\n"
    "检测时段：{start} 至 {end}\n"
    "检测范围：{targets}\n"
    "检测方式：{kinds}\n"
    "速率限制：{rate}\n"
    "提前通知期：{lead}；签发时间：{issued}\n"
    "依据：{basis}\n"
    "签名：{signature}")
NOT_GIVEN = message("notice.not-given", "not given", "未提供")
NONE_STATED = message("notice.none-stated", "none stated", "未规定")
PRESENT = message("notice.signature-present", "present", "有")
ABSENT = message("notice.signature-absent", "none", "无")
RATE_PPS = message("notice.rate-pps", "{n} pkt/s", "每秒 {n} 个数据包")
RATE_PARALLEL = message("notice.rate-parallel", "{n} hosts at once", "同时 {n} 台主机")
TEST_KIND = {
    "host": message("test-kind.host", "host (host probes over SSH)", "SSH 主机检查"),
    "discovery": message("test-kind.discovery", "discovery (host discovery)", "主机发现"),
    "portscan": message("test-kind.portscan", "portscan (port scan)", "端口扫描"),
    "service": message("test-kind.service", "service (service detection)", "服务识别"),
    "passive": message("test-kind.passive", "passive (passive link checks)", "被动链路检查"),
}
# the usual basis of a notice ("Provisions 2021, Art. 24(3), 25"), read by agent.notice.basis_text
PROVISIONS_BASIS = message("notice.basis", "Provisions 2021, {articles}",
                           "《反间谍安全防范工作规定》（2021）{articles}")

# --- `precaution notice` output
NOTICE_SIGNED_BY = message("notice.signed-by", "Signed by trusted issuer: {name} ({fingerprint})",
                           "签名来自可信签发机关：{name}（{fingerprint}）")
NOTICE_VALID = message("notice.valid", "Notice is valid: signed by a trusted issuer, addressed to this unit, "
                       "acknowledged in time.", "通知有效：由可信签发机关签名，发给本单位，并已按时确认接收。")
NOTICE_PROBLEM_LINE = message("notice.problem-line", "precaution: notice {id}: {problem}",
                              "precaution：通知 {id}：{problem}")
NOTICE_KEY_WRITTEN = message("notice.key-written", "issuer key written to {path}; public key ({path}.pub): {key}",
                             "签发密钥已写入 {path}；公钥（{path}.pub）：{key}")
NOTICE_ISSUED = message("notice.issued", "notice {id} signed and written to {path}", "通知 {id} 已签名并写入 {path}")
NOTICE_ACKNOWLEDGED = message("notice.acknowledged", "notice {id} acknowledged at {time} by {actor}",
                              "通知 {id} 已由 {actor} 于 {time} 确认接收")
NOTICE_NOT_ACKED = message("notice.ack-refused", "notice {id} not acknowledged: {problem}",
                           "通知 {id} 未予确认接收：{problem}")
NOTICE_LATE_REFUSED = message("notice.late-refused", "{problem}; tests under this notice will be refused",
                              "{problem}依据该通知的检测将被拒绝。")
TRUSTING = message("notice.trusting", "trusting {name}: {fingerprint}", "已信任签发机关 {name}：{fingerprint}")
TRUSTED_LINE = message("notice.trusted-line", "{name}\t{fingerprint}\tadded {added}",
                       "{name}\t{fingerprint}\t添加于 {added}")
NO_TRUSTED = message("notice.no-trusted", "no trusted issuers yet: add one with `precaution notice trust add`",
                     "尚无可信签发机关：请用 `precaution notice trust add` 添加。")
