"""Each security helper exists once; these are its tests (canonical JSON, Ed25519, fingerprints, endpoints,
durations, test kinds, find stamps)."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.duration import parse_duration
from baselines import ed25519
from baselines.canonical_json import canonical_json
from probes.endpoint import Endpoint, EndpointError, parse_endpoint
from probes.find_stamp import stamp_ns
from probes.key_fingerprint import sha256_fingerprint
from probes.test_kinds import TEST_KINDS


def test_canonical_json_is_stable_and_compact() -> None:
    assert canonical_json({"b": [1, {"z": 1, "a": "é"}], "a": None}) == '{"a":null,"b":[1,{"a":"é","z":1}]}'.encode()
    assert canonical_json({"x": 1, "y": 2}) == canonical_json({"y": 2, "x": 1})


def test_ed25519_sign_verify_and_key_formats(tmp_path: Path) -> None:
    key = ed25519.generate()
    sig = ed25519.sign_b64(key, b"message")
    assert ed25519.verify_b64(key.public_key(), sig, b"message")
    assert not ed25519.verify_b64(key.public_key(), sig, b"messagE")
    assert not ed25519.verify_b64(ed25519.generate().public_key(), sig, b"message")
    assert not ed25519.verify_b64(key.public_key(), "not base64!", b"message")
    pem = ed25519.private_pem(key)
    again = ed25519.load_private_pem(pem)
    assert ed25519.public_b64(again.public_key()) == ed25519.public_b64(key.public_key())
    b64 = ed25519.public_b64(key.public_key())
    for text in (pem, b64.encode() + b"\n"):
        assert ed25519.public_b64(ed25519.load_public(text)) == b64
    with pytest.raises(ed25519.KeyFormatError) as bad:
        ed25519.load_private_pem(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    assert bad.value.reason == "unreadable"
    with pytest.raises(ed25519.KeyFormatError):
        ed25519.load_public_b64("AAAA")


def test_ed25519_rejects_other_key_types() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ed25519.KeyFormatError) as bad:
        ed25519.load_private_pem(other)
    assert bad.value.reason == "not-ed25519"


def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    """The one fingerprint form is OpenSSH's: the same string `ssh-keygen -l` prints for the same key."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    line = (tmp_path / "k.pub").read_text().split()
    blob = base64.b64decode(line[1])
    listed = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(tmp_path / "k.pub")],
                            capture_output=True, text=True, check=True).stdout.split()[1]
    assert sha256_fingerprint(blob) == listed
    # An Ed25519 key's fingerprint is over its 32 raw bytes, in the same form.
    key = ed25519.generate()
    raw = base64.b64decode(ed25519.public_b64(key.public_key()))
    assert ed25519.fingerprint(key.public_key()) == sha256_fingerprint(raw)


@pytest.mark.parametrize(("text", "expected"), [
    ("10.0.0.1", Endpoint("10.0.0.1")),
    ("root@host.example", Endpoint("host.example", "root")),
    ("ops.admin@10.0.0.1:2222", Endpoint("10.0.0.1", "ops.admin", 2222)),
    ("root@[fd00::1]:22", Endpoint("fd00::1", "root", 22)),
    (" [::1] ", Endpoint("::1")),
])
def test_endpoints(text: str, expected: Endpoint) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize(("text", "reason"), [("root@", "syntax"), ("a@b@c", "syntax"), ("host:0", "port"),
                                              ("host:65536", "port"), ("fd00::1", "syntax"), ("", "syntax"),
                                              ("ho st", "syntax"), ("-x@host", "syntax")])
def test_bad_endpoints(text: str, reason: str) -> None:
    with pytest.raises(EndpointError) as bad:
        parse_endpoint(text)
    assert bad.value.reason == reason


def test_notice_and_remote_read_endpoints_alike() -> None:
    from agent.notice import parse_target
    from probes.remote.ssh_transport import SSHEndpoint

    target, ssh = parse_target("ops@10.0.0.1:2222"), SSHEndpoint.parse("ops@10.0.0.1:2222")
    assert (target.user, target.host, target.port) == (ssh.user, ssh.host, ssh.port)


def test_durations() -> None:
    assert parse_duration("90s") == dt.timedelta(seconds=90)
    assert parse_duration(" 30m ") == dt.timedelta(minutes=30)
    assert parse_duration("24h") == parse_duration("1d") == dt.timedelta(days=1)
    assert parse_duration("1.5") == dt.timedelta(seconds=1.5)
    for bad in ("", "-1h", "1w", "h", "banana", "1 h 2"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)


def test_one_list_of_test_kinds() -> None:
    from agent import notice, scope
    from probes.network import target

    assert notice.TEST_KINDS is TEST_KINDS and scope.KINDS is TEST_KINDS and target.KINDS is TEST_KINDS


@pytest.mark.parametrize(("text", "ns"), [
    ("1715000000.1234567890", 1_715_000_000_123_456_789),
    (b"1715000000.1234567890", 1_715_000_000_123_456_789),
    ("1715000000.5", 1_715_000_000_500_000_000),
    ("1715000000", 1_715_000_000_000_000_000),
    ("0.0000000010", 1),
    ("-1.5", -1_500_000_000),
    ("-0.5000000000", -500_000_000),
])
def test_find_stamps(text: str | bytes, ns: int) -> None:
    assert stamp_ns(text) == ns


def test_find_stamp_agrees_with_stat(tmp_path: Path) -> None:
    """Against real GNU find: its %T@ of a file is the file's st_mtime_ns."""
    path = tmp_path / "f"
    path.write_text("x")
    out = subprocess.run(["find", str(path), "-printf", "%T@"], capture_output=True, check=True).stdout
    assert stamp_ns(out) == path.stat().st_mtime_ns
