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
        WaiverSpec(rule="R-A-1", subject="x*", justification="vendor appliance", expires=dt.date(2026, 12, 31)),
        WaiverSpec(rule="R-A-2", justification="old", expires=dt.date(2026, 11, 22)),
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
    w = WaiverSpec(finding="id-x", justification="ticket 42", expires=dt.date(2030, 1, 1))
    out = apply_waivers([finding(), finding(subject="z")], [w], dt.date(2026, 1, 1))
    assert [bool(f.waived_by) for f in out.findings] == [True, False]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("waivers: [{rule: R-A-1, expires: 2027-01-01}]", "justification"),
        ("waivers: [{justification: because, expires: 2027-01-01}]", "names a rule or a finding"),
        ("waivers: [{rule: R, justification: because, expires: someday}]", "expires"),
        ("waivers: [", "not valid YAML"),
    ],
)
def test_bad_waiver_files(tmp_path, text, message):
    path = tmp_path / "w.yaml"
    path.write_text(text)
    with pytest.raises(WaiverError, match=message):
        load_waivers(path)


def test_waiver_file_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(WaiverError, match=r"w.yaml: a waivers file is a mapping"):
        load_waivers(path)
