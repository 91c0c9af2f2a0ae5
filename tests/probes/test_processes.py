from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from probes.base import GatherContext
from probes.host.processes import (
    Process,
    ProcessesProbe,
    ProcessIdentity,
    fd_kind,
    join_cmdline,
    start_ticks,
    unit_of,
)
from probes.transport import LocalTransport
from tests.probes.golden import FIXTURES, cases, check_case
from tests.spawn import spawn


@pytest.mark.parametrize("raw_path", cases("processes"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("processes", raw_path)


def test_golden_compromised_facts():
    observed = check_case("processes", FIXTURES / "processes" / "compromised-host.raw.json")
    rows = [o.attrs for o in observed if o.in_rules]
    assert all(not o.in_baseline for o in observed if o.in_rules)  # what runs now is never baseline state
    by_comm: dict[str, list] = {}
    for r in rows:
        by_comm.setdefault(str(r["comm"]), []).append(r)
    assert [r["stdin"] for r in by_comm["bash"] if r["uid"] == 33] == ["tcp"]  # the reverse shell
    assert by_comm["kswapd0"][0]["exe_deleted"] and by_comm["kswapd0"][0]["exe_dir"] == "/dev/shm/.x"
    assert by_comm["nginx"][1]["count"] == 2 and by_comm["nginx"][1]["cmdline"] == "nginx: worker process"
    assert "kthreadd" not in by_comm and "ksoftirqd/0" not in by_comm  # kernel threads, with and without Kthread:
    assert "sleep" not in by_comm  # the zombie
    assert by_comm["passwd"][0]["uid"] == 1000 and by_comm["passwd"][0]["euid"] == 0


def test_fd_kinds():
    inet = {"77": "tcp"}
    assert [fd_kind(x, inet) for x in ("socket:[77]", "socket:[78]", "pipe:[9]", "/dev/pts/3", "/dev/null",
                                       "/var/log/x.log", "anon_inode:[eventfd]", "", None)] == [
        "tcp", "socket", "pipe", "tty", "null", "file", "anon", "closed", "unknown"]
    assert join_cmdline("a\0b c\0\0") == "a b c"
    assert len(join_cmdline("x" * 5000)) == 512


def _rows_seen_from_outside() -> list[Process]:
    """A live gather, parsed as if another process inspected (identities leave out the inspector's process
    tree, and these tests' processes are children of the test process itself)."""
    probe = ProcessesProbe()
    raw = probe.gather(GatherContext(LocalTransport()))
    raw["self"] = None
    return [r for r in probe.parse(raw) if isinstance(r, Process)]


def _mine(rows: list[Process], pid: int) -> Process:
    found = [r for r in rows if r.pid == pid]
    assert len(found) == 1, f"pid {pid} not reported"
    return found[0]


def test_live_exe_in_tmp_then_deleted():
    """A real copy of sleep run from /tmp: seen with exe_dir under /tmp, then as deleted once unlinked."""
    with tempfile.TemporaryDirectory(prefix="precaution-proc-", dir="/tmp") as tmp:
        exe = os.path.join(tmp, "sleepy")
        shutil.copy2(shutil.which("sleep") or "/bin/sleep", exe)
        proc = spawn([exe, "300"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        try:
            row = _mine(_rows_seen_from_outside(), proc.pid)
            assert (row.exe, row.exe_dir, row.exe_deleted, row.comm) == (exe, tmp, False, "sleepy")
            assert row.cmdline == f"{exe} 300" and row.stdin == "null" and row.stdout == "pipe"
            assert row.ppid == os.getpid() and row.uid == os.getuid()
            os.unlink(exe)
            row = _mine(_rows_seen_from_outside(), proc.pid)
            assert row.exe == exe and row.exe_deleted
        finally:
            proc.kill()
            proc.wait()


def test_live_shell_with_socket_stdin():
    """A real shell whose stdin and stdout are a TCP connection (over loopback): stdin is reported as tcp."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    shell = spawn(["/bin/sh"], stdin=peer.fileno(), stdout=peer.fileno())
    try:
        row = _mine(_rows_seen_from_outside(), shell.pid)
        assert row.comm == "sh" and row.stdin == "tcp" and row.stdout == "tcp"
    finally:
        shell.kill()
        shell.wait()
        for s in (client, peer, server):
            s.close()


def test_live_no_kernel_threads():
    probe = ProcessesProbe()
    rows = [r for r in probe.parse(probe.gather(GatherContext(LocalTransport()))) if isinstance(r, Process)]
    assert rows and all(r.exe or r.cmdline for r in rows)
    assert not any(r.comm == "kthreadd" for r in rows)
    assert sum(r.count for r in rows) >= len(rows)


# --- long-lived identities (what baselines compare) -------------------------------------------------------------

UPTIME_S = 100_000
TCP_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
# 0.0.0.0:22 LISTEN, socket inode 555
TCP_LISTEN_22 = "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1\n"


def _proc(pid: int, ppid: int, name: str, exe: str, age_s: int, cgroup: str, uid: int = 0) -> dict[str, str]:
    start = (UPTIME_S - age_s) * 100
    stat_fields = ["S", str(ppid)] + ["0"] * 17 + [str(start), "0"]
    return {"status": f"Name:\t{name}\nState:\tS (sleeping)\nPPid:\t{ppid}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}",
            "cmdline": f"{exe}\0", "exe": exe, "fd0": "/dev/null", "fd1": "/dev/null",
            "stat": f"{pid} ({name}) " + " ".join(stat_fields), "cgroup": f"0::{cgroup}\n"}


def _systemd_host_raw() -> dict:
    sess = "/user.slice/user-0.slice/session-7.scope"
    procs = {
        "1": _proc(1, 0, "systemd", "/usr/lib/systemd/systemd", UPTIME_S, "/init.scope"),
        "300": _proc(300, 1, "sshd", "/usr/sbin/sshd", 90_000, "/system.slice/ssh.service"),
        "310": _proc(310, 1, "cron", "/usr/sbin/cron", 90_000, "/system.slice/cron.service"),
        "311": _proc(311, 310, "sh", "/usr/bin/dash", 2, "/system.slice/cron.service"),  # a cron job: short
        "400": _proc(400, 300, "sshd", "/usr/sbin/sshd", 5_000, sess),  # the admin's login
        "401": _proc(401, 400, "bash", "/usr/bin/bash", 5_000, sess),  # the admin's shell
        "402": _proc(402, 401, "time", "/usr/bin/time", 3, sess),
        "403": _proc(403, 402, "precaution", "/usr/bin/python3.11", 3, sess),  # the inspection itself
        "404": _proc(404, 403, "sshd", "/usr/sbin/sshd", 1, sess),  # its `sshd -T`
        "405": _proc(405, 403, "find", "/usr/bin/find", 1, sess),
        "500": _proc(500, 1, "kworkerd", "/var/tmp/.k/kworkerd", 4_000, sess, uid=1000),  # left behind a logout
        "501": _proc(501, 401, "vim", "/usr/bin/vim.basic", 4_000, sess),  # interactive, still in the session
        "600": _proc(600, 1, "postgres", "/usr/lib/postgresql/15/bin/postgres", 80_000,
                     "/system.slice/system-postgresql.slice/postgresql@15-main.service", uid=101),
        "601": _proc(601, 600, "postgres", "/usr/lib/postgresql/15/bin/postgres", 80_000,
                     "/system.slice/system-postgresql.slice/postgresql@15-main.service", uid=101),
        "602": _proc(602, 600, "postgres", "/usr/lib/postgresql/15/bin/postgres", 3,  # a connection's backend
                     "/system.slice/system-postgresql.slice/postgresql@15-main.service", uid=101),
        "700": _proc(700, 1, "newsvc", "/usr/local/bin/newsvc", 30, "/system.slice/newsvc.service"),  # just started
    }
    return {"procs": procs, "net": {"tcp": TCP_HEADER + TCP_LISTEN_22}, "sockets": {"300": ["555"], "400": ["9"]},
            "self": "403", "uptime": f"{UPTIME_S}.00 1.00", "min_age_s": 600}


def _identities(raw: dict) -> dict[str, ProcessIdentity]:
    return {r.subject(): r for r in ProcessesProbe.parse(raw) if isinstance(r, ProcessIdentity)}


def test_identities_are_long_lived_programs_not_the_inspection():
    ids = _identities(_systemd_host_raw())
    assert set(ids) == {
        "/usr/lib/systemd/systemd|systemd|0|init.scope|",
        "/usr/sbin/sshd|sshd|0|ssh.service|listener",
        "/usr/sbin/cron|cron|0|cron.service|",
        "/var/tmp/.k/kworkerd|kworkerd|1000|session.scope|",  # re-parented out of a login session: long-lived
        "/usr/lib/postgresql/15/bin/postgres|postgres|101|postgresql@15-main.service|",
    }
    assert ids["/usr/lib/postgresql/15/bin/postgres|postgres|101|postgresql@15-main.service|"].count == 2
    rows = [r for r in ProcessesProbe.parse(_systemd_host_raw()) if isinstance(r, Process)]
    assert 403 not in {r.pid for r in rows}  # the inspecting process itself is never a row
    assert {"sshd", "find", "sh", "newsvc"} <= {r.comm for r in rows}  # rules still see every other process
    assert {r.pid: r.unit for r in rows}[401] == "session.scope" and {r.pid: r.listener for r in rows}[300]


def test_identities_do_not_change_with_short_lived_churn():
    """Another moment on the same host: new pids, other cron jobs and backends, another login session, the
    inspection run from elsewhere. The identity set is the same."""
    raw = _systemd_host_raw()
    later = json.loads(json.dumps(raw))
    procs = later["procs"]
    for pid in ("311", "602", "402", "403", "404", "405", "400", "401", "501"):
        del procs[pid]
    sess = "/user.slice/user-0.slice/session-9.scope"
    procs["900"] = _proc(900, 1, "precaution", "/usr/bin/python3.11", 2, "/system.slice/precaution.service")
    procs["901"] = _proc(901, 900, "nft", "/usr/sbin/nft", 1, "/system.slice/precaution.service")
    procs["910"] = _proc(910, 310, "sh", "/usr/bin/dash", 1, "/system.slice/cron.service")
    procs["911"] = _proc(911, 910, "logrotate", "/usr/sbin/logrotate", 1, "/system.slice/cron.service")
    procs["920"] = _proc(920, 300, "sshd", "/usr/sbin/sshd", 60, sess)
    procs["921"] = _proc(921, 920, "bash", "/usr/bin/bash", 60, sess)
    procs["300"]["stat"] = procs["300"]["stat"]  # same sshd listener
    later["self"] = "900"
    assert set(_identities(later)) == set(_identities(raw))


def test_new_long_lived_process_becomes_an_identity_once_old_enough_or_listening():
    raw = _systemd_host_raw()
    assert not any("newsvc" in s for s in _identities(raw))  # 30 s old: not yet
    raw["min_age_s"] = 10
    assert "/usr/local/bin/newsvc|newsvc|0|newsvc.service|" in _identities(raw)
    raw = _systemd_host_raw()
    raw["sockets"]["700"] = ["555"]
    assert "/usr/local/bin/newsvc|newsvc|0|newsvc.service|listener" in _identities(raw)


def test_unit_and_start_time_parsing():
    assert unit_of("0::/system.slice/ssh.service\n") == "ssh.service"
    assert unit_of("0::/user.slice/user-1000.slice/session-42.scope\n") == "session.scope"
    assert unit_of("0::/system.slice/run-u77.service\n") == "run.service"
    assert unit_of("12:pids:/\n1:name=systemd:/system.slice/cron.service\n0::/\n") == "cron.service"
    assert unit_of("0::/\n") == "" and unit_of("") == ""
    assert start_ticks("7 (a) b (c)) S 1 " + " ".join(["0"] * 17) + " 4242 0") == 4242
    assert start_ticks("garbage") is None


def test_processes_options_are_validated():
    from probes.base import ProbeSettings
    from probes.errors import ProbeInputError as UserError

    assert ProcessesProbe.configured(ProbeSettings(None, {"min_age_s": 5})).options.min_age_s == 5
    with pytest.raises(UserError, match=r"probes\.processes: min_age_s"):
        ProcessesProbe.configured(ProbeSettings(None, {"min_age_s": -1}))
    with pytest.raises(UserError, match=r"probes\.processes"):
        ProcessesProbe.configured(ProbeSettings(None, {"bogus": 1}))
