from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from probes.base import GatherContext
from probes.host.processes import Process, ProcessesProbe, fd_kind, join_cmdline
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
    """A live gather, parsed as if another process inspected: the probe leaves out its own process tree, and
    these tests' processes are children of the test process itself."""
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
    rows = probe.parse(probe.gather(GatherContext(LocalTransport())))
    assert rows and all(r.exe or r.cmdline for r in rows)
    assert not any(r.comm == "kthreadd" for r in rows)
    assert sum(r.count for r in rows) >= len(rows)
