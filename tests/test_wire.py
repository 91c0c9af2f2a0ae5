"""The wire schema: strict documents, generated JSON Schema files that are never stale, pure verification."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from pydantic import ValidationError

from agent.wire import export
from agent.wire.chain import GENESIS, Head, verify_record
from agent.wire.notice import NoticeBody, NoticeDocument
from agent.wire.record import HostKeyEntry, RecordLine, parse_entry
from agent.wire.signatures import notice_signature_valid
from baselines.canonical_json import canonical_json
from baselines.ed25519 import fingerprint

NOTICE: dict[str, Any] = {
    "schema": "precaution.notice/v1", "id": "N-1", "issuer": "Bureau", "subject_unit": "Unit A", "contact": "",
    "targets": ["10.231.0.0/24"], "kinds": ["host", "portscan"],
    "window": {"start": "2026-03-02T08:00:00+00:00", "end": "2026-03-02T18:00:00+00:00"},
    "rate_limits": {"packets_per_second": None, "max_parallel": None}, "lead_time_s": 86400,
    "issued_at": "2026-03-01T08:00:00+00:00", "basis": "Art. 25",
}


def test_schema_files_are_current() -> None:
    assert export.stale() == [], "docs/schema is stale: run `make schema`"


def test_stale_schema_is_detected(tmp_path: Any) -> None:
    export.write(tmp_path)
    assert export.stale(tmp_path) == []
    (tmp_path / "scan.schema.json").write_text("{}\n")
    assert export.stale(tmp_path) == [str(tmp_path / "scan.schema.json")]
    assert export.main(["--check", str(tmp_path)]) == 1


def test_notice_targets_must_be_a_list() -> None:
    NoticeBody.model_validate(NOTICE)
    bad = {**NOTICE, "targets": "10.231.0.0/24"}
    with pytest.raises(ValidationError, match="targets"):
        NoticeBody.model_validate(bad)


@pytest.mark.parametrize("change", [
    {"extra": 1},                               # unknown field
    {"lead_time_s": "86400"},                   # no coercion of a string into an int
    {"kinds": ["host", "teleport"]},            # unknown test kind
    {"issued_at": "yesterday"},                 # not a timestamp
    {"schema": "precaution.notice/v0"},         # other schema version
    {"id": "  "},                               # blank
    {"rate_limits": {"packets_per_second": 0}}, # a rate limit is positive
    {"targets": []},                            # names no target
])
def test_notice_is_strict(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NoticeBody.model_validate({**NOTICE, **change})


def test_notice_signature_verification_is_pure() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from baselines.ed25519 import public_raw as raw_public_key

    key = Ed25519PrivateKey.generate()
    body = canonical_json(NOTICE)
    doc = NoticeDocument.model_validate({"notice": NOTICE, "signature": {
        "algorithm": "ed25519", "public_key": base64.b64encode(raw_public_key(key.public_key())).decode(),
        "value": base64.b64encode(key.sign(body)).decode()}})
    assert notice_signature_valid(doc)
    assert notice_signature_valid(doc, signed_body=body)
    tampered = copy.deepcopy(NOTICE)
    tampered["targets"] = ["0.0.0.0/0"]
    assert not notice_signature_valid(NoticeDocument.model_validate({"notice": tampered,
                                                                      "signature": doc.to_json()["signature"]}))
    other = Ed25519PrivateKey.generate()
    assert not notice_signature_valid(doc, public_key_b64=base64.b64encode(raw_public_key(other.public_key())).decode())
    assert not notice_signature_valid(NoticeDocument.model_validate({"notice": NOTICE, "signature": None}))


def _entry(seq: int, prev: str, key_fp: str, **over: Any) -> dict[str, Any]:
    return {"seq": seq, "time": "2026-03-02T08:00:00+00:00", "kind": "host-key", "actor": "root@a",
            "inspectors": [], "notice_id": None, "scope": None, "tests": [], "applied": None,
            "summary": {"host": "10.231.0.2", "key_type": "ssh-ed25519", "fingerprint": "SHA256:x",
                        "event": "accepted-new", "accepted_by": "--accept-new-host-key"},
            "results_sha256": None, "key": key_fp, "prev": prev, **over}


def test_record_entries_are_typed_by_kind() -> None:
    entry = parse_entry(_entry(1, GENESIS, "SHA256:k"))
    assert isinstance(entry, HostKeyEntry)
    with pytest.raises(ValidationError):
        parse_entry(_entry(1, GENESIS, "SHA256:k", summary={"anything": "goes"}))
    with pytest.raises(ValidationError):
        parse_entry(_entry(1, GENESIS, "SHA256:k", kind="party"))


def test_chain_verification_over_bytes() -> None:
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agent.wire.chain import link_of

    key = Ed25519PrivateKey.generate()
    fp = fingerprint(key.public_key())
    prev, lines = GENESIS, []
    for seq in (1, 2, 3):
        raw = canonical_json(_entry(seq, prev, fp))
        h = hashlib.sha256(raw).hexdigest()
        sig = base64.b64encode(key.sign(h.encode())).decode()
        lines.append(b'{"entry":' + raw + f',"hash":"{h}","sig":"{sig}"}}'.encode())
        prev = link_of(h, sig)
    data = b"\n".join(lines) + b"\n"
    assert verify_record(data, key.public_key()).ok
    assert verify_record(data, key.public_key(), Head(3, prev)).ok
    RecordLine.model_validate_json(lines[0])  # every line is a valid document
    cut = b"\n".join(lines[:2]) + b"\n"
    res = verify_record(cut, key.public_key(), Head(3, prev))
    assert not res.ok and "entries 3..3 are missing" in (res.reason or "")
    changed = data.replace(b'"seq":2,', b'"seq":2, ', 1)
    res = verify_record(changed, key.public_key())
    assert (res.ok, res.bad_seq, res.reason and res.reason.split(" (")[0]) == (False, 2, "bad hash")
    res = verify_record(data, Ed25519PrivateKey.generate().public_key())
    assert not res.ok and "another key" in (res.reason or "")
