from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from probes.base import GatherContext
from probes.host.authorized_keys import AuthorizedKeysProbe, expand_pattern, parse_key_line, split_options
from probes.transport import LocalTransport
from tests.probes.golden import FIXTURES, cases, check_case


@pytest.mark.parametrize("raw_path", cases("authorized_keys"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("authorized_keys", raw_path)


def _keygen_l(path: Path) -> tuple[int, str]:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)], capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[0]), out[1]


def test_bits_and_fingerprints_agree_with_ssh_keygen(tmp_path):
    """Every valid key in the golden fixture: our bits and fingerprint are what ssh-keygen -l prints."""
    raw = json.loads((FIXTURES / "authorized_keys" / "mixed-keys.raw.json").read_text())
    checked = set()
    for path, text in raw["files"].items():
        for number, line in enumerate(text.splitlines(), 1):
            key = parse_key_line("u", path, number, line)
            if key is None or not key.valid:
                continue
            one = tmp_path / f"k{len(checked)}.pub"
            one.write_text(line + "\n")
            assert (key.bits, key.fingerprint) == _keygen_l(one), line[:40]
            checked.add(key.key_type)
    assert {"ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp384"} <= checked


def test_options_and_golden_facts():
    opts = split_options('from="10.0.0.1,10.0.0.2",command="echo \\"a,b\\"",no-pty')
    assert opts == ['from="10.0.0.1,10.0.0.2"', 'command="echo \\"a,b\\""', "no-pty"]
    rows = {(o.attrs["user"], o.attrs["bits"], o.attrs["key_type"]): o.attrs
            for o in check_case("authorized_keys", FIXTURES / "authorized_keys" / "mixed-keys.raw.json")}
    rsa1024 = rows[("root", 1024, "ssh-rsa")]
    assert rsa1024["has_from_restriction"] and rsa1024["comment"] == "old-laptop"
    deploy = rows[("deploy", 256, "ssh-ed25519")]
    assert deploy["forced_command"] == '/usr/local/bin/deploy.sh "$SSH_ORIGINAL_COMMAND"'
    broken = rows[("deploy", None, "ssh-rsa")]
    assert not broken["valid"] and broken["fingerprint"] == "invalid:2"
    assert ("svc", 384, "ecdsa-sha2-nistp384") in rows  # from AuthorizedKeysFile /etc/ssh/authorized_keys/%u
    assert expand_pattern("%h/.ssh/k_%u_%U%%", "bob", 1001, "/home/bob") == "/home/bob/.ssh/k_bob_1001%"


def _keygen(path: Path, kind: str, bits: int | None, comment: str) -> str:
    argv = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)]
    if bits:
        argv[4:4] = ["-b", str(bits)]
    subprocess.run(argv, check=True, capture_output=True)
    return path.with_suffix(".pub").read_text().strip()


def test_fixture_root_real_keys(tmp_path):
    """A fixture root with passwd, an sshd_config naming an extra AuthorizedKeysFile, and freshly made keys."""
    keys = tmp_path / "keys"
    keys.mkdir()
    rsa = _keygen(keys / "rsa", "rsa", 1024, "weak")
    ed = _keygen(keys / "ed", "ed25519", None, "good")
    root = tmp_path / "root"
    (root / "etc" / "ssh" / "keys").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
                                         "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    (root / "etc" / "ssh" / "sshd_config").write_text(
        "AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/keys/%u\n")
    (root / "root" / ".ssh").mkdir(parents=True)
    (root / "root" / ".ssh" / "authorized_keys").write_text(f'from="192.168.1.0/24" {rsa}\n')
    (root / "home" / "alice" / ".ssh").mkdir(parents=True)
    (root / "home" / "alice" / ".ssh" / "authorized_keys2").write_text(f"{ed}\n")  # not named: ignored
    (root / "etc" / "ssh" / "keys" / "alice").write_text(f"{ed}\n")
    probe = AuthorizedKeysProbe()
    ctx = GatherContext(LocalTransport(root=str(root)))
    rows = probe.parse(probe.gather(ctx))
    got = {(r.user, r.file, r.key_type, r.bits, r.has_from_restriction) for r in rows}
    assert got == {("root", "/root/.ssh/authorized_keys", "ssh-rsa", 1024, True),
                   ("alice", "/etc/ssh/keys/alice", "ssh-ed25519", 256, False)}
    assert next(r for r in rows if r.user == "root").fingerprint == _keygen_l(keys / "rsa.pub")[1]


def test_live_this_machine():
    probe = AuthorizedKeysProbe()
    ctx = GatherContext(LocalTransport())
    raw = probe.gather(ctx)
    assert any(a["name"] == "root" for a in raw["accounts"])
    assert ".ssh/authorized_keys" in raw["patterns"]  # Debian's default AuthorizedKeysFile
    rows = probe.parse(raw)
    assert all(r.fingerprint.startswith(("SHA256:", "invalid:")) for r in rows)
