"""Baselines that disappear, roll back, race or are replaced by a FIFO: each is noticed, none hangs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integrity.common import (
    PRECAUTION,
    PROBES,
    capture,
    make_root,
    one_error_line,
    record_entries,
    run,
    scope_dir,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path)


def scan(root: Path) -> dict:  # type: ignore[type-arg]
    proc = run("scan", "--root", str(root), *PROBES, "--json")
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_deleted_current_baseline_is_an_integrity_finding(root: Path, _isolated_state: Path) -> None:
    capture(root)
    (scope_dir(_isolated_state) / "current.jsonl").unlink()
    data = scan(root)
    assert data["baseline"]["status"] == "invalid", data["baseline"]
    assert "deleted" in data["baseline"]["message"]
    assert any(f["rule_id"] == "PC-BASE-001" or f["severity"] == "critical" for f in data["findings"])
    assert "deleted" in one_error_line(run("baseline", "diff", "--root", str(root)))


def test_deleted_scope_directory_is_noticed_through_the_record(root: Path, _isolated_state: Path) -> None:
    capture(root)
    shutil.rmtree(scope_dir(_isolated_state).parent)
    data = scan(root)
    assert data["baseline"]["status"] == "invalid"
    assert "inspection record holds version 1" in data["baseline"]["message"]


def test_rollback_to_version_1_with_version_2_history_removed(root: Path, _isolated_state: Path) -> None:
    capture(root)
    sd = scope_dir(_isolated_state)
    v1 = (sd / "current.jsonl").read_bytes()
    (root / "proc/sys/net/ipv4/ip_forward").write_text("1\n")
    run("baseline", "accept", "--root", str(root), "--all", check=0)
    (v2_history,) = (sd / "history").glob("v000002-*")
    v2_history.unlink()
    (sd / "current.jsonl").write_bytes(v1)
    line = one_error_line(run("baseline", "diff", "--root", str(root)))
    assert "record says version 2" in line and "older baseline was put back" in line
    assert scan(root)["baseline"]["status"] == "invalid"


def test_fifo_in_place_of_current_does_not_hang(root: Path, _isolated_state: Path) -> None:
    capture(root)
    current = scope_dir(_isolated_state) / "current.jsonl"
    current.unlink()
    os.mkfifo(current)
    line = one_error_line(run("baseline", "diff", "--root", str(root), timeout=60))
    assert "FIFO" in line
    assert scan(root)["baseline"]["status"] == "invalid"


def test_symlink_in_place_of_current_is_not_followed(root: Path, _isolated_state: Path, tmp_path: Path) -> None:
    capture(root)
    current = scope_dir(_isolated_state) / "current.jsonl"
    target = tmp_path / "elsewhere.jsonl"
    target.write_bytes(current.read_bytes())
    current.unlink()
    current.symlink_to(target)
    assert "symbolic link" in one_error_line(run("baseline", "diff", "--root", str(root)))


def test_concurrent_accepts_write_one_version_each(root: Path, _isolated_state: Path) -> None:
    """Two `baseline accept --all` at once used to write two different files for one version."""
    capture(root)
    for round_ in range(3):
        (root / "proc/sys/net/ipv4/ip_forward").write_text(f"{round_ % 2 + 1}\n" if round_ % 2 == 0 else "0\n")
        procs = [subprocess.Popen([PRECAUTION, "baseline", "accept", "--root", str(root), "--all"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        assert sum("accepted 1 of 1" in o for o, _ in outs) == 1, outs  # the second found nothing left to accept
    history = sorted(p.name for p in (scope_dir(_isolated_state) / "history").iterdir())
    versions = [name[:7] for name in history]
    assert len(versions) == len(set(versions)) == 4, history
    accepted = [e["summary"]["version"] for e in record_entries(_isolated_state) if e["kind"].startswith("baseline")]
    assert accepted == [1, 2, 3, 4]
    run("baseline", "diff", "--root", str(root), check=0)
    run("record", "verify", check=0)


def test_concurrent_forced_captures_write_one_version_each(root: Path, _isolated_state: Path) -> None:
    capture(root)
    procs = [subprocess.Popen([PRECAUTION, "baseline", "capture", "--root", str(root), *PROBES, "--force"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    versions = sorted(p.name[:7] for p in (scope_dir(_isolated_state) / "history").iterdir())
    assert versions == ["v000001", "v000002", "v000003", "v000004"]
    recorded = [e["summary"]["version"] for e in record_entries(_isolated_state) if e["kind"].startswith("baseline")]
    assert recorded == [1, 2, 3, 4]


def test_save_interrupted_before_its_record_entry_is_recovered(root: Path, _isolated_state: Path) -> None:
    """A crash between writing version 2 and its record entry: the record is completed, no false alarm."""
    from agent.baseline_files import BaselineFiles, host_scope
    from agent.state import StateDir

    capture(root)
    (root / "proc/sys/net/ipv4/ip_forward").write_text("1\n")
    run("baseline", "accept", "--root", str(root), "--all", check=0)
    # simulate the crash: drop the last record entry (baseline-accept v2) and its head
    lines = (_isolated_state / "record.jsonl").read_bytes().splitlines(keepends=True)
    assert json.loads(lines[-1])["entry"]["kind"] == "baseline-accept"
    (_isolated_state / "record.jsonl").write_bytes(b"".join(lines[:-1]))
    head = json.loads(lines[-2])
    from agent.record import canonical, link_of

    (_isolated_state / "record.head").write_bytes(
        canonical({"seq": head["entry"]["seq"], "link": link_of(head["hash"], head["sig"])}) + b"\n")
    run("baseline", "diff", "--root", str(root), check=0)
    last = record_entries(_isolated_state)[-1]
    assert last["kind"] == "baseline-accept" and last["summary"]["version"] == 2 and last["summary"]["recovered"]
    recorded = BaselineFiles(StateDir(_isolated_state)).recorded(host_scope(str(root)))
    assert recorded is not None and recorded.version == 2
    run("record", "verify", check=0)
