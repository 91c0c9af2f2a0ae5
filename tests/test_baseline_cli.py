"""End to end through the real console script on a fixture root: capture, drift, tampering, accept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PRECAUTION = str(Path(sys.executable).parent / "precaution")
MACHINE_ID = "0123456789abcdef0123456789abcdef"


def run(*args: str, check: int | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([PRECAUTION, *args], capture_output=True, text=True, timeout=120, check=False)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "proc/sys/kernel").mkdir(parents=True)
    (r / "proc/sys/net/ipv4").mkdir(parents=True)
    (r / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n")
    (r / "etc/group").write_text("root:x:0:\nalice:x:1000:\n")
    (r / "etc/machine-id").write_text(MACHINE_ID + "\n")
    (r / "proc/sys/kernel/hostname").write_text("fixturehost\n")
    (r / "proc/sys/net/ipv4/ip_forward").write_text("0\n")
    return r


def base_args(root: Path) -> list[str]:
    return ["--root", str(root)]


def capture(root: Path, *extra: str, check: int = 0) -> subprocess.CompletedProcess[str]:
    return run("baseline", "capture", *base_args(root), "--probe", "accounts", "--probe", "sysctl", *extra,
               check=check)


def current_file(state: Path) -> Path:
    (path,) = (state / "baselines" / "host").glob("root-*/current.jsonl")
    return path


def diff_json(root: Path, code: int) -> dict:
    return json.loads(run("baseline", "diff", *base_args(root), "--json", check=code).stdout)


def test_capture_drift_scan_accept_history(root: Path, _isolated_state: Path) -> None:
    out = capture(root, "--by", "alice", "--note", "commissioning").stdout
    assert "version 1 captured: 3 observations from 2 probe(s), accepted by alice" in out
    shown = json.loads(run("baseline", "show", *base_args(root), "--json", check=0).stdout)
    assert shown["counts"] == {"accounts": 2, "sysctl": 1}
    assert shown["meta"]["machine_id"] == MACHINE_ID and shown["meta"]["created_by"] == "alice"
    assert run("baseline", "diff", *base_args(root), check=0).stdout.strip().endswith("no drift")
    assert "exists (version 1)" in capture(root, check=2).stderr  # never silently replaced

    # drift: a new uid-0 account and a kernel setting
    with (root / "etc/passwd").open("a") as fh:
        fh.write("mallory:x:0:0::/root:/bin/bash\n")
    (root / "proc/sys/net/ipv4/ip_forward").write_text("1\n")
    data = diff_json(root, 1)
    assert data["diff"]["counts"] == {"added": 1, "removed": 0, "changed": 1}
    (changed,) = data["diff"]["changed"]
    assert changed["changes"] == [{"name": "value", "old": 0, "new": 1}]
    sev = {f["subject"]: (f["severity"], f["rule_id"]) for f in data["findings"]}
    assert sev == {"mallory": ("critical", "PC-DRIFT-ACC-001"), "net.ipv4.ip_forward": ("medium", "PC-DRIFT-CFG-001")}
    table = run("baseline", "diff", *base_args(root), check=1).stdout
    assert "+ accounts mallory" in table and "~ sysctl net.ipv4.ip_forward" in table and "value: 0 -> 1" in table

    # scan joins drift findings with rule findings and fails on the critical one
    scan = run("scan", *base_args(root), "--probe", "accounts", "--probe", "sysctl", "--json", check=1)
    report = json.loads(scan.stdout)
    assert report["baseline"]["status"] == "compared" and report["baseline"]["drift"]["added"] == 1
    drift = [f for f in report["findings"] if f["kind"] == "drift"]
    assert {f["subject"] for f in drift} == {"mallory", "net.ipv4.ip_forward"}
    assert run("scan", *base_args(root), "--probe", "accounts", "--no-baseline", "--json").stdout.count(
        '"kind": "drift"') == 0

    # accept one item by id, then the rest; history keeps every version with who accepted what
    sysctl_id = next(f["id"] for f in data["findings"] if f["subject"] == "net.ipv4.ip_forward")
    assert "accepted 1 of 2" in run("baseline", "accept", *base_args(root), sysctl_id, "--by", "bob", check=0).stdout
    assert diff_json(root, 1)["diff"]["counts"] == {"added": 1, "removed": 0, "changed": 0}
    assert "no current drift item" in run("baseline", "accept", *base_args(root), "ffffffffffffffff", check=2).stderr
    run("baseline", "accept", *base_args(root), "--all", "--by", "carol", "--note", "mallory is the new admin",
        check=0)
    assert diff_json(root, 0)["diff"]["counts"] == {"added": 0, "removed": 0, "changed": 0}
    history = json.loads(run("baseline", "history", *base_args(root), "--json", check=0).stdout)
    assert [(h["version"], h["action"], h["accepted_by"], h["accepted_items"]) for h in history] == [
        (1, "capture", "alice", 0), (2, "accept", "bob", 1), (3, "accept", "carol", 1)]
    assert history[2]["created_by"] == "alice" and history[2]["parent_sha256"]
    report = json.loads(run("scan", *base_args(root), "--probe", "accounts", "--probe", "sysctl", "--json").stdout)
    assert report["baseline"]["version"] == 3 and not [f for f in report["findings"] if f["kind"] == "drift"]

    # the inspection record holds every capture, acceptance and scan, and its chain verifies
    from agent import record

    entries = record.read_entries(_isolated_state / record.RECORD_FILE)
    accepts = [(e.kind, e.actor, e.summary["version"]) for e in entries if e.kind.startswith("baseline")]
    assert accepts == [("baseline-capture", "alice", 1), ("baseline-accept", "bob", 2), ("baseline-accept", "carol", 3)]
    scans = [e for e in entries if e.kind == "scan"]
    assert len(scans) == 3 and scans[-1].summary["baseline"] == "compared"
    assert run("record", "verify", check=0).returncode == 0


def test_tampered_truncated_unsigned_rolled_back_foreign_baselines_are_refused(root: Path,
                                                                                _isolated_state: Path) -> None:
    capture(root)
    with (root / "etc/passwd").open("a") as fh:
        fh.write("bob:x:1001:1001::/home/bob:/bin/bash\n")
    run("baseline", "accept", *base_args(root), "--all", check=0)
    path = current_file(_isolated_state)
    good = path.read_bytes()

    def refused(reason: str) -> None:
        proc = run("baseline", "diff", *base_args(root), check=2)
        assert reason in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr  # one clear line
        scan = run("scan", *base_args(root), "--probe", "accounts", "--json", check=1)
        report = json.loads(scan.stdout)
        (finding,) = [f for f in report["findings"] if f["rule_id"] == "PC-BASE-001"]
        assert finding["severity"] == "critical" and finding["kind"] == "integrity"
        assert report["baseline"]["status"] == "invalid"
        assert not [f for f in report["findings"] if f["kind"] == "drift"]  # never silently used
        path.write_bytes(good)
        run("baseline", "diff", *base_args(root), check=0)

    one_byte = bytearray(good)
    one_byte[good.index(b"alice")] = ord("A")
    path.write_bytes(bytes(one_byte))
    refused("content altered after signing")
    path.write_bytes(good[: len(good) // 2])
    refused("truncated or unsigned")
    path.write_bytes(good[: good.rindex(b"\n", 0, len(good) - 1) + 1])  # signature line removed
    refused("truncated or unsigned")
    (v1,) = path.parent.glob("history/v000001-*.jsonl")
    path.write_bytes(v1.read_bytes())  # an older, validly signed version put back
    refused("an older baseline was put back")
    key = _isolated_state / "agent.key"
    key_bytes = key.read_bytes()
    key.unlink()  # the agent key gone: nothing can verify the baseline, and no new key is made silently
    proc = run("baseline", "show", *base_args(root), check=2)
    assert "agent key" in proc.stderr and "is missing" in proc.stderr
    assert not key.exists()
    key.write_bytes(key_bytes)
    (root / "etc/machine-id").write_text("fedcba9876543210fedcba9876543210\n")  # cloned image, other host
    proc = run("baseline", "show", *base_args(root), check=2)
    assert "captured on another host" in proc.stderr
    # a forced re-capture is the way out, and it records a new version
    assert "version 3 captured" in capture(root, "--force").stdout


def test_failed_capture_leaves_the_old_baseline(root: Path, _isolated_state: Path) -> None:
    capture(root)
    before = current_file(_isolated_state).read_bytes()
    (root / "etc/passwd").unlink()
    (root / "etc/passwd").mkdir()  # the accounts probe now fails on read
    proc = capture(root, "--force", check=2)
    assert "probe(s) failed, baseline left unchanged" in proc.stderr and "accounts" in proc.stderr
    assert current_file(_isolated_state).read_bytes() == before


def test_scan_without_baseline_says_so(root: Path) -> None:
    report = json.loads(run("scan", *base_args(root), "--probe", "sysctl", "--json", check=0).stdout)
    assert report["baseline"]["status"] == "missing"
    assert any("baseline capture" in n for n in report["notes"])
    table = run("scan", *base_args(root), "--probe", "sysctl", check=0).stdout
    assert "no baseline for host/root-" in table


FIM_CONFIG = """
[probes.files]
paths = ["/usr/bin", "/etc/app"]
ssh_dirs = false
packages = false
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root (CI runs as root)")
def test_file_integrity_drift_end_to_end(root: Path, tmp_path: Path, _isolated_state: Path) -> None:
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc/app").mkdir(parents=True)
    tool, conf, other = root / "usr/bin/tool", root / "etc/app/app.conf", root / "etc/app/secret"
    tool.write_bytes(b"#!/bin/sh\necho original\n")
    tool.chmod(0o755)
    conf.write_text("a=1\n")
    conf.chmod(0o644)
    other.write_text("s\n")
    other.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text(FIM_CONFIG)
    args = [*base_args(root), "--config", str(config)]
    run("baseline", "capture", *args, "--probe", "files", check=0)

    st = tool.stat()
    tool.write_bytes(b"#!/bin/sh\necho trojan!\n")  # same size, mtime put back: only ctime and hash tell
    os.utime(tool, ns=(st.st_atime_ns, st.st_mtime_ns))
    conf.chmod(0o666)
    os.chown(other, 1000, 1000)
    suid = root / "usr/bin/rootshell"
    suid.write_bytes(b"x")
    suid.chmod(0o4755)
    data = json.loads(run("baseline", "diff", *args, "--json", check=1).stdout)
    found = {f["subject"].removeprefix(str(root)): (f["severity"], f["rule_id"]) for f in data["findings"]}
    assert found == {
        "/usr/bin/tool": ("critical", "PC-DRIFT-FIM-002"),
        "/usr/bin/rootshell": ("critical", "PC-DRIFT-FIM-001"),
        "/etc/app/app.conf": ("high", "PC-DRIFT-FIM-003"),
        "/etc/app/secret": ("high", "PC-DRIFT-FIM-003"),
    }, data["findings"]
    changed = {c["subject"]: {x["name"] for x in c["changes"]} for c in data["diff"]["changed"]}
    assert {"sha256", "ctime_ns"} <= changed["/usr/bin/tool"] and "mtime_ns" not in changed["/usr/bin/tool"]
    assert changed["/etc/app/secret"] >= {"uid", "gid"}
    run("baseline", "accept", *args, "--all", check=0)
    run("baseline", "diff", *args, check=0)
