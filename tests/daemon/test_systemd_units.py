"""The systemd units: `systemd-analyze verify` clean, hardening scores as documented, `make install` puts
everything (including the Documentation= target) where the units expect it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.daemon.config import load_config
from tests.conftest import needs_root

ROOT = Path(__file__).resolve().parents[2]
UNITS = ("precaution-agent.service", "precaution-collector.service")
pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed "
                                "(make deps installs it)")


@pytest.mark.parametrize("name", UNITS)
def test_units_verify_clean(name: str, tmp_path: Path) -> None:
    unit = tmp_path / name
    unit.write_text((ROOT / "systemd" / name).read_text().replace("/usr/local/bin/", f"{ROOT}/.venv/bin/"))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr.strip() == "" and out.stdout.strip() == "", out.stderr


def test_verify_catches_a_bad_key(tmp_path: Path) -> None:
    unit = tmp_path / "precaution-agent.service"
    unit.write_text((ROOT / "systemd" / UNITS[0]).read_text().replace("/usr/local/bin/", f"{ROOT}/.venv/bin/")
                    .replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert "Unknown key" in out.stderr


@pytest.mark.parametrize("name", (*UNITS, "precaution-scan.service"))
def test_security_scores_match_docs(name: str) -> None:
    out = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(ROOT / "systemd" / name)],
                         capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", out.stdout + out.stderr)
    assert m, out.stdout + out.stderr
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert f"| `{name}` | {m.group(1)} {m.group(2)} |" in docs


def test_agent_unit_hardening() -> None:
    text = (ROOT / "systemd" / UNITS[0]).read_text()
    settings = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["Type"] == "notify" and settings["WatchdogSec"] == "60"
    assert settings["NoNewPrivileges"] == "yes" and settings["ProtectSystem"] == "strict"
    assert settings["ReadWritePaths"] == "/var/lib/precaution" and settings["PrivateTmp"] == "yes"
    assert settings["ProtectHome"] == "read-only" and settings["Restart"] == "on-failure"
    assert set(settings["CapabilityBoundingSet"].split()) == {"CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_DAC_READ_SEARCH",
                                                               "CAP_SYS_PTRACE"}
    assert settings["AmbientCapabilities"] == ""
    assert settings["MemoryMax"]


def test_example_agent_toml_is_valid() -> None:
    config = load_config(ROOT / "deploy" / "agent.toml")
    assert config.self_inspection.own_networks == ["127.0.0.0/8", "::1/128"]


@needs_root()
def test_make_install_stages_everything(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    out = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    for command in ("precaution", "precaution-collector"):
        link = dest / "usr/local/bin" / command
        assert link.is_symlink() and str(link.readlink()) == f"/opt/precaution/bin/{command}"
        assert (dest / "opt/precaution/bin" / command).is_file()
    # the staged virtualenv runs (its scripts name the staged interpreter)
    version = subprocess.run([str(dest / "opt/precaution/bin/precaution"), "--version"], capture_output=True,
                             text=True)
    assert version.returncode == 0 and version.stdout.startswith("precaution "), version.stderr
    for name in UNITS:
        unit = dest / "etc/systemd/system" / name
        text = unit.read_text()
        doc = re.search(r"^Documentation=file://(\S+)$", text, re.M)
        assert doc and (dest / doc.group(1).lstrip("/")).is_file()
        unit.write_text(text.replace("/usr/local/bin/", f"{dest}/opt/precaution/bin/"))
        verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    assert load_config(dest / "etc/precaution/agent.toml").metrics.listen == "127.0.0.1:9847"
