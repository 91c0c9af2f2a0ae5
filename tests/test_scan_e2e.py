"""End to end: the scan finds what an intruder leaves on this real machine, and goes quiet once it is gone.

- a second uid-0 account (``toor``), in a throw-away root holding copies of this host's passwd/shadow/group;
- a TCP listener on a loopback port, forbidden by a rule of a test profile (the default profile only forbids
  wildcard telnet-like ports, which a test must not open);
- a process running a program copied into a directory under /tmp;
- a cron job in the throw-away root's /etc/cron.d running a program from /tmp.

Files come from the throw-away root, /proc and /sys from the live kernel: ``LocalTransport(root=..., proc_root=
"/proc", sys_root="/sys")``. (``precaution scan --root DIR`` re-roots /proc too, so live processes and sockets
cannot be seen through it; this test therefore builds the transport and calls run_scan itself.)
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from agent.scan import ScanResult, run_scan, select_probes
from baselines.model import Finding
from baselines.profile import Profile, default_profile_path, load_profile
from probes.transport import LocalTransport
from tests.spawn import spawn

PROBES = ["accounts", "listeners", "processes", "cron", "startup_files", "systemd_units"]
ACC_RULE = "PC-ACC-001"  # uid 0 other than root (accounts probe)
PROC_RULE = "PC-PROC-006"  # process runs from a temporary directory (processes probe, exe_dir)
CRON_RULE = "PC-PERS-003"  # scheduled job runs a program from a temporary directory
PORT_RULE = "T-E2E-LISTEN"


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "shadow", "group"):
        shutil.copy2(f"/etc/{name}", root / "etc" / name)
    return root


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


@pytest.fixture
def tmp_program(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """/bin/sleep copied under /tmp (pytest's tmp_path lives there) and running."""
    workdir = tmp_path / "drop"
    workdir.mkdir()
    assert str(workdir).startswith("/tmp/")
    exe = workdir / "e2e-sleeper"
    shutil.copy2("/bin/sleep", exe)
    proc = spawn([str(exe), "300"])
    yield proc
    proc.kill()
    proc.wait()


def profile_with_port_rule(tmp_path: Path, port: int) -> Profile:
    """The default profile plus one rule forbidding exactly the test's loopback port."""
    doc = yaml.safe_load(default_profile_path().read_text(encoding="utf-8"))
    doc["rules"].append({
        "id": PORT_RULE,
        "title": {"en": "Test listener on a forbidden port", "zh-CN": "测试用禁用端口上的监听"},
        "severity": "high",
        "probe": "listeners",
        "forbid": {"proto": "tcp", "port": port},
        "rationale": {"en": "Test rule.", "zh-CN": "测试规则。"},
        "remediation": {"action": "block", "en": "Stop {process} listening on port {port}.",
                        "zh-CN": "停止在端口 {port} 上监听的 {process}。",
                        "command": "nft add rule inet filter input tcp dport {port} drop"},
        "references": ["Art. 26"],
    })
    path = tmp_path / "e2e-profile.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_profile(path)


def scan(root: Path, profile: Profile) -> ScanResult:
    transport = LocalTransport(root=str(root), proc_root="/proc", sys_root="/sys")
    result = run_scan(transport, profile, probes=select_probes(PROBES))
    assert not result.probe_errors, [(r.probe, r.message) for r in result.probe_errors]
    return result


def find(result: ScanResult, rule: str, pattern: str) -> list[Finding]:
    return [f for f in result.findings if f.rule_id == rule and re.search(pattern, f.subject)]


def assert_bilingual(f: Finding) -> None:
    assert f.remediation.steps.en and re.search(r"[\u4e00-\u9fff]", f.remediation.steps.zh)
    assert f.title.en and re.search(r"[\u4e00-\u9fff]", f.title.zh)
    assert "{" not in f.remediation.steps.en + f.remediation.steps.zh


def test_scan_finds_each_intrusion_then_stays_quiet(fake_root: Path, tmp_path: Path, listener: socket.socket,
                                                     tmp_program: subprocess.Popen[bytes]):
    port = listener.getsockname()[1]
    profile = profile_with_port_rule(tmp_path, port)
    with open(fake_root / "etc/passwd", "a") as fh:
        fh.write("toor:x:0:0::/root:/bin/bash\n")
    cron_job = fake_root / "etc/cron.d/e2e-update"
    cron_job.parent.mkdir()
    cron_job.write_text("*/5 * * * * root /tmp/.e2e/update >/dev/null 2>&1\n")
    exe = str(Path(tmp_program.args[0]))  # type: ignore[index]

    result = scan(fake_root, profile)

    (acc,) = find(result, ACC_RULE, r"^toor$")
    assert acc.severity.value == "critical" and "toor" in acc.remediation.steps.en
    assert acc.remediation.command == "usermod -L toor"
    (lis,) = find(result, PORT_RULE, rf"^tcp\|127\.0\.0\.1\|{port}$")
    assert lis.evidence["process"].startswith(("python", "pytest")) and lis.remediation.command.endswith(
        f"dport {port} drop")
    procs = [f for f in result.findings if f.rule_id == PROC_RULE and f.evidence.get("exe") == exe]
    assert len(procs) == 1, [(f.rule_id, f.subject) for f in result.findings]
    (cron,) = find(result, CRON_RULE, r"^/etc/cron\.d/e2e-update\|root\|")
    assert cron.evidence["command"] == "/tmp/.e2e/update >/dev/null 2>&1"
    assert cron.remediation.command == "sed -i '1s/^/# disabled by precaution: /' /etc/cron.d/e2e-update"
    for f in (acc, lis, procs[0], cron):
        assert_bilingual(f)

    # Take each away: the account, the listener, the process, the job.
    passwd = fake_root / "etc/passwd"
    passwd.write_text("".join(line for line in passwd.read_text().splitlines(keepends=True)
                              if not line.startswith("toor:")))
    listener.close()
    tmp_program.kill()
    tmp_program.wait()
    cron_job.unlink()

    result = scan(fake_root, profile)
    assert find(result, ACC_RULE, r".") == []  # the copy of this host's passwd has no second uid 0
    assert find(result, PORT_RULE, r".") == []
    assert [f for f in result.findings if f.rule_id == PROC_RULE and f.evidence.get("exe") == exe] == []
    assert find(result, CRON_RULE, r".") == []
