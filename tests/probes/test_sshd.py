from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from probes.base import GatherContext
from probes.host.sshd import SOURCE_T, SshdProbe, parse_sshd_t, split_line
from probes.transport import LocalTransport
from tests.conftest import needs_root
from tests.probes.golden import FIXTURES, cases, check_case


@pytest.mark.parametrize("raw_path", cases("sshd"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("sshd", raw_path)


def _values(raw_name: str) -> dict[str, str]:
    return {str(o.subject): str(o.attrs["value"]) for o in check_case("sshd", FIXTURES / "sshd" / raw_name)}


def test_golden_forms():
    t = _values("debian12-host.raw.json")  # sshd -T on this machine
    files = _values("debian12-files.raw.json")  # the same machine's files, parsed
    for key in ("permitrootlogin", "passwordauthentication", "x11forwarding", "maxauthtries", "ciphers", "macs",
                "kexalgorithms", "port", "acceptenv", "usepam"):
        assert files[key] == t[key], key
    weak = _values("files-weak.raw.json")
    assert weak["permitrootlogin"] == "yes" and weak["passwordauthentication"] == "yes"  # first value wins
    assert weak["port"] == "22 2222" and weak["protocol"] == "2,1"
    assert weak["passwordauthentication [Match User backup]"] == "yes"
    hard = _values("files-hardened.raw.json")
    assert hard["x11forwarding"] == "no" and hard["permitrootlogin"] == "no"


def test_split_line():
    assert split_line("  PermitRootLogin   no  ") == ("permitrootlogin", ["no"])
    assert split_line("KexAlgorithms=curve25519-sha256") == ("kexalgorithms", ["curve25519-sha256"])
    assert split_line('Banner "/etc/issue net"') == ("banner", ["/etc/issue net"])
    assert split_line("# PermitRootLogin yes") is None and split_line("   ") is None


@pytest.fixture
def run_dir_sshd() -> None:
    """sshd refuses to start, even for -T, without its privilege separation directory (systemd creates it)."""
    if not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755)


@needs_root()
@pytest.mark.parametrize("config", [
    "# nothing set: every row is a compiled-in default\n",
    ("PermitRootLogin yes\nMaxAuthTries 9\nX11Forwarding yes\nPort 2222\nPort 2223\n"
              "Ciphers aes128-ctr,aes256-cbc\nMACs hmac-sha2-256,hmac-md5\nKexAlgorithms diffie-hellman-group14-sha1\n"
              "PermitRootLogin no\nPasswordAuthentication=no\n"
              "Match User backup\n  PasswordAuthentication yes\n"),
], ids=["defaults", "weak"])
def test_file_parse_matches_real_sshd(tmp_path: Path, run_dir_sshd: None, config: str) -> None:
    """What we derive from files (settings plus compiled-in defaults) is what the real sshd -T prints."""
    ssh = tmp_path / "etc" / "ssh"
    (ssh / "sshd_config.d").mkdir(parents=True)
    (ssh / "sshd_config").write_text(config)
    probe = SshdProbe()
    rows = {r.setting: r for r in probe.parse(probe.gather(GatherContext(LocalTransport(root=str(tmp_path)))))}
    real = subprocess.run(["/usr/sbin/sshd", "-T", "-f", str(ssh / "sshd_config")], capture_output=True, text=True,
                          check=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})
    effective = {k: " ".join(v) for k, v in parse_sshd_t(real.stdout).items()}
    for setting, row in rows.items():
        if row.match:
            continue
        assert row.value == effective[row.keyword], (setting, row.source)
    if "Match" in config:
        assert rows["permitrootlogin"].value == "yes" and rows["port"].value == "2222 2223"
        assert rows["passwordauthentication [Match User backup]"].value == "yes"
    else:
        assert {r.source for r in rows.values()} == {"default"}


def test_live_this_machine():
    probe = SshdProbe()
    ctx = GatherContext(LocalTransport())
    raw = probe.gather(ctx)
    rows = {r.setting: r for r in probe.parse(raw)}
    assert "/etc/ssh/sshd_config" in raw["files"]
    # Debian's stock sshd_config sets these; both forms must show them.
    assert rows["x11forwarding"].value == "yes" and rows["usepam"].value == "yes"
    if raw["source"] == SOURCE_T:
        assert rows["permitrootlogin"].source == SOURCE_T and ctx.limitations == []
    else:
        assert ctx.limitations  # why sshd -T was not used is said


def test_unreadable_include_means_unknown_not_default():
    """Not root and an include that cannot be read: a keyword no readable file sets is unknown, so no
    compiled-in default stands in for it and no rule judges it (PasswordAuthentication defaults to yes)."""
    from baselines.evaluate import evaluate
    from baselines.profile import load_profile
    from probes.host.sshd import SshdProbe
    from probes.observation import Observation

    text = "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n"
    raw = {"files": {"/etc/ssh/sshd_config": text}, "globs": {"/etc/ssh/sshd_config.d/*.conf": []},
           "source": "files"}

    def rules(r: dict) -> set[str]:
        obs = [Observation.from_row("sshd", row) for row in SshdProbe.parse(r)]
        return {f.rule_id for f in evaluate(load_profile(), obs, "h", {"sshd"}).findings}

    assert "PC-SSH-003" in rules(raw)  # everything was read: the default is the value
    unknown = {**raw, "unreadable": ["/etc/ssh/sshd_config.d"]}
    assert "PC-SSH-003" not in rules(unknown)
    assert {r.keyword for r in SshdProbe.parse(unknown)} == {"permitrootlogin"}
