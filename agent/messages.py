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
NO_NETWORK_BASELINE = message(
    "scan.no-network-baseline",
    "no network baseline for {scope} yet: drift not checked; run `precaution baseline capture --network` to "
    "record the network's known-good state",
    "尚无 {scope} 的网络基线：未检查偏离；请运行 `precaution baseline capture --network` 记录该网络的可信状态。")
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
BASELINE_VERSION = message("report.baseline-version", " (v{version}, accepted by {by})",
                           "（第 {version} 版，{by} 确认）")
SUBJECT_META = message("report.subject-meta", "({probe}, id {id})", "（{probe}，编号 {id}）")
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
                         "未配置本单位名称（在配置文件中设置 `[notice] unit` 或使用 --unit），无法核对通知对象。")
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

# a notice file that cannot be read as a notice; the English line keeps the parser's detail
NOTICE_NOT_JSON = message("notice.not-json", "notice file is not JSON: {detail}", "通知文件不是有效的 JSON")
NOTICE_TOO_DEEP = message("notice.too-deep", "notice file is nested too deeply to be a notice",
                          "通知文件嵌套层级过深，不是通知文件")
NOTICE_NO_OBJECT = message("notice.no-object", "notice file has no \"notice\" object",
                           "通知文件缺少通知正文对象")
NOTICE_BAD_SIGNATURE_FIELD = message("notice.bad-signature-field",
                                     "notice signature: expected {{\"algorithm\": \"ed25519\", ...}}",
                                     "通知签名格式错误：须为 Ed25519 签名对象")
NOTICE_MALFORMED = message("notice.malformed", "notice: {problems}", "通知内容不合规：{problems}")
NOTICE_FIELD_PROBLEM = message("notice.field-problem", "{field}: {detail}", "字段 {field} 的格式或取值错误")
NOTICE_BAD_VALUE = message("notice.bad-value", "notice: {detail}", "通知中的目标、时间或提前通知期无效")
NOTICE_WINDOW_REVERSED = message("notice.window-reversed", "notice: the window ends before it starts",
                                 "通知的检测时段结束早于开始")
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
NO_LONGER_TRUSTING = message("notice.no-longer-trusting", "no longer trusting {name}: {fingerprint}",
                             "已不再信任 {name}：{fingerprint}")
TRUSTED_LINE = message("notice.trusted-line", "{name}\t{fingerprint}\tadded {added}",
                       "{name}\t{fingerprint}\t添加于 {added}")
NO_TRUSTED = message("notice.no-trusted", "no trusted issuers yet: add one with `precaution notice trust add`",
                     "尚无可信签发机关：请用 `precaution notice trust add` 添加。")

# --- `precaution baseline`
BASELINE_MISSING_ERR = message("baseline.missing", "no baseline for {scope} yet: run `precaution baseline capture`",
                               "尚无 {scope} 的基线：请运行 `precaution baseline capture`。")
BASELINE_FAILED_ERR = message("baseline.failed-verification", "baseline {scope} failed verification: {reason} "
                              "({path})", "基线 {scope} 未通过校验：{reason}（{path}）")
PROBES_FAILED_ERR = message("baseline.probes-failed", "probe(s) failed, baseline left unchanged: {detail}",
                            "探针运行失败，基线未改动：{detail}")
PROBE_DETAIL = message("baseline.probe-detail", "{probe}: {message}", "{probe}：{message}")
LIMITED_WARNING = message("baseline.limited-warning", "precaution: warning: {probe} limited: {reasons}",
                          "precaution：警告：{probe} 结果受限：{reasons}")
NO_PROBE_RAN_ERR = message("baseline.no-probe-ran", "no probe could run here, baseline left unchanged",
                           "本机没有可运行的探针，基线未改动。")
NETWORK_OPTIONS_ERR = message("baseline.network-options", "{options} go with --network",
                              "{options} 须与 --network 一起使用。")
EXISTING_INVALID_ERR = message("baseline.existing-invalid", "existing baseline {scope} failed verification "
                               "({reason}); check the host, then use --force to replace it",
                               "现有基线 {scope} 未通过校验（{reason}）；请先核查主机，再用 --force 替换。")
EXISTS_ERR = message("baseline.exists", "baseline {scope} exists (version {version}); use `baseline accept` for "
                     "drift or `capture --force` to replace it",
                     "基线 {scope} 已存在（第 {version} 版）；确认偏离请用 `baseline accept`，"
                     "替换请用 `capture --force`。")
CAPTURED = message("baseline.captured", "baseline {scope} version {version} captured: {observations} observations "
                   "from {probes} probe(s), accepted by {by} ({path})",
                   "已采集基线 {scope} 第 {version} 版：{probes} 个探针的 {observations} 项观测，由 {by} 确认"
                   "（{path}）")
NOT_CAPTURED = message("baseline.not-captured", "  not captured: {probe} ({status}: {message})",
                       "  未采集：{probe}（{status}：{message}）")
SHOW_HEAD = message("baseline.show-head", "baseline {scope} version {version} ({action}), signed {key}",
                    "基线 {scope} 第 {version} 版（{action}），签名密钥 {key}")
SHOW_HOST = message("baseline.show-host", "  host: {host}  machine-id: {machine_id}  profile: {profile}  "
                    "tool: {tool}", "  主机：{host}  machine-id：{machine_id}  检查策略：{profile}  工具版本：{tool}")
SHOW_WHO = message("baseline.show-who", "  created {created} by {created_by}; accepted {accepted} by {accepted_by}",
                   "  {created_by} 于 {created} 创建；{accepted_by} 于 {accepted} 确认")
SHOW_NOTE = message("baseline.show-note", "  note: {note}", "  备注：{note}")
SHOW_OBSERVATIONS = message("baseline.show-observations", "  observations: {count}", "  观测项：{count}")
ACTION = {
    "capture": message("baseline-action.capture", "capture", "采集"),
    "accept": message("baseline-action.accept", "accept", "确认偏离"),
}
DIFF_HEAD = message("baseline.diff-head", "baseline {scope} version {version} (accepted {at} by {by}): {added} "
                    "added, {removed} removed, {changed} changed in {probes}",
                    "基线 {scope} 第 {version} 版（{by} 于 {at} 确认）：{probes} 中新增 {added} 项、删除 {removed} 项、"
                    "变更 {changed} 项")
NO_PROBES = message("baseline.no-probes", "no probes", "无探针")
DIFF_MORE = message("baseline.diff-more", "   ... and {count} more", "   …… 另有 {count} 项")
DIFF_IGNORED = message("baseline.diff-ignored", "ignored {count}: {reason}", "已忽略 {count} 项：{reason}")
NO_DRIFT = message("baseline.no-drift", "no drift", "无偏离")
PROBES_NOT_IN_BASELINE_ERR = message("baseline.probes-unknown", "probe(s) not in baseline {scope}: {probes} "
                                     "(baseline has: {known})",
                                     "以下探针不在基线 {scope} 中：{probes}（基线包含：{known}）")
ACCEPT_WHAT_ERR = message("baseline.accept-what", "name the drift items to accept (ids from `baseline diff`) or use "
                          "--all", "请指明要确认的偏离项（`baseline diff` 给出的编号），或使用 --all。")
ACCEPT_BOTH_ERR = message("baseline.accept-both", "give either --all or ids, not both",
                          "--all 与编号只能二选一。")
ACCEPT_UNKNOWN_ERR = message("baseline.accept-unknown", "no current drift item with id {ids} (see `precaution "
                             "baseline diff`)", "当前没有编号为 {ids} 的偏离项（见 `precaution baseline diff`）。")
NOTHING_TO_ACCEPT = message("baseline.nothing-to-accept", "no drift to accept; baseline unchanged",
                            "没有需要确认的偏离；基线未改动。")
ACCEPTED = message("baseline.accepted", "accepted {chosen} of {total} drift item(s) into baseline {scope} version "
                   "{version} (by {by})", "已将 {total} 项偏离中的 {chosen} 项纳入基线 {scope} 第 {version} 版"
                   "（{by} 确认）")
HISTORY_LINE = message("baseline.history-line", "v{version:<4} {at}  {action} by {by}{extra}  {sha}{note}",
                       "第 {version} 版  {at}  {action}（{by}）{extra}  {sha}{note}")
HISTORY_ITEMS = message("baseline.history-items", ", {count} item(s)", "，{count} 项")

# --- `precaution netscan`
NETSCAN_HEAD = message("netscan.head", "netscan  targets: {targets}  scope: {scope}  engine: {engine}  hosts up: {up}",
                       "网络检测  目标：{targets}  范围：{scope}  引擎：{engine}  在线主机：{up}")

# --- `precaution record`
RECORD_INTACT = message("record.intact", "record intact: {entries} entries, chain and signature verified",
                        "检查检测记录完整：共 {entries} 条，哈希链与签名均已核验。")
RECORD_ACKED_EARLIER = message("record.acked-earlier",
                               "record intact: {entries} entries, chain and signature verified; {count} earlier "
                               "problem(s) acknowledged by an operator",
                               "检查检测记录完整：共 {entries} 条，哈希链与签名均已核验；"
                               "此前 {count} 个问题已由操作员确认。")
RECORD_NOTHING_TO_ACK = message("record.nothing-to-ack", "record intact: nothing to acknowledge",
                                "检查检测记录完整，无需确认。")
RECORD_ACK_NEEDS_WHO = message("record.ack-needs-who", "--by and --reason must say who acknowledges and why",
                               "--by 与 --reason 须写明确认人及原因")
RECORD_ACK_WRITTEN = message("record.ack-written", "acknowledged {count} problem(s) as entry {seq} by {by}",
                             "已确认 {count} 个问题（记录第 {seq} 条），确认人：{by}")
RECORD_DAMAGED = message("record.damaged", "precaution: record damaged: {where}: {reason}",
                         "precaution：检查检测记录已损坏：{where}：{reason}")
RECORD_WHERE_ENTRY = message("record.where-entry", "entry {seq}", "第 {seq} 条")
RECORD_WHERE_LINE = message("record.where-line", "entry {seq} (line {line})", "第 {seq} 条（第 {line} 行）")
RECORD_WHERE_FILE = message("record.where-file", "record", "记录文件")
# why the record does not verify (agent.wire.chain reasons, recognised by their first words); the English line
# keeps the exact reason
RECORD_REASON = {
    "truncated or malformed line": message("record-reason.malformed", "{reason}", "该行被截断或格式错误"),
    "bad hash": message("record-reason.bad-hash", "{reason}", "哈希不符（条目写入后被改动）"),
    "reordered or missing entry": message("record-reason.reordered", "{reason}", "条目顺序错乱或有条目缺失"),
    "bad signature": message("record-reason.bad-signature", "{reason}", "签名无效"),
    "broken chain": message("record-reason.broken-chain", "{reason}", "哈希链断裂（与前一条不衔接）"),
    "signed by another key": message("record-reason.other-key", "{reason}", "由其他密钥签名，而非本代理的密钥"),
    "truncated line": message("record-reason.truncated-line", "{reason}", "最后一行被截断（无行尾）"),
    "truncated record": message("record-reason.truncated-record", "{reason}", "记录被截短：末尾条目缺失"),
    "last entry differs": message("record-reason.last-differs", "{reason}", "最后一条与头文件记载的不一致"),
    "record file missing": message("record-reason.file-missing", "{reason}", "记录文件缺失（头文件表明曾写入条目）"),
    "break found and recorded by the agent": message("record-reason.break", "{reason}",
                                                     "代理发现并记录了记录中断（文件被删除、截短或头文件损坏）"),
    "agent key replaced": message("record-reason.key-replaced", "{reason}",
                                  "代理密钥已被替换：此前的条目由已不存在的旧密钥签名"),
    "the head file is damaged": message("record-reason.head-damaged", "{reason}", "头文件已损坏"),
}
RECORD_REASON_OTHER = message("record-reason.other", "{reason}", "记录未通过校验")
RECORD_TITLE = message("record.title", "Inspection record", "检查检测记录")
RECORD_KIND = {
    "scan": message("record-kind.scan", "scan", "自查"),
    "remote": message("record-kind.remote", "remote", "远程检测"),
    "netscan": message("record-kind.netscan", "netscan", "网络检测"),
    "inspection": message("record-kind.inspection", "inspection", "现场检查"),
    "refusal": message("record-kind.refusal", "refusal", "拒绝执行"),
    "notice": message("record-kind.notice", "notice", "通知核验"),
    "acknowledgement": message("record-kind.acknowledgement", "acknowledgement", "确认接收通知"),
    "baseline-capture": message("record-kind.baseline-capture", "baseline-capture", "基线采集"),
    "baseline-accept": message("record-kind.baseline-accept", "baseline-accept", "基线确认"),
    "host-key": message("record-kind.host-key", "host-key", "主机密钥登记"),
    "record-break": message("record-kind.record-break", "record-break", "记录中断"),
    "record-recovery": message("record-kind.record-recovery", "record-recovery", "记录恢复"),
    "record-acknowledgement": message("record-kind.record-acknowledgement", "record-acknowledgement",
                                      "记录问题确认"),
    "agent-key": message("record-kind.agent-key", "agent-key", "代理密钥"),
    "task-failed": message("record-kind.task-failed", "task-failed", "任务失败"),
}
RECORD_HEAD = [
    message("record-head.seq", "seq", "序号"), message("record-head.time", "time ({zone})", "时间（{zone}）"),
    message("record-head.kind", "kind", "类型"), message("record-head.actor", "actor", "执行人"),
    message("record-head.notice", "notice", "通知"), message("record-head.inspectors", "inspectors", "检查人员"),
    message("record-head.tests", "tests", "检测项目"), message("record-head.summary", "summary", "摘要"),
]
# summaries of record entries, per kind
SUMMARY_FINDINGS = message("record-summary.findings", "findings: {counts}", "发现问题：{counts}")
SUMMARY_PROBE_ERRORS = message("record-summary.probe-errors", "probe errors: {count}", "探针错误：{count}")
SUMMARY_BASELINE = message("record-summary.baseline", "baseline: {status}", "基线：{status}")
SUMMARY_HOSTS_UP = message("record-summary.hosts-up", "hosts up: {count}", "在线主机：{count}")
SUMMARY_NETSCAN_FAILED = message("record-summary.netscan-failed", "failed: {tests}", "检测失败：{tests}")
SUMMARY_VALID = message("record-summary.valid", "verdict: valid ({file})", "核验结论：有效（{file}）")
SUMMARY_ACKNOWLEDGED = message("record-summary.acknowledged", "acknowledged at {time}", "确认接收时间：{time}")
SUMMARY_VERSION = message("record-summary.version", "version {version}, {items} item(s)",
                          "第 {version} 版，{items} 项")
SUMMARY_NOTE = message("record-summary.note", "note: {note}", "备注：{note}")
SUMMARY_RECORD_BREAK = message("record-summary.record-break", "{count} problem(s): {message}",
                               "代理发现 {count} 个记录问题，须由操作员核查并确认")
SUMMARY_RECORD_RECOVERY = message("record-summary.record-recovery",
                                  "torn last line ({torn_bytes} bytes) set aside as {set_aside}",
                                  "写入中断的最后一行（{torn_bytes} 字节）已另存为 {set_aside}")
SUMMARY_RECORD_ACK = message("record-summary.record-acknowledgement",
                             "{count} problem(s) acknowledged by {by}: {reason}",
                             "{by} 确认了 {count} 个记录问题：{reason}")
SUMMARY_AGENT_KEY = {
    "created": message("record-summary.agent-key-created", "agent key created ({new})", "已生成代理密钥（{new}）"),
    "replaced": message("record-summary.agent-key-replaced", "agent key replaced: {previous} -> {new}",
                        "代理密钥已替换：{previous} → {new}"),
}
SUMMARY_HOST_KEY = message("record-summary.host-key", "{host}: {key_type} {fingerprint} ({event})",
                           "{host}：{key_type} {fingerprint}（{event}）")
HOST_KEY_EVENT = {
    "accepted-new": message("host-key-event.accepted-new", "accepted new key", "首次登记密钥"),
    "refused-unknown": message("host-key-event.refused-unknown", "refused unknown key", "拒绝未知密钥"),
    "refused-changed": message("host-key-event.refused-changed", "refused changed key", "拒绝已变更的密钥"),
}
SUMMARY_REMOTE_HOST = message("record-summary.remote-host", "{target}: {status}", "{target}：{status}")
REMOTE_STATUS = {
    "ok": message("remote-status.ok", "ok", "完成"),
    "refused": message("remote-status.refused", "refused", "已拒绝"),
    "error": message("remote-status.error", "error", "出错"),
    "stopped": message("remote-status.stopped", "stopped", "已停止"),
    "cancelled": message("remote-status.cancelled", "cancelled", "已取消"),
}
SUMMARY_REFUSAL = message("record-summary.refusal", "{code}: {message}", "{code}")
SUMMARY_TASK_FAILED = message("record-summary.task-failed", "task {task} failed: {reason}",
                              "任务 {task} 失败：{reason}")
SUMMARY_TARGETS = message("record-summary.targets", "targets: {targets}", "目标：{targets}")
# what a refusal code means (the English summary keeps the recorded message)
REFUSAL = {
    "out-of-scope": message("refusal.out-of-scope", "out-of-scope", "超出通知范围"),
    "no-notice": message("refusal.no-notice", "no-notice", "缺少事先通知"),
    "inspectors": message("refusal.inspectors", "inspectors", "检查人员不足两名或未登记"),
    "host-key": message("refusal.host-key", "host-key", "主机密钥未知或已变更"),
    "bad-target": message("refusal.bad-target", "bad-target", "目标无效"),
    "malformed": message("refusal.malformed", "malformed", "通知格式错误"),
    "unsigned": message("refusal.unsigned", "unsigned", "通知未签名"),
    "tampered": message("refusal.tampered", "tampered", "通知签名与内容不符"),
    "untrusted": message("refusal.untrusted", "untrusted", "通知签名密钥不受信任"),
    "future-issued": message("refusal.future-issued", "future-issued", "通知签发时间晚于当前时间"),
    "expired": message("refusal.expired", "expired", "通知已过期"),
    "wrong-subject": message("refusal.wrong-subject", "wrong-subject", "通知对象不是本单位"),
    "not-acknowledged": message("refusal.not-acknowledged", "not-acknowledged", "通知尚未确认接收"),
    "late-delivery": message("refusal.late-delivery", "late-delivery", "通知确认晚于提前通知期"),
    "not-open": message("refusal.not-open", "not-open", "检测时段尚未开始"),
    "no-credentials": message("refusal.no-credentials", "no-credentials", "未配置该目标的 SSH 凭据或受信主机密钥"),
    "not-configured": message("refusal.not-configured", "not-configured", "代理未配置此类检测（agent.toml）"),
    "unsupported-test": message("refusal.unsupported-test", "unsupported-test", "未知的检测方式"),
}
REFUSAL_OTHER = message("refusal.other", "{code}", "拒绝执行（代码 {code}）")

# --- scope guard (netscan, remote): why a target is refused
SCOPE_DENIED = message("scope.denied", "in deny list {net}", "在禁止列表 {net} 中")
SCOPE_OUTSIDE = message("scope.outside", "outside scope", "超出范围")
SCOPE_WINDOW_CLOSED = message("scope.window-closed", "notice window closed at {time}", "通知检测时段已于 {time} 结束")
SCOPE_KIND = message("scope.kind", "test kind {kind!r} not in scope (allowed: {allowed})",
                     "检测方式 {kind} 不在范围内（允许：{allowed}）")
SCOPE_PORTS = message("scope.ports", "ports {ports} not in scope ({scope})", "端口 {ports} 不在范围内（{scope}）")
SCOPE_TOO_MANY = message("scope.too-many", "more than {limit} addresses", "地址数超过 {limit} 个")
NONE_ALLOWED = message("scope.none", "none", "无")
REFUSAL_WHAT = message("scope.refusal-what", "{target} [{addresses}{more}]", "{target}［{addresses}{more}］")
REFUSAL_MORE = message("scope.refusal-more", " (+{count} more)", "（另有 {count} 个）")
REFUSAL_LINE = message("scope.refusal-line", "{what}: {reason}", "{what}：{reason}")
REFUSED_TARGET = message("scope.refused-target", "refused {target}: {reason}", "已拒绝 {target}：{reason}")
REFUSED_NOTHING_APPROVED = message("scope.refused-all", "refused (outside {scope}, nothing approved): {detail}",
                                   "已拒绝（超出{scope}，未批准任何目标）：{detail}")
# {scope} above: what the guard enforces, a notice's scope or (no notice) this run's own --scope
SCOPE_NAME_NOTICE = message("scope.name-notice", "the notified scope", "通知范围")
SCOPE_NAME_RUN = message("scope.name-run", "this run's --scope (default: loopback only)",
                         "本次运行的 --scope 范围（默认仅限回环地址）")
REFUSED_TOO_MANY = message("scope.refused-too-many", "refused {target}: more addresses than the limit {limit} in one "
                           "request", "已拒绝 {target}：单次请求的地址数超过上限 {limit}")
TARGET_TOO_LARGE = message("scope.target-too-large", "target {target} has {size} addresses, more than the limit "
                           "{limit}", "目标 {target} 含 {size} 个地址，超过上限 {limit}")
NEEDS_NOTICE = message(
    "netscan.needs-notice",
    "testing {targets} needs an advance notice (--notice FILE, Art. 25): without one, only loopback and the unit's "
    "own networks ([netscan] own_networks in config.toml) may be tested",
    "检测 {targets} 需要事先通知（--notice FILE，第二十五条）：没有通知时，只能检测本机回环地址和本单位自有网络"
    "（config.toml 中的 `[netscan] own_networks`）。")

# --- refusals under a notice (remote, netscan, inspect)
IN_FILE = message("refusal.in-file", "{path}: {reason}", "{path}：{reason}")
NOTICE_REFUSED = message("refusal.notice", "notice {id}: {reason}{more}", "通知 {id}：{reason}{more}")
MORE_PROBLEMS = message("refusal.more-problems", " (and {count} more problem(s))", "（另有 {count} 个问题）")
KIND_NOT_ALLOWED = message("refusal.kind-not-allowed", "notice {id} does not allow {kind!r} tests (allows: {kinds})",
                           "通知 {id} 不允许“{kind}”检测（允许：{kinds}）")
NOT_NOTIFIED_ENDPOINT = message("refusal.endpoint", "{endpoint} is not a notified SSH endpoint (notice names "
                                "{allowed})", "{endpoint} 不是通知所列的 SSH 端点（通知列出：{allowed}）")
JUMP_OUTSIDE = message("remote.jump-outside", "jump host {host} is outside the notice's scope; nothing was run",
                       "跳板机 {host} 超出通知范围；未执行任何检测。")
PARALLEL_AT_LEAST_ONE = message("remote.parallel", "--parallel must be at least 1", "--parallel 至少为 1。")
HOST_KEY_UNKNOWN = message(
    "remote.host-key-unknown",
    "host key unknown for {host} ({fingerprint}): compare the fingerprint with the host's "
    "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on it), then run again with --accept-new-host-key to "
    "record it",
    "{host} 的主机密钥未知（{fingerprint}）：请在该主机上用 `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` "
    "核对指纹，无误后加 --accept-new-host-key 重新运行以登记该密钥")
HOST_KEY_CHANGED = message(
    "remote.host-key-changed",
    "host key changed for {host} ({fingerprint}, known_hosts has {expected}): always refused; if the host was "
    "reinstalled, check the new key and remove the old line from known_hosts in the state directory",
    "{host} 的主机密钥已变更（{fingerprint}，known_hosts 中为 {expected}）：一律拒绝；如该主机已重装，请核对新密钥，"
    "并从状态目录的 known_hosts 中删除旧记录")
OUTSIDE_NOTICE = message("remote.outside-notice", "outside the notified scope", "超出通知范围")
NOT_STARTED = message("remote.not-started", "not started: the notice window closed", "未开始：通知检测时段已结束")
HOST_HEADING = message("remote.host-heading", "{target} ({address}): {status}", "{target}（{address}）：{status}")
STOPPED_CONNECTING = message("remote.stopped-connecting", "stopped while connecting: {why}", "连接时已停止：{why}")
STOPPED_PARTIAL = message("remote.stopped-partial", "stopped: {why}; results are partial", "已停止：{why}；结果不完整")
WINDOW_CLOSED = message("remote.window-closed", "the notice window closed at {time}", "通知检测时段已于 {time} 结束")
HOST_LIMIT = message("remote.host-limit", "the per-host limit of {limit} passed", "已超过单台主机 {limit} 的时限")
TOO_FEW_INSPECTORS = message("inspect.too-few", "an on-site inspection needs at least {min} inspectors with distinct "
                             "identification (Art. 25 ¶1); got {got} (give --inspector NAME:ID for each)",
                             "现场检查需要至少 {min} 名证件各不相同的检查人员（第二十五条第一款）；实际为 {got} 名"
                             "（请为每人给出 --inspector 姓名:证件号）。")
ROOT_NOT_DIR = message("cli.root-not-dir", "--root {path}: not a directory", "--root {path}：不是目录")
CANNOT_RESOLVE = message("scope.cannot-resolve", "cannot resolve host name {name!r}: {detail}", "无法解析主机名 {name}")
NO_ADDRESS = message("scope.no-address", "host name {name!r} has no IPv4/IPv6 address",
                     "主机名 {name} 没有 IPv4/IPv6 地址")
BAD_NETWORK = message("scope.bad-network", "bad network {text!r}: {detail}", "网络 {text} 无效")
BAD_RANGE = message("scope.bad-range", "bad address range {text!r}: {detail}", "地址范围 {text} 无效")
BAD_RANGE_ORDER = message("scope.bad-range-order", "bad address range {text!r}: start after end or mixed IPv4/IPv6",
                          "地址范围 {text} 无效：起始地址大于结束地址，或混用 IPv4 与 IPv6")
BAD_ADDRESS = message("scope.bad-address", "bad IP address {text!r}", "IP 地址 {text} 无效")
BAD_TARGET = message("scope.bad-target", "bad target {text!r}: not an address, network, range or host name",
                     "目标 {text} 无效：既不是地址、网络、地址范围，也不是主机名")
EMPTY_SCOPE = message("scope.empty", "empty scope: name at least one network, address or host",
                      "范围为空：请至少给出一个网络、地址或主机")
DENY_HOSTNAME = message("scope.deny-hostname", "deny entry {entry!r}: give addresses or networks, not host names",
                        "禁止列表条目 {entry}：请给出地址或网络，而非主机名")
SCOPE_TOO_LARGE = message("scope.too-large", "scope too large: {size} addresses, the limit is {limit}",
                          "范围过大：共 {size} 个地址，上限为 {limit} 个")
NO_TARGETS = message("scope.no-targets", "no targets given", "未给出目标")
# a --config override laxer than the state directory's config.toml (agent.services.context.check_not_weaker)
CONFIG_LAXER = message("config.laxer", "--config {path} is laxer than {base}: {problems} (an override may only be "
                       "stricter)", "--config {path} 比 {base} 宽松：{problems}（覆盖配置只能更严格）")
LAXER_UNIT = message("config.laxer-unit", "[notice] unit {unit!r} is not the configured {configured!r}",
                     "`[notice] unit` 为 {unit}，与已配置的 {configured} 不同")
LAXER_LEAD = message("config.laxer-lead", "[notice] lead_time {lead} is shorter than the configured {configured}",
                     "`[notice] lead_time` 为 {lead}，短于已配置的 {configured}")
LAXER_NETWORKS = message("config.laxer-networks", "[netscan] own_networks adds {networks}",
                         "`[netscan] own_networks` 增加了 {networks}")
LAXER_WAIVER_DAYS = message("config.laxer-waiver-days", "waiver_max_days {days} is more than the configured "
                            "{configured}", "`waiver_max_days` 为 {days}，超过已配置的 {configured}")
INSPECTOR_FORMAT = message("record.inspector-format", "--inspector {text!r}: expected NAME:ID (name and "
                           "identification number)", "--inspector {text}：格式应为 姓名:证件号")
# key files named on the command line (issuer keys, public keys)
KEY_NOT_ED25519 = message("key.not-ed25519", "{path}: not an Ed25519 key", "{path}：不是 Ed25519 密钥")
KEY_CANNOT_LOAD = message("key.cannot-load", "{path}: cannot load {what}: {detail}", "{path}：无法加载密钥文件")
KEY_EXISTS = message("key.exists", "{path} exists; not overwriting a key", "{path} 已存在；不会覆盖已有密钥")
KEY_BAD_PUBLIC = message("key.bad-public", "{detail}", "不是有效的 Ed25519 公钥")
# what the record wrote about itself during a run, said once on stderr (agent.record.WARNINGS)
RECORD_WARNING_BREAK = message(
    "record.warning-break",
    "precaution: warning: inspection record: {problems}; recorded as entry {seq} ({count} problem(s); `precaution "
    "record verify` reports it until an operator acknowledges it with `precaution record acknowledge`)",
    "precaution：警告：检查检测记录发现 {count} 个问题，已记为第 {seq} 条；在操作员用 `precaution record acknowledge` "
    "确认之前，`precaution record verify` 会一直报告。")
RECORD_WARNING_KEY_REPLACED = message(
    "record.warning-key-replaced",
    "precaution: warning: agent.key was missing; a new key was created ({fingerprint}); the change is in the "
    "inspection record and `precaution record verify` reports it until an operator acknowledges it (`precaution "
    "record acknowledge`)",
    "precaution：警告：代理密钥文件缺失，已生成新密钥（{fingerprint}）；此变更已写入检查检测记录，在操作员用 "
    "`precaution record acknowledge` 确认之前，`precaution record verify` 会一直报告。")
INTERRUPTED = message("cli.interrupted", "precaution: interrupted", "precaution：已中断")
INTERNAL_ERROR = message("cli.internal-error", "precaution: internal error: {error} (run with --debug for details)",
                         "precaution：内部错误：{error}（使用 --debug 查看详情）")
NOT_AN_IP = message("netscan.not-an-ip", "{option} {text!r}: not an IP address", "{option} {text}：不是 IP 地址")
SCOPE_WITH_NOTICE = message("netscan.scope-with-notice", "--scope and --notice do not go together: the notice sets "
                            "the scope", "--scope 与 --notice 不能同时使用：范围由通知确定。")
BAD_DURATION = message("netscan.bad-duration", "--duration must be more than 0 and at most {limit:.0f} seconds",
                       "--duration 须大于 0 且不超过 {limit:.0f} 秒")
NOT_A_MAC = message("netscan.not-a-mac", "--gateway {gateway!r}: {mac!r} is not a MAC address (aa:bb:cc:dd:ee:ff)",
                    "--gateway {gateway}：{mac} 不是 MAC 地址（格式 aa:bb:cc:dd:ee:ff）")
PASSIVE_NO_ADDRESS = message("netscan.passive-no-address", "--passive {iface}: the interface has no IP address to "
                             "check against the scope", "--passive {iface}：该接口没有可与范围核对的 IP 地址")
NETSCAN_FAILED_NO_BASELINE = message("netscan.failed-no-baseline", "network scan failed, no baseline captured: "
                                     "{detail}", "网络检测失败，未采集基线：{detail}")
NOTHING_ANSWERED_NO_BASELINE = message(
    "netscan.nothing-answered-no-baseline",
    "no host answered in {targets}: no baseline captured (use --allow-empty if an empty segment is what should be "
    "recorded)", "{targets} 中没有主机应答：未采集基线（如确需记录空网段，请使用 --allow-empty）。")
SERVICES_BOTH = message("baseline.services-both", "give either --services or --no-services, not both",
                        "--services 与 --no-services 只能二选一。")
PROBE_RUN_FAILED = message("probe.run-failed", "probe {probe}: {status}: {reason}", "探针 {probe}：{status}：{reason}")
UNKNOWN_PROBE = message("probe.unknown", "unknown probe {id!r} (see `precaution probe list`)",
                        "未知探针 {id}（见 `precaution probe list`）")
NO_DIRECTORY = message("cli.no-directory", "{option} {path}: directory {parent} does not exist",
                       "{option} {path}：目录 {parent} 不存在")
PROGRESS = message("netscan.progress", "netscan: {text}", "网络检测：{text}")
APPROVING = message("netscan.approving", "approving targets", "正在核准目标")
DISCOVERING = message("netscan.discovering", "discovery of {count} address(es)", "主机发现：{count} 个地址")
PORT_SCANNING = message("netscan.port-scanning", "port scan ({engine}) of {count} host(s)",
                        "端口扫描（{engine}）：{count} 台主机")
SERVICE_CHECKING = message("netscan.service-checking", "service checks on {count} open port(s)",
                           "服务识别：{count} 个开放端口")
LISTENING = message("netscan.listening", "listening on {iface} for {duration}", "在 {iface} 上监听 {duration}")

# --- config files (config.toml, agent.toml): one line per problem, the file and line first
CONFIG_NOT_TOML = message("config.not-toml", "{file}:{line}: not valid TOML: {error}",
                          "{file}:{line}：不是有效的 TOML 格式")
CONFIG_PROBLEM = message("config.problem", "{file}:{line}: {key}: {problem}", "{file}:{line}：配置项 {key}：{problem}")
