from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from probes.base import GatherContext
from probes.host.systemd_units import SystemdUnitsProbe, exec_program, parse_unit_file
from probes.transport import LocalTransport
from tests.probes.golden import cases, check_case


@pytest.mark.parametrize("raw_path", cases("systemd_units"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("systemd_units", raw_path)


def test_unit_file_sections_continuations_and_comments():
    doc = parse_unit_file("[Unit]\nDescription=x\n# ExecStart=/nope\n[Service]\n; c\nExecStart=/bin/a \\\n  --b\n"
                          "User=svc\n")
    assert doc == {"Unit": [("Description", "x")], "Service": [("ExecStart", "/bin/a --b"), ("User", "svc")]}


@pytest.mark.parametrize(("value", "expected"), [
    ("-/sbin/agetty -o '-p' - $TERM", ("/sbin/agetty -o '-p' - $TERM", "/sbin/agetty")),
    ("!!/usr/bin/x", ("/usr/bin/x", "/usr/bin/x")),
    ('@/bin/sh sh -c "echo hi"', ('/bin/sh sh -c "echo hi"', "/bin/sh")),
    ("/bin/echo 'unterminated", ("/bin/echo 'unterminated", "/bin/echo")),
])
def test_exec_program(value, expected):
    assert exec_program(value) == expected


def _unit(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def _link(root: Path, path: str, target: str) -> None:
    link = root / path.lstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


def test_fixture_root(tmp_path: Path):
    """Real files and symlinks in a tree: precedence, aliases, masking, enabling, drop-ins, timers, user units,
    and /lib as a link to /usr/lib read only once."""
    (tmp_path / "usr/lib/systemd/system").mkdir(parents=True)
    (tmp_path / "lib").symlink_to("usr/lib")
    _unit(tmp_path, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
                                   "daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n")
    vendor = ("[Unit]\nDescription=vendor web\n[Service]\nExecStart=/usr/sbin/web\n"
              "[Install]\nWantedBy=multi-user.target\n")
    _unit(tmp_path, "/usr/lib/systemd/system/web.service", vendor)
    _unit(tmp_path, "/etc/systemd/system/web.service", "[Service]\nExecStart=/opt/web/bin/web\nUser=web\n")
    _unit(tmp_path, "/usr/lib/systemd/system/cleanup.timer", "[Timer]\nOnCalendar=daily\nOnCalendar=Mon 04:00\n"
                                                             "OnBootSec=15min\n")
    _unit(tmp_path, "/usr/lib/systemd/system/cleanup.service", "[Service]\nExecStart=/usr/bin/cleanup\n")
    _unit(tmp_path, "/usr/lib/systemd/system/old.service", "[Service]\nExecStart=/usr/bin/old\n")
    _unit(tmp_path, "/etc/systemd/system/cleanup.service.d/10-tmp.conf",
          "[Service]\nExecStart=\nExecStart=/dev/shm/x\n")
    _unit(tmp_path, "/etc/systemd/system/helper.service", "[Service]\nExecStart=/home/alice/bin/helper\n")
    _link(tmp_path, "/etc/systemd/system/www.service", "/usr/lib/systemd/system/web.service")
    _link(tmp_path, "/etc/systemd/system/old.service", "/dev/null")
    _link(tmp_path, "/etc/systemd/system/multi-user.target.wants/web.service", "/etc/systemd/system/web.service")
    _link(tmp_path, "/etc/systemd/system/timers.target.wants/cleanup.timer", "/lib/systemd/system/cleanup.timer")
    _unit(tmp_path, "/home/alice/.config/systemd/user/agent.service", "[Service]\nExecStart=%h/.local/bin/agent\n")
    _link(tmp_path, "/home/alice/.config/systemd/user/default.target.wants/agent.service",
          "/home/alice/.config/systemd/user/agent.service")
    probe = SystemdUnitsProbe()
    ctx = GatherContext(LocalTransport(root=str(tmp_path)))
    raw = probe.gather(ctx)
    assert [d["dir"] for d in raw["scopes"]["system"]] == ["/etc/systemd/system", "/lib/systemd/system"]
    rows = {(r.scope, r.name): r for r in probe.parse(raw)}
    web = rows[("system", "web.service")]
    assert web.path == "/etc/systemd/system/web.service" and web.exec_path == "/opt/web/bin/web"
    assert web.user == "web" and web.enabled and web.aliases == ("www.service",)
    assert web.enabled_by == ("multi-user.target.wants/web.service",)
    assert web.sha256 == hashlib.sha256((tmp_path / "etc/systemd/system/web.service").read_bytes()).hexdigest()
    assert rows[("system", "old.service")].masked
    timer = rows[("system", "cleanup.timer")]
    assert timer.enabled and timer.on_calendar == ("daily", "Mon 04:00") and timer.on_boot_sec == "15min"
    assert timer.triggers == "cleanup.service"
    cleanup = rows[("system", "cleanup.service")]
    assert cleanup.exec_path == "/dev/shm/x" and not cleanup.enabled
    assert cleanup.dropins == ("/etc/systemd/system/cleanup.service.d/10-tmp.conf",)
    assert rows[("system", "helper.service")].exec_home_of == "alice"
    agent = rows[("user:alice", "agent.service")]
    assert agent.enabled and agent.account == "alice" and agent.enabled_by == ("default.target.wants/agent.service",)
    assert ctx.limitations == []


def test_live_enabled_units_match_wants_links():
    """Every unit linked from /etc/systemd/system/*.wants on this machine is reported enabled, with the sha256
    of the file in effect."""
    probe = SystemdUnitsProbe()
    rows = {(r.scope, r.name): r for r in probe.parse(probe.gather(GatherContext(LocalTransport())))}
    wants = Path("/etc/systemd/system")
    checked = 0
    for dep_dir in wants.glob("*.wants"):
        for link in dep_dir.iterdir():
            if link.suffix[1:] not in ("service", "timer", "socket", "path") or "@" in link.name:
                continue
            row = rows[("system", link.name)]
            assert row.enabled and f"{dep_dir.name}/{link.name}" in row.enabled_by
            if row.path and os.path.isfile(row.path) and not row.dropins:
                assert row.sha256 == hashlib.sha256(Path(row.path).read_bytes()).hexdigest()
            checked += 1
    assert checked > 0
