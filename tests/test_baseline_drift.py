"""Drift judgement with the default profile: the severities the baselines issue names, grouping, errors."""

from __future__ import annotations

import pytest

from baselines.diff import diff
from baselines.drift import drift_findings, integrity_finding, item_id
from baselines.model import Severity
from baselines.profile import DEFAULT_DRIFT_RULE, ProfileError, load_profile, parse_profile
from probes.observation import Observation

PROFILE = load_profile()
HOST = "h1"


def judge(old, new):
    return drift_findings(diff(old, new, PROFILE.ignore), PROFILE.drift, HOST)


def one(old, new):
    (d,) = judge(old, new)
    return d.finding


def account(name, uid, **kw):
    attrs = {"name": name, "uid": uid, "gid": uid, "shell": "/bin/bash", "login_shell": True,
             "admin_groups": (), "last_change_days": 19000, **kw}
    return Observation("accounts", name, attrs)


def fim(path, **kw):
    attrs = {"type": "file", "sha256": "a" * 64, "mode": 0o755, "uid": 0, "gid": 0, "size": 10, "inode": 5,
             "mtime_ns": 1, "ctime_ns": 1, "target": None, "setuid": False, "setgid": False, "immutable": False,
             "package": "coreutils", "package_version": "9.1", "package_match": True, **kw}
    return Observation("files", path, attrs, frozenset())


def test_new_uid0_account_is_critical_and_new_login_account_high():
    f = one([], [account("mallory", 0)])
    assert (f.severity, f.rule_id, f.kind) == (Severity.CRITICAL, "PC-DRIFT-ACC-001", "drift")
    assert f.title.en == "New account mallory with uid 0 (root privileges)"
    assert f.remediation.command == "usermod -L -e 1 mallory"
    assert f.id == item_id(HOST, diff([], [account("mallory", 0)]).added[0])
    assert one([], [account("bob", 1001)]).severity is Severity.HIGH
    assert one([], [account("svc", 998, login_shell=False, shell="/usr/sbin/nologin")]).severity is Severity.MEDIUM
    assert one([account("bob", 1001)], []).severity is Severity.LOW
    assert one([account("bob", 1001)], [account("bob", 0)]).rule_id == "PC-DRIFT-ACC-002"


def test_password_ageing_is_ignored_by_the_default_profile():
    result = diff([account("bob", 1001)], [account("bob", 1001, last_change_days=19500)], PROFILE.ignore)
    assert result.empty and sum(result.ignored.values()) == 1


def test_new_listener_high_restart_not_drift():
    def lst(port, pid, loopback=False):
        return Observation("listeners", f"tcp|0.0.0.0|{port}", {"proto": "tcp", "address": "0.0.0.0", "port": port,
                                                                "process": "nc", "exe": "/usr/bin/nc", "pid": pid,
                                                                "loopback": loopback}, frozenset({"pid"}))
    f = one([], [lst(4444, 1)])
    assert f.severity is Severity.HIGH and "tcp dport 4444" in (f.remediation.command or "")
    assert judge([lst(4444, 1)], [lst(4444, 2)]) == []
    assert one([lst(4444, 1)], []).severity is Severity.LOW
    assert one([lst(4444, 1)], []).evidence["old"]["process"] == "nc"  # the removed side names what it was


def test_usb_storage_high():
    stick = Observation("usb", "0781:5581:X", {"vendor_id": "0781", "product_id": "5581", "mass_storage": True,
                                               "wireless": False, "bus_path": "1-2"})
    assert one([], [stick]).severity is Severity.HIGH
    moved = Observation("usb", "0781:5581:X", {**stick.attrs, "bus_path": "1-3"})
    assert judge([stick], [moved]) == []  # another port: ignored with a reason


def test_file_integrity_rules():
    # package update: low, one finding per package however many files
    old = [fim(f"/usr/bin/t{i}") for i in range(5)]
    new = [fim(f"/usr/bin/t{i}", sha256="b" * 64, package_version="9.2") for i in range(5)]
    (d,) = judge(old, new)
    assert (d.finding.severity, d.finding.subject, len(d.items)) == (Severity.LOW, "package=coreutils", 5)
    assert d.finding.evidence["count"] == 5 and "5 files" in d.finding.title.en
    # content differs from the package under /usr/bin: critical tampering; not owned: critical too
    assert one([fim("/usr/bin/ls")], [fim("/usr/bin/ls", sha256="c" * 64, package_match=False)]).severity \
        is Severity.CRITICAL
    assert one([fim("/sbin/x", package=None, package_match=None)],
               [fim("/sbin/x", package=None, package_match=None, ctime_ns=9, sha256="e" * 64)]).severity \
        is Severity.CRITICAL
    # new setuid file; setuid bit set on an existing one
    assert one([], [fim("/tmp/sh", setuid=True, package=None, package_match=None)]).severity is Severity.CRITICAL
    assert one([fim("/usr/bin/vim")], [fim("/usr/bin/vim", setuid=True)]).rule_id == "PC-DRIFT-FIM-008"
    # a sudo update keeps setuid: a package update, not a new setuid program
    assert one([fim("/usr/bin/sudo", setuid=True)],
               [fim("/usr/bin/sudo", setuid=True, sha256="d" * 64, package_version="9.2")]).severity is Severity.LOW
    # mode or owner change: high
    f = one([fim("/etc/shadow", package=None, package_match=None)],
            [fim("/etc/shadow", package=None, package_match=None, mode=0o644)])
    assert f.severity is Severity.HIGH and "mode: 493 -> 420" in f.remediation.steps.en


ACCOUNT_FILES = ("/etc/passwd", "/etc/passwd-", "/etc/shadow", "/etc/shadow-", "/etc/group", "/etc/group-",
                 "/etc/gshadow", "/etc/gshadow-", "/etc/subuid", "/etc/subuid-", "/etc/subgid", "/etc/subgid-")


def test_rewrite_with_identical_content_is_no_finding():
    """useradd + userdel rewrite the account files: same content, mode, owner and type, new inode and times.
    That is no drift finding; the diff counts the items under their reason, so they stay visible."""
    def acct(path, **kw):
        return fim(path, **{"package": None, "package_version": None, "package_match": None, "mode": 0o640, **kw})
    old = [acct(p) for p in ACCOUNT_FILES]
    new = [acct(p, inode=77, mtime_ns=2, ctime_ns=2) for p in ACCOUNT_FILES]
    result = diff(old, new, PROFILE.ignore)
    assert result.empty
    (reason,) = result.ignored
    assert reason.startswith("rewritten, content unchanged") and result.ignored[reason] == 12
    assert judge(old, new) == []
    # a system binary put back with its own content is no tampering either
    assert judge([fim("/usr/bin/ls", package_match=None)], [fim("/usr/bin/ls", package_match=None, inode=9)]) == []
    # anything beyond inode and times keeps its rule, and the item keeps every changed attribute
    f = one([acct("/etc/passwd")], [acct("/etc/passwd", inode=9, sha256="f" * 64, size=11)])
    assert f.severity is Severity.MEDIUM and {c["name"] for c in f.evidence["changes"]} == {"inode", "sha256", "size"}
    assert one([acct("/etc/shadow")], [acct("/etc/shadow", inode=9, mode=0o644)]).severity is Severity.HIGH
    assert one([acct("/etc/group")], [acct("/etc/group", inode=9, uid=1000)]).severity is Severity.HIGH
    assert one([acct("/etc/group")], [acct("/etc/group", inode=9, type="symlink", target="/tmp/g")]).severity \
        is Severity.MEDIUM
    assert one([fim("/usr/bin/ls", package_match=None)],
               [fim("/usr/bin/ls", package_match=None, inode=9, sha256="0" * 64)]).severity is Severity.CRITICAL


def test_restored_to_packaged_content_is_not_called_an_update():
    old = [fim("/etc/ssh/ssh_config", package="openssh-client", sha256="1" * 64, package_match=False, conffile=True)]
    new = [fim("/etc/ssh/ssh_config", package="openssh-client", package_match=True, conffile=True)]
    f = one(old, new)
    assert (f.severity, f.rule_id, f.subject) == (Severity.LOW, "PC-DRIFT-FIM-009", "package=openssh-client")
    assert "restored to the packaged content" in f.title.en and "updated" not in f.title.en
    assert "恢复为软件包原始内容" in f.title.zh and "已更新" not in f.title.zh
    upgraded = [fim("/etc/ssh/ssh_config", package="openssh-client", sha256="2" * 64, package_version="9.3",
                    conffile=True)]
    assert one(new, upgraded).title.en.startswith("Package openssh-client updated")


def proc_identity(exe, comm, uid=0, unit="", role="", pid=100, count=1):
    attrs = {"exe": exe, "comm": comm, "uid": uid, "unit": unit, "role": role, "pid": pid, "count": count}
    return Observation("processes", f"{exe}|{comm}|{uid}|{unit}|{role}", attrs, frozenset({"pid", "count"}))


def test_long_lived_process_identities():
    base = [proc_identity("/usr/sbin/sshd", "sshd", unit="ssh.service", role="listener")]
    # restarted or more workers: the same identity, not drift
    assert judge(base, [proc_identity("/usr/sbin/sshd", "sshd", unit="ssh.service", role="listener", pid=9,
                                      count=4)]) == []
    f = one(base, [*base, proc_identity("/opt/x/agent", "agent", uid=1000)])
    assert (f.severity, f.rule_id) == (Severity.MEDIUM, "PC-DRIFT-PROC-001")
    assert f.title.en == "New long-lived process agent (/opt/x/agent, uid 1000)"
    assert f.title.zh == "新增长期运行进程 agent（/opt/x/agent，uid 1000）"
    gone = one(base, [])
    assert (gone.severity, gone.rule_id) == (Severity.LOW, "PC-DRIFT-PROC-002")


def test_network_and_package_rules():
    assert one([], [Observation("hosts", "10.231.0.9", {"mac": "aa"})]).severity is Severity.HIGH
    assert one([Observation("hosts", "10.231.0.9", {"mac": "aa"})], []).severity is Severity.LOW
    assert one([], [Observation("ports", "10.231.0.9|tcp|23", {"service": "telnet"})]).severity is Severity.HIGH
    assert one([Observation("ports", "p", {"version": "1"})], [Observation("ports", "p", {"version": "2"})]).severity \
        is Severity.MEDIUM
    assert one([Observation("packages", "nc", {"name": "nc", "version": "1"})], []).severity is Severity.LOW
    unknown = one([], [Observation("newprobe", "x", {"a": 1})])
    assert unknown.rule_id == "PC-DRIFT-999" and unknown.severity is Severity.MEDIUM


def test_builtin_default_when_profile_has_no_drift_rules():
    bare = parse_profile("profile: {id: t, title: {en: t, zh-CN: t}}\nrules: []\n")
    (d,) = drift_findings(diff([], [Observation("x", "s", {})]), bare.drift, HOST)
    assert d.finding.rule_id == DEFAULT_DRIFT_RULE.id == "PC-DRIFT-000"
    assert d.finding.severity is DEFAULT_DRIFT_RULE.severity


def test_integrity_finding_is_critical():
    f = integrity_finding(HOST, "host/local", "/x/current.jsonl", "signature does not verify")
    assert (f.severity, f.rule_id, f.kind) == (Severity.CRITICAL, "PC-BASE-001", "integrity")
    assert "/x/current.jsonl" in f.remediation.steps.en


@pytest.mark.parametrize(("text", "where"), [
    ("drift:\n  - {id: PC-D-1, severity: bad, title: {en: t, zh-CN: t}, "
     "remediation: {action: investigate, en: x, zh-CN: x}}\n", "p.yaml:3: drift.rule PC-D-1.severity"),
    ("drift:\n  - {id: PC-D-1, severity: low, where: {uid: {bogus: 1}}, title: {en: t, zh-CN: t}, "
     "remediation: {action: investigate, en: x, zh-CN: x}}\n", "drift rule PC-D-1: unknown operator"),
    ("ignore:\n  - {probe: files}\n", "reason"),
    ("ignore:\n  - {probe: files, subject_regex: '(', reason: broken}\n", "bad regular expression"),
    ("drift:\n  - {id: PC-D-1, change: moved, severity: low, title: {en: t, zh-CN: t}, "
     "remediation: {action: investigate, en: x, zh-CN: x}}\n", "change"),
])
def test_profile_errors_name_file_line_and_reason(text, where):
    with pytest.raises(ProfileError) as exc:
        parse_profile("profile: {id: t, title: {en: t, zh-CN: t}}\n" + text + "rules: []\n", "p.yaml")
    assert "p.yaml:" in str(exc.value) and where in str(exc.value)


def test_directory_times_are_ignored_but_its_mode_is_not():
    d_old = fim("/usr/bin", type="dir", sha256=None, package="", package_match=None)
    d_new = fim("/usr/bin", type="dir", sha256=None, package="", package_match=None, mtime_ns=7, ctime_ns=7, size=99)
    result = diff([d_old], [d_new], PROFILE.ignore)
    assert result.empty and len(result.ignored) == 1
    d_mode = fim("/usr/bin", type="dir", sha256=None, package="", package_match=None, mtime_ns=7, mode=0o777)
    f = one([d_old], [d_mode])
    assert f.severity is Severity.HIGH and [c["name"] for c in f.evidence["changes"]] == ["mode"]
