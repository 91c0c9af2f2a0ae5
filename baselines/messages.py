"""Drift and waiver wording in the message catalogue (probes.i18n); rule texts themselves are in the profile."""

from __future__ import annotations

from probes.i18n import message

# what happened to an observed subject since the accepted baseline ({change} in drift titles)
CHANGE = {
    "added": message("drift.added", "added", "新增"),
    "removed": message("drift.removed", "removed", "已删除"),
    "changed": message("drift.changed", "changed", "已变更"),
}
ABSENT = message("drift.absent", "(absent)", "（无）")
ATTR_CHANGE = message("drift.attr-change", "{name}: {old} -> {new}", "{name}：{old} → {new}")
WAS = message("drift.was", "was: {values}", "原为：{values}")
TRUE = message("value.true", "True", "是")
FALSE = message("value.false", "False", "否")

# why a saved baseline is not trusted (BaselineInvalid.reason); the English line carries the detail
INVALID = {
    "unsigned": message("baseline-invalid.unsigned", "{detail}", "基线被截断或未签名"),
    "altered": message("baseline-invalid.altered", "{detail}", "签名后内容被改动（摘要不符）"),
    "bad-signature": message("baseline-invalid.bad-signature", "{detail}", "签名校验失败"),
    "foreign-key": message("baseline-invalid.foreign-key", "{detail}", "由其他密钥签名，而非本代理的密钥"),
    "corrupt": message("baseline-invalid.corrupt", "{detail}", "基线文件已损坏"),
    "foreign-host": message("baseline-invalid.foreign-host", "{detail}", "基线来自其他主机"),
    "wrong-scope": message("baseline-invalid.wrong-scope", "{detail}", "基线的范围与本次检查不符"),
    "rolled-back": message("baseline-invalid.rolled-back", "{detail}", "基线被回退到旧版本，或其历史版本缺失"),
    "unreadable": message("baseline-invalid.unreadable", "{detail}", "基线文件不可读"),
    "old-format": message("baseline-invalid.old-format", "{detail}",
                          "基线为旧格式：请使用 `precaution baseline capture --force` 重新采集"),
    "missing": message("baseline-invalid.missing", "{detail}",
                       "当前基线已被删除，但检查记录或历史版本表明曾接受过基线"),
}

# waivers
WAIVED = message("waiver.applied", "{justification} (until {until})", "{justification}（有效期至 {until}）")
