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
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import UserError
from agent.state import atomic_write, ensure_state_dir, state_dir

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)

RECORD_FILE = "record.jsonl"
HEAD_FILE = "record.head"
LOCK_FILE = "record.lock"
GENESIS = "0" * 64
KINDS = ("scan", "remote", "netscan", "inspection", "refusal", "notice", "acknowledgement", "baseline-capture",
         "baseline-accept", "host-key")

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

    def message(self) -> str:
        if self.ok:
            return f"record intact: {self.entries} entries, chain and signature verified"
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
    fd = os.open(state / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _last_line(path: Path) -> bytes | None:
    """The last complete line of the file, read from the end (the record only grows)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; the file may not exist yet
    except FileNotFoundError:
        return None
    with fh:
        fh.seek(0, os.SEEK_END)
        end = fh.tell()
        if end == 0:
            return None
        chunk = 4096
        while True:
            start = max(0, end - chunk)
            fh.seek(start)
            data = fh.read(end - start)
            body = data[:-1] if data.endswith(b"\n") else data
            cut = body.rfind(b"\n")
            if cut >= 0 or start == 0:
                return body[cut + 1:]
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
    """Append one entry durably. Concurrent writers (several runs at once) serialise on the lock file."""
    from agent.keys import agent_signing_key

    state = ensure_state_dir(state)
    key = agent_signing_key(state)
    path = state / RECORD_FILE
    with _locked(state):
        last = _last_line(path)
        if last is None:
            seq, prev = 1, GENESIS
        else:
            try:
                body_raw, hash_hex, sig = _parse_line(last)
                seq, prev = int(json.loads(body_raw)["seq"]) + 1, link_of(hash_hex, sig)
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{path}: the last entry is damaged; run `precaution record verify`") from None
        body = make_body(seq, prev, _fingerprint(key.public_key()), kind, actor, time=dt.datetime.now(dt.UTC),
                         inspectors=inspectors, notice_id=notice_id, scope=scope, tests=tests, summary=summary,
                         results=results)
        line, entry = seal(body, key)
        new = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            dir_fd = os.open(state, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        atomic_write(state / HEAD_FILE, canonical({"seq": entry.seq, "link": entry.link}) + b"\n")
    log.debug("record: appended %s entry %d", kind, entry.seq)
    return entry


def last_entry_with(path: Path, needle: bytes, chunk: int = 1 << 20) -> Entry | None:
    """The newest well-formed entry whose line contains ``needle`` (read backwards from the end, so recent
    entries are found without reading the whole record)."""
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
                        return Entry.from_body(json.loads(body_raw), hash_hex, sig)
                    except (ValueError, KeyError, TypeError):
                        continue
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


def _public_key(state: Path) -> Ed25519PublicKey:
    from agent.keys import KEY_FILE, agent_signing_key

    if not (state / KEY_FILE).exists():
        raise UserError(f"{state / KEY_FILE}: agent key missing; the record's signatures cannot be checked")
    return agent_signing_key(state).public_key()


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


def verify(path: Path | None = None, public_key: Ed25519PublicKey | None = None) -> VerifyResult:
    """Check the whole record; name the first bad entry."""
    path = path or record_path()
    if not path.exists():
        # No record is fine only if none was ever written: the head file remembers the last entry.
        head = _read_head(path.parent / HEAD_FILE)
        if head is not None:
            return VerifyResult(False, 0, head[0] or None, None, "record file missing (the head says entries "
                                "were written)")
        return VerifyResult(True, 0)
    if public_key is None:
        public_key = _public_key(path.parent)
    fp = _fingerprint(public_key)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return VerifyResult(False, 0, None, None, "record file vanished while reading")
    lines = data.split(b"\n")
    trailing = lines.pop()  # b"" when the file ends with a newline, as every complete record does
    parsed: list[_Line] = []
    prev, expected_seq = GENESIS, 1
    count = len(lines) + (1 if trailing else 0)
    for index, raw in enumerate(lines + ([trailing] if trailing else []), start=1):
        if index == count and trailing:
            return VerifyResult(False, len(parsed), expected_seq, index, "truncated line (no line end)")
        try:
            body_raw, hash_hex, sig = _parse_line(raw)
            body = json.loads(body_raw)
            seq = body["seq"]
        except (ValueError, KeyError, TypeError):
            return VerifyResult(False, len(parsed), expected_seq, index, "truncated or malformed line")
        if hashlib.sha256(body_raw).hexdigest() != hash_hex:
            return VerifyResult(False, len(parsed), expected_seq, index,
                                "bad hash (the entry was changed after it was written)")
        if seq != expected_seq:
            return VerifyResult(False, len(parsed), expected_seq, index,
                                f"reordered or missing entry (found seq {seq}, expected {expected_seq})")
        if body.get("prev") != prev:
            # Either the entry before had its signature changed (its link no longer matches) or this one
            # points elsewhere: the previous signature decides which.
            if parsed and not _sig_ok(public_key, parsed[-1].hash, parsed[-1].sig):
                return VerifyResult(False, len(parsed) - 1, parsed[-1].seq, parsed[-1].number, "bad signature")
            return VerifyResult(False, len(parsed), seq, index, "broken chain (prev does not match the entry before)")
        if body.get("key") != fp:
            return VerifyResult(False, len(parsed), seq, index,
                                f"signed by another key ({body.get('key')}, agent key is {fp})")
        parsed.append(_Line(index, seq, hash_hex, sig))
        prev, expected_seq = link_of(hash_hex, sig), expected_seq + 1
    if parsed and not _sig_ok(public_key, parsed[-1].hash, parsed[-1].sig):
        # The last signature covers the chain; find the first entry whose own signature fails.
        for line in parsed:
            if not _sig_ok(public_key, line.hash, line.sig):
                return VerifyResult(False, line.seq - 1, line.seq, line.number, "bad signature")
    head = _read_head(path.parent / HEAD_FILE)
    if head is not None:
        head_seq, head_link = head
        if head_seq > len(parsed):
            return VerifyResult(False, len(parsed), len(parsed) + 1, len(parsed) + 1,
                                f"truncated record: entries {len(parsed) + 1}..{head_seq} are missing")
        if head_seq == len(parsed) and parsed and head_link != prev:
            return VerifyResult(False, len(parsed), parsed[-1].seq, parsed[-1].number,
                                "last entry differs from the one the head file recorded")
    return VerifyResult(True, len(parsed))


def _read_head(path: Path) -> tuple[int, str] | None:
    try:
        data = json.loads(path.read_bytes())
        return int(data["seq"]), str(data["link"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return (0, "")
