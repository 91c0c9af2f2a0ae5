"""Baseline document format and its checks (pure: bytes in, bytes out; the files are agent/baseline_files.py).

A baseline document (format v2) is UTF-8 JSON lines in three sections, then a signature line:

    {"count":N,"digest":"blake2b-128/marshal0","format":"precaution.baseline/v2","index_bytes":L,"meta":{...},
     "schemas":[[probe,[attr,...]],...],"volatile":{probe:[attr,...]}}
    {"d":[digest hex,...],"k":[subject,...],"n":[row length,...],"s":schema}   index: up to BLOCK rows a line,
    ...                                                                        one probe and schema per line
    [value,value,...]                                                          one line per row, index order
    ...
    {"signature":{"alg":"ed25519","key":"<public key>","sha256":"<body digest>","sig":"<signature>"}}

The index holds each row's subject, the digest of its non-volatile attributes (baselines/rowdigest.py) and the
length of its value line. Loading verifies the signature while reading the three sections, parses only the
index and keeps the value lines as one bytes object: a row is decoded when it is asked for, so a diff decodes
just the rows whose digest differs (figures in bench/results/diff.md). JSON arrays decode as tuples.

The signature is Ed25519 over a domain tag plus the SHA-256 of every byte before the signature line, so a
changed byte, a cut-off end, a missing signature, another key or another host is detected before a single
observation is trusted.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from array import array
from bisect import bisect_right
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import accumulate, chain, compress, groupby, islice, repeat
from operator import itemgetter
from typing import IO, TYPE_CHECKING, Any, Literal

from baselines import ed25519
from baselines.diff import AttrMap, ObsKey, no_gc
from baselines.rowdigest import SCHEME, row_digests
from probes.key_fingerprint import sha256_fingerprint
from probes.observation import Observation

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "precaution.baseline/v2"
OLD_FORMATS = ("precaution.baseline/v1",)
SIGNATURE_CONTEXT = b"precaution.baseline/v2 signature\x00"
ScopeKind = Literal["host", "network"]
_SCOPE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

Reason = Literal["unsigned", "altered", "bad-signature", "foreign-key", "corrupt", "foreign-host", "wrong-scope",
                 "rolled-back", "unreadable", "old-format"]


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
    entries: BaselineRows  # (probe, subject) -> attributes, decoded on access; row digests without decoding
    volatile: Mapping[str, frozenset[str]]
    sha256: str  # digest of the signed body
    key_fingerprint: str

    def counts(self) -> dict[str, int]:
        out = {p: 0 for p in self.meta.probes}
        out.update(self.entries.counts())
        return out

    def observations(self) -> Iterator[Observation]:
        for (probe, subject), attrs in self.entries.decoded():
            yield Observation(probe, subject, attrs, self.volatile.get(probe, frozenset()))


@dataclass(slots=True)
class _ProbeRows:
    """One probe's rows: contiguous in the document from row ``first``; blocks may change the schema."""

    first: int
    digests: dict[str, bytes] = field(default_factory=dict)  # subject -> digest, in document order
    block_starts: list[int] = field(default_factory=list)  # row (relative to ``first``) where a block starts
    block_schemas: list[int] = field(default_factory=list)
    positions: dict[str, int] | None = None  # subject -> relative row, built on the first single lookup


class BaselineRows(Mapping[ObsKey, AttrMap]):
    """The rows of a verified document: (probe, subject) -> attributes, decoded from the kept value lines when
    asked for. Implements baselines.diff.DigestIndex, so a diff decodes only the rows whose digest differs."""

    def __init__(self, schemas: Sequence[tuple[str, tuple[str, ...]]], probes: dict[str, _ProbeRows],
                 values: bytes, offsets: array[int], volatile: Mapping[str, frozenset[str]]) -> None:
        self._schemas = schemas
        self._probes = probes
        self._values = values
        self._offsets = offsets  # row r's line is values[offsets[r]:offsets[r + 1]] (newline included)
        self._volatile = volatile
        self._len = sum(len(p.digests) for p in probes.values())

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[ObsKey]:
        for probe, rows in self._probes.items():
            yield from zip(repeat(probe), rows.digests)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        rows = self._probes.get(key[0])
        return rows is not None and key[1] in rows.digests

    def __getitem__(self, key: ObsKey) -> AttrMap:
        rows = self._probes[key[0]]
        if rows.positions is None:
            rows.positions = dict(zip(rows.digests, range(len(rows.digests)), strict=True))
        return self._decode(rows, rows.positions[key[1]])

    def counts(self) -> dict[str, int]:
        return {p: len(r.digests) for p, r in self._probes.items()}

    # DigestIndex (baselines/diff.py)
    def probe_names(self) -> Collection[str]:
        return self._probes.keys()

    def probe_digests(self, probe: str) -> Mapping[str, bytes]:
        rows = self._probes.get(probe)
        return rows.digests if rows is not None else {}

    def digest_volatile(self, probe: str) -> frozenset[str]:
        return self._volatile.get(probe, frozenset())

    def decode_many(self, probe: str, subjects: Collection[str]) -> dict[str, AttrMap]:
        rows = self._probes.get(probe)
        if rows is None or not subjects:
            return {}
        if rows.positions is not None:
            found: Iterable[tuple[int, str]] = [(rows.positions[s], s) for s in subjects]
        else:  # one C-level pass over the subjects beats building a position index for a few rows
            found = compress(enumerate(rows.digests), map(set(subjects).__contains__, rows.digests))
        return {s: self._decode(rows, i) for i, s in found}

    def decoded(self) -> Iterator[tuple[ObsKey, AttrMap]]:
        """Every row in document order, a block at a time (one JSON parse per block)."""
        values, offsets = self._values, self._offsets
        for probe, rows in self._probes.items():
            subjects = list(rows.digests)
            ends = [*rows.block_starts[1:], len(subjects)]
            for start, end, schema in zip(rows.block_starts, ends, rows.block_schemas, strict=True):
                names = self._schemas[schema][1]
                a, b = offsets[rows.first + start], offsets[rows.first + end]
                try:
                    block = json.loads(b"[" + values[a:b - 1].replace(b"\n", b",") + b"]")
                except ValueError:
                    raise BaselineInvalid("corrupt", "baseline rows are malformed") from None
                for subject, vals in zip(subjects[start:end], block, strict=True):
                    yield (probe, subject), _attrs(names, vals)

    def _decode(self, rows: _ProbeRows, i: int) -> AttrMap:
        r = rows.first + i
        a, b = self._offsets[r], self._offsets[r + 1]
        names = self._schemas[rows.block_schemas[bisect_right(rows.block_starts, i) - 1]][1]
        try:
            if self._values[b - 1] != 0x0A:
                raise ValueError("value line is not where the index says")
            return _attrs(names, json.loads(self._values[a:b - 1]))
        except ValueError:
            raise BaselineInvalid("corrupt", "baseline rows are malformed") from None


def _attrs(names: tuple[str, ...], values: Any) -> dict[str, Any]:
    if type(values) is not list or len(values) != len(names):
        raise BaselineInvalid("corrupt", "baseline rows are malformed: a row does not match its schema")
    if list in map(type, values):
        values = [_tuples(v) for v in values]
    return dict(zip(names, values, strict=True))


def _tuples(value: Any) -> Any:
    return tuple(map(_tuples, value)) if type(value) is list else value


BLOCK = 4096  # rows per index line: one C-level encode/decode per block instead of one per row

_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False).encode


def _unencodable(value: Any) -> Any:
    raise TypeError(f"attribute value of type {type(value).__name__} cannot be stored in a baseline")


def _row_encoder() -> Any:
    """One JSON text per row. The module-level C encoder (what json.dumps runs) called directly: json.dumps
    per row costs several times more in Python set-up than in encoding."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
    encoder = make(None, _unencodable, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)

    def encode(row: Any) -> str:
        return "".join(encoder(row, 0))

    return encode


_encode_row = _row_encoder()



def _optional_orjson() -> Any:
    """orjson when installed: it encodes value lines ~20x faster than the json module (bench/results/diff.md)."""
    try:
        import orjson
    except ImportError:
        return None
    return orjson


_orjson: Any = _optional_orjson()


def encode_body(meta: BaselineMeta, entries: Mapping[ObsKey, AttrMap],
                volatile: Mapping[str, frozenset[str]]) -> bytes:
    """The signed part of the document: header, index lines, value lines (see the module doc)."""
    schemas: dict[tuple[str, tuple[str, ...]], int] = {}
    index: list[bytes] = []
    values: list[bytes] = []
    with no_gc():
        pairs = list(entries.decoded() if isinstance(entries, BaselineRows) else entries.items())
        keys = list(map(itemgetter(0), pairs))
        attrs = list(map(itemgetter(1), pairs))
        del pairs
        shapes = list(zip(map(itemgetter(0), keys), map(tuple, attrs), strict=True))  # (probe, names) per row
        runs: dict[tuple[str, tuple[str, ...]], list[tuple[int, int]]] = {}
        pos = 0
        for shape, run in groupby(shapes):
            n = len(list(run))
            runs.setdefault(shape, []).append((pos, pos + n))
            pos += n
        del shapes
        for probe in dict.fromkeys(shape[0] for shape in runs):  # a probe's rows stay contiguous
            vol = volatile.get(probe, frozenset())
            for shape in [s for s in runs if s[0] == probe]:
                idx = schemas[shape] = len(schemas)
                rows = _take(runs[shape], attrs)
                subjects = list(map(itemgetter(1), _take(runs[shape], keys)))
                digests = row_digests(rows, vol)
                text, lengths = _value_lines(list(_value_tuples(shape[1], rows)))
                values.append(text)
                for at in range(0, len(rows), BLOCK):
                    index.append(_encode({"d": list(map(bytes.hex, digests[at:at + BLOCK])),
                                          "k": subjects[at:at + BLOCK], "n": lengths[at:at + BLOCK],
                                          "s": idx}).encode("ascii"))
    index_bytes = b"".join(line + b"\n" for line in index)
    header = {
        "format": FORMAT,
        "digest": SCHEME,
        "meta": meta.to_json(),
        "count": len(keys),
        "index_bytes": len(index_bytes),
        "schemas": [[probe, list(names)] for (probe, names) in schemas],
        "volatile": {p: sorted(v) for p, v in sorted(volatile.items()) if v},
    }
    return b"".join((_encode(header).encode("ascii"), b"\n", index_bytes, *(v + b"\n" for v in values)))


def _value_lines(rows: list[tuple[Any, ...]]) -> tuple[bytes, list[int]]:
    """The rows as JSON lines (joined, without the last line break) and each line's length in bytes.

    With orjson the rows are encoded in one call and split where one row ends and the next begins ("],[" at
    the top level): JSON text has no raw line break, and if a string or a pair of tuple values also holds "],["
    the count of breaks gives it away and the rows are encoded one by one. orjson would write NaN and
    infinities as null, so rows holding floats take the standard encoder too.
    """
    if not rows:
        return b"", []
    if _orjson is not None and float not in map(type, chain.from_iterable(rows)):
        try:
            text = _orjson.dumps(rows)[1:-1].replace(b"],[", b"]\n[")
        except TypeError:  # an int beyond 64 bits: the standard encoder takes it
            text = b""
        if text.count(b"\n") == len(rows) - 1:
            return text, list(map(len, text.split(b"\n")))
    lines = [_encode_row(row).encode("ascii") for row in rows]
    return b"\n".join(lines), list(map(len, lines))


def _take(runs: list[tuple[int, int]], seq: list[Any]) -> list[Any]:
    if len(runs) == 1:
        return seq[runs[0][0]:runs[0][1]]
    return [x for a, b in runs for x in seq[a:b]]


def _value_tuples(names: tuple[str, ...], rows: Sequence[AttrMap]) -> Iterator[tuple[Any, ...]]:
    if len(names) >= 2:
        return map(itemgetter(*names), rows)
    if names:
        return zip(map(itemgetter(names[0]), rows))
    return iter(repeat((), len(rows)))


def sign_body(body: bytes, key: Ed25519PrivateKey) -> bytes:
    """The whole document: the body followed by its signature line."""
    digest = hashlib.sha256(body).digest()
    trailer = {"signature": {"alg": "ed25519", "key": _raw_b64(key.public_key()), "sha256": digest.hex(),
                             "sig": ed25519.sign_b64(key, SIGNATURE_CONTEXT + digest)}}
    return body + _encode(trailer).encode() + b"\n"


def load_document(data: bytes, trusted: Ed25519PublicKey) -> Baseline:
    """``read_document`` over bytes in memory."""
    return read_document(io.BytesIO(data), trusted)


def read_document(stream: IO[bytes], trusted: Ed25519PublicKey) -> Baseline:
    """Read, verify and index a document signed by ``trusted``; BaselineInvalid otherwise.

    The three sections are read as separate objects and hashed as they come (no second copy of the file); only
    the value lines are kept. Nothing read is used before the signature has been checked, except the unsigned
    header's format (to name an old format) and index length (where to split; a wrong one fails the digest).
    """
    first = stream.readline()
    peek = _peek_header(first)
    if peek.get("format") in OLD_FORMATS:
        raise BaselineInvalid("old-format", f"baseline is in the old format {peek['format']} (this agent reads "
                                            f"{FORMAT}): capture it again with `precaution baseline capture "
                                            "--force`")
    index_len = peek.get("index_bytes")
    index_len = index_len if type(index_len) is int and index_len > 0 else 0
    index = stream.read(index_len) if index_len else b""
    rest = stream.read()
    digest = hashlib.sha256(first)
    digest.update(index)
    if len(index) == index_len and rest.endswith(b"\n"):
        cut = rest.rfind(b"\n", 0, len(rest) - 1) + 1
        digest.update(memoryview(rest)[:cut])
        _check_signature(rest[cut:], digest.digest(), trusted)
        return _decode(first, index, rest, cut, digest.hexdigest(), key_fingerprint(trusted))
    # The file ends before where its header says the index ends, or without a line break: judge it whole.
    data = first + index + rest
    if not data.endswith(b"\n"):
        raise BaselineInvalid("unsigned", "truncated or unsigned: the file does not end with a signature line")
    cut = data.rfind(b"\n", 0, len(data) - 1) + 1
    _check_signature(data[cut:], hashlib.sha256(memoryview(data)[:cut]).digest(), trusted)
    raise BaselineInvalid("corrupt", "baseline sections do not match the header")


def body_sha256(data: bytes) -> str:
    """The digest a document's signature covers (everything before its last line)."""
    cut = data.rfind(b"\n", 0, max(len(data) - 1, 0)) + 1
    return hashlib.sha256(memoryview(data)[:cut]).hexdigest()


def _peek_header(line: bytes) -> dict[str, Any]:
    try:
        header = json.loads(line)
    except ValueError:
        return {}
    return header if isinstance(header, dict) else {}


def _check_signature(last: bytes, digest: bytes, trusted: Ed25519PublicKey) -> None:
    try:
        sig = json.loads(last)["signature"]
        alg, key_text, digest_hex, sig_b64 = sig["alg"], sig["key"], sig["sha256"], sig["sig"]
    except (ValueError, KeyError, TypeError):
        raise BaselineInvalid("unsigned", "truncated or unsigned: no signature line at the end") from None
    if alg != "ed25519":
        raise BaselineInvalid("bad-signature", f"unsupported signature algorithm {alg!r}")
    if key_text != _raw_b64(trusted):
        try:
            other = sha256_fingerprint(base64.b64decode(str(key_text), validate=True))
        except ValueError:
            other = "unreadable key"
        raise BaselineInvalid("foreign-key", f"signed by another key ({other}), not this agent's "
                                             f"({key_fingerprint(trusted)})")
    if digest.hex() != digest_hex:
        raise BaselineInvalid("altered", "content altered after signing (digest mismatch)")
    if not ed25519.verify_b64(trusted, str(sig_b64), SIGNATURE_CONTEXT + digest):
        raise BaselineInvalid("bad-signature", "signature does not verify")


_raw_b64 = ed25519.public_b64
key_fingerprint = ed25519.fingerprint


def read_header(line: bytes) -> dict[str, Any]:
    """The header of a document in this or an older format (history lists the metadata of every version)."""
    end = line.find(b"\n")
    try:
        header = json.loads(line[: end if end >= 0 else len(line)])
    except ValueError:
        raise BaselineInvalid("corrupt", "baseline header is not JSON") from None
    if not isinstance(header, dict) or header.get("format") not in (FORMAT, *OLD_FORMATS):
        raise BaselineInvalid("corrupt", f"not a {FORMAT} document")
    return header


def _decode(first: bytes, index: bytes, values: bytes, values_len: int, digest: str, fingerprint: str) -> Baseline:
    """Index a verified document (the signature has been checked)."""
    header = read_header(first)
    if header.get("format") != FORMAT or header.get("digest") != SCHEME:
        raise BaselineInvalid("corrupt", f"not a {FORMAT} document with {SCHEME} row digests")
    meta = BaselineMeta.from_json(header.get("meta") or {})
    probes: dict[str, _ProbeRows] = {}
    offsets = array("q", [0])
    row = 0
    try:
        schemas = [(str(p), tuple(map(str, n))) for p, n in header["schemas"]]
        pos = 0
        with no_gc():
            while pos < len(index):
                end = index.find(b"\n", pos)
                block = json.loads(index[pos:end if end >= 0 else len(index)])
                pos = len(index) if end < 0 else end + 1
                subjects, digests, lengths, schema = block["k"], block["d"], block["n"], block["s"]
                if not len(subjects) == len(digests) == len(lengths) or type(schema) is not int or schema < 0:
                    raise ValueError("index block columns differ in length")
                probe = schemas[schema][0]
                rows = probes.get(probe)
                if rows is None:
                    rows = probes[probe] = _ProbeRows(row)
                elif rows.first + len(rows.digests) != row:
                    raise ValueError(f"rows of {probe} are not contiguous")
                rows.block_starts.append(row - rows.first)
                rows.block_schemas.append(schema)
                before = len(rows.digests)
                rows.digests.update(zip(subjects, map(bytes.fromhex, digests), strict=True))
                if len(rows.digests) != before + len(subjects):
                    raise ValueError(f"a subject of {probe} appears twice")
                offsets.extend(islice(accumulate(map((1).__add__, lengths), initial=offsets[-1]), 1, None))
                row += len(subjects)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BaselineInvalid("corrupt", f"baseline rows are malformed: {exc}") from None
    if row != header.get("count"):
        raise BaselineInvalid("corrupt", f"baseline holds {row} rows, its header says {header.get('count')}")
    if offsets[-1] != values_len:
        raise BaselineInvalid("corrupt", "baseline rows are malformed: value lines do not match the index")
    volatile = {str(p): frozenset(v) for p, v in (header.get("volatile") or {}).items()}
    entries = BaselineRows(schemas, probes, values, offsets, volatile)
    return Baseline(meta, entries, volatile, digest, fingerprint)


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
