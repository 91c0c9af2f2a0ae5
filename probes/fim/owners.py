"""Cache of the dpkg ownership map (path -> package, version, digest, conffile) for file integrity.

Parsing /var/lib/dpkg/info/*.list (~130k lines here) costs 0.6-1.5 s and ~40 MB at peak on every scan,
while the database changes only when packages are installed or removed. dpkg replaces ``status`` (new inode)
and creates or renames files in ``info/`` (the directory's mtime, ctime and listing change) on every such
run, so their stat facts plus the listing's names are the fingerprint. The cache also records the scanned
roots and the merged-/usr aliases, because the map is filtered by them. Any mismatch, or a missing, foreign
or corrupt file, means a fresh parse, never an error.

The file is compact JSON: a package table (name, version) and one flat list of owned paths with an index
into it, so the package and version strings are shared by all of a package's paths when loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from probes.atomic_file import atomic_write
from probes.fim.dpkg import Owned
from probes.transport import FileStat

log = logging.getLogger(__name__)

OWNERS_VERSION = 1


def _stat_text(st: FileStat | None) -> str:
    return "-" if st is None else f"{st.inode}:{st.size}:{st.mtime_ns}:{st.ctime_ns}"


def fingerprint(status: FileStat | None, info_dir: FileStat | None, diversions: FileStat | None,
                info_names: Sequence[str], roots: Sequence[str], aliases: Mapping[str, str]) -> str:
    """One hex string that changes whenever the dpkg database or the question asked of it may have."""
    h = hashlib.sha256()
    for part in (_stat_text(status), _stat_text(info_dir), _stat_text(diversions), *info_names, "",
                 *roots, "", *(f"{a}={r}" for a, r in sorted(aliases.items()))):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def owners_cache_path(cache_dir: Path, transport_name: str, root: str) -> Path:
    tag = hashlib.sha256(f"{transport_name}\0{root}".encode()).hexdigest()[:16]
    return cache_dir / f"dpkg-owners-{tag}.json"


def encode(key: str, owners: Mapping[str, Owned]) -> bytes:
    packages: dict[tuple[str, str], int] = {}
    flat: list[object] = []
    for path in sorted(owners):
        o = owners[path]
        index = packages.setdefault((o.package, o.version), len(packages))
        flat += [path, index, o.md5 or "", int(o.conffile)]
    doc = {"version": OWNERS_VERSION, "key": key, "packages": [list(p) for p in packages], "owners": flat}
    return json.dumps(doc, separators=(",", ":")).encode()


def decode(data: bytes, key: str) -> dict[str, Owned] | None:
    """The map, or None if ``data`` is not a cache of this version for ``key`` (raises nothing)."""
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("version") != OWNERS_VERSION or doc.get("key") != key:
            return None
        table = [(str(name), str(version)) for name, version in doc["packages"]]
        flat = doc["owners"]
        if not isinstance(flat, list) or len(flat) % 4:
            return None
        shared = {pair: Owned(pair[0], pair[1], None, False) for pair in table}
        out: dict[str, Owned] = {}
        for i in range(0, len(flat), 4):
            path, index, md5, conffile = flat[i:i + 4]
            if (not isinstance(path, str) or not isinstance(md5, str) or type(index) is not int or index < 0
                    or type(conffile) is not int or conffile not in (0, 1)):
                return None
            base = shared[table[index]]
            # Paths without a digest (directories, most of them) share one Owned per package.
            out[path] = base if not md5 and not conffile else Owned(base.package, base.version, md5 or None,
                                                                   bool(conffile))
        return out
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError):
        return None


def load_owners(path: Path, key: str) -> dict[str, Owned] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    owners = decode(data, key)
    if owners is None:
        log.debug("dpkg ownership cache %s stale or unusable: parsing the database", path)
    return owners


def save_owners(path: Path, key: str, owners: Mapping[str, Owned]) -> None:
    try:
        atomic_write(path, encode(key, owners))
    except OSError as exc:
        log.warning("cannot write dpkg ownership cache %s: %s", path, exc)
