"""Pure verification of the inspection record's hash chain (no file I/O: lines and a public key in).

A line is ``{"entry":<canonical JSON body>,"hash":"<64 hex>","sig":"<88 base64>"}``; ``hash`` is SHA-256 over
the body bytes, ``sig`` the agent key's Ed25519 signature over the hash; each body's ``prev`` is the link
SHA-256(hash || sig) of the entry before (64 zeros first). The last signature therefore authenticates the whole
chain: every hash, link and sequence number is checked, one signature verified; signatures are checked one by
one only to name a bad entry. ``head`` (seq and link of the last entry, kept apart from the record) catches
entries cut off the end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from baselines.ed25519 import fingerprint
from baselines.ed25519 import verify_b64 as _verify

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
LINE_PREFIX = b'{"entry":'
_HASH_LEN = 64
_SIG_LEN = 88  # base64 of a 64-byte Ed25519 signature
_TAIL_LEN = len(',"hash":"') + _HASH_LEN + len('","sig":"') + _SIG_LEN + len('"}')


@dataclass(frozen=True, slots=True)
class Head:
    seq: int  # 0 when the head file is unreadable
    link: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    bad_seq: int | None = None  # the seq the bad entry claims (or should have had)
    bad_line: int | None = None  # 1-based line number
    reason: str | None = None  # bad hash | bad signature | broken chain | truncated line | reordered seq | ...

    def message(self) -> str:
        if self.ok:
            return f"record intact: {self.entries} entries, chain and signature verified"
        where = f"entry {self.bad_seq}" if self.bad_seq is not None else "record"
        line = f" (line {self.bad_line})" if self.bad_line is not None else ""
        return f"{where}{line}: {self.reason}"


def link_of(hash_hex: str, sig: str) -> str:
    return hashlib.sha256(f"{hash_hex}{sig}".encode("ascii")).hexdigest()


def parse_line(raw: bytes) -> tuple[bytes, str, str]:
    """(body bytes, hash, sig) of one line without its newline; ValueError when it is not a record line."""
    if not raw.startswith(LINE_PREFIX) or len(raw) < len(LINE_PREFIX) + _TAIL_LEN + 2:
        raise ValueError("not a record line")
    tail = raw[-_TAIL_LEN:]
    if not (tail.startswith(b',"hash":"') and tail.endswith(b'"}')):
        raise ValueError("not a record line")
    hash_hex = tail[9:9 + _HASH_LEN].decode("ascii")
    if tail[9 + _HASH_LEN:9 + _HASH_LEN + 9] != b'","sig":"':
        raise ValueError("not a record line")
    sig = tail[9 + _HASH_LEN + 9:-2].decode("ascii")
    return raw[len(LINE_PREFIX):-_TAIL_LEN], hash_hex, sig


def decode_line(raw: bytes) -> tuple[dict[str, Any], str, str]:
    body_raw, hash_hex, sig = parse_line(raw)
    body = json.loads(body_raw)
    if not isinstance(body, dict):
        raise ValueError("entry body is not an object")
    return body, hash_hex, sig


@dataclass(frozen=True, slots=True)
class _Checked:
    number: int
    seq: int
    hash: str
    sig: str


def verify_record(data: bytes, public_key: Ed25519PublicKey, head: Head | None = None) -> VerifyResult:
    """Check a whole record (the bytes of record.jsonl) and name the first bad entry."""
    lines = data.split(b"\n")
    trailing = lines.pop()  # b"" when the data ends with a newline, as every complete record does
    return verify_lines(lines, public_key, head, unterminated=trailing or None)


def verify_lines(lines: Sequence[bytes], public_key: Ed25519PublicKey, head: Head | None = None,
                 unterminated: bytes | None = None) -> VerifyResult:
    """Check complete lines (no newlines) in order; ``unterminated`` is a last line without its line end."""
    fp = fingerprint(public_key)
    checked: list[_Checked] = []
    prev, expected_seq = GENESIS, 1
    for index, raw in enumerate(lines, start=1):
        try:
            body_raw, hash_hex, sig = parse_line(raw)
            body = json.loads(body_raw)
            seq = body["seq"]
        except (ValueError, KeyError, TypeError):
            return VerifyResult(False, len(checked), expected_seq, index, "truncated or malformed line")
        if hashlib.sha256(body_raw).hexdigest() != hash_hex:
            return VerifyResult(False, len(checked), expected_seq, index,
                                "bad hash (the entry was changed after it was written)")
        if seq != expected_seq:
            return VerifyResult(False, len(checked), expected_seq, index,
                                f"reordered or missing entry (found seq {seq}, expected {expected_seq})")
        if body.get("prev") != prev:
            # Either the entry before had its signature changed (its link no longer matches) or this one
            # points elsewhere: the previous signature decides which.
            if checked and not _verify(public_key, checked[-1].sig, checked[-1].hash.encode("ascii")):
                return VerifyResult(False, len(checked) - 1, checked[-1].seq, checked[-1].number, "bad signature")
            return VerifyResult(False, len(checked), seq, index, "broken chain (prev does not match the entry before)")
        if body.get("key") != fp:
            return VerifyResult(False, len(checked), seq, index,
                                f"signed by another key ({body.get('key')}, agent key is {fp})")
        checked.append(_Checked(index, seq, hash_hex, sig))
        prev, expected_seq = link_of(hash_hex, sig), expected_seq + 1
    if unterminated is not None:
        return VerifyResult(False, len(checked), expected_seq, len(lines) + 1, "truncated line (no line end)")
    if checked and not _verify(public_key, checked[-1].sig, checked[-1].hash.encode("ascii")):
        # The last signature covers the chain; find the first entry whose own signature fails.
        for line in checked:
            if not _verify(public_key, line.sig, line.hash.encode("ascii")):
                return VerifyResult(False, line.seq - 1, line.seq, line.number, "bad signature")
    if head is not None:
        if head.seq > len(checked):
            return VerifyResult(False, len(checked), len(checked) + 1, len(checked) + 1,
                                f"truncated record: entries {len(checked) + 1}..{head.seq} are missing")
        if head.seq == len(checked) and checked and head.link != prev:
            return VerifyResult(False, len(checked), checked[-1].seq, checked[-1].number,
                                "last entry differs from the one the head file recorded")
    return VerifyResult(True, len(checked))
