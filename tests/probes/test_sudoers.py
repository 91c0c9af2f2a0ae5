from __future__ import annotations

import json

import pytest

from probes.base import GatherContext
from probes.host.sudoers import SudoersProbe, include_targets, includedir_entry_ok, logical_lines
from probes.transport import LocalTransport
from tests.probes.golden import FIXTURES, cases, check_case


@pytest.mark.parametrize("raw_path", cases("sudoers"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("sudoers", raw_path)


def test_golden_mixed_facts():
    rows = {(o.attrs["source"].rsplit("/", 1)[-1], o.attrs["who"]): o.attrs
            for o in check_case("sudoers", FIXTURES / "sudoers" / "cloud-mixed.raw.json")}
    ubuntu = rows[("90-cloud-init-users", ("ubuntu",))]
    assert ubuntu["nopasswd"] and ubuntu["all_commands"] and ubuntu["runas"] == "ALL"
    assert rows[("deploy", ("svc",))]["all_commands"]  # through Cmnd_Alias EVERYTHING = ALL
    deploy = rows[("deploy", ("deploy",))]
    assert deploy["nopasswd"] and not deploy["all_commands"]
    op = rows[("operator", ("operator",))]
    assert op["hosts"] == ("ALL", "dbhost") and op["commands"] == ("/bin/ls", "/bin/cat", "/usr/bin/psql")
    assert rows[("developers", ("#1005",))]["commands"] == ("/usr/bin/rsync",)
    assert rows[("sudoers.local", (":backup",))]["settings"] == ("!authenticate",)
    assert rows[("sudoers.local", ("OPERATORS",))]["commands"] == (
        "/usr/bin/systemctl restart nginx", "/usr/bin/systemctl reload nginx")
    assert not any(src == "old.bak" for src, _ in rows)  # names with '.' are skipped by includedir


def test_lexing():
    text = "# comment\n#include /etc/x\nalice ALL = \\\n  /bin/ls # trailing\n#1000 ALL=ALL\n"
    assert logical_lines(text) == [(2, "#include /etc/x"), (3, "alice ALL =    /bin/ls"), (5, "#1000 ALL=ALL")]
    assert include_targets("/etc/sudoers", "@include sudoers.local\n#includedir /etc/sudoers.d\n") == [
        ("include", "/etc/sudoers.local"), ("includedir", "/etc/sudoers.d")]
    assert includedir_entry_ok("admins") and not includedir_entry_ok("x.bak") and not includedir_entry_ok("y~")


def test_fixture_root_follows_includes(tmp_path):
    """Real files on disk: @include relative to the including file, #includedir, nested includes."""
    etc = tmp_path / "etc"
    (etc / "sudoers.d").mkdir(parents=True)
    (etc / "sudoers").write_text("Defaults env_reset\nroot ALL=(ALL:ALL) ALL\n@include sudoers.local\n"
                                 "@includedir /etc/sudoers.d\n")
    (etc / "sudoers.local").write_text("%wheel ALL=(ALL) NOPASSWD: ALL\n#include /etc/sudoers.extra\n")
    (etc / "sudoers.extra").write_text("backup ALL=(root) NOPASSWD: /usr/bin/rsync\n")
    (etc / "sudoers.d" / "10-admins").write_text("%admins ALL=(ALL) ALL\n")
    (etc / "sudoers.d" / "skip.conf").write_text("mallory ALL=(ALL) NOPASSWD: ALL\n")
    (etc / "sudoers.d" / "20-old~").write_text("mallory ALL=(ALL) NOPASSWD: ALL\n")
    probe = SudoersProbe()
    ctx = GatherContext(LocalTransport(root=str(tmp_path)))
    raw = probe.gather(ctx)
    json.dumps(raw)  # raw data must be JSON-serialisable
    rows = probe.parse(raw)
    who = [r.who for r in rows if r.kind == "rule"]
    assert who == [("root",), ("%wheel",), ("backup",), ("%admins",)]
    wheel = next(r for r in rows if r.who == ("%wheel",))
    assert wheel.nopasswd and wheel.all_commands and wheel.source == "/etc/sudoers.local"
    assert "/etc/sudoers.d/skip.conf" not in raw["files"] and ctx.limitations == []


def test_live_this_machine():
    """This machine has no sudo installed: the probe reads nothing and reports nothing, without error."""
    probe = SudoersProbe()
    ctx = GatherContext(LocalTransport())
    raw = probe.gather(ctx)
    rows = probe.parse(raw)
    if LocalTransport().exists("/etc/sudoers"):
        assert "/etc/sudoers" in raw["files"] and any(r.kind == "rule" for r in rows)
    else:
        assert raw == {"files": {}, "dirs": {}} and rows == []
