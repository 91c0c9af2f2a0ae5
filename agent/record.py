"""The inspection record (Art. 25 ¶3): an append-only, hash-chained, signed JSON-lines log in the state dir.

One line per entry::

    {"entry":<canonical JSON body>,"hash":"<64 hex>","sig":"<88 base64>"}

The chain logic (line format, links, verification) is pure and lives in ``agent.wire.chain`` so that the
collector can verify records it receives; this module is the file side: the one typed write path
(``Recorder.write(content)`` with a content model from ``agent.wire.contents``), reading and verifying the file.

``record.head`` (seq and link of the last entry) catches entries cut off the end, which the chain alone cannot.
Writers take an exclusive ``fcntl`` lock on ``record.lock``, append one line, fsync, then update the head.

Before writing, the writer compares the last entry with the head. A deleted or cut record, a damaged or
disagreeing head, a deleted agent key: each is written as an entry of its own (``record-break``,
``agent-key``) and ``verify`` reports it as tampering until an operator acknowledges it (``record acknowledge``,
a ``record-acknowledgement`` entry). A torn last line that the head never acknowledged is what a crash or a full
disk leaves: it is set aside (``record.torn-<time>``), a ``record-recovery`` entry says so, and work goes on.
A key is only created together with an entry signed by it, so a key without a record means a deleted record.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import messages as msg
from agent.errors import UserError
from agent.state import (
    StateDir,
    atomic_write,
    check_not_link,
    fsync_dir,
    locked,
    no_space,
    open_state_file,
    read_state_file,
)
from agent.wire.chain import GENESIS, LINE_PREFIX, Head, VerifyResult, link_of, parse_line, verify_record
from baselines import ed25519
from baselines.canonical_json import canonical_json
from baselines.ed25519 import fingerprint
from probes.i18n import Joined, Message

if TYPE_CHECKING:
    from agent.wire.contents import EntryContent, InspectorDoc, RecordRecoverySummary
    from baselines.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

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
            raise UserError(msg.INSPECTOR_FORMAT(text=text))
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
    with locked(state / LOCK_FILE):
        yield


WARNINGS: list[Message] = []  # breaks and key changes written during this run, for the CLI to show


def _last_line(path: Path) -> tuple[bytes | None, int, bytes]:
    """(last complete line or None, byte offset where the complete lines end, torn tail bytes after them).

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
            if cut < 0 and start == 0:
                return None, 0, data  # no complete line at all
            if cut >= 0:
                prev_cut = data.rfind(b"\n", 0, cut)
                if prev_cut >= 0 or start == 0:
                    return data[prev_cut + 1:cut], start + cut + 1, data[cut + 1:]
            chunk *= 4


def _read_head_state(path: Path) -> tuple[Head | None, str]:
    """(head or None, "ok" | "missing" | "damaged")."""
    try:
        data = json.loads(read_state_file(path))
        seq, link = data["seq"], data["link"]
        if type(seq) is not int or seq < 1 or not isinstance(link, str) or len(link) != 64:
            raise ValueError("bad head")
        return Head(seq, link), "ok"
    except FileNotFoundError:
        return None, "missing"
    except (ValueError, KeyError, TypeError, UserError):
        return None, "damaged"


@dataclass(frozen=True, slots=True)
class _Continuation:
    """Where the next entry goes, and what the writer found wrong on the way (a break to record)."""

    seq: int
    prev: str
    problems: tuple[str, ...] = ()
    recovered: RecordRecoverySummary | None = None  # a torn tail set aside


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _continuation(state: Path, path: Path, key_existed: bool) -> _Continuation:
    """Compare the file's last entry with the head file. Anything but agreement (or the head one entry behind:
    a crash before its update) is a break: the chain continues from the best knowledge (the head, when it
    says more) and the break is written into the record; never a silent restart."""
    from agent.wire.contents import RecordRecoverySummary

    last, complete_end, torn = _last_line(path)
    head, head_state = _read_head_state(state / HEAD_FILE)
    recovered: RecordRecoverySummary | None = None
    last_seq: int | None = None
    last_link = last_prev = ""
    problems: list[str] = []
    if last is not None:
        try:
            body_raw, hash_hex, sig = parse_line(last)
            body = json.loads(body_raw)
            last_seq, last_link, last_prev = int(body["seq"]), link_of(hash_hex, sig), str(body["prev"])
        except (ValueError, KeyError, TypeError):
            problems.append("the last line of the record is malformed")
    if torn:
        head_seq = head.seq if head else 0
        digest = hashlib.sha256(torn).hexdigest()
        if (last_seq is not None and head_seq <= last_seq) or (last is None and head is None):
            # Never acknowledged by the head: a write cut short (a crash, a full disk). Set aside, carry on.
            aside = state / f"record.torn-{_stamp()}"
            atomic_write(aside, torn)
            _truncate(path, complete_end)
            recovered = RecordRecoverySummary(
                message=f"a torn last line ({len(torn)} bytes, never acknowledged by the head file) was set aside "
                        f"as {aside.name}", torn_bytes=len(torn), set_aside=aside.name, sha256=digest)
        else:
            aside = state / f"record.damaged-{_stamp()}"
            atomic_write(aside, torn)
            _truncate(path, complete_end)
            problems.append(f"the record ended in a torn line although the head file holds entry {head_seq} (set "
                            f"aside as {aside.name})")
    if head_state == "damaged":
        problems.append("the head file is damaged")
    if last_seq is None:
        if head is not None:
            problems.append(f"the record file is missing or empty, but the head file says {head.seq} entries were "
                            "written")
            return _Continuation(head.seq + 1, head.link, tuple(problems), recovered)
        if key_existed and head_state == "missing" and recovered is None:
            problems.append("the record file and its head are missing, but the agent key exists: entries were "
                            "written before")
        return _Continuation(1, GENESIS, tuple(problems), recovered)
    if head is not None:
        if head.seq > last_seq:
            problems.append(f"entries {last_seq + 1}..{head.seq} are missing from the record (the head file holds "
                            "them)")
            return _Continuation(head.seq + 1, head.link, tuple(problems), recovered)
        agrees = (head.seq == last_seq and head.link == last_link) or (
            head.seq == last_seq - 1 and head.link == last_prev)  # a crash between the line and the head update
        if not agrees:
            problems.append(f"the head file (entry {head.seq}) does not match the record's last entry ({last_seq})")
    elif head_state == "missing" and last_seq > 1:
        problems.append("the head file is missing")
    return _Continuation(last_seq + 1, last_link, tuple(problems), recovered)


def _last_key(path: Path) -> str | None:
    last, _end, _torn = _last_line(path)
    if last is None:
        return None
    try:
        return str(json.loads(parse_line(last)[0])["key"])
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
        if os.write(fd, line) != len(line):
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


class Recorder:
    """The one write path into the record: every action, refusal and host-key event goes through ``write``
    with a typed content model (``agent.wire.contents.*Content``)."""

    def __init__(self, state: StateDir, actor: str | None = None, config_override: str | None = None) -> None:
        self.state = state
        self.actor = actor or local_actor()
        self.config_override = config_override  # --config FILE: named in every entry's applied.overrides

    @property
    def path(self) -> Path:
        return self.state.record

    def write(self, content: EntryContent, results: Any = None, actor: str | None = None) -> Entry:
        """Append one entry durably. Concurrent writers (several runs at once) serialise on the lock file.
        ``actor`` names someone else than the recorder's actor when the action was theirs (who accepted a
        baseline).

        A break found on the way (a missing or cut record, a bad head, a torn last line) is written first as its
        own entry: ``record-break`` (tampering until an operator runs `precaution record acknowledge`) or
        ``record-recovery`` (a torn tail beyond the head, set aside). A key created while a record exists is
        written as an ``agent-key`` replacement."""
        from agent.keys import KEY_FILE, agent_signing_key
        from agent.wire.contents import (
            AgentKeyContent,
            AgentKeySummary,
            Applied,
            RecordBreakContent,
            RecordBreakSummary,
            RecordRecoveryContent,
        )

        state = self.state.ensure()
        path = state / RECORD_FILE
        who = actor or self.actor
        if self.config_override is not None:
            applied = content.applied or Applied()
            content = content.model_copy(update={"applied": applied.model_copy(
                update={"overrides": {**applied.overrides, "config": self.config_override}})})
        with _locked(state):  # the key too is made under the lock: two first runs must not make two keys
            key_existed = (state / KEY_FILE).exists() or (state / KEY_FILE).is_symlink()
            key = agent_signing_key(self.state)
            fp = fingerprint(key.public_key())
            check_not_link(path)
            where = _continuation(state, path, key_existed)
            now = dt.datetime.now(dt.UTC)
            pending: list[tuple[EntryContent, Any]] = []
            if not key_existed and (path.exists() or (state / HEAD_FILE).exists()):
                message = "agent.key was missing; a new key was created"
                pending.append((AgentKeyContent(summary=AgentKeySummary(
                    event="replaced", message=message, previous=_last_key(path), new=fp)), None))
                WARNINGS.append(msg.RECORD_WARNING_KEY_REPLACED(fingerprint=fp))
            if where.recovered is not None:
                pending.append((RecordRecoveryContent(summary=where.recovered), None))
            if where.problems:
                pending.append((RecordBreakContent(summary=RecordBreakSummary(
                    message="; ".join(where.problems), problems=list(where.problems))), None))
            pending.append((content, results))
            seq, prev = where.seq, where.prev
            entry: Entry | None = None
            for item, item_results in pending:
                body = make_body(seq, prev, fp, who, item, time=now, results=item_results)
                line, entry = seal(body, key)
                _write_line(state, path, line)
                atomic_write(state / HEAD_FILE, canonical_json({"seq": entry.seq, "link": entry.link}) + b"\n")
                seq, prev = entry.seq + 1, entry.link
                if item.kind == "record-break":
                    log.warning("record: break recorded as entry %d: %s", entry.seq, where.problems)
                    WARNINGS.append(msg.RECORD_WARNING_BREAK(problems=Joined(list(where.problems), "; ", "；"),
                                                             seq=entry.seq, count=len(where.problems)))
        assert entry is not None
        log.debug("record: appended %s entry %d", content.kind, entry.seq)
        return entry

    def ensure_agent_key(self) -> Ed25519PrivateKey:
        """The agent key for a writer that signs before it records (a baseline): created through the record,
        so that a key never exists without an entry signed by it."""
        from agent.keys import load_agent_key
        from agent.wire.contents import AgentKeyContent, AgentKeySummary

        key = load_agent_key(self.state)
        if key is None:
            self.write(AgentKeyContent(summary=AgentKeySummary(event="created", message="agent key created")))
            key = load_agent_key(self.state)
        if key is None:  # pragma: no cover - written just above
            raise UserError(f"{self.state.path}: the agent key could not be created")
        return key


def last_entry_with(path: Path, needle: bytes, match: Callable[[Entry], bool] | None = None,
                    chunk: int = 1 << 20) -> Entry | None:
    """The newest well-formed entry whose line contains ``needle`` (and that ``match`` accepts), read backwards
    from the end, so recent entries are found without reading the whole record."""
    try:
        fd = open_state_file(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fh:
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
                        body_raw, hash_hex, sig = parse_line(raw)
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
            body_raw, hash_hex, sig = parse_line(raw)
            out.append(Entry.from_body(json.loads(body_raw), hash_hex, sig))
        except (ValueError, KeyError, TypeError):
            break
    return out


def verify(path: Path, public_key: Ed25519PublicKey | None = None) -> VerifyResult:
    """Check the record file (and its head file, and that a key never exists without a record); name the first
    problem no operator has acknowledged."""
    from agent.keys import KEY_FILE, load_agent_key

    state = path.parent
    key_present = (state / KEY_FILE).exists() or (state / KEY_FILE).is_symlink()
    head, head_state = _read_head_state(state / HEAD_FILE)
    try:
        data = read_state_file(path)
    except FileNotFoundError:
        data = b""
    if not data:
        # No record is fine only if none was ever written: the head file and the agent key remember.
        if head is not None or head_state == "damaged":
            return VerifyResult(False, 0, head.seq if head else None, None,
                                "record file missing (the head says entries were written)")
        if key_present:
            return VerifyResult(False, 0, None, None, "record file and head missing, but the agent key exists: "
                                                      "entries were written and the record was deleted")
        return VerifyResult(True, 0)
    if public_key is None:
        key = load_agent_key(StateDir(state))
        if key is None:
            return VerifyResult(False, 0, None, None, f"agent key missing ({state / KEY_FILE}): the record's "
                                                      "signatures cannot be checked")
        public_key = key.public_key()
    result = verify_record(data, public_key, head if head_state != "damaged" else Head(0, ""))
    if result.ok and head_state == "missing" and result.entries > 1:
        return VerifyResult(False, result.entries, None, None, "the head file is missing (entries cut off the end "
                            "could not be noticed)", result.acknowledged, ("record: the head file is missing",))
    return result
