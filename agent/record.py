"""The inspection record (Art. 25 ¶3): an append-only, hash-chained, signed JSON-lines log in the state dir.

One line per entry::

    {"entry":<canonical JSON body>,"hash":"<64 hex>","sig":"<88 base64>"}

The chain logic (line format, links, verification) is pure and lives in ``agent.wire.chain`` so that the
collector can verify records it receives; this module is the file side: the one typed write path
(``Recorder.write(content)`` with a content model from ``agent.wire.contents``), reading and verifying the file.

``record.head`` (seq and link of the last entry) catches entries cut off the end, which the chain alone cannot.
Writers take an exclusive ``fcntl`` lock on ``record.lock``, append one line, fsync, then update the head.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import UserError
from agent.state import StateDir, atomic_write
from agent.wire.chain import GENESIS, LINE_PREFIX, Head, VerifyResult, link_of, parse_line, verify_record
from baselines import ed25519
from baselines.canonical_json import canonical_json

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from agent.wire.contents import EntryContent, InspectorDoc

__all__ = ["GENESIS", "Entry", "Inspector", "Recorder", "VerifyResult", "link_of", "verify"]

log = logging.getLogger(__name__)

RECORD_FILE = "record.jsonl"
HEAD_FILE = "record.head"
LOCK_FILE = "record.lock"
canonical = canonical_json


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

    def to_doc(self) -> InspectorDoc:
        from agent.wire.contents import InspectorDoc

        return InspectorDoc(name=self.name, id=self.id)


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry as read back: its body (as written) and its hash and signature."""

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
    applied: Any = None

    @property
    def link(self) -> str:
        return link_of(self.hash, self.sig)

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "time": self.time, "kind": self.kind, "actor": self.actor,
            "inspectors": [i.to_json() for i in self.inspectors], "notice_id": self.notice_id, "scope": self.scope,
            "tests": list(self.tests), "summary": self.summary, "applied": self.applied,
            "results_sha256": self.results_sha256, "key": self.key, "prev": self.prev,
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
            prev=str(body["prev"]), hash=hash_hex, sig=sig, applied=body.get("applied"),
        )


def results_digest(results: Any) -> str:
    raw = results if isinstance(results, bytes) else canonical_json(results)
    return hashlib.sha256(raw).hexdigest()


def local_actor() -> str:
    """Who runs this: the login user and this machine (the record names people, not processes)."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def seal(body: dict[str, Any], key: Ed25519PrivateKey) -> tuple[bytes, Entry]:
    """Hash and sign a body (which already holds seq, prev and key); return the line and the entry. Pure."""
    raw = canonical_json(body)
    hash_hex = hashlib.sha256(raw).hexdigest()
    sig = ed25519.sign_b64(key, hash_hex.encode("ascii"))
    line = LINE_PREFIX + raw + f',"hash":"{hash_hex}","sig":"{sig}"}}\n'.encode("ascii")
    return line, Entry.from_body(body, hash_hex, sig)


def make_body(seq: int, prev: str, key_fp: str, actor: str, content: EntryContent, *, time: dt.datetime,
              results: Any = None) -> dict[str, Any]:
    """The body of an entry: the typed content plus the chain fields. Pure."""
    return {
        **content.to_json(), "seq": seq, "time": time.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": actor, "results_sha256": None if results is None else results_digest(results), "key": key_fp,
        "prev": prev,
    }


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


class Recorder:
    """The one write path into the record: every action, refusal and host-key event goes through ``write``
    with a typed content model (``agent.wire.contents.*Content``)."""

    def __init__(self, state: StateDir, actor: str | None = None) -> None:
        self.state = state
        self.actor = actor or local_actor()

    @property
    def path(self) -> Path:
        return self.state.record

    def write(self, content: EntryContent, results: Any = None, actor: str | None = None) -> Entry:
        """Append one entry durably. Concurrent writers (several runs at once) serialise on the lock file.
        ``actor`` names someone else than the recorder's actor when the action was theirs (who accepted a
        baseline)."""
        from agent.keys import agent_signing_key

        state = self.state.ensure()
        key = agent_signing_key(self.state)
        path = state / RECORD_FILE
        with _locked(state):
            last = _last_line(path)
            if last is None:
                seq, prev = 1, GENESIS
            else:
                try:
                    body_raw, hash_hex, sig = parse_line(last)
                    seq, prev = int(json.loads(body_raw)["seq"]) + 1, link_of(hash_hex, sig)
                except (ValueError, KeyError, TypeError):
                    raise UserError(f"{path}: the last entry is damaged; run `precaution record verify`") from None
            body = make_body(seq, prev, ed25519.fingerprint(key.public_key()), actor or self.actor, content,
                             time=dt.datetime.now(dt.UTC), results=results)
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
            atomic_write(state / HEAD_FILE, canonical_json({"seq": entry.seq, "link": entry.link}) + b"\n")
        log.debug("record: appended %s entry %d", content.kind, entry.seq)
        return entry


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
            body_raw, hash_hex, sig = parse_line(raw)
            out.append(Entry.from_body(json.loads(body_raw), hash_hex, sig))
        except (ValueError, KeyError, TypeError):
            break
    return out


def _public_key(state: Path) -> Ed25519PublicKey:
    from agent.keys import KEY_FILE, agent_signing_key

    if not (state / KEY_FILE).exists():
        raise UserError(f"{state / KEY_FILE}: agent key missing; the record's signatures cannot be checked")
    return agent_signing_key(StateDir(state)).public_key()


def verify(path: Path, public_key: Ed25519PublicKey | None = None) -> VerifyResult:
    """Check the record file (and its head file); name the first bad entry."""
    head = _read_head(path.parent / HEAD_FILE)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        # No record is fine only if none was ever written: the head file remembers the last entry.
        if head is not None:
            return VerifyResult(False, 0, head.seq or None, None, "record file missing (the head says entries "
                                "were written)")
        return VerifyResult(True, 0)
    return verify_record(data, public_key or _public_key(path.parent), head)


def _read_head(path: Path) -> Head | None:
    try:
        data = json.loads(path.read_bytes())
        return Head(int(data["seq"]), str(data["link"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return Head(0, "")
