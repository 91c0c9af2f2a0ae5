"""File integrity: every file, directory and symlink under the configured trees with its SHA-256, mode,
owner, inode, times, immutable flag and, where a package database knows it, the owning package and whether
the content still matches the package's digest.

The hashing engine is probes/fim/engine.py (incremental: unchanged files reuse cached digests). Options come from
``[probes.files]`` in config.toml (docs/file-integrity.md). No field is volatile: a changed inode, mtime or
ctime with the same digest is exactly what a careful replacement of a binary leaves behind, so baselines
compare everything; noisy paths are for the profile's drift-ignore section.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from probes.base import GatherContext, Probe, ProbeSettings, Raw, Requirements
from probes.errors import ProbeInputError
from probes.fim.dpkg import (
    Owned,
    build_ownership,
    canonicaliser,
    list_name_package,
    parse_diversions,
    parse_list,
    parse_md5sums,
    parse_status,
)
from probes.fim.engine import DEFAULT_PATHS, FileEntry, FimOptions, normalise_paths, scan
from probes.fim.owners import fingerprint, load_owners, owners_cache_path, save_owners
from probes.host._homes import read_homes
from probes.observation import Row
from probes.transport import FileStat, Transport

log = logging.getLogger(__name__)

DPKG = "/var/lib/dpkg"
DB_MAX_BYTES = 256 * 1024 * 1024  # the status file of a large server is tens of MB
USR_MERGE_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


class FilesOptions(BaseModel):
    """``[probes.files]`` in config.toml."""

    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(default_factory=lambda: list(DEFAULT_PATHS))
    ssh_dirs: bool = True  # also each account's ~/.ssh
    excludes: list[str] = Field(default_factory=list)
    full: bool = False
    full_rehash_days: float = Field(default=7.0, ge=0)
    max_file_size: int | None = Field(default=None, gt=0)
    workers: int = Field(default=0, ge=0, le=64)
    packages: bool = True  # check package-owned files against the package database

    @field_validator("paths")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        bad = [p for p in paths if not p.startswith("/") or "/../" in p + "/" or "\0" in p]
        if bad:
            raise ValueError(f"paths must be absolute, without '..': {', '.join(map(repr, bad))}")
        return paths


@dataclass(frozen=True, slots=True)
class FileRow(Row):
    path: str
    type: str  # file | dir | symlink | other
    sha256: str | None
    mode: int  # permission bits including setuid/setgid/sticky
    uid: int
    gid: int
    size: int
    inode: int
    mtime_ns: int
    ctime_ns: int
    target: str | None
    setuid: bool
    setgid: bool
    immutable: bool | None
    package: str  # owning package, "" when none
    package_version: str
    package_match: bool | None  # content matches the package's digest; None: not owned or no digest
    conffile: bool  # the package marks it as configuration (local edits are expected there)
    error: str | None

    KEY: ClassVar[tuple[str, ...]] = ("path",)
    VOLATILE: ClassVar[frozenset[str]] = frozenset()


def _usr_merge_aliases(t: Transport) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for link in USR_MERGE_LINKS:
        try:
            if not t.stat(link, follow=False).is_link:
                continue
            target = t.readlink(link)
        except OSError:
            continue
        aliases[link] = os.path.normpath(target if target.startswith("/") else "/" + target)
    return aliases


def under_matcher(roots: Sequence[str]) -> Callable[[str], bool]:
    """A fast "is this path in one of the trees" test (one regex: ~100k package paths are checked)."""
    if "/" in roots:
        return lambda path: True
    rx = re.compile("(?:" + "|".join(re.escape(r.rstrip("/")) for r in roots) + ")(?:/|$)")
    return lambda path: rx.match(path) is not None


def _stat_or_none(t: Transport, path: str) -> FileStat | None:
    try:
        return t.stat(path, follow=False)
    except FileNotFoundError:
        return None


def read_dpkg_ownership(ctx: GatherContext, roots: Sequence[str],
                        cache_dir: Path | None = None) -> dict[str, Owned] | None:
    """Owners of the paths under ``roots`` (None: no dpkg database on the target).

    With ``cache_dir``, the map is kept there and re-used while the database's fingerprint (stat facts of
    status, info/ and diversions, info/'s names) and ``roots`` stay the same (probes/fim/owners.py)."""
    t = ctx.transport
    try:
        status_st = t.stat(f"{DPKG}/status", follow=False)
        names = t.list_dir(f"{DPKG}/info")
        info_st = t.stat(f"{DPKG}/info", follow=False)
        diversions_st = _stat_or_none(t, f"{DPKG}/diversions")
    except FileNotFoundError:
        return None
    except PermissionError:
        ctx.limited(f"{DPKG} not readable: package ownership unknown")
        return None
    aliases = _usr_merge_aliases(t)
    cache = None
    if cache_dir is not None:
        key = fingerprint(status_st, info_st, diversions_st, names, roots, aliases)
        cache = owners_cache_path(cache_dir, t.name, str(getattr(t, "root", "/"))), key
        cached = load_owners(*cache)
        if cached is not None:
            return cached
    owned = _parse_dpkg(ctx, roots, names, aliases)
    if owned is not None and cache is not None:
        save_owners(*cache, owned)
    return owned


def _parse_dpkg(ctx: GatherContext, roots: Sequence[str], names: Sequence[str],
                aliases: dict[str, str]) -> dict[str, Owned] | None:
    t = ctx.transport
    try:
        status = parse_status(t.read_text(f"{DPKG}/status", DB_MAX_BYTES))
    except FileNotFoundError:
        return None
    except PermissionError:
        ctx.limited(f"{DPKG} not readable: package ownership unknown")
        return None
    try:
        diversions = parse_diversions(t.read_text(f"{DPKG}/diversions", DB_MAX_BYTES))
    except FileNotFoundError:
        diversions = []
    # Only packages that own something we scan are kept (and their digests read): most .list files are
    # dropped as soon as they are parsed, which keeps the peak memory of this parse low.
    under = under_matcher(roots)
    canon = canonicaliser(aliases)
    lists: dict[str, list[str]] = {}
    for name in names:
        pkg = list_name_package(name)
        if pkg is None:
            continue
        try:
            paths = parse_list(t.read_text(f"{DPKG}/info/{name}", DB_MAX_BYTES))
        except OSError as exc:
            log.debug("skipping %s: %s", name, exc)
            continue
        if any(under(canon(p)) for p in paths):
            lists[pkg] = paths
    md5sums: dict[str, dict[str, str]] = {}
    for pkg in lists:
        try:
            md5sums[pkg] = parse_md5sums(t.read_text(f"{DPKG}/info/{pkg}.md5sums", DB_MAX_BYTES))
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.debug("skipping %s.md5sums: %s", pkg, exc)
    owned = build_ownership(lists, md5sums, status, diversions, aliases)
    return {path: o for path, o in owned.items() if under(path)}


class FilesProbe(Probe[FileRow]):
    id = "files"
    title = "File integrity (hashes, permissions, owners, package digests)"
    requires = Requirements(root=True)
    timeout = 900.0  # the first full hash of a large tree; later scans reuse cached digests

    def __init__(self, options: FilesOptions | None = None, cache_dir: Path | None = None) -> None:
        self.options = options or FilesOptions()
        self.cache_dir = cache_dir

    @classmethod
    def configured(cls, settings: ProbeSettings) -> Self:
        try:
            options = FilesOptions.model_validate(dict(settings.options))
        except ValidationError as exc:
            raise ProbeInputError("probes.files: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(table)'}: {e['msg']}" for e in exc.errors())) from None
        return cls(options, settings.cache_dir)

    def roots(self, ctx: GatherContext) -> tuple[str, ...]:
        paths = list(self.options.paths)
        if self.options.ssh_dirs:
            paths += [h.home.rstrip("/") + "/.ssh" for h in read_homes(ctx)]
        return normalise_paths(paths)

    def gather(self, ctx: GatherContext) -> Raw:
        roots = self.roots(ctx)
        owners = read_dpkg_ownership(ctx, roots, self.cache_dir) if self.options.packages else None
        o = self.options
        fim = FimOptions(
            paths=roots, excludes=tuple(o.excludes), full=o.full, full_rehash_days=o.full_rehash_days,
            max_file_size=o.max_file_size, workers=o.workers,
            md5_paths=frozenset(p for p, own in (owners or {}).items() if own.md5),
        )
        result = scan(ctx.transport, fim, self.cache_dir)
        denied = sum(1 for e in result.entries if e.error and "permission" in e.error)
        if denied:
            ctx.limited(f"{denied} entries not readable: their digests are unknown")
        return {
            "entries": [e._asdict() for e in result.entries],
            "owners": {p: [own.package, own.version, own.md5, own.conffile] for p, own in (owners or {}).items()},
            "stats": {f.name: getattr(result.stats, f.name) for f in fields(result.stats)},
        }

    @staticmethod
    def parse(raw: Raw) -> Sequence[FileRow]:
        owners: dict[str, list[Any]] = raw.get("owners", {})
        rows = []
        for item in raw.get("entries", []):
            e = FileEntry(**item)
            pkg, version, expected, conffile = owners.get(e.path, ("", "", None, False))
            match = None if expected is None or e.type != "file" or e.md5 is None else e.md5 == expected
            rows.append(FileRow(
                path=e.path, type=e.type, sha256=e.sha256, mode=e.mode, uid=e.uid, gid=e.gid, size=e.size,
                inode=e.inode, mtime_ns=e.mtime_ns, ctime_ns=e.ctime_ns, target=e.target,
                setuid=bool(e.mode & 0o4000), setgid=bool(e.mode & 0o2000),
                immutable=e.immutable, package=pkg, package_version=version, package_match=match,
                conffile=bool(conffile), error=e.error,
            ))
        return sorted(rows, key=lambda r: r.path)
