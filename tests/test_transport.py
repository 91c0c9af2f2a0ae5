from __future__ import annotations

import pytest

from agent.errors import UserError
from agent.state import atomic_write, ensure_state_dir, state_dir
from probes.transport import CommandUnavailable, LocalTransport


def test_fixture_root_rerouting(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/bash\n")
    t = LocalTransport(root=str(tmp_path))
    assert t.read_text("/etc/passwd").startswith("root:")
    assert t.list_dir("/etc") == ["passwd"]
    # /proc is mapped only when asked: a fixture root has none
    assert not t.exists("/proc/self")
    live = LocalTransport(root=str(tmp_path), proc_root="/proc")
    assert live.exists("/proc/self/status")
    with pytest.raises(CommandUnavailable):
        t.run(["true"])
    with pytest.raises(ValueError):
        t.read_text("etc/passwd")


def test_commands_run_with_timeout_and_missing_binary():
    t = LocalTransport()
    res = t.run(["echo", "hi"])
    assert res.returncode == 0 and res.stdout == "hi\n"
    with pytest.raises(CommandUnavailable, match="not installed"):
        t.run(["precaution-no-such-binary"])


def test_state_dir_resolution(tmp_path):
    assert state_dir({"PRECAUTION_HOME": str(tmp_path)}) == tmp_path
    assert str(state_dir({}, euid=0)) == "/var/lib/precaution"
    assert state_dir({"HOME": "/home/u"}, euid=1000) == state_dir({"HOME": "/home/u"}, euid=1000)
    assert str(state_dir({"HOME": "/home/u"}, euid=1000)) == "/home/u/.local/state/precaution"


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "f"
    atomic_write(target, b"one")

    with pytest.raises(TypeError):
        atomic_write(target, None)  # type: ignore[arg-type]
    assert target.read_bytes() == b"one"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_unusable_state_dir_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot create state directory"):
        ensure_state_dir(blocker / "sub")


def test_reads_are_whole_truncated_at_max_bytes_and_cover_proc(tmp_path):
    """Regular files are read in pieces of their stat size (not one max_bytes buffer each): contents stay
    exact, max_bytes still cuts, and /proc's size-0 files read whole."""
    t = LocalTransport()
    big = tmp_path / "big"
    big.write_bytes(bytes(range(256)) * 1000)  # 256,000 bytes
    assert t.read_bytes(str(big)) == big.read_bytes()
    assert t.read_bytes(str(big), max_bytes=1000) == big.read_bytes()[:1000]
    assert t.read_bytes(str(big), max_bytes=100_000) == big.read_bytes()[:100_000]
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert t.read_bytes(str(empty)) == b""
    with open("/proc/self/status", "rb") as fh:
        expected_first = fh.readline()
    assert t.read_bytes("/proc/self/status").startswith(expected_first)
    assert t.read_text("/proc/self/maps").count("\n") > 5  # larger than one small read, size 0 in stat
