"""Batched transport calls (read_many, readlink_many, list_many, stat_many): over SSH they must give what the
local transport gives, path by path, for files that exist, are missing, are links (dangling, looping), are
directories, hold binary data, live in /proc, or are not readable by the user."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from probes.base import GatherContext
from probes.registry import get_probe
from probes.remote import ssh_batch
from probes.remote.ssh_transport import SSHEndpoint, SSHOptions, SSHTransport
from probes.transport import FileStat, LocalTransport
from tests.remote.conftest import SshLab

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


def _kernel_thread_pid() -> str:
    for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
        try:
            os.readlink(f"/proc/{pid}/exe")
        except FileNotFoundError:
            return pid  # a kernel thread: the link is there, its target is not
        except OSError:
            continue
    pytest.fail("no kernel thread found in /proc")


@pytest.fixture(scope="module")
def tree() -> Iterator[Path]:
    """A fixture tree every user can enter, with a few things only root may read."""
    top = Path(tempfile.mkdtemp(prefix="precaution-batch-"))
    top.chmod(0o755)
    (top / "text").write_text("hello\nworld")  # no final newline
    (top / "binary").write_bytes(b"a\0b\0\xff\xfe" + bytes(range(256)))
    (top / "empty").write_bytes(b"")
    (top / "big").write_bytes(b"x" * 100_000)
    (top / "secret").write_text("root only\n")
    (top / "secret").chmod(0o600)
    (top / "dir").mkdir()
    (top / "dir" / "we ird\nname's").write_text("odd name\n")
    (top / "dir" / ".hidden").write_text("dot\n")
    (top / "dir" / "..dots").write_text("dots\n")
    (top / "closed").mkdir(mode=0o700)
    (top / "closed").chmod(0o700)
    (top / "closed" / "inside").write_text("hidden\n")
    (top / "link").symlink_to("text")
    (top / "dirlink").symlink_to("dir")
    (top / "dangling").symlink_to("nowhere")
    (top / "loop1").symlink_to("loop2")
    (top / "loop2").symlink_to("loop1")
    (top / "fifo-free $(echo no) `x` 'q'").write_text("shell quoting\n")
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _paths(top: Path) -> list[str]:
    names = ["text", "binary", "empty", "big", "secret", "dir", "dir/we ird\nname's", "dir/.hidden", "closed",
             "closed/inside", "closed/missing", "link", "dirlink", "dangling", "loop1", "text/under-a-file",
             "missing", "missing/deeper", "fifo-free $(echo no) `x` 'q'"]
    kthread = _kernel_thread_pid()
    return [str(top / n) for n in names] + [
        "/proc/sys/kernel/ostype", "/proc/1/cmdline", "/proc/1/status", "/proc/1/exe", "/proc/1/fd",
        f"/proc/{kthread}/exe", f"/proc/{kthread}/fd", "/proc/999999999/status", "/etc/passwd", "/",
    ]


def _norm(value: object) -> Any:
    """Comparable form: the value, or (OSError subclass, errno) for an error."""
    if isinstance(value, OSError):
        return [type(value).__name__, value.errno]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, FileStat):
        # Everything SFTP-independent; times and inode of /proc entries are fine to compare (same kernel).
        return [value.mode, value.uid, value.gid, value.size, value.inode, value.mtime_ns]
    return value


def _results(t: Any, paths: list[str]) -> dict[str, Any]:
    # /proc/1/status changes between reads (memory figures): its first 20 bytes (Name:) do not. /proc files are
    # read with a small limit only: a local read of 8 MiB from /proc/sys fails (ENOMEM), head's 8 KiB reads do not.
    return {
        "read": {p: _norm(v) for p, v in t.read_many(paths, 20).items()},
        "read_full": {p: _norm(v) for p, v in t.read_many([p for p in paths if not p.startswith("/proc")]).items()},
        "readlink": {p: _norm(v) for p, v in t.readlink_many(paths).items()},
        "list": {p: _norm(v) for p, v in t.list_many([p for p in paths if p != "/proc/1/fd"]).items()},
        "lstat": {p: _norm(v) for p, v in t.stat_many([p for p in paths if not p.startswith("/proc")],
                                                     follow=False).items()},
        "stat": {p: _norm(v) for p, v in t.stat_many([p for p in paths if not p.startswith("/proc")]).items()},
    }


def _ssh(ssh_lab: SshLab, sudo: bool = False) -> SSHTransport:
    known = Path(tempfile.mkdtemp()) / "known_hosts"
    options = SSHOptions(key_file=str(ssh_lab.client_key), use_agent=False, known_hosts=known,
                         accept_new_host_key=True, sudo=sudo)
    return SSHTransport(SSHEndpoint(ssh_lab.hosts[0].ip), options).connect()


def _assert_same(local: dict[str, Any], remote: dict[str, Any]) -> None:
    for op in local:
        assert list(local[op]) == list(remote[op]), op  # same paths, same order
        diff = {p: (local[op][p], remote[op][p]) for p in local[op] if local[op][p] != remote[op][p]}
        assert not diff, f"{op}: local vs SSH differ: {diff}"


def test_batched_calls_match_local_as_root(ssh_lab: SshLab, tree: Path) -> None:
    paths = _paths(tree)
    local = _results(LocalTransport(), paths)
    with _ssh(ssh_lab) as t:
        remote = _results(t, paths)
    _assert_same(local, remote)
    # The mix really covers what it claims to (a change that made every call fail alike would pass above).
    read = local["read_full"]
    assert read[str(tree / "binary")] == (b"a\0b\0\xff\xfe" + bytes(range(256))).hex()
    assert len(bytes.fromhex(read[str(tree / "big")])) == 100_000
    assert local["read"][str(tree / "big")] == (b"x" * 20).hex()
    assert read[str(tree / "missing")] == ["FileNotFoundError", errno.ENOENT]
    assert read[str(tree / "text/under-a-file")] == ["NotADirectoryError", errno.ENOTDIR]
    assert read[str(tree / "dir")] == ["IsADirectoryError", errno.EISDIR]
    assert read[str(tree / "loop1")][1] == errno.ELOOP
    assert local["read"]["/proc/sys/kernel/ostype"] == b"Linux\n".hex()
    links = local["readlink"]
    assert links[str(tree / "dangling")] == "nowhere" and links[str(tree / "text")][1] == errno.EINVAL
    assert links[f"/proc/{_kernel_thread_pid()}/exe"] == ["FileNotFoundError", errno.ENOENT]
    assert local["list"][str(tree / "dir")] == sorted(["we ird\nname's", ".hidden", "..dots"])
    assert local["lstat"][str(tree / "link")][0] & 0o170000 == 0o120000


def test_batched_calls_match_local_through_sudo(ssh_lab: SshLab, tree: Path) -> None:
    paths = _paths(tree)
    local = _results(LocalTransport(), paths)
    with _ssh(ssh_lab, sudo=True) as t:
        _assert_same(local, _results(t, paths))


class _ShellAsNobody(SSHTransport):
    """The batch scripts run by the target's shell as an unprivileged user, without sshd in between: the user
    the lab's sshd would log in is root, and the point here is what the scripts report when reads are denied.
    Everything but the channel (script, parser, fast/slow paths) is the real code."""

    def __init__(self) -> None:
        super().__init__(SSHEndpoint("127.0.0.1"), SSHOptions())

    def _run_script(self, script: bytes, token: str, timeout: float) -> bytes:
        proc = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                               "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "sh", "-s"],
                              input=ssh_batch.wrap_script(script), capture_output=True, timeout=timeout, check=True)
        end = ssh_batch.terminator(token)
        assert proc.stdout.endswith(end)
        return proc.stdout[:-len(end)]

    def stat(self, path: str, follow: bool = True) -> FileStat:
        # The single-call fallback of stat_many (paths find could not stat), as the local user nobody.
        proc = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                               sys.executable, "-c", _STAT_ONE, path, "1" if follow else ""],
                              capture_output=True, text=True, check=True)
        result = json.loads(proc.stdout)
        if isinstance(result, list):
            raise OSError(result[0], os.strerror(result[0]), path)
        return FileStat(**result)


_STAT_ONE = """
import json, os, sys
try:
    st = os.stat(sys.argv[1], follow_symlinks=bool(sys.argv[2]))
except OSError as exc:
    print(json.dumps([exc.errno]))
else:
    print(json.dumps(dict(mode=st.st_mode, uid=st.st_uid, gid=st.st_gid, size=st.st_size, inode=st.st_ino,
                          mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns)))
"""

_LOCAL_AS_NOBODY = """
import json, sys
sys.path.insert(0, sys.argv[1])
from probes.transport import LocalTransport
from tests.remote.test_ssh_batch import _results
print(json.dumps(_results(LocalTransport(), json.loads(sys.argv[2]))))
"""


def test_batch_scripts_match_local_as_nobody(tree: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to nobody")
    paths = _paths(tree)
    proc = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable,
                           "-c", _LOCAL_AS_NOBODY, str(ROOT), json.dumps(paths)],
                          capture_output=True, text=True, check=True, cwd=str(ROOT))
    local = json.loads(proc.stdout)
    remote = json.loads(json.dumps(_results(_ShellAsNobody(), paths)))
    _assert_same(local, remote)
    denied = ["PermissionError", errno.EACCES]
    assert local["read"][str(tree / "secret")] == denied
    assert local["read"][str(tree / "closed/inside")] == denied
    assert local["list"][str(tree / "closed")] == denied
    assert local["readlink"]["/proc/1/exe"] == denied


def test_readlink_without_gnu_find(ssh_lab: SshLab, tree: Path) -> None:
    """Targets without GNU find (busybox) take the per-path readlink script for every path."""

    class NoGnuFind(SSHTransport):
        def _batch(self, kind: str, paths: list[str], max_bytes: int = 0, follow: bool = False,
                   timeout: float = 60.0) -> list[tuple[bytes, str]]:
            if kind.endswith("_fast"):
                return [(b"", "1"), (b"", "1")]  # what the fast scripts print when find has no -printf
            return super()._batch(kind, paths, max_bytes, follow, timeout)

    paths = _paths(tree)
    local = {p: _norm(v) for p, v in LocalTransport().readlink_many(paths).items()}
    files = [p for p in paths if not p.startswith("/proc")]  # /proc/PID/fd sizes count open fds: they move
    with _ssh(ssh_lab) as connected:
        fast = connected.stat_many(files, follow=False)
        with NoGnuFind(connected.endpoint, connected.options) as t:
            assert {p: _norm(v) for p, v in t.readlink_many(paths).items()} == local
            slow = t.stat_many(files, follow=False)
    assert list(slow) == list(fast)
    for path, value in slow.items():
        if isinstance(value, FileStat):  # one SFTP stat each: no inode, whole seconds
            other = fast[path]
            assert isinstance(other, FileStat), path
            assert (value.mode, value.uid, value.size, value.inode) == (other.mode, other.uid, other.size, 0)
        else:
            assert _norm(value) == _norm(fast[path]), path


def test_many_paths_in_chunks(ssh_lab: SshLab, tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh_batch, "CHUNK_PATHS", 7)
    paths = _paths(tree) * 2  # duplicates: one result per distinct path
    with _ssh(ssh_lab) as t:
        assert {p: _norm(v) for p, v in t.read_many(paths, 20).items()} == \
            {p: _norm(v) for p, v in LocalTransport().read_many(paths, 20).items()}
        assert list(t.list_many(paths)) == list(dict.fromkeys(paths))


def test_parse_records() -> None:
    token = ssh_batch.new_token()
    other = ssh_batch.new_token()
    # A payload that carries another run's markers is just data.
    out = f"{token}:a{other}=0\n{token}=0\n{token}:{token}=ENOENT\n".encode()
    assert ssh_batch.parse_records(out, token, 2) == [(f"a{other}=0\n".encode(), "0"), (b"", "ENOENT")]
    with pytest.raises(ssh_batch.BatchProtocolError):
        ssh_batch.parse_records(out[:-5], token, 2)
    with pytest.raises(ssh_batch.BatchProtocolError):
        ssh_batch.parse_records(out, token, 3)
    assert isinstance(ssh_batch.error_for("ENOENT", "/x"), FileNotFoundError)
    assert isinstance(ssh_batch.error_for("EACCES", "/x"), PermissionError)
    assert ssh_batch.error_for("something new", "/x").errno == errno.EIO
    with pytest.raises(ValueError):
        ssh_batch.build_script("read", ["relative"], token)


@pytest.mark.parametrize("probe_id", ["sysctl", "systemd_units", "startup_files", "authorized_keys"])
def test_batched_probes_same_locally_and_over_ssh(ssh_lab: SshLab, probe_id: str) -> None:
    """The probes that now read in batches observe over SSH what they observe inside the test host."""
    host = ssh_lab.hosts[0]
    with _ssh(ssh_lab) as t:
        remote = [o.to_json() for o in get_probe(probe_id)().observe(GatherContext(t))]
    local = ssh_lab.run_in(host, [sys.executable, "-m", "agent.cli.main", "probe", "run", probe_id])
    assert local.returncode == 0, local.stderr
    local_obs = json.loads(local.stdout)["observations"]
    assert remote == local_obs
    if probe_id in ("sysctl", "systemd_units", "startup_files"):
        assert remote, probe_id


def test_processes_and_owners_over_ssh(ssh_lab: SshLab) -> None:
    """Long-lived processes (the lab's sshd servers) look the same read locally and over SSH, in batches."""
    def servers(t: Any) -> set[tuple[Any, ...]]:
        rows = get_probe("processes")().observe(GatherContext(t))
        # sshd's title counts the pre-auth connections in flight ("[listener] 1 of 100-100 startups"): not part
        # of what the process is, and it changes while any client (this one included) connects
        return {(o.attrs["exe"], o.attrs["uid"], re.sub(r"\] \d+ of ", "] N of ", str(o.attrs["cmdline"])),
                 o.attrs["stdin"], o.attrs["stdout"])
                for o in rows if o.in_rules  # the Process rows (identities have no command line)
                and o.attrs["exe"] == "/usr/sbin/sshd" and " -D " in str(o.attrs["cmdline"])}

    with _ssh(ssh_lab) as t:
        remote = servers(t)
        owners = {o.attrs["port"]: o.attrs["exe"] for o in get_probe("listeners")().observe(GatherContext(t))}
    assert remote == servers(LocalTransport())
    assert len(remote) >= len(ssh_lab.hosts)
    assert owners[22] == "/usr/sbin/sshd"
