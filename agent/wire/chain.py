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
    from baselines.ed25519 import Ed25519PublicKey

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
    acknowledged: tuple[str, ...] = ()  # problems an operator acknowledged (a record-acknowledgement entry)
    problems: tuple[str, ...] = ()  # every problem not acknowledged, first first

    def message(self) -> str:
        if self.ok:
            acked = (f"; {len(self.acknowledged)} earlier problem(s) acknowledged by an operator"
                     if self.acknowledged else "")
            return f"record intact: {self.entries} entries, chain and signature verified{acked}"
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


def loads_body(data: bytes) -> Any:
    """An entry body parsed by orjson (5x faster than json on record bodies: most of a verify's time), or by
    json where orjson refuses what json accepts (NaN, integers beyond 64 bits): the same bodies pass as before."""
    import orjson  # here: `record --help` and the collector's import of this module stay light

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


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
    key: str


@dataclass(slots=True)
class _Problem:
    seq: int | None
    line: int | None
    reason: str
    acknowledged_by: int | None = None  # seq of the acknowledgement entry that covers it

    def text(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "record"
        line = f" (line {self.line})" if self.line is not None else ""
        return f"{where}{line}: {self.reason}"


def verify_record(data: bytes, public_key: Ed25519PublicKey, head: Head | None = None) -> VerifyResult:
    """Check a whole record (the bytes of record.jsonl) and name the first problem nobody acknowledged."""
    lines = data.split(b"\n")
    trailing = lines.pop()  # b"" when the data ends with a newline, as every complete record does
    return verify_lines(lines, public_key, head, unterminated=trailing or None)


def verify_lines(lines: Sequence[bytes], public_key: Ed25519PublicKey, head: Head | None = None,
                 unterminated: bytes | None = None) -> VerifyResult:
    """Check complete lines (no newlines) in order; ``unterminated`` is a last line without its line end.

    Every problem is collected, not only the first: a discontinuity the agent itself found and declared (a
    ``record-break`` entry, written instead of silently restarting the chain) starts a new segment, and a
    ``record-acknowledgement`` entry (an operator's ``record acknowledge``) covers every problem before it.
    A replaced agent key (``agent-key`` entry, event replaced) leaves earlier entries unverifiable: that too is
    a problem until acknowledged. ``head`` with seq 0 stands for a damaged head file."""
    fp = fingerprint(public_key)
    problems: list[_Problem] = []
    checked: list[_Checked] = []
    segment_ends: list[_Checked] = []
    prev, expected_seq, resync = GENESIS, 1, False
    replaced: dict[str, int] = {}  # old key fingerprint -> seq of the entry that recorded its replacement

    def sig_ok(c: _Checked) -> bool:
        return _verify(public_key, c.sig, c.hash.encode("ascii"))

    for index, raw in enumerate(lines, start=1):
        try:
            body_raw, hash_hex, sig = parse_line(raw)
            body = loads_body(body_raw)
            seq, kind, summary = int(body["seq"]), str(body["kind"]), body.get("summary")
        except (ValueError, KeyError, TypeError):
            problems.append(_Problem(expected_seq, index, "truncated or malformed line"))
            resync = True
            continue
        if hashlib.sha256(body_raw).hexdigest() != hash_hex:
            problems.append(_Problem(seq, index, "bad hash (the entry was changed after it was written)"))
        is_break = kind == "record-break"
        if seq != expected_seq or body.get("prev") != prev:
            if checked:
                segment_ends.append(checked[-1])
            if is_break or resync:
                pass  # declared by the agent (its message says what), or reported already (the bad line before)
            elif seq != expected_seq:
                problems.append(_Problem(expected_seq, index,
                                         f"reordered or missing entry (found seq {seq}, expected {expected_seq})"))
            elif checked and checked[-1].key == fp and not sig_ok(checked[-1]):
                # the entry before had its signature changed, so its link no longer matches
                problems.append(_Problem(checked[-1].seq, checked[-1].number, "bad signature"))
            else:
                problems.append(_Problem(seq, index, "broken chain (prev does not match the entry before)"))
        resync = False
        message = str(summary.get("message", "")) if isinstance(summary, dict) else ""
        if is_break:
            problems.append(_Problem(seq, index, f"break found and recorded by the agent: {message}"))
        if kind == "agent-key" and isinstance(summary, dict) and summary.get("event") == "replaced":
            old = str(summary.get("previous") or "")
            replaced[old] = seq
            problems.append(_Problem(seq, index, f"agent key replaced ({message}): entries before are signed by "
                                                 f"{old or 'an unknown key'}, which is no longer present"))
        if kind == "record-acknowledgement":
            for p in problems:
                if p.acknowledged_by is None:
                    p.acknowledged_by = seq
        checked.append(_Checked(index, seq, hash_hex, sig, str(body.get("key"))))
        prev, expected_seq = link_of(hash_hex, sig), seq + 1
    if checked:
        segment_ends.append(checked[-1])
    # Entries of a key replaced later cannot be checked (a problem above); any other key is foreign.
    for c in checked:
        if c.key != fp and not (c.key in replaced and c.seq < replaced[c.key]):
            problems.append(_Problem(c.seq, c.number, f"signed by another key ({c.key}, agent key is {fp})"))
            break
    if any(not sig_ok(c) for c in segment_ends if c.key == fp):
        # Each segment's last signature covers the segment; name the first entry whose own signature fails.
        for c in checked:
            if c.key == fp and not sig_ok(c):
                problems.append(_Problem(c.seq, c.number, "bad signature"))
                break
    last_seq = checked[-1].seq if checked else 0
    if unterminated is not None and head is not None and head.seq > last_seq:
        problems.append(_Problem(expected_seq, len(lines) + 1, "truncated line (no line end)"))
    # (an unterminated line the head never acknowledged is a write cut short: the writer sets it aside)
    if head is not None and head.seq == 0:
        problems.append(_Problem(None, None, "the head file is damaged"))
    elif head is not None:
        if head.seq > last_seq and not (unterminated is not None and head.seq == last_seq + 1):
            problems.append(_Problem(last_seq + 1, last_seq + 1,
                                     f"truncated record: entries {last_seq + 1}..{head.seq} are missing"))
        elif head.seq == last_seq and checked and head.link != prev:
            problems.append(_Problem(checked[-1].seq, checked[-1].number,
                                     "last entry differs from the one the head file recorded"))
    problems.sort(key=lambda p: p.line if p.line is not None else 1 << 62)
    open_problems = [p for p in problems if p.acknowledged_by is None]
    acknowledged = tuple(p.text() for p in problems if p.acknowledged_by is not None)
    if open_problems:
        first = open_problems[0]
        return VerifyResult(False, len(checked), first.seq, first.line, first.reason, acknowledged,
                            tuple(p.text() for p in open_problems))
    return VerifyResult(True, len(checked), acknowledged=acknowledged)
