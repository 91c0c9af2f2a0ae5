"""The inspection record: append, verify, and every kind of damage named at the right entry."""

from __future__ import annotations

import itertools
import json
import multiprocessing
from pathlib import Path

import pytest

from agent import record
from agent.cli.main import main
from agent.state import StateDir
from agent.wire.base import SeverityCounts
from agent.wire.chain import parse_line
from agent.wire.record import HostScope, InspectionContent, InspectionSummary, ScanContent, ScanSummaryDoc

NO_FINDINGS = SeverityCounts(info=0, low=0, medium=0, high=0, critical=0)


def _scan(i: int = 0) -> ScanContent:
    return ScanContent(scope=HostScope(host="h"), tests=["accounts"],
                       summary=ScanSummaryDoc(findings=NO_FINDINGS, probe_errors=i, baseline=None))


def _append(state: Path, actor: str = "tester", i: int = 0, results: object = None) -> record.Entry:
    return record.Recorder(StateDir(state), actor).write(_scan(i), results=results)


def _fill(n: int, state: Path) -> Path:
    for i in range(n):
        _append(state, i=i, results={"run": i})
    return state / record.RECORD_FILE


def test_append_and_verify(_isolated_state: Path) -> None:
    path = _fill(5, _isolated_state)
    entries = record.read_entries(path)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev == record.GENESIS
    assert all(b.prev == a.link for a, b in itertools.pairwise(entries))
    assert entries[2].results_sha256 == record.results_digest({"run": 2})
    result = record.verify(path)
    assert result.ok and result.entries == 5


def test_inspectors_and_scope_kept(_isolated_state: Path) -> None:
    inspectors = [record.Inspector("Li", "A-1"), record.Inspector("Wang", "B-2")]
    e = record.Recorder(StateDir(_isolated_state), "tester").write(InspectionContent(
        inspectors=[i.to_doc() for i in inspectors], notice_id="N-1", scope=HostScope(host="h", on_site=True),
        summary=InspectionSummary(host="h", findings=NO_FINDINGS, probe_errors=0)))
    back = record.read_entries(_isolated_state / record.RECORD_FILE)[0]
    assert back == e
    assert [i.id for i in back.inspectors] == ["A-1", "B-2"]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_one_byte_edit_names_the_entry(_isolated_state: Path) -> None:
    path = _fill(6, _isolated_state)
    lines = _lines(path)
    # Change one digit of entry 4's summary (probe_errors 3 -> 7).
    assert b'"probe_errors":3' in lines[3]
    lines[3] = lines[3].replace(b'"probe_errors":3', b'"probe_errors":7')
    path.write_bytes(b"".join(lines))
    result = record.verify(path)
    assert not result.ok
    assert result.bad_seq == 4 and result.bad_line == 4
    assert "bad hash" in (result.reason or "")


def test_edited_signature_names_the_entry(_isolated_state: Path) -> None:
    path = _fill(5, _isolated_state)
    lines = _lines(path)
    line = lines[1]
    pos = line.rindex(b'"sig":"') + 10
    flipped = b"A" if line[pos:pos + 1] != b"A" else b"B"
    lines[1] = line[:pos] + flipped + line[pos + 1:]
    path.write_bytes(b"".join(lines))
    result = record.verify(path)
    assert not result.ok and result.bad_seq == 2 and result.reason == "bad signature"


def test_edited_last_signature(_isolated_state: Path) -> None:
    path = _fill(3, _isolated_state)
    lines = _lines(path)
    line = lines[-1]
    pos = line.rindex(b'"sig":"') + 7
    lines[-1] = line[:pos] + (b"A" if line[pos:pos + 1] != b"A" else b"B") + line[pos + 1:]
    path.write_bytes(b"".join(lines))
    result = record.verify(path)
    assert not result.ok and result.bad_seq == 3 and result.reason == "bad signature"


def test_rewritten_entry_with_valid_hash_breaks_chain(_isolated_state: Path) -> None:
    """Someone rewrites entry 2 and recomputes its hash (but cannot sign): caught."""
    import hashlib

    path = _fill(4, _isolated_state)
    lines = _lines(path)
    body_raw, _h, sig = parse_line(lines[1].rstrip(b"\n"))
    body = json.loads(body_raw)
    body["summary"]["probe_errors"] = 99
    raw = record.canonical(body)
    h = hashlib.sha256(raw).hexdigest()
    lines[1] = b'{"entry":' + raw + f',"hash":"{h}","sig":"{sig}"}}\n'.encode()
    path.write_bytes(b"".join(lines))
    result = record.verify(path)
    assert not result.ok and result.bad_seq == 2
    assert result.reason == "bad signature"


def test_truncated_line(_isolated_state: Path) -> None:
    path = _fill(3, _isolated_state)
    data = path.read_bytes()
    path.write_bytes(data[:-40])
    result = record.verify(path)
    assert not result.ok and result.bad_seq == 3 and result.bad_line == 3
    assert "truncated" in (result.reason or "")


def test_entries_cut_off_the_end(_isolated_state: Path) -> None:
    path = _fill(5, _isolated_state)
    path.write_bytes(b"".join(_lines(path)[:3]))
    result = record.verify(path)
    assert not result.ok and result.bad_seq == 4
    assert "entries 4..5 are missing" in (result.reason or "")


def test_reordered_entries(_isolated_state: Path) -> None:
    path = _fill(5, _isolated_state)
    lines = _lines(path)
    lines[2], lines[3] = lines[3], lines[2]
    path.write_bytes(b"".join(lines))
    result = record.verify(path)
    assert not result.ok and result.bad_line == 3 and result.bad_seq == 3
    assert "reordered" in (result.reason or "")


def test_deleted_middle_entry(_isolated_state: Path) -> None:
    path = _fill(5, _isolated_state)
    lines = _lines(path)
    del lines[1]
    path.write_bytes(b"".join(lines))
    result = record.verify(path)
    assert not result.ok and result.bad_seq == 2 and "found seq 3" in (result.reason or "")


def test_other_key_is_named(_isolated_state: Path, tmp_path: Path) -> None:
    path = _fill(2, _isolated_state)
    (_isolated_state / "agent.key").rename(tmp_path / "old.key")  # a new agent key: old entries are not its own
    from agent.keys import agent_signing_key

    agent_signing_key(StateDir(_isolated_state))
    result = record.verify(path)
    assert not result.ok and result.bad_seq == 1 and "another key" in (result.reason or "")


def _worker(state: str, n: int) -> None:
    for i in range(n):
        _append(Path(state), f"proc-{i}", i)


def test_concurrent_writers(_isolated_state: Path) -> None:
    _append(_isolated_state, "first")  # the key exists before the writers race
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(str(_isolated_state), 15)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    path = _isolated_state / record.RECORD_FILE
    result = record.verify(path)
    assert result.ok and result.entries == 61
    assert [e.seq for e in record.read_entries(path)] == list(range(1, 62))


def test_cli_verify_and_show(_isolated_state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _fill(3, _isolated_state)
    assert main(["record", "verify"]) == 0
    assert "3 entries" in capsys.readouterr().out
    assert main(["record", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [e["seq"] for e in shown] == [1, 2, 3] and shown[0]["kind"] == "scan"
    assert main(["record", "show", "--lang", "zh-CN"]) == 0
    assert "检查检测记录" in capsys.readouterr().out
    lines = _lines(path)
    lines[1] = lines[1].replace(b'"actor":"tester"', b'"actor":"tostor"')
    path.write_bytes(b"".join(lines))
    assert main(["record", "verify"]) == 2
    err = capsys.readouterr().err
    assert "entry 2" in err and "bad hash" in err


def test_unknown_kind_rejected(_isolated_state: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        ScanContent.model_validate({**_scan().model_dump(), "kind": "made-up"})
    with pytest.raises(ValidationError):  # a scan's summary is a scan summary, not anything
        ScanContent.model_validate({**_scan().model_dump(), "summary": {"i": 1}})


def test_no_record_yet_is_intact_but_a_deleted_record_is_not(_isolated_state: Path) -> None:
    path = _isolated_state / record.RECORD_FILE
    assert record.verify(path).ok and record.verify(path).entries == 0  # nothing written, no key needed
    _append(_isolated_state)
    path.unlink()
    result = record.verify(path)
    assert not result.ok and "missing" in (result.reason or "")
