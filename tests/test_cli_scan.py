"""`precaution scan` through the installed console script, in a subprocess, as a user runs it.

Findings come from a fixture root (``--root``) holding persistence files, so that the outcome does not depend
on this machine; one test runs the full scan of the real machine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PRECAUTION = str(Path(sys.executable).parent / "precaution")
PERS = ["--probe", "startup_files", "--probe", "cron"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
    proc = subprocess.run([PRECAUTION, *args], capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    return proc


def _write(root: Path, path: str, text: str, mode: int = 0o644) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)
    return target


@pytest.fixture
def clean_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    _write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
    _write(root, "/etc/crontab", "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n")
    _write(root, "/etc/profile", "export PATH\n")
    _write(root, "/root/.bashrc", "alias ll='ls -l'\n")
    return root


def make_bad(root: Path) -> Path:
    """Critical: /etc/ld.so.preload in use. Medium: rc.local runs a command."""
    _write(root, "/etc/ld.so.preload", "/usr/lib/libhide.so\n")
    _write(root, "/etc/rc.local", "#!/bin/sh\n/usr/local/bin/agent &\nexit 0\n", 0o755)
    return root


@pytest.fixture
def bad_root(clean_root: Path) -> Path:
    return make_bad(clean_root)


def scan_json(root: Path, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    proc = run("scan", "--root", str(root), *PERS, "--json", *extra)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_table_output(bad_root: Path):
    proc = run("scan", "--root", str(bad_root), *PERS)
    assert proc.returncode == 1  # default --fail-on high; a critical finding is there
    out = proc.stdout
    assert "PC-PERS-001" in out and "PC-PERS-002" in out
    assert "CRITICAL (1)" in out and "MEDIUM (1)" in out
    assert "isolate:" in out and "truncate -s 0 /etc/ld.so.preload" in out
    assert "Summary" in out and "critical: 1" in out


def test_json_schema_and_both_languages(bad_root: Path):
    code, data = scan_json(bad_root)
    assert code == 1
    assert data["schema"] == "precaution.scan/v2"
    assert data["summary"]["findings"]["critical"] == 1 and data["summary"]["findings"]["medium"] == 1
    assert {p["id"] for p in data["probes"]} == {"startup_files", "cron"}
    assert all(p["status"] == "ok" for p in data["probes"])
    for f in data["findings"]:
        for key in ("title", "rationale"):
            assert set(f[key]) == {"en", "zh-CN"} and all(f[key].values())
        assert set(f["remediation"]["steps"]) == {"en", "zh-CN"}
        assert re.search(r"[\u4e00-\u9fff]", f["remediation"]["steps"]["zh-CN"])
        assert f["remediation"]["action"] in ("isolate", "investigate")
        assert re.fullmatch(r"[0-9a-f]{16}", f["id"])
    preload = next(f for f in data["findings"] if f["rule_id"] == "PC-PERS-001")
    assert preload["subject"] == "/etc/ld.so.preload" and preload["evidence"]["entries"] == ["/usr/lib/libhide.so"]
    assert preload["severity"] == "critical" and preload["waived"] is None
    from agent.wire.scan import ScanDocument
    from tests.schema_check import validate

    validate("scan.schema.json", data)  # the generated JSON Schema
    assert ScanDocument.model_validate(data).to_json() == data  # and the model, round trip


def test_json_of_this_machine_validates_against_the_schema():
    from agent.wire.scan import ScanDocument
    from tests.schema_check import validate

    proc = run("scan", "--json", "--observations")
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    validate("scan.schema.json", data)
    ScanDocument.model_validate(data)


def test_json_observations_flag(clean_root: Path):
    _, data = scan_json(clean_root, "--observations")
    subjects = {(o["probe"], o["subject"]) for o in data["observations"]}
    assert ("startup_files", "/root/.bashrc") in subjects


def test_html_self_contained_both_languages(bad_root: Path, tmp_path: Path):
    out = tmp_path / "report.html"
    proc = run("scan", "--root", str(bad_root), *PERS, "--html", str(out))
    assert proc.returncode == 1
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert "<script" not in html.lower() and "@import" not in html and "<link" not in html.lower()
    assert "PC-PERS-001" in html
    assert "/etc/ld.so.preload loads libraries into every program" in html
    assert "/etc/ld.so.preload 向所有程序强制加载共享库" in html
    assert "Remediation" in html or "remediation" in html
    assert "整改措施" in html or "隔离" in html


def test_output_file_written_whole_with_table_on_stdout(bad_root: Path, tmp_path: Path):
    out = tmp_path / "last-scan.json"
    proc = run("scan", "--root", str(bad_root), *PERS, "--output", str(out))
    assert proc.returncode == 1 and "PC-PERS-001" in proc.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["schema"] == "precaution.scan/v2"
    assert any(f["rule_id"] == "PC-PERS-001" for f in data["findings"])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".last-scan")] == []  # no temp file left
    proc = run("scan", "--root", str(bad_root), *PERS, "--output", str(tmp_path / "nope" / "x.json"))
    assert proc.returncode == 2 and "--output" in proc.stderr and "does not exist" in proc.stderr


def test_html_into_missing_directory_is_a_user_error(clean_root: Path, tmp_path: Path):
    proc = run("scan", "--root", str(clean_root), *PERS, "--html", str(tmp_path / "nope" / "r.html"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr


def test_lang_zh(bad_root: Path):
    proc = run("scan", "--root", str(bad_root), *PERS, "--lang", "zh-CN")
    assert proc.returncode == 1
    assert "反间谍安全防范技术自查" in proc.stdout
    assert "严重 (1)" in proc.stdout and "隔离" in proc.stdout
    assert "/etc/ld.so.preload 向所有程序强制加载共享库" in proc.stdout


def test_fail_on(clean_root: Path):
    assert run("scan", "--root", str(clean_root), *PERS).returncode == 0
    assert run("scan", "--root", str(clean_root), *PERS, "--fail-on", "info").returncode == 0
    bad_root = make_bad(clean_root)
    assert run("scan", "--root", str(bad_root), *PERS, "--fail-on", "critical").returncode == 1
    (bad_root / "etc/ld.so.preload").unlink()
    # Only the medium rc.local finding is left.
    assert run("scan", "--root", str(bad_root), *PERS, "--fail-on", "high").returncode == 0
    assert run("scan", "--root", str(bad_root), *PERS, "--fail-on", "MEDIUM").returncode == 1


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_bad_fail_on(clean_root: Path):
    line = _one_line_error(run("scan", "--root", str(clean_root), *PERS, "--fail-on", "urgent"))
    assert "urgent" in line and "critical" in line


def test_unknown_probe(clean_root: Path):
    line = _one_line_error(run("scan", "--root", str(clean_root), "--probe", "no_such_probe"))
    assert "no_such_probe" in line


def test_malformed_profile_names_file_and_line(clean_root: Path, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile:\n  id: t\n  title: {en: t, zh-CN: t}\nrules:\n  - id: T-1\n    title: {en: a, zh-CN: b}\n"
                   "    severity: urgent\n    probe: cron\n    forbid: {user: root}\n"
                   "    rationale: {en: a, zh-CN: b}\n"
                   "    remediation: {action: block, en: a, zh-CN: b}\n    references: [x]\n")
    line = _one_line_error(run("scan", "--root", str(clean_root), *PERS, "--profile", str(bad)))
    assert f"{bad}:7:" in line and "severity" in line


def test_profile_not_yaml(clean_root: Path, tmp_path: Path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("profile:\n  id: [unclosed\n")
    line = _one_line_error(run("scan", "--root", str(clean_root), *PERS, "--profile", str(bad)))
    assert str(bad) in line and "YAML" in line


def test_malformed_waivers(clean_root: Path, tmp_path: Path):
    bad = tmp_path / "waivers.yaml"
    bad.write_text("waivers:\n  - rule: PC-PERS-001\n    expires: not-a-date\n")
    line = _one_line_error(run("scan", "--root", str(clean_root), *PERS, "--waivers", str(bad)))
    assert str(bad) in line


def test_waiver_applies_then_expires_by_itself(bad_root: Path, tmp_path: Path):
    (bad_root / "etc/rc.local").unlink()  # leave only the critical ld.so.preload finding
    waivers = tmp_path / "waivers.yaml"
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    waivers.write_text(f"waivers:\n  - rule: PC-PERS-001\n    subject: /etc/ld.so.*\n"
                       f"    justification: vendor agent needs it, ticket 42\n    expires: {tomorrow}\n")
    code, data = scan_json(bad_root, "--waivers", str(waivers))
    assert code == 0
    (finding,) = data["findings"]
    assert finding["rule_id"] == "PC-PERS-001" and "ticket 42" in finding["waived"]
    assert data["summary"]["waived"] == 1 and data["summary"]["findings"]["critical"] == 0
    assert data["expired_waivers"] == []

    yesterday = dt.date.today() - dt.timedelta(days=1)
    waivers.write_text(waivers.read_text().replace(str(tomorrow), str(yesterday)))
    code, data = scan_json(bad_root, "--waivers", str(waivers))
    assert code == 1
    (finding,) = data["findings"]
    assert finding["waived"] is None
    assert [w["rule"] for w in data["expired_waivers"]] == ["PC-PERS-001"]
    table = run("scan", "--root", str(bad_root), *PERS, "--waivers", str(waivers))
    assert table.returncode == 1 and "Expired waivers" in table.stdout


def test_full_scan_of_this_machine():
    """Every probe on the real host: a result table, no probe error, no traceback."""
    proc = run("scan")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "Summary" in proc.stdout and "Probe errors" not in proc.stdout
    data = json.loads(run("scan", "--json").stdout)
    ran = {p["id"] for p in data["probes"] if p["status"] in ("ok", "limited")}
    assert {"cron", "systemd_units", "startup_files", "listeners"} <= ran


def test_full_flag_reaches_the_file_integrity_probe(tmp_path: Path):
    from agent.config import AgentConfig
    from agent.record import Recorder
    from agent.scan import select_probes
    from agent.services.context import AgentContext
    from agent.services.scan import probe_settings
    from agent.state import StateDir

    configured = {"files": {"paths": [str(tmp_path)]}}
    state = StateDir(tmp_path / "state")
    ctx = AgentContext(state, AgentConfig(probes=configured), Recorder(state, "tester"))
    for full in (False, True):
        settings = probe_settings(ctx, full)
        assert settings.cache_dir == state.cache
        [probe] = select_probes(["files"], settings=settings)
        assert probe.options.full is full and list(probe.options.paths) == [str(tmp_path)]  # type: ignore[attr-defined]
    assert configured == {"files": {"paths": [str(tmp_path)]}}  # the config itself is left alone
