"""Notices: signing, trust, expiry, subject, acknowledgement and lead time; refusals exit 2 and are recorded."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from agent import record
from agent.cli.main import main
from agent.notice import (
    Acknowledgement,
    Notice,
    NoticeSettings,
    RateLimits,
    TrustedIssuer,
    check,
    describe,
    parse_document,
    parse_duration,
    parse_target,
    sign_notice,
)
from tests.remote.conftest import UNIT, Issuer, ack, wait_open

NOW = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def _key():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


def _trusted(key) -> list[TrustedIssuer]:  # type: ignore[no-untyped-def]
    from agent.keys import key_fingerprint, public_key_b64

    pub = key.public_key()
    return [TrustedIssuer("Bureau", public_key_b64(pub), key_fingerprint(pub), "2026-01-01")]


def _notice(**kw) -> Notice:  # type: ignore[no-untyped-def]
    base = dict(id="N-1", issuer="Bureau", subject_unit=UNIT, contact="x", targets=("10.231.0.0/24",),
                kinds=("host",), window_start=NOW + dt.timedelta(days=2), window_end=NOW + dt.timedelta(days=3),
                rate=RateLimits(), lead_time=dt.timedelta(hours=24), issued_at=NOW - dt.timedelta(hours=1))
    base.update(kw)
    return Notice(**base)  # type: ignore[arg-type]


def _ack(signed, at: dt.datetime) -> Acknowledgement:  # type: ignore[no-untyped-def]
    return Acknowledgement(signed.notice.id, signed.digest, at, "subject")


SETTINGS = NoticeSettings(unit=UNIT)


def _codes(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.code for p in result.problems]


def test_valid_notice_round_trip() -> None:
    key = _key()
    signed = sign_notice(_notice(), key)
    back = parse_document(signed.to_document())
    assert back.notice == signed.notice and back.digest == signed.digest
    result = check(back, now=NOW, trusted=_trusted(key), settings=SETTINGS, ack=_ack(back, NOW))
    assert result.ok and result.issuer is not None
    # Acknowledged 24 h before the window, it is valid; 23 h before, it is late.
    late = check(back, now=NOW, trusted=_trusted(key), settings=SETTINGS,
                 ack=_ack(back, NOW + dt.timedelta(hours=25)))
    assert _codes(late) == ["late-delivery"]


@pytest.mark.parametrize(("change", "code"), [
    ("unsigned", "unsigned"), ("tampered", "tampered"), ("untrusted", "untrusted"), ("expired", "expired"),
    ("future", "future-issued"), ("subject", "wrong-subject"), ("unacked", "not-acknowledged"),
    ("other-ack", "not-acknowledged"), ("not-open", "not-open"),
])
def test_each_problem(change: str, code: str) -> None:
    key = _key()
    notice = _notice()
    now = NOW
    if change == "expired":
        now = NOW + dt.timedelta(days=4)
    if change == "future":
        notice = _notice(issued_at=NOW + dt.timedelta(hours=2))
    if change == "subject":
        notice = _notice(subject_unit="Unit B")
    signed = sign_notice(notice, key)
    trusted = _trusted(key)
    ack = _ack(signed, NOW)
    if change == "unsigned":
        signed = parse_document(json.dumps({"notice": json.loads(signed.body), "signature": None}).encode())
    if change == "tampered":
        doc = json.loads(signed.to_document())
        doc["notice"]["targets"] = ["0.0.0.0/0"]
        signed = parse_document(json.dumps(doc).encode())
    if change == "untrusted":
        trusted = _trusted(_key())
    if change == "unacked":
        ack = None  # type: ignore[assignment]
    if change == "other-ack":
        ack = Acknowledgement("N-1", "0" * 64, NOW, "subject")
    result = check(signed, now=now, trusted=trusted, settings=SETTINGS, ack=ack, require_open=change == "not-open")
    assert code in _codes(result)
    assert all(p.en and p.zh for p in result.problems)


def test_unit_not_configured_is_wrong_subject() -> None:
    key = _key()
    signed = sign_notice(_notice(), key)
    result = check(signed, now=NOW, trusted=_trusted(key), settings=NoticeSettings(), ack=_ack(signed, NOW))
    assert _codes(result) == ["wrong-subject"]


def test_agent_lead_time_overrides_a_shorter_notice() -> None:
    key = _key()
    signed = sign_notice(_notice(lead_time=dt.timedelta(0)), key)
    ack = _ack(signed, NOW + dt.timedelta(hours=30))  # 18 h before the window
    assert _codes(check(signed, now=NOW, trusted=_trusted(key), settings=SETTINGS, ack=ack)) == ["late-delivery"]
    short = NoticeSettings(unit=UNIT, lead_time=dt.timedelta(hours=12))
    assert check(signed, now=NOW, trusted=_trusted(key), settings=short, ack=ack).ok


def test_parsers() -> None:
    assert parse_duration("24h") == dt.timedelta(hours=24)
    assert parse_duration("90") == dt.timedelta(seconds=90)
    t = parse_target("root@10.231.1.11:2222")
    assert (t.user, t.host, t.port) == ("root", "10.231.1.11", 2222)
    assert parse_target("10.231.1.0/24").network is not None
    with pytest.raises(ValueError):
        parse_target("bad target!")
    assert "远程技术检测通知" in describe(sign_notice(_notice(), _key()), "zh-CN")


def _last(state: Path) -> record.Entry:
    return record.read_entries(state / record.RECORD_FILE)[-1]


# --- through the CLI, with files -------------------------------------------------------------------------------


def test_cli_issue_verify_ack(issuer: Issuer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "n.json"
    assert main(["notice", "issue", "--key", str(issuer.key_path), "--id", "N-7", "--issuer", "Bureau",
                 "--unit", UNIT, "--target", "10.231.1.11", "--kind", "host", "--start", "+1s", "--end", "+1h",
                 "--lead-time", "0", "-o", str(path)]) == 0
    assert main(["notice", "verify", str(path), "--unit", UNIT, "--lead-time", "0"]) == 2  # not yet acknowledged
    out = capsys.readouterr()
    assert "Notice of remote technical testing N-7" in out.out and "远程技术检测通知 N-7" in out.out
    assert "not been acknowledged" in out.err
    assert _last(issuer.state).summary["code"] == "not-acknowledged"
    assert ack(path) == 0
    first = _last(issuer.state)
    assert first.kind == "acknowledgement" and first.notice_id == "N-7"
    assert ack(path) == 0  # acknowledging again keeps the first delivery time
    assert _last(issuer.state).summary["acknowledged_at"] == first.summary["acknowledged_at"]
    assert main(["notice", "verify", str(path), "--unit", UNIT, "--lead-time", "0"]) == 0
    assert _last(issuer.state).kind == "notice"


def test_cli_ack_too_late_for_lead_time(issuer: Issuer, tmp_path: Path) -> None:
    path = issuer.notice(tmp_path / "n.json", ["10.231.1.11"], start=dt.timedelta(hours=2), end=dt.timedelta(hours=3),
                         lead_time=dt.timedelta(hours=24))
    assert main(["notice", "ack", str(path), "--unit", UNIT]) == 2
    kinds = [(e.kind, (e.summary or {}).get("code")) for e in record.read_entries(issuer.state / "record.jsonl")]
    assert kinds == [("acknowledgement", None), ("refusal", "late-delivery")]


def _bad_notice(issuer: Issuer, tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"{case}.json"
    now = dt.datetime.now(dt.UTC)
    if case == "unsigned":
        issuer.notice(path, ["10.231.1.11"], sign=False)
    elif case == "expired":
        issuer.notice(path, ["10.231.1.11"], start=dt.timedelta(hours=-3), end=dt.timedelta(hours=-1),
                      issued_at=now - dt.timedelta(days=1))
    elif case == "future":
        issuer.notice(path, ["10.231.1.11"], issued_at=now + dt.timedelta(hours=3))
    elif case == "wrong-subject":
        issuer.notice(path, ["10.231.1.11"], unit="Unit B")
    elif case == "tampered":
        issuer.notice(path, ["10.231.1.11"])
        doc = json.loads(path.read_bytes())
        doc["notice"]["targets"] = ["10.231.0.0/16"]
        path.write_text(json.dumps(doc))
    elif case == "unacknowledged":
        issuer.notice(path, ["10.231.1.11"])
        wait_open(path)
    elif case == "untrusted":
        other = tmp_path / "rogue.key"
        assert main(["notice", "keygen", str(other)]) == 0
        Issuer(other, issuer.state).notice(path, ["10.231.1.11"])
    elif case == "kind":
        issuer.notice(path, ["10.231.1.11"], kinds=("portscan",))
        assert ack(path) == 0
        wait_open(path)
    return path


CODES = {"unsigned": "unsigned", "expired": "expired", "future": "future-issued", "wrong-subject": "wrong-subject",
         "tampered": "tampered", "unacknowledged": "not-acknowledged", "untrusted": "untrusted", "kind": "out-of-scope"}


@pytest.mark.parametrize("case", sorted(CODES))
def test_remote_refuses_bad_notice(case: str, issuer: Issuer, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Each bad notice: exit 2, one clear line, a refusal in the record, and no connection attempted."""
    path = _bad_notice(issuer, tmp_path, case)
    code = main(["remote", "10.231.1.11", "--notice", str(path), "--unit", UNIT, "--lead-time", "0",
                 "--connect-timeout", "1", "--retries", "0"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("precaution: error:")
    last = _last(issuer.state)
    assert last.kind == "refusal" and last.summary["code"] == CODES[case]
    assert not [e for e in record.read_entries(issuer.state / "record.jsonl") if e.kind == "remote"]
    assert record.verify(issuer.state / "record.jsonl").ok


@pytest.mark.parametrize("case", ["unsigned", "expired", "future", "wrong-subject", "tampered", "untrusted"])
def test_ack_and_verify_refuse_bad_notice(case: str, issuer: Issuer, tmp_path: Path) -> None:
    path = _bad_notice(issuer, tmp_path, case)
    assert ack(path) == 2
    assert _last(issuer.state).summary["code"] == CODES[case]
    assert main(["notice", "verify", str(path), "--unit", UNIT, "--lead-time", "0"]) == 2
    assert _last(issuer.state).summary["code"] == CODES[case]


def test_trust_add_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k"
    assert main(["notice", "keygen", str(key)]) == 0
    assert main(["notice", "trust", "add", f"{key}.pub", "--name", "Bureau X"]) == 0
    assert main(["notice", "trust", "list"]) == 0
    assert "Bureau X" in capsys.readouterr().out
    assert main(["notice", "keygen", str(key)]) == 2  # never overwrites a key
