"""The signed baseline document: round trip, and every way a stored baseline can be untrustworthy."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from baselines.diff import index
from baselines.rowdigest import row_digest
from baselines.store import (
    BaselineInvalid,
    BaselineMeta,
    Scope,
    check_identity,
    encode_body,
    key_fingerprint,
    load_document,
    sign_body,
)
from probes.observation import Observation

SCOPE = Scope("host", "local")


def meta(**kw):
    base = dict(scope=SCOPE, version=1, created_at="2026-01-01T00:00:00+00:00", created_by="alice",
                accepted_at="2026-01-01T00:00:00+00:00", accepted_by="alice", action="capture", accepted_items=0,
                tool_version="0.1.0", hostname="h1", machine_id="m" * 32, profile_id="default",
                probes=("accounts", "listeners"))
    base.update(kw)
    return BaselineMeta(**base)


OBS = [
    Observation("accounts", "root", {"name": "root", "uid": 0, "groups": ("root", "sudo"), "max": None}),
    Observation("accounts", "ünïcode\nname", {"name": "x", "uid": 5, "groups": (), "max": 90}),
    Observation("listeners", "tcp|0.0.0.0|22", {"port": 22, "pid": 7, "wildcard": True}, frozenset({"pid"})),
]


def document(key):
    return sign_body(encode_body(meta(), index(OBS), {"listeners": frozenset({"pid"})}), key)


def load(data, key):
    return load_document(data, key.public_key())


def test_round_trip_keeps_values_tuples_and_volatile():
    key = Ed25519PrivateKey.generate()
    baseline = load(document(key), key)
    assert baseline.meta == meta()
    assert dict(baseline.entries) == index(OBS)
    assert baseline.entries[("accounts", "root")]["groups"] == ("root", "sudo")  # tuples stay tuples
    assert baseline.volatile == {"listeners": frozenset({"pid"})}
    assert baseline.counts() == {"accounts": 2, "listeners": 1}
    assert {o.key for o in baseline.observations()} == {o.key for o in OBS}
    assert baseline.sha256 == hashlib.sha256(document(key).rsplit(b"\n", 2)[0] + b"\n").hexdigest()
    assert baseline.key_fingerprint == key_fingerprint(key.public_key())
    # every row carries the digest of its non-volatile attributes
    for o in OBS:
        vol = {"listeners": frozenset({"pid"})}.get(o.probe, frozenset())
        assert baseline.entries.probe_digests(o.probe)[o.subject] == row_digest(o.attrs, vol)


def test_every_single_byte_change_is_detected():
    key = Ed25519PrivateKey.generate()
    data = document(key)
    for pos in range(0, len(data), 7):
        tampered = bytearray(data)
        tampered[pos] ^= 0x01
        with pytest.raises(BaselineInvalid):
            load(bytes(tampered), key)


@pytest.mark.parametrize("cut", [1, 2, 50, 200])
def test_truncation_is_detected(cut):
    key = Ed25519PrivateKey.generate()
    data = document(key)
    with pytest.raises(BaselineInvalid) as exc:
        load(data[:-cut], key)
    assert exc.value.reason in ("unsigned", "altered", "bad-signature")


def test_unsigned_and_foreign_key_and_resigned_edit():
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    body = encode_body(meta(), index(OBS), {})
    with pytest.raises(BaselineInvalid) as exc:
        load(body, key)
    assert exc.value.reason == "unsigned"
    with pytest.raises(BaselineInvalid) as exc:
        load(sign_body(body, other), key)
    assert exc.value.reason == "foreign-key" and key_fingerprint(other.public_key()) in exc.value.message
    # an edit with the digest recomputed still fails: the signature covers the digest
    data = sign_body(body, key)
    edited = data.replace(b"tcp|0.0.0.0|22", b"tcp|0.0.0.0|23")
    assert edited != data
    lines = edited.split(b"\n")
    sig = json.loads(lines[-2])
    sig["signature"]["sha256"] = hashlib.sha256(b"\n".join(lines[:-2]) + b"\n").hexdigest()
    lines[-2] = json.dumps(sig, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(BaselineInvalid) as exc:
        load(b"\n".join(lines), key)
    assert exc.value.reason == "bad-signature"


def test_identity_checks():
    check_identity(meta(), SCOPE, "h1", "m" * 32)
    check_identity(meta(), SCOPE, "renamed", "m" * 32)  # same machine-id: a renamed host is the same host
    with pytest.raises(BaselineInvalid) as exc:
        check_identity(meta(), SCOPE, "h1", "n" * 32)
    assert exc.value.reason == "foreign-host"
    with pytest.raises(BaselineInvalid) as exc:
        check_identity(meta(machine_id=""), SCOPE, "h2", "")
    assert exc.value.reason == "foreign-host"
    with pytest.raises(BaselineInvalid) as exc:
        check_identity(meta(), Scope("host", "root-abc"), "h1", "m" * 32)
    assert exc.value.reason == "wrong-scope"


def test_bad_scope_ids_are_refused():
    with pytest.raises(ValueError):
        Scope("host", "../etc")


def test_many_blocks_round_trip_and_block_edits_are_caught():
    from baselines.store import BLOCK

    key = Ed25519PrivateKey.generate()
    many = {("files", f"/f{i}"): {"sha256": f"{i:064x}", "mode": 0o644, "links": ("a",) if i % 3 else None}
            for i in range(2 * BLOCK + 17)}
    data = sign_body(encode_body(meta(), many, {}), key)
    # header, three index blocks (mode 0o644 and "links" a tuple or None: one schema), a line a row, signature
    assert data.count(b"\n") == 1 + 3 + len(many) + 1
    loaded = load(data, key).entries
    assert dict(loaded) == many and dict(loaded.decoded()) == many
    assert loaded[("files", "/f1")]["links"] == ("a",)
    with pytest.raises(BaselineInvalid):
        load(data.replace(b"/f5000\"", b"/f5001\"", 1), key)


def test_old_format_is_refused_with_a_clear_message():
    key = Ed25519PrivateKey.generate()
    header = {"count": 0, "format": "precaution.baseline/v1", "meta": meta().to_json(), "schemas": [],
              "volatile": {}}
    data = sign_body(json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n", key)
    with pytest.raises(BaselineInvalid) as exc:
        load(data, key)
    assert exc.value.reason == "old-format"
    assert "precaution.baseline/v1" in exc.value.message and "capture --force" in exc.value.message


def test_rows_and_index_that_disagree_are_refused_even_when_signed():
    key = Ed25519PrivateKey.generate()
    body = encode_body(meta(), index(OBS), {})
    header, rest = body.split(b"\n", 1)
    # the signer's own bug, not tampering: one row's value line dropped, the rest re-signed
    lines = rest.split(b"\n")
    broken = header + b"\n" + b"\n".join(lines[:-2] + lines[-1:])
    with pytest.raises(BaselineInvalid) as exc:
        load(sign_body(broken, key), key)
    assert exc.value.reason == "corrupt"
    # a count that disagrees with the rows
    recount = body.replace(b'"count":3', b'"count":4', 1)
    assert recount != body
    with pytest.raises(BaselineInvalid) as exc:
        load(sign_body(recount, key), key)
    assert exc.value.reason == "corrupt" and "holds 3 rows" in exc.value.message


def test_empty_baseline_round_trips():
    key = Ed25519PrivateKey.generate()
    baseline = load(sign_body(encode_body(meta(), {}, {}), key), key)
    assert len(baseline.entries) == 0 and dict(baseline.entries) == {}
    assert baseline.counts() == {"accounts": 0, "listeners": 0}


def test_a_loaded_baseline_saves_to_the_same_document():
    key = Ed25519PrivateKey.generate()
    first = load(document(key), key)
    again = sign_body(encode_body(meta(), first.entries, first.volatile), key)
    assert again == document(key)


AWKWARD = {
    ("files", "/a],[b"): {"path": "/a],[b", "mode": 1},                       # the split marker in a string
    ("files", "/pair"): {"path": "/pair", "mode": 2},
    ("pkgs", "t"): {"deps": ("a", "b"), "files": ("c",), "n": 1},           # adjacent tuples: "],[" inside a row
    ("pkgs", "u"): {"deps": (), "files": (), "n": 2},
    ("load", "x"): {"avg": 0.5, "big": 2**70, "text": "ünï\n", "none": None},  # float, > 64-bit int, non-ASCII
    ("load", "y"): {"avg": 1.0, "big": 3, "text": "", "none": None},
}


@pytest.mark.parametrize("fast", [True, False])
def test_value_lines_round_trip_with_and_without_orjson(monkeypatch, fast):
    import baselines.store as store

    if not fast:
        monkeypatch.setattr(store, "_orjson", None)
    elif store._orjson is None:
        pytest.fail("orjson is not installed in this environment")
    key = Ed25519PrivateKey.generate()
    loaded = load(sign_body(encode_body(meta(), AWKWARD, {}), key), key)
    assert {k: dict(v) for k, v in loaded.entries.decoded()} == AWKWARD
    assert all(loaded.entries[k] == v for k, v in AWKWARD.items())
    assert type(loaded.entries[("load", "y")]["avg"]) is float and loaded.entries[("pkgs", "u")]["deps"] == ()


def test_both_encoders_give_documents_with_the_same_rows_and_digests(monkeypatch):
    import baselines.store as store

    key = Ed25519PrivateKey.generate()
    fast = load(sign_body(encode_body(meta(), index(OBS), {}), key), key)
    monkeypatch.setattr(store, "_orjson", None)
    slow = load(sign_body(encode_body(meta(), index(OBS), {}), key), key)
    assert dict(fast.entries.decoded()) == dict(slow.entries.decoded()) == index(OBS)
    for probe in ("accounts", "listeners"):
        assert fast.entries.probe_digests(probe) == slow.entries.probe_digests(probe)
