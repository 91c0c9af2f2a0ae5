"""What the file-integrity engine produces and is told: options, one entry per walked path, stats. Shared by
the local engine (engine.py) and the command-based one for remote hosts (remote.py)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from probes.fim.cache import HashCache, StatKey

DEFAULT_PATHS = ("/etc", "/usr/bin", "/usr/sbin", "/bin", "/sbin", "/boot", "/usr/lib/systemd")
ALWAYS_PRUNED = frozenset({"/proc", "/sys"})


@dataclass(frozen=True, slots=True)
class FimOptions:
    paths: tuple[str, ...] = DEFAULT_PATHS
    excludes: tuple[str, ...] = ()  # fnmatch globs on absolute paths; "*" also matches "/"
    full: bool = False  # re-hash everything, ignoring the cache
    full_rehash_days: float = 7.0  # a full re-hash when the last one is older (0: only when asked)
    max_file_size: int | None = None  # larger files are stat-ed, not hashed (error says why)
    workers: int = 0  # 0: one per CPU
    md5_paths: frozenset[str] = frozenset()  # files whose MD5 is wanted too (package database checks)
    processes: bool | None = None  # hash in worker processes; None: with >= 4 CPUs and enough to hash
    find_walk: bool = True  # list trees with GNU find where available (False: always os.scandir)


class FileEntry(NamedTuple):
    """One walked entry. A NamedTuple rather than a frozen dataclass: a re-check of /usr/lib builds 75k of
    them, and a frozen dataclass's __init__ (one object.__setattr__ per field) cost ~5x as much per entry."""

    path: str
    type: str  # file | dir | symlink | other
    mode: int  # permission bits with setuid/setgid/sticky (S_IMODE)
    uid: int
    gid: int
    size: int
    inode: int
    mtime_ns: int
    ctime_ns: int
    target: str | None = None  # symlink target, never followed
    immutable: bool | None = None  # FS_IMMUTABLE_FL, None where it cannot be read (symlinks, remote, no ioctl)
    sha256: str | None = None
    md5: str | None = None
    error: str | None = None

    @property
    def key(self) -> StatKey:
        return (self.inode, self.size, self.mtime_ns, self.ctime_ns)


@dataclass(frozen=True, slots=True)
class FimStats:
    entries: int
    hashed: int  # files read and hashed this scan
    cache_hits: int  # files whose digests came from the cache
    bytes_hashed: int
    errors: int
    full: bool  # this scan re-hashed everything
    seconds: float


@dataclass(frozen=True, slots=True)
class FimResult:
    entries: tuple[FileEntry, ...]
    stats: FimStats


def normalise_paths(paths: Iterable[str]) -> tuple[str, ...]:
    """Absolute, without trailing slashes, duplicates or paths inside another listed path."""
    clean = sorted({os.path.normpath(p) if p != "/" else "/" for p in paths})
    out: list[str] = []
    for p in clean:
        if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return tuple(out)


def needs_full(cache: HashCache, options: FimOptions, now: float) -> bool:
    if options.full or not cache.entries or cache.last_full is None:
        return True
    return options.full_rehash_days > 0 and now - cache.last_full > options.full_rehash_days * 86400
