"""The file-integrity hash cache: path -> (stat key, digests, immutable flag) from the previous scan.

A hit needs the same (inode, size, mtime_ns, ctime_ns): content cannot change without changing mtime or
ctime unless someone sets the clock back or writes the block device directly, which is why a periodic full
re-hash exists. The file is compact JSON written atomically; a missing, foreign or corrupt cache is an empty
cache (a full re-hash), never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from probes.atomic_file import atomic_write
from probes.fim.hashing import encode_entry

log = logging.getLogger(__name__)

CACHE_VERSION = 1

StatKey = tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns


@dataclass(frozen=True, slots=True)
class Cached:
    key: StatKey
    sha256: str | None
    md5: str | None
    immutable: bool | None

    def encode(self) -> str:
        return encode_entry(*self.key, self.sha256, self.md5, self.immutable)


_IMMUTABLE = {"": None, "0": False, "1": True}

Digests = tuple[str | None, str | None, bool | None]  # sha256, md5, immutable


def match_entry(text: str, ino: int, size: int, mtime_ns: int, ctime_ns: int, want_md5: bool) -> Digests | None:
    """The digests an encoded entry holds if its key is this stat key; None for a miss or an entry not of the
    encoded shape (field count, digest lengths, flag). Hot (once per entry of a re-check, 75k for /usr/lib),
    so str methods only: a regex or a per-character hex check here cost more than the rest of the lookup."""
    prefix = f"{ino}:{size}:{mtime_ns}:{ctime_ns}:"
    if not text.startswith(prefix):
        return None
    parts = text[len(prefix):].split(":")
    if len(parts) != 3:
        return None
    sha, md5, imm = parts
    if len(sha) not in (0, 64) or len(md5) not in (0, 32) or imm not in _IMMUTABLE or (want_md5 and not md5):
        return None
    return sha or None, md5 or None, _IMMUTABLE[imm]


@dataclass(slots=True)
class HashCache:
    """Entries stay encoded ("ino:size:mtime:ctime:sha256:md5:immutable") until looked up: decoding 60k
    entries up front would cost more than the whole unchanged re-check may take. A malformed entry (wrong
    shape, or not a string) can only miss (then the file is hashed again), so a damaged cache is harmless."""

    entries: dict[str, str] = field(default_factory=dict)
    last_full: float | None = None  # epoch seconds of the last full re-hash

    def lookup(self, path: str, key: StatKey, want_md5: bool) -> Cached | None:
        text = self.entries.get(path)
        if text is None:
            return None
        hit = match_entry(text, *key, want_md5)
        return None if hit is None else Cached(key, *hit)

    def put(self, path: str, cached: Cached) -> None:
        self.entries[path] = cached.encode()

    def to_bytes(self) -> bytes:
        data = {"version": CACHE_VERSION, "last_full": self.last_full, "entries": self.entries}
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> HashCache:
        """Decode; raises ValueError on anything that is not a cache of this version."""
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("version") != CACHE_VERSION:
            raise ValueError("not a version 1 cache")
        last_full = doc.get("last_full")
        if last_full is not None and not isinstance(last_full, int | float):
            raise ValueError("bad last_full")
        entries = doc.get("entries")
        if not isinstance(entries, dict):
            raise ValueError("bad entries")
        # Values that are not strings would break lookup's startswith: drop them (they only cost a re-hash).
        bad = [p for p, v in entries.items() if type(v) is not str]
        for p in bad:
            del entries[p]
        return cls(entries, float(last_full) if last_full is not None else None)


def cache_path(cache_dir: Path, transport_name: str, root: str) -> Path:
    """One cache per target tree, so that a fixture root never reuses the host's hashes."""
    tag = hashlib.sha256(f"{transport_name}\0{root}".encode()).hexdigest()[:16]
    return cache_dir / f"fim-{tag}.json"


def load_cache(path: Path | None) -> HashCache:
    if path is None:
        return HashCache()
    try:
        return HashCache.from_bytes(path.read_bytes())
    except FileNotFoundError:
        return HashCache()
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        log.warning("file-integrity cache %s unusable (%s): full re-hash", path, exc)
        return HashCache()


def save_cache(path: Path, cache: HashCache) -> None:
    try:
        atomic_write(path, cache.to_bytes())
    except OSError as exc:
        log.warning("cannot write file-integrity cache %s: %s", path, exc)
