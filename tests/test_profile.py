from __future__ import annotations

import textwrap

import pytest

from baselines.evaluate import evaluate
from baselines.model import ActionKind, Severity, finding_id
from baselines.profile import ProfileError, load_profile, parse_profile
from probes.observation import Observation

HEADER = """\
profile:
  id: t
  title: {en: Test, zh-CN: 测试}
rules:
"""

RULE = """\
  - id: T-ACC-001
    title: {en: Extra uid 0, zh-CN: 额外的 uid 0 账户}
    severity: critical
    probe: accounts
    forbid: {uid: 0, name: {ne: root}}
    rationale: {en: Only root may have uid 0., zh-CN: 只有 root 可以使用 uid 0。}
    remediation:
      action: stop_use
      en: Lock account {name}.
      zh-CN: 锁定账户 {name}。
      command: usermod -L {name}
    references: ["Art. 10(3)"]
"""


def profile(extra: str = ""):
    return parse_profile(HEADER + RULE + extra, "t.yaml")


def test_default_profile_loads_and_is_big_enough():
    prof = load_profile()
    assert prof.id == "default"
    ids = [r.id for r in prof.rules]
    assert len(ids) == len(set(ids))
    for rule in prof.rules:
        assert rule.title.en and rule.title.zh and rule.remediation.steps.zh and rule.references


def test_forbid_rule_gives_finding_with_filled_remediation():
    prof = profile()
    observations = [
        Observation("accounts", "root", {"name": "root", "uid": 0}),
        Observation("accounts", "toor", {"name": "toor", "uid": 0}),
    ]
    ev = evaluate(prof, observations, "h1", {"accounts"})
    assert [f.subject for f in ev.findings] == ["toor"]
    f = ev.findings[0]
    assert f.severity is Severity.CRITICAL and f.remediation.action is ActionKind.STOP_USE
    assert f.remediation.command == "usermod -L toor"
    assert f.remediation.steps.zh == "锁定账户 toor。"
    assert f.id == finding_id("h1", "accounts", "toor", "T-ACC-001")


def test_rules_of_probes_that_did_not_run_are_unevaluated():
    ev = evaluate(profile(), [], "h1", set())
    assert ev.findings == () and ev.unevaluated_rules == ("T-ACC-001",)


def test_expect_and_require_modes():
    extra = textwrap.dedent("""\
      - id: T-KRN-001
        title: {en: fwd, zh-CN: 转发}
        severity: medium
        probe: sysctl
        subject: net.ipv4.ip_forward
        expect: {value: 0}
        missing: fail
        rationale: {en: r, zh-CN: 理由}
        remediation: {action: reconfigure, en: "sysctl -w {subject}=0", zh-CN: 设置为 0}
        references: ["Art. 10(3)"]
      - id: T-FW-001
        title: {en: fw, zh-CN: 防火墙}
        severity: high
        probe: firewall
        require: {rules: {gt: 0}}
        rationale: {en: r, zh-CN: 理由}
        remediation: {action: block, en: add rules, zh-CN: 添加规则}
        references: ["Art. 10(3)"]
    """)
    extra = textwrap.indent(extra, "  ")
    prof = profile(extra)
    fwd_on = [Observation("sysctl", "net.ipv4.ip_forward", {"value": 1})]
    ev = evaluate(prof, fwd_on, "h", {"sysctl", "firewall"})
    got = sorted((f.rule_id, f.subject) for f in ev.findings)
    assert got == [("T-FW-001", ""), ("T-KRN-001", "net.ipv4.ip_forward")]
    ev = evaluate(prof, [], "h", {"sysctl"})
    assert [(f.rule_id, f.evidence) for f in ev.findings] == [("T-KRN-001", {"observed": "none"})]
    ok = [Observation("sysctl", "net.ipv4.ip_forward", {"value": 0}), Observation("firewall", "c", {"rules": 3})]
    assert evaluate(prof, ok, "h", {"sysctl", "firewall"}).findings == ()


def test_errors_name_file_line_and_reason():
    bad = RULE.replace("severity: critical", "severity: urgent")
    with pytest.raises(ProfileError) as exc:
        parse_profile(HEADER + bad, "bad.yaml")
    msg = str(exc.value)
    assert msg.startswith("bad.yaml:7: rules.rule T-ACC-001.severity:"), msg
    assert "unknown severity" in msg


def test_every_bad_field_is_listed():
    bad = RULE.replace("severity: critical", "severity: urgent").replace("action: stop_use", "action: nuke")
    with pytest.raises(ProfileError) as exc:
        parse_profile(HEADER + bad, "bad.yaml")
    lines = str(exc.value).splitlines()
    assert len(lines) == 2
    assert any(":7:" in line and "severity" in line for line in lines)
    assert any(":12:" in line and "action" in line for line in lines)


def test_bad_condition_names_its_line():
    bad = RULE.replace("forbid: {uid: 0, name: {ne: root}}", "forbid:\n      uid: {around: 0}")
    with pytest.raises(ProfileError, match=r"bad.yaml:10: rule T-ACC-001: unknown operator 'around'"):
        parse_profile(HEADER + bad, "bad.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profile: [", "not valid YAML"),
        ("- 1\n", "a profile is a mapping"),
        (HEADER + RULE + RULE, "duplicate rule id"),
        (HEADER + RULE.replace("    forbid:", "    where: {uid: 0}\n    forbid:"),
         "'where' and 'subject' go with 'expect'"),
        (HEADER + RULE.replace("    forbid: {uid: 0, name: {ne: root}}\n", ""), "exactly one of"),
        (HEADER + RULE.replace("zh-CN: 锁定账户 {name}。", "zh: x"), "zh-CN"),
    ],
)
def test_malformed_profiles(text, message):
    with pytest.raises(ProfileError, match=message):
        parse_profile(text, "x.yaml")


def test_missing_profile_file(tmp_path):
    with pytest.raises(ProfileError, match="profile file not found"):
        load_profile(tmp_path / "nope.yaml")


def test_unknown_values_in_commands_show_as_placeholders():
    prof = profile()
    [f] = evaluate(prof, [Observation("accounts", "x", {"name": None, "uid": 0})], "h", {"accounts"}).findings
    assert f.remediation.command == "usermod -L <name>"
