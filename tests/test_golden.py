"""The golden-file helper has teeth: a normal run never writes an expected file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden import compare_golden


def test_missing_expected_file_fails_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRECAUTION_REGEN", raising=False)
    path = tmp_path / "case.expected.json"
    with pytest.raises(pytest.fail.Exception, match="expected file missing"):
        compare_golden({"a": 1}, path)
    assert not path.exists()


def test_a_difference_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRECAUTION_REGEN", raising=False)
    path = tmp_path / "case.expected.json"
    path.write_text('{"a": 2}\n')
    with pytest.raises(AssertionError, match="differs"):
        compare_golden({"a": 1}, path)
    assert path.read_text() == '{"a": 2}\n'


def test_only_the_explicit_flag_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "case.expected.json"
    monkeypatch.setenv("PRECAUTION_REGEN", "yes")  # not "1": no rewrite
    with pytest.raises(pytest.fail.Exception):
        compare_golden([1], path)
    monkeypatch.setenv("PRECAUTION_REGEN", "1")
    compare_golden([1], path)
    assert path.read_text() == "[\n 1\n]\n"
