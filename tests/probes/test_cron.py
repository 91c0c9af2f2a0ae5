from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from probes.base import GatherContext
from probes.host.cron import CronProbe, parse_anacrontab, parse_crontab
from probes.transport import LocalTransport
from tests.probes.golden import cases, check_case


@pytest.mark.parametrize("raw_path", cases("cron"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("cron", raw_path)


def test_golden_cases_cover_each_format():
    names = {p.name for p in cases("cron")}
    assert {"debian12-host.raw.json", "rhel9-host.raw.json", "compromised-host.raw.json"} <= names


def test_system_crontab_fields_env_and_invalid_lines():
    text = ("PATH=/usr/bin:/bin\n# comment\n\n"
            "*/5 * * * *\troot   /usr/bin/run --flag  'two  spaces'\n"
            "@reboot  alice /home/alice/start\n"
            "@hourly\n"  # no user, no command: cron rejects it
            "@fortnightly root /bin/true\n"  # unknown keyword
            "1 2 3 4\n")
    rows = parse_crontab("/etc/cron.d/x", text, None)
    assert [(r.line, r.user, r.schedule, r.command) for r in rows] == [
        (4, "root", "*/5 * * * *", "/usr/bin/run --flag  'two  spaces'"),
        (5, "alice", "@reboot", "/home/alice/start"),
    ]
    assert all(r.env_path == "/usr/bin:/bin" for r in rows)
    assert rows[0].command_sha256 == hashlib.sha256(rows[0].command.encode()).hexdigest()


def test_user_crontab_takes_user_from_owner():
    rows = parse_crontab("/var/spool/cron/crontabs/bob", "0 1 * * * echo hi\n", "bob")
    assert [(r.user, r.command) for r in rows] == [("bob", "echo hi")]


def test_anacrontab():
    rows = parse_anacrontab("/etc/anacrontab", "SHELL=/bin/sh\n1\t5\tcron.daily\trun-parts /etc/cron.daily\nbad\n")
    assert [(r.kind, r.schedule, r.command, r.user) for r in rows] == [
        ("anacron", "1 5", "run-parts /etc/cron.daily", "root")]


def test_subject_is_stable_when_lines_move():
    before = parse_crontab("/etc/crontab", "0 * * * * root /bin/a\n", None)
    after = parse_crontab("/etc/crontab", "# new comment\nMAILTO=x\n0 * * * * root /bin/a\n", None)
    assert before[0].subject() == after[0].subject()
    assert before[0].line != after[0].line and "line" in before[0].VOLATILE


def _write(root: Path, path: str, text: str, mode: int = 0o644) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)
    return target


def test_fixture_root_debian_and_rhel_spools(tmp_path: Path):
    """gather() through a re-rooted transport finds every kind of crontab and hashes the periodic scripts."""
    _write(tmp_path, "/etc/crontab", "17 * * * * root cd / && run-parts /etc/cron.hourly\n")
    _write(tmp_path, "/etc/cron.d/job", "* * * * * root /tmp/x/run\n")
    _write(tmp_path, "/etc/anacrontab", "7 10 weekly nice run-parts /etc/cron.weekly\n")
    _write(tmp_path, "/var/spool/cron/crontabs/alice", "@daily /home/alice/bin/sync\n", 0o600)
    _write(tmp_path, "/var/spool/cron/bob", "5 4 * * * /usr/bin/true\n", 0o600)  # RHEL layout
    (tmp_path / "var/spool/cron/atjobs").mkdir()
    script = _write(tmp_path, "/etc/cron.daily/backup", "#!/bin/sh\ntar czf /backup/etc.tgz /etc\n", 0o755)
    _write(tmp_path, "/etc/cron.daily/.placeholder", "# keep\n")
    probe = CronProbe()
    ctx = GatherContext(LocalTransport(root=str(tmp_path)))
    rows = probe.parse(probe.gather(ctx))
    got = {(r.kind, r.source, r.user, r.command) for r in rows}
    assert got == {
        ("job", "/etc/crontab", "root", "cd / && run-parts /etc/cron.hourly"),
        ("job", "/etc/cron.d/job", "root", "/tmp/x/run"),
        ("anacron", "/etc/anacrontab", "root", "nice run-parts /etc/cron.weekly"),
        ("job", "/var/spool/cron/crontabs/alice", "alice", "/home/alice/bin/sync"),
        ("job", "/var/spool/cron/bob", "bob", "/usr/bin/true"),
        ("script", "/etc/cron.daily/backup", "root", "/etc/cron.daily/backup"),
    }
    scripts = [r for r in rows if r.kind == "script"]
    assert scripts[0].content_sha256 == hashlib.sha256(script.read_bytes()).hexdigest()
    assert scripts[0].schedule == "daily"
    assert ctx.limitations == []


def test_live_crontab_and_scripts_match_the_files():
    probe = CronProbe()
    rows = probe.parse(probe.gather(GatherContext(LocalTransport())))
    crontab = [r for r in rows if r.source == "/etc/crontab"]
    expected_jobs = [line for line in Path("/etc/crontab").read_text().splitlines()
                     if line.strip() and not line.lstrip().startswith("#") and "=" not in line.split()[0]]
    assert len(crontab) == len(expected_jobs)
    for directory in ("/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly"):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            if name.startswith(".") or not os.path.isfile(path):
                continue
            row = next(r for r in rows if r.source == path)
            assert row.content_sha256 == hashlib.sha256(Path(path).read_bytes()).hexdigest()
