"""The inspection record (Art. 25 ¶3): an append-only, hash-chained, signed JSON-lines log in the state dir.

One line per entry::

    {"entry":<canonical JSON body>,"hash":"<64 hex>","sig":"<88 base64>"}

``hash`` is SHA-256 over the exact body bytes; ``sig`` is the agent key's Ed25519 signature over the hash.
The body holds ``prev``, the *link* of the entry before: SHA-256(hash || sig). Because each link commits to the
previous entry's hash and signature, the signature on the last entry authenticates the whole chain, so
``verify`` checks every hash, link and sequence number but only the last signature (Ed25519 verification costs
~130 µs here: checking 100k signatures would take 13 s). When that signature, or any link, does not hold, the
slow path checks signatures one by one to name the first bad entry.

``record.head`` (seq and link of the last entry) catches entries cut off the end, which the chain alone cannot.
Writers take an exclusive ``fcntl`` lock on ``record.lock``, append one line, fsync, then update the head.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import errno
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import UserError
from agent.state import (
    atomic_write,
    check_not_link,
    ensure_state_dir,
    fsync_dir,
    locked,
    no_space,
    open_state_file,
    read_state_file,
    state_dir,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)

RECORD_FILE = "record.jsonl"
HEAD_FILE = "record.head"
LOCK_FILE = "record.lock"
GENESIS = "0" * 64
KINDS = ("scan", "remote", "netscan", "inspection", "refusal", "notice", "acknowledgement", "baseline-capture",
         "baseline-accept", "host-key", "agent-key", "record-break", "record-recovery", "record-acknowledgement")

WARNINGS: list[str] = []  # breaks and key changes written during this run, for the CLI to show

_PREFIX = b'{"entry":'
_HASH_LEN = 64
_SIG_LEN = 88  # base64 of a 64-byte Ed25519 signature
_TAIL_LEN = len(',"hash":"') + _HASH_LEN + len('","sig":"') + _SIG_LEN + len('"}')


@dataclass(frozen=True, slots=True)
class Inspector:
    name: str
    id: str

    @classmethod
    def parse(cls, text: str) -> Inspector:
        """"NAME:ID" (the ID is what one presents: a warrant card or badge number)."""
        name, sep, ident = text.rpartition(":")
        if not sep or not name.strip() or not ident.strip():
            raise UserError(f"--inspector {text!r}: expected NAME:ID (name and identification number)")
        return cls(name.strip(), ident.strip())

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "id": self.id}


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    time: str
    kind: str
    actor: str
    inspectors: tuple[Inspector, ...]
    notice_id: str | None
    scope: Any
    tests: tuple[str, ...]
    summary: Any
    results_sha256: str | None
    key: str
    prev: str
    hash: str
    sig: str

    @property
    def link(self) -> str:
        return link_of(self.hash, self.sig)

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "time": self.time, "kind": self.kind, "actor": self.actor,
            "inspectors": [i.to_json() for i in self.inspectors], "notice_id": self.notice_id, "scope": self.scope,
            "tests": list(self.tests), "summary": self.summary, "results_sha256": self.results_sha256,
            "key": self.key, "prev": self.prev,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash, "sig": self.sig}

    @classmethod
    def from_body(cls, body: Mapping[str, Any], hash_hex: str, sig: str) -> Entry:
        return cls(
            seq=int(body["seq"]), time=str(body["time"]), kind=str(body["kind"]), actor=str(body["actor"]),
            inspectors=tuple(Inspector(str(i["name"]), str(i["id"])) for i in body.get("inspectors") or ()),
            notice_id=body.get("notice_id"), scope=body.get("scope"), tests=tuple(body.get("tests") or ()),
            summary=body.get("summary"), results_sha256=body.get("results_sha256"), key=str(body["key"]),
            prev=str(body["prev"]), hash=hash_hex, sig=sig,
        )


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    entries: int
    bad_seq: int | None = None  # the seq the bad entry claims (or should have had)
    bad_line: int | None = None  # 1-based line number
    reason: str | None = None  # bad hash | bad signature | broken chain | truncated line | reordered seq | ...
    acknowledged: tuple[str, ...] = ()  # problems an operator acknowledged (`record acknowledge`)
    problems: tuple[str, ...] = ()  # every problem not acknowledged, first first

    def message(self) -> str:
        if self.ok:
            acked = (f"; {len(self.acknowledged)} earlier problem(s) acknowledged by an operator"
                     if self.acknowledged else "")
            return f"record intact: {self.entries} entries, chain and signature verified{acked}"
        where = f"entry {self.bad_seq}" if self.bad_seq is not None else "record"
        line = f" (line {self.bad_line})" if self.bad_line is not None else ""
        return f"{where}{line}: {self.reason}"


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def results_digest(results: Any) -> str:
    raw = results if isinstance(results, bytes) else canonical(results)
    return hashlib.sha256(raw).hexdigest()


def link_of(hash_hex: str, sig: str) -> str:
    return hashlib.sha256(f"{hash_hex}{sig}".encode("ascii")).hexdigest()


def local_actor() -> str:
    """Who runs this: the login user and this machine (the record names people, not processes)."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def record_path(state: Path | None = None) -> Path:
    return (state or state_dir()) / RECORD_FILE


def _fingerprint(key: Ed25519PublicKey) -> str:
    from agent.keys import key_fingerprint

    return key_fingerprint(key)


def seal(body: dict[str, Any], key: Ed25519PrivateKey) -> tuple[bytes, Entry]:
    """Hash and sign a body (which already holds seq, prev and key); return the line and the entry. Pure."""
    raw = canonical(body)
    hash_hex = hashlib.sha256(raw).hexdigest()
    sig = base64.b64encode(key.sign(hash_hex.encode("ascii"))).decode("ascii")
    line = _PREFIX + raw + f',"hash":"{hash_hex}","sig":"{sig}"}}\n'.encode("ascii")
    return line, Entry.from_body(body, hash_hex, sig)


def make_body(
    seq: int, prev: str, key_fp: str, kind: str, actor: str, *, time: dt.datetime,
    inspectors: Sequence[Inspector] = (), notice_id: str | None = None, scope: Any = None,
    tests: Sequence[str] = (), summary: Any = None, results: Any = None,
) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}")
    return {
        "seq": seq, "time": time.astimezone(dt.UTC).isoformat(timespec="microseconds"), "kind": kind,
        "actor": actor, "inspectors": [i.to_json() for i in inspectors], "notice_id": notice_id,
        "scope": _jsonable(scope), "tests": list(tests), "summary": _jsonable(summary),
        "results_sha256": None if results is None else results_digest(results), "key": key_fp, "prev": prev,
    }


def _jsonable(value: Any) -> Any:
    """Scope and summary come as plain JSON values or objects with to_json() (a Scope, say)."""
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    return value


@contextlib.contextmanager
def _locked(state: Path) -> Iterator[None]:
    with locked(state / LOCK_FILE):
        yield


def _last_line(path: Path) -> tuple[bytes | None, int, bytes]:
    """(last complete line or None, byte offset where the file's complete lines end, torn tail bytes).

    Read from the end (the record only grows); never through a link, never blocking on a FIFO."""
    try:
        fd = open_state_file(path, os.O_RDONLY)
    except FileNotFoundError:
        return None, 0, b""
    with os.fdopen(fd, "rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        if end == 0:
            return None, 0, b""
        chunk = 4096
        while True:
            start = max(0, end - chunk)
            fh.seek(start)
            data = fh.read(end - start)
            cut = data.rfind(b"\n")
            if cut >= 0 or start == 0:
                if cut < 0:  # no complete line at all
                    return None, 0, data
                complete_end = start + cut + 1
                torn = data[cut + 1:]
                prev_cut = data.rfind(b"\n", 0, cut)
                if prev_cut >= 0 or start == 0:
                    return data[prev_cut + 1:cut], complete_end, torn
            chunk *= 4


def _parse_line(raw: bytes) -> tuple[bytes, str, str]:
    """(body bytes, hash, sig); ValueError when the line does not have the record's shape."""
    if not raw.startswith(_PREFIX) or len(raw) < len(_PREFIX) + _TAIL_LEN + 2:
        raise ValueError("not a record line")
    tail = raw[-_TAIL_LEN:]
    if not (tail.startswith(b',"hash":"') and tail.endswith(b'"}')):
        raise ValueError("not a record line")
    hash_hex = tail[9:9 + _HASH_LEN].decode("ascii")
    if tail[9 + _HASH_LEN:9 + _HASH_LEN + 9] != b'","sig":"':
        raise ValueError("not a record line")
    sig = tail[9 + _HASH_LEN + 9:-2].decode("ascii")
    return raw[len(_PREFIX):-_TAIL_LEN], hash_hex, sig


@dataclass(frozen=True, slots=True)
class _Continuation:
    """Where the next entry goes, and what the writer found wrong on the way (a break to record)."""

    seq: int
    prev: str
    problems: tuple[str, ...] = ()
    recovered: dict[str, Any] | None = None  # a torn tail set aside


def _continuation(state: Path, path: Path, key_existed: bool) -> _Continuation:
    """Compare the file's last entry with the head file. Anything but agreement (or the head lagging one entry
    behind, a crash before its update) is a break: the chain is continued from the best knowledge (the head
    when it says more) and the break is written into the record, never silently restarted."""
    last, complete_end, torn = _last_line(path)
    head, head_state = _read_head_state(state / HEAD_FILE)
    recovered: dict[str, Any] | None = None
    last_seq: int | None = None
    last_link: str | None = None
    last_prev: str | None = None
    problems: list[str] = []
    if last is not None:
        try:
            body_raw, hash_hex, sig = _parse_line(last)
            body = json.loads(body_raw)
            last_seq, last_link, last_prev = int(body["seq"]), link_of(hash_hex, sig), str(body["prev"])
        except (ValueError, KeyError, TypeError):
            problems.append("the last line of the record is malformed")
    if torn:
        head_seq = head[0] if head else 0
        if (last_seq is not None and head_seq <= last_seq) or (last is None and head is None):
            # Never acknowledged by the head: a write cut short (a crash, a full disk). Set it aside, carry on.
            aside = state / f"record.torn-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
            atomic_write(aside, torn)
            _truncate(path, complete_end)
            recovered = {"torn_bytes": len(torn), "set_aside": aside.name,
                         "sha256": hashlib.sha256(torn).hexdigest()}
        else:
            problems.append(f"the record ends in a torn line although the head file holds entry {head_seq}")
            aside = state / f"record.damaged-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
            atomic_write(aside, torn)
            _truncate(path, complete_end)
    if head_state == "damaged":
        problems.append("the head file is damaged")
    if last_seq is None or last_link is None:
        if head is not None:
            problems.append(f"the record file is missing or empty, but the head file says {head[0]} entries were "
                            "written")
            return _Continuation(head[0] + 1, head[1], tuple(problems), recovered)
        if key_existed and head_state == "missing" and not problems and not recovered:
            problems.append("the record file and its head are missing, but the agent key exists: entries were "
                            "written before")
        return _Continuation(1, GENESIS, tuple(problems), recovered)
    if head is not None:
        head_seq, head_link = head
        if head_seq > last_seq:
            problems.append(f"entries {last_seq + 1}..{head_seq} are missing from the record (the head file "
                            "holds them)")
            return _Continuation(head_seq + 1, head_link, tuple(problems), recovered)
        agrees = (head_seq == last_seq and head_link == last_link) or (
            head_seq == last_seq - 1 and head_link == last_prev)  # crash between the line and the head update
        if not agrees:
            problems.append(f"the head file (entry {head_seq}) does not match the record's last entry "
                            f"({last_seq})")
    elif head_state == "missing" and last_seq > 1:
        problems.append("the head file is missing")
    return _Continuation(last_seq + 1, last_link, tuple(problems), recovered)


def _last_key(path: Path) -> str | None:
    last, _end, _torn = _last_line(path)
    if last is None:
        return None
    try:
        return str(json.loads(_parse_line(last)[0])["key"])
    except (ValueError, KeyError, TypeError):
        return None


def _truncate(path: Path, size: int) -> None:
    fd = open_state_file(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_line(state: Path, path: Path, line: bytes) -> None:
    new = not path.exists()
    fd = open_state_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(errno.ENOSPC, "short write")
        os.fsync(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise no_space(state) from None
        raise
    finally:
        os.close(fd)
    if new:
        fsync_dir(state)


def append(
    kind: str,
    actor: str,
    *,
    inspectors: Sequence[Inspector] = (),
    notice_id: str | None = None,
    scope: Any = None,
    tests: Sequence[str] = (),
    summary: Any = None,
    results: Any = None,
    state: Path | None = None,
) -> Entry:
    """Append one entry durably. Concurrent writers (several runs at once) serialise on the lock file.

    A break found on the way (a missing or cut record, a bad head, a torn last line) is written first as its
    own entry: ``record-break`` (tampering until an operator acknowledges it with `precaution record
    acknowledge`) or ``record-recovery`` (a torn tail beyond the head, set aside)."""
    from agent.keys import KEY_FILE, agent_signing_key

    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}")
    state = ensure_state_dir(state)
    path = state / RECORD_FILE
    with _locked(state):  # the key too is created under the lock: two first runs must not make two keys
        key_existed = (state / KEY_FILE).exists() or (state / KEY_FILE).is_symlink()
        key = agent_signing_key(state)
        fp = _fingerprint(key.public_key())
        check_not_link(path)
        where = _continuation(state, path, key_existed)
        seq, prev = where.seq, where.prev
        now = dt.datetime.now(dt.UTC)
        pending: list[dict[str, Any]] = []
        if not key_existed and (path.exists() or (state / HEAD_FILE).exists()):
            previous = _last_key(path)
            message = "agent.key was missing; a new key was created"
            pending.append(make_body(seq, prev, fp, "agent-key", actor, time=now, summary={
                "event": "replaced", "previous": previous, "new": fp, "message": message}))
            WARNINGS.append(f"{message} ({fp}); the change is in the inspection record and `precaution record "
                            "verify` reports it until an operator acknowledges it")
        if where.recovered is not None:
            pending.append(make_body(seq, prev, fp, "record-recovery", actor, time=now, summary={
                "message": f"a torn last line ({where.recovered['torn_bytes']} bytes, never acknowledged by the head "
                           f"file) was set aside as {where.recovered['set_aside']}", **where.recovered}))
        if where.problems:
            pending.append(make_body(seq, prev, fp, "record-break", actor, time=now, summary={
                "message": "; ".join(where.problems), "problems": list(where.problems)}))
        pending.append(make_body(seq, prev, fp, kind, actor, time=now, inspectors=inspectors, notice_id=notice_id,
                                 scope=scope, tests=tests, summary=summary, results=results))
        entry: Entry | None = None
        for body in pending:
            body["seq"], body["prev"] = seq, prev
            line, entry = seal(body, key)
            _write_line(state, path, line)
            atomic_write(state / HEAD_FILE, canonical({"seq": entry.seq, "link": entry.link}) + b"\n")
            seq, prev = entry.seq + 1, entry.link
            if body["kind"] == "record-break":
                log.warning("record: break recorded as entry %d: %s", entry.seq, body["summary"]["message"])
                WARNINGS.append(f"inspection record: {body['summary']['message']}; recorded as entry {entry.seq} "
                                "(`precaution record verify` reports it until an operator acknowledges it with "
                                "`precaution record acknowledge`)")
    assert entry is not None
    log.debug("record: appended %s entry %d", kind, entry.seq)
    return entry


def ensure_agent_key(state: Path | None = None) -> Ed25519PrivateKey:
    """The agent key for a writer that signs before it records (a baseline): created through the record, so
    that a key never exists without an entry signed by it."""
    from agent.keys import load_agent_key

    state = ensure_state_dir(state)
    key = load_agent_key(state)
    if key is None:
        append("agent-key", local_actor(), summary={"event": "created", "message": "agent key created"},
               state=state)
        key = load_agent_key(state)
    if key is None:
        raise UserError(f"{state}: the agent key could not be created")
    return key


def last_entry_with(path: Path, needle: bytes, match: Callable[[Entry], bool] | None = None,
                    chunk: int = 1 << 20) -> Entry | None:
    """The newest well-formed entry whose line contains ``needle`` (and that ``match`` accepts), read backwards
    from the end, so recent entries are found without reading the whole record."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; the record may not exist yet
    except FileNotFoundError:
        return None
    with fh:
        end = fh.seek(0, os.SEEK_END)
        carry = b""
        while end > 0:
            start = max(0, end - chunk)
            fh.seek(start)
            data = fh.read(end - start) + carry
            end = start
            lines = data.split(b"\n")
            carry = lines.pop(0) if start > 0 else b""
            for raw in reversed(lines):
                if needle in raw:
                    try:
                        body_raw, hash_hex, sig = _parse_line(raw)
                        entry = Entry.from_body(json.loads(body_raw), hash_hex, sig)
                    except (ValueError, KeyError, TypeError):
                        continue
                    if match is None or match(entry):
                        return entry
    return None


def read_entries(path: Path) -> list[Entry]:
    """Every entry, for display; damaged lines stop the reading (``verify`` says where)."""
    out: list[Entry] = []
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return out
    for raw in data.split(b"\n"):
        if not raw:
            continue
        try:
            body_raw, hash_hex, sig = _parse_line(raw)
            out.append(Entry.from_body(json.loads(body_raw), hash_hex, sig))
        except (ValueError, KeyError, TypeError):
            break
    return out


def _public_key(state: Path) -> Ed25519PublicKey | None:
    from agent.keys import load_agent_key

    key = load_agent_key(state)
    return key.public_key() if key is not None else None


def _sig_ok(key: Ed25519PublicKey, hash_hex: str, sig: str) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(base64.b64decode(sig, validate=True), hash_hex.encode("ascii"))
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Line:
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


def verify(path: Path | None = None, public_key: Ed25519PublicKey | None = None) -> VerifyResult:
    """Check the whole record; name the first problem no operator has acknowledged."""
    path = path or record_path()
    state = path.parent
    from agent.keys import KEY_FILE

    key_present = (state / KEY_FILE).exists() or (state / KEY_FILE).is_symlink()
    head, head_state = _read_head_state(state / HEAD_FILE)
    try:
        data = read_state_file(path)
    except FileNotFoundError:
        data = None
    if not data:
        # No record is fine only if none was ever written: the head file and the agent key remember.
        if head is not None or head_state == "damaged":
            return VerifyResult(False, 0, head[0] if head else None, None,
                                "record file missing (the head says entries were written)")
        if key_present:
            return VerifyResult(False, 0, None, None, "record file and head missing, but the agent key exists: "
                                                      "entries were written and the record was deleted")
        return VerifyResult(True, 0)
    if public_key is None:
        public_key = _public_key(state)
        if public_key is None:
            return VerifyResult(False, 0, None, None, f"agent key missing ({state / KEY_FILE}): the record's "
                                                      "signatures cannot be checked")
    return verify_bytes(data, head, head_state, public_key)


def verify_bytes(data: bytes, head: tuple[int, str] | None, head_state: str,
                 public_key: Ed25519PublicKey) -> VerifyResult:
    """Pure: the record's bytes and head against the agent's public key."""
    fp = _fingerprint(public_key)
    lines = data.split(b"\n")
    trailing = lines.pop()  # b"" when the file ends with a newline, as every complete record does
    problems: list[_Problem] = []
    parsed: list[_Line] = []
    segment_ends: list[_Line] = []
    prev, expected_seq, resync = GENESIS, 1, False
    replaced: dict[str, int] = {}  # old key fingerprint -> seq of the entry that recorded its replacement
    for index, raw in enumerate(lines, start=1):
        try:
            body_raw, hash_hex, sig = _parse_line(raw)
            body = json.loads(body_raw)
            seq, kind, summary = int(body["seq"]), str(body["kind"]), body.get("summary")
        except (ValueError, KeyError, TypeError):
            problems.append(_Problem(expected_seq, index, "truncated or malformed line"))
            resync = True
            continue
        if hashlib.sha256(body_raw).hexdigest() != hash_hex:
            problems.append(_Problem(seq, index, "bad hash (the entry was changed after it was written)"))
        is_break = kind == "record-break"
        if seq != expected_seq or body.get("prev") != prev:
            if parsed:
                segment_ends.append(parsed[-1])
            if is_break:
                pass  # the agent found and declared this discontinuity: its own message says what it was
            elif resync:
                pass  # already reported: the malformed line before
            elif seq != expected_seq:
                problems.append(_Problem(expected_seq, index,
                                         f"reordered or missing entry (found seq {seq}, expected {expected_seq})"))
            elif parsed and parsed[-1].key == fp and not _sig_ok(public_key, parsed[-1].hash, parsed[-1].sig):
                # The entry before had its signature changed (its link no longer matches)
                problems.append(_Problem(parsed[-1].seq, parsed[-1].number, "bad signature"))
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
        key = str(body.get("key"))
        parsed.append(_Line(index, seq, hash_hex, sig, key))
        prev, expected_seq = link_of(hash_hex, sig), seq + 1
    if parsed:
        segment_ends.append(parsed[-1])
    # Signatures: entries by a key replaced later cannot be checked (recorded above); any other key is foreign.
    for line in parsed:
        if line.key != fp and not (line.key in replaced and line.seq < replaced[line.key]):
            problems.append(_Problem(line.seq, line.number, f"signed by another key ({line.key}, agent key is {fp})"))
            break
    own = [x for x in segment_ends if x.key == fp]
    if any(not _sig_ok(public_key, x.hash, x.sig) for x in own):
        # Each segment's last signature covers the segment; find the first entry whose own signature fails.
        for line in parsed:
            if line.key == fp and not _sig_ok(public_key, line.hash, line.sig):
                problems.append(_Problem(line.seq, line.number, "bad signature"))
                break
    last_seq = parsed[-1].seq if parsed else 0
    if trailing and head is not None and head[0] > last_seq:
        problems.append(_Problem(expected_seq, len(lines) + 1, "truncated line (no line end)"))
    # (a trailing part the head never acknowledged is a write cut short: set aside at the next write)
    if head_state == "damaged":
        problems.append(_Problem(None, None, "the head file is damaged"))
    elif head is not None:
        head_seq, head_link = head
        if head_seq > last_seq and not (trailing and head_seq == last_seq + 1):
            problems.append(_Problem(last_seq + 1, last_seq + 1,
                                     f"truncated record: entries {last_seq + 1}..{head_seq} are missing"))
        elif head_seq == last_seq and parsed and head_link != prev:
            problems.append(_Problem(parsed[-1].seq, parsed[-1].number,
                                     "last entry differs from the one the head file recorded"))
    elif last_seq > 1:
        problems.append(_Problem(None, None, "the head file is missing"))
    problems.sort(key=lambda p: (p.line if p.line is not None else 1 << 62))
    open_problems = [p for p in problems if p.acknowledged_by is None]
    acknowledged = tuple(p.text() for p in problems if p.acknowledged_by is not None)
    if open_problems:
        first = open_problems[0]
        return VerifyResult(False, len(parsed), first.seq, first.line, first.reason, acknowledged,
                            tuple(p.text() for p in open_problems))
    return VerifyResult(True, len(parsed), acknowledged=acknowledged)


def _read_head_state(path: Path) -> tuple[tuple[int, str] | None, str]:
    """((seq, link) or None, "ok" | "missing" | "damaged")."""
    try:
        data = json.loads(read_state_file(path))
        seq, link = data["seq"], data["link"]
        if type(seq) is not int or seq < 1 or not isinstance(link, str) or len(link) != 64:
            raise ValueError("bad head")
        return (seq, link), "ok"
    except FileNotFoundError:
        return None, "missing"
    except (ValueError, KeyError, TypeError, UserError):
        return None, "damaged"


def _read_head(path: Path) -> tuple[int, str] | None:
    return _read_head_state(path)[0]
