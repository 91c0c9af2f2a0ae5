from __future__ import annotations

import datetime as dt

import pytest

from baselines.model import ActionKind, Finding, Remediation, Severity, Text
from baselines.waivers import WaiverError, WaiverSpec, apply_waivers, load_waivers


def finding(rule: str = "R-A-1", subject: str = "x") -> Finding:
    t = Text("t", "题")
    return Finding("id-" + subject, rule, "h", "p", subject, Severity.HIGH, t, t,
                   Remediation(ActionKind.INVESTIGATE, t))


def test_active_waiver_applies_and_expired_one_does_not():
    today = dt.date(2026, 11, 23)
    waivers = [
        WaiverSpec(rule="R-A-1", subject="x*", justification="vendor appliance", expires=dt.date(2026, 12, 31),
                   approved_by="ciso"),
        WaiverSpec(rule="R-A-2", justification="old", expires=dt.date(2026, 11, 22), approved_by="ciso"),
    ]
    out = apply_waivers([finding(), finding("R-A-1", "y"), finding("R-A-2")], waivers, today)
    assert [bool(f.waived_by) for f in out.findings] == [True, False, False]
    assert out.findings[0].waived_by is not None
    assert out.findings[0].waived_by.en == "vendor appliance (until 2026-12-31)"
    assert out.findings[0].waived_by.zh == "vendor appliance（有效期至 2026-12-31）"
    assert [w.rule for w in out.expired] == ["R-A-2"]
    # the day of expiry still counts; the day after it no longer does
    assert apply_waivers([finding()], waivers[:1], dt.date(2027, 1, 1)).findings[0].waived_by is None


def test_waiver_by_finding_id():
    w = WaiverSpec(finding="id-x", justification="ticket 42", expires=dt.date(2030, 1, 1), approved_by="ciso")
    out = apply_waivers([finding(), finding(subject="z")], [w], dt.date(2026, 1, 1))
    assert [bool(f.waived_by) for f in out.findings] == [True, False]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("waivers: [{rule: R-A-1, expires: 2027-01-01, approved_by: x}]", "justification"),
        ("waivers: [{justification: because, expires: 2027-01-01, approved_by: x}]", "names a rule or a finding"),
        ("waivers: [{rule: R, justification: because, expires: someday, approved_by: x}]", "expires"),
        ("waivers: [", "not valid YAML"),
    ],
)
def test_bad_waiver_files(tmp_path, text, message):
    path = tmp_path / "w.yaml"
    path.write_text(text)
    with pytest.raises(WaiverError, match=message):
        load_waivers(path, today=dt.date(2026, 11, 1))


def test_waiver_file_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(WaiverError, match=r"w.yaml:1: a waivers file is a mapping"):
        load_waivers(path)


def test_waiver_needs_approver_and_bounded_expiry_with_file_and_line(tmp_path):
    """A waiver with no approved_by, or expiring in 2099, silenced a HIGH finding: both are refused, each with
    file:line: reason."""
    path = tmp_path / "w.yaml"
    path.write_text("waivers:\n"
                    "  - rule: R-A-1\n"
                    "    justification: vendor appliance\n"
                    "    expires: 2027-01-01\n"
                    "  - rule: R-A-2\n"
                    "    justification: forever\n"
                    "    approved_by: ciso\n"
                    "    expires: 2099-01-01\n"
                    "  - rule: R-A-3\n"
                    "    justification: blank approver\n"
                    "    approved_by: '  '\n"
                    "    expires: 2027-01-01\n")
    with pytest.raises(WaiverError) as err:
        load_waivers(path, today=dt.date(2026, 11, 23))
    lines = str(err.value).split("; ")  # one line for the CLI, every problem in it
    assert lines[0] == f"{path}:2: waiver 1: approved_by is required (who approved this waiver)"
    assert lines[1].startswith(f"{path}:8: waiver 2: expires 2099-01-01, more than 365 days ahead")
    assert lines[2].startswith(f"{path}:11: waiver 3: approved_by:")
    assert len(lines) == 3
    assert err.value.zh and "审批人" in err.value.zh


def test_waiver_expiry_limit_is_configurable(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("waivers: [{rule: R-A-1, justification: x-ray, approved_by: ciso, expires: 2027-06-01}]\n")
    with pytest.raises(WaiverError, match="more than 30 days ahead"):
        load_waivers(path, max_days=30, today=dt.date(2026, 11, 23))
    assert [w.approved_by for w in load_waivers(path, max_days=365, today=dt.date(2026, 11, 23))] == ["ciso"]


@pytest.mark.parametrize("kind", ["dir", "fifo", "badutf8"])
def test_waiver_path_that_is_not_a_text_file(tmp_path, kind):
    import os

    path = tmp_path / "w.yaml"
    if kind == "dir":
        path.mkdir()
        expected = "waivers file is a directory"
    elif kind == "fifo":
        os.mkfifo(path)
        expected = "waivers file is a FIFO"
    else:
        path.write_bytes(b"waivers: [\xff]\n")
        expected = "waivers file is not UTF-8 text"
    with pytest.raises(WaiverError, match=expected):
        load_waivers(path)
