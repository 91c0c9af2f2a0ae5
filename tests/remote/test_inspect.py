"""On-site inspection (Art. 25 ¶1): two inspectors or more, with identification, both recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent import record
from agent.cli.main import main
from tests.remote.conftest import UNIT, Issuer


def _entries(state: Path) -> list[record.Entry]:
    return record.read_entries(state / record.RECORD_FILE)


@pytest.mark.parametrize("inspectors", [
    [], ["Li Ming:GA-0001"], ["Li Ming:GA-0001", "Li Ming again:GA-0001"], ["no-id-given", "Wang Fang:GA-0002"],
], ids=["none", "one", "same-id-twice", "one-without-id"])
def test_fewer_than_two_refused(inspectors: list[str], _isolated_state: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["inspect", "--on-site", "--probe", "accounts"]
    for i in inspectors:
        argv += ["--inspector", i]
    assert main(argv) == 2
    assert "precaution: error:" in capsys.readouterr().err
    entries = _entries(_isolated_state)
    assert [e.kind for e in entries] == ["refusal"]
    assert entries[0].tests == ("on-site",)
    assert not [e for e in entries if e.kind == "inspection"]  # nothing ran


def test_two_inspectors_run_and_are_recorded(_isolated_state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["inspect", "--on-site", "--inspector", "Li Ming:GA-0001", "--inspector", "Wang Fang:GA-0002",
                 "--probe", "accounts", "--json"])
    assert code in (0, 1)
    data = json.loads(capsys.readouterr().out)
    assert data["inspection"]["inspectors"] == [{"name": "Li Ming", "id": "GA-0001"},
                                                {"name": "Wang Fang", "id": "GA-0002"}]
    assert [p["id"] for p in data["probes"]] == ["accounts"] and data["probes"][0]["status"] == "ok"
    entry = _entries(_isolated_state)[-1]
    assert entry.kind == "inspection" and [i.id for i in entry.inspectors] == ["GA-0001", "GA-0002"]
    assert entry.results_sha256 == record.results_digest(data)
    assert record.verify(_isolated_state / record.RECORD_FILE).ok


def test_inspection_under_a_notice(issuer: Issuer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notice = issuer.notice(tmp_path / "n.json", ["10.231.1.11"], kinds=("host",))
    elsewhere = issuer.notice(tmp_path / "b.json", ["10.231.1.11"], kinds=("host",), unit="Unit B")
    argv = ["inspect", "--on-site", "--inspector", "Li Ming:GA-0001", "--inspector", "Wang Fang:GA-0002",
            "--probe", "accounts", "--lead-time", "0"]
    assert main([*argv, "--notice", str(elsewhere)]) == 2  # a notice addressed elsewhere is refused
    assert _entries(issuer.state)[-1].summary["code"] == "wrong-subject"
    # and --unit cannot make this agent another unit than the configured one
    assert main([*argv, "--notice", str(notice), "--unit", "Unit B"]) == 2
    assert "differs from the configured unit" in capsys.readouterr().err
    argv += ["--notice", str(notice)]
    assert main([*argv, "--unit", UNIT, "--lang", "zh-CN"]) in (0, 1)
    assert "现场检查人员" in capsys.readouterr().out
    assert _entries(issuer.state)[-1].notice_id == "N-2026-001"
