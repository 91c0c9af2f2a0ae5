"""Baseline document format and its checks (pure: bytes in, bytes out; the files are agent/baseline_files.py).

A baseline document is three kinds of lines, each canonical JSON (sorted keys, no spaces, UTF-8):

    {"count":N,"format":"precaution.baseline/v1","meta":{...},"schemas":[[probe,[attr,...],[tuple cols]]],...}
    [[schema, "subject", value, value, ...], ...]   blocks of up to BLOCK observations, one block a line
    {"signature":{"alg":"ed25519","key":"<public key>","sha256":"<body digest>","sig":"<signature>"}}

The signature is Ed25519 over a domain tag plus the SHA-256 of every byte before the signature line, so a
changed byte, a cut-off end, a missing signature, another key or another host is detected before a single
observation is trusted. Observations are rows of values under a per-probe schema rather than objects, in
blocks so that encoding and parsing run in C a block at a time and loading never holds a second copy of the
whole file (figures in bench/results/diff.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from baselines.diff import AttrMap, ObsIndex, ObsKey, no_gc
from probes.observation import Observation

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "precaution.baseline/v1"
SIGNATURE_CONTEXT = b"precaution.baseline/v1 signature\x00"
ScopeKind = Literal["host", "network"]
_SCOPE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

Reason = Literal["unsigned", "altered", "bad-signature", "foreign-key", "corrupt", "foreign-host", "wrong-scope",
                 "rolled-back", "unreadable"]


class BaselineInvalid(Exception):
    """The stored baseline cannot be trusted; ``reason`` is a short code, the message one clear line."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    id: str

    def __post_init__(self) -> None:
        if self.kind not in ("host", "network") or not _SCOPE_ID.match(self.id):
            raise ValueError(f"bad baseline scope {self.kind}/{self.id}")

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.id}"


@dataclass(frozen=True, slots=True)
class BaselineMeta:
    scope: Scope
    version: int
    created_at: str  # first capture of this baseline (ISO 8601, UTC)
    created_by: str
    accepted_at: str  # this version
    accepted_by: str
    action: Literal["capture", "accept"]
    accepted_items: int  # drift items taken in by this version (0 for a capture)
    tool_version: str
    hostname: str
    machine_id: str
    profile_id: str
    probes: tuple[str, ...]
    parent_sha256: str | None = None  # body digest of the previous version
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["scope"] = {"kind": self.scope.kind, "id": self.scope.id}
        data["probes"] = list(self.probes)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BaselineMeta:
        try:
            scope = Scope(data["scope"]["kind"], data["scope"]["id"])
            return cls(scope=scope, version=int(data["version"]), created_at=str(data["created_at"]),
                       created_by=str(data["created_by"]), accepted_at=str(data["accepted_at"]),
                       accepted_by=str(data["accepted_by"]), action=data["action"],
                       accepted_items=int(data["accepted_items"]), tool_version=str(data["tool_version"]),
                       hostname=str(data["hostname"]), machine_id=str(data["machine_id"]),
                       profile_id=str(data["profile_id"]), probes=tuple(data["probes"]),
                       parent_sha256=data.get("parent_sha256"), note=data.get("note"))
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineInvalid("corrupt", f"baseline metadata is incomplete: {exc}") from None


@dataclass(frozen=True, slots=True)
class Baseline:
    meta: BaselineMeta
    entries: ObsIndex  # (probe, subject) -> attributes
    volatile: Mapping[str, frozenset[str]]
    sha256: str  # digest of the signed body
    key_fingerprint: str

    def counts(self) -> dict[str, int]:
        out = {p: 0 for p in self.meta.probes}
        for probe, _ in self.entries:
            out[probe] = out.get(probe, 0) + 1
        return out

    def observations(self) -> Iterator[Observation]:
        for (probe, subject), attrs in self.entries.items():
            yield Observation(probe, subject, attrs, self.volatile.get(probe, frozenset()))


BLOCK = 4096  # rows per line: one C-level encode/decode per block instead of one per row

_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def encode_body(meta: BaselineMeta, entries: Mapping[ObsKey, AttrMap],
                volatile: Mapping[str, frozenset[str]]) -> bytes:
    """The signed part of the document: the header line, then blocks of up to BLOCK rows, one block a line."""
    schemas: dict[tuple[str, tuple[str, ...]], int] = {}
    tuple_cols: list[set[int]] = []
    blocks: list[str] = []
    block: list[list[Any]] = []
    with no_gc():
        for (probe, subject), attrs in entries.items():
            names = tuple(attrs)
            idx = schemas.get((probe, names))
            if idx is None:
                idx = schemas[(probe, names)] = len(schemas)
                tuple_cols.append(set())
            values = list(attrs.values())
            if tuple in map(type, values):
                tuple_cols[idx].update(col for col, v in enumerate(values) if type(v) is tuple)
            block.append([idx, subject, *values])
            if len(block) == BLOCK:
                blocks.append(_encode(block))
                block = []
        if block:
            blocks.append(_encode(block))
    header = {
        "format": FORMAT,
        "meta": meta.to_json(),
        "count": len(entries),
        "schemas": [[probe, list(names), sorted(tuple_cols[i])] for (probe, names), i in schemas.items()],
        "volatile": {p: sorted(v) for p, v in sorted(volatile.items()) if v},
    }
    parts = [_encode(header), *blocks]
    return ("\n".join(parts) + "\n").encode("utf-8")


def sign_body(body: bytes, key: Ed25519PrivateKey) -> bytes:
    """The whole document: the body followed by its signature line."""
    digest = hashlib.sha256(body).digest()
    signature = key.sign(SIGNATURE_CONTEXT + digest)
    trailer = {"signature": {"alg": "ed25519", "key": _raw_b64(key.public_key()), "sha256": digest.hex(),
                             "sig": base64.b64encode(signature).decode()}}
    return body + _encode(trailer).encode() + b"\n"


def verify_document(data: bytes, trusted: Ed25519PublicKey) -> tuple[bytes, str]:
    """(body, body digest) of a document signed by ``trusted``; BaselineInvalid otherwise."""
    from cryptography.exceptions import InvalidSignature

    if not data.endswith(b"\n"):
        raise BaselineInvalid("unsigned", "truncated or unsigned: the file does not end with a signature line")
    cut = data.rfind(b"\n", 0, len(data) - 1) + 1
    body, last = data[:cut], data[cut:]
    try:
        sig = json.loads(last)["signature"]
        alg, key_text, digest_hex, sig_b64 = sig["alg"], sig["key"], sig["sha256"], sig["sig"]
    except (ValueError, KeyError, TypeError):
        raise BaselineInvalid("unsigned", "truncated or unsigned: no signature line at the end") from None
    if alg != "ed25519":
        raise BaselineInvalid("bad-signature", f"unsupported signature algorithm {alg!r}")
    if key_text != _raw_b64(trusted):
        try:
            other = fingerprint_of(base64.b64decode(str(key_text), validate=True))
        except ValueError:
            other = "unreadable key"
        raise BaselineInvalid("foreign-key", f"signed by another key ({other}), not this agent's "
                                             f"({key_fingerprint(trusted)})")
    digest = hashlib.sha256(body).digest()
    if digest.hex() != digest_hex:
        raise BaselineInvalid("altered", "content altered after signing (digest mismatch)")
    try:
        trusted.verify(base64.b64decode(str(sig_b64), validate=True), SIGNATURE_CONTEXT + digest)
    except (InvalidSignature, ValueError):
        raise BaselineInvalid("bad-signature", "signature does not verify") from None
    return body, digest.hex()


def _raw_b64(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def fingerprint_of(raw: bytes) -> str:
    """Same form as agent.keys.key_fingerprint (OpenSSH style)."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def key_fingerprint(key: Ed25519PublicKey) -> str:
    return fingerprint_of(base64.b64decode(_raw_b64(key)))


def read_header(body: bytes) -> dict[str, Any]:
    end = body.find(b"\n")
    try:
        header = json.loads(body[: end if end >= 0 else len(body)])
    except ValueError:
        raise BaselineInvalid("corrupt", "baseline header is not JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BaselineInvalid("corrupt", f"not a {FORMAT} document")
    return header


def decode_body(body: bytes, digest: str, key_fingerprint: str) -> Baseline:
    """Parse a verified body. Only ever called after verify_document."""
    header = read_header(body)
    meta = BaselineMeta.from_json(header.get("meta") or {})
    entries: dict[ObsKey, AttrMap] = {}
    count = 0
    try:
        schemas = [(str(p), tuple(n), tuple(t)) for p, n, t in header["schemas"]]
        pos = body.find(b"\n") + 1
        with no_gc():
            while pos < len(body):
                end = body.find(b"\n", pos)
                end = len(body) if end < 0 else end
                rows = json.loads(body[pos:end])  # one block: a slice of the body, never a copy of all of it
                pos = end + 1
                count += len(rows)
                for row in rows:
                    probe, names, tuples = schemas[row[0]]
                    attrs = dict(zip(names, row[2:], strict=True))
                    for col in tuples:
                        value = attrs[names[col]]
                        if type(value) is list:
                            attrs[names[col]] = tuple(value)
                    entries[(probe, row[1])] = attrs
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BaselineInvalid("corrupt", f"baseline rows are malformed: {exc}") from None
    if count != header.get("count") or len(entries) != count:
        raise BaselineInvalid("corrupt", f"baseline holds {count} rows, its header says {header.get('count')}")
    volatile = {str(p): frozenset(v) for p, v in (header.get("volatile") or {}).items()}
    return Baseline(meta, entries, volatile, digest, key_fingerprint)


def check_identity(meta: BaselineMeta, scope: Scope, hostname: str, machine_id: str) -> None:
    """The baseline belongs to this scope and, for a host scope, to this host (machine-id, else hostname)."""
    if meta.scope != scope:
        raise BaselineInvalid("wrong-scope", f"baseline belongs to {meta.scope.label}, not {scope.label}")
    if scope.kind != "host":
        return
    if meta.machine_id and machine_id:
        if meta.machine_id != machine_id:
            raise BaselineInvalid("foreign-host", f"captured on another host ({meta.hostname}, machine-id "
                                                  f"{meta.machine_id[:12]}…), this is {hostname}")
    elif meta.hostname != hostname:
        raise BaselineInvalid("foreign-host", f"captured on another host ({meta.hostname}), this is {hostname}")
