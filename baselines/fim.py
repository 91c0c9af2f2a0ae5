"""File integrity: walk configured trees, stat every entry, hash regular files (SHA-256, plus MD5 for the files
a package database can verify), reusing last scan's digests for files whose (inode, size, mtime_ns, ctime_ns)
did not change.

This is the I/O edge of file integrity. Locally it reads through ``LocalTransport.host_path`` (so fixture roots
work) with a thread pool: hashlib and os.readv release the GIL, so large reads (1 MiB) hash on every core.
Over a transport without local file access (SSH) it runs ``find -printf`` and ``sha256sum`` through
``transport.run`` instead (baselines/fim_remote.py). Vanished or unreadable files become entries with an
``error``; nothing about one file aborts a scan.
"""

from __future__ import annotations

import fcntl
import fnmatch
import hashlib
import logging
import os
import re
import stat as stat_mod
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from baselines.fim_cache import Cached, HashCache, StatKey, cache_path, load_cache, save_cache
from probes.transport import Transport

log = logging.getLogger(__name__)

DEFAULT_PATHS = ("/etc", "/usr/bin", "/usr/sbin", "/bin", "/sbin", "/boot", "/usr/lib/systemd")
READ_SIZE = 1 << 20  # large reads: hashlib drops the GIL per update, so big buffers mean real parallelism
# Files below this size are hashed by the walking thread itself, larger ones in the pool. Small files cost
# syscalls (open, fstat, ioctl, read, close), each a GIL hand-off; spread over threads they convoy on the GIL
# and got slower than one thread (measured: /usr/lib, 62k files, 2 cores). Big files spend their time in
# hashlib without the GIL, which is where threads pay.
INLINE_MAX = 256 * 1024
FS_IOC_GETFLAGS = 0x80086601  # _IOR('f', 1, long) on 64-bit Linux
FS_IMMUTABLE_FL = 0x00000010
# Kernel pseudo filesystems: their trees describe the running system, not files, and reading some blocks.
PSEUDO_FS = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs", "pstore",
    "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "autofs", "binfmt_misc", "efivarfs", "nsfs", "rpc_pipefs",
})
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


@dataclass(frozen=True, slots=True)
class FileEntry:
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


class _HostPaths(Protocol):
    def host_path(self, path: str) -> str: ...


def entry_type(mode: int) -> str:
    if stat_mod.S_ISREG(mode):
        return "file"
    if stat_mod.S_ISDIR(mode):
        return "dir"
    if stat_mod.S_ISLNK(mode):
        return "symlink"
    return "other"


def normalise_paths(paths: Iterable[str]) -> tuple[str, ...]:
    """Absolute, without trailing slashes, duplicates or paths inside another listed path."""
    clean = sorted({os.path.normpath(p) if p != "/" else "/" for p in paths})
    out: list[str] = []
    for p in clean:
        if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return tuple(out)


def compile_excludes(globs: Iterable[str]) -> Callable[[str], bool] | None:
    patterns = [fnmatch.translate(g) for g in globs]
    if not patterns:
        return None
    rx = re.compile("|".join(f"(?:{p})" for p in patterns))
    return lambda path: rx.match(path) is not None


def parse_pseudo_mounts(mountinfo: str) -> frozenset[str]:
    """Mount points of kernel pseudo filesystems from /proc/self/mountinfo text."""
    out = set()
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if sep and len(fields) >= 5 and rfields and rfields[0] in PSEUDO_FS:
            out.add(fields[4].replace("\\040", " "))
    return frozenset(out)


def needs_full(cache: HashCache, options: FimOptions, now: float) -> bool:
    if options.full or not cache.entries or cache.last_full is None:
        return True
    return options.full_rehash_days > 0 and now - cache.last_full > options.full_rehash_days * 86400


def _join(parent: str, name: str) -> str:
    return parent + name if parent.endswith("/") else parent + "/" + name


def _stat_entry(path: str, st: os.stat_result, target: str | None = None, error: str | None = None) -> FileEntry:
    return FileEntry(path, entry_type(st.st_mode), stat_mod.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size,
                     st.st_ino, st.st_mtime_ns, st.st_ctime_ns, target=target, error=error)


def _error_entry(path: str, error: str) -> FileEntry:
    return FileEntry(path, "other", 0, -1, -1, 0, 0, 0, 0, error=error)


def _reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "vanished during scan"
    return exc.strerror.lower() if exc.strerror else type(exc).__name__


def _flags(fd: int) -> bool | None:
    buf = bytearray(8)
    try:
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
    except OSError:
        return None  # ENOTTY/EINVAL: the filesystem keeps no such flags
    return bool(int.from_bytes(buf[:4], "little") & FS_IMMUTABLE_FL)


class _Hasher:
    """Hashes files in worker threads; each thread keeps one read buffer."""

    def __init__(self, root_user: bool) -> None:
        self._local = threading.local()
        # O_NOATIME keeps a scan from rewriting every atime (it is refused for files we do not own unless root).
        self._flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_NOATIME if root_user else 0)

    def _buffer(self) -> tuple[bytearray, memoryview]:
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = bytearray(READ_SIZE)
            self._local.buf = buf
            self._local.view = memoryview(buf)
        return buf, self._local.view

    def hash_one(self, host: str, walked: FileEntry, want_md5: bool) -> tuple[FileEntry, bool]:
        """(entry with digests, cacheable). Uses the open file's own stat, so digest and key belong together."""
        try:
            fd = os.open(host, self._flags)
        except OSError as exc:
            return replace(walked, error=_reason(exc)), False
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode) or st.st_ino != walked.inode:
                return replace(walked, error="replaced during scan"), False
            immutable = _flags(fd)
            buf, view = self._buffer()
            sha = hashlib.sha256()
            md5 = hashlib.md5(usedforsecurity=False) if want_md5 else None
            total = 0
            while True:
                n = os.readv(fd, [buf])
                if not n:
                    break
                chunk = view[:n] if n < READ_SIZE else view
                sha.update(chunk)
                if md5 is not None:
                    md5.update(chunk)
                total += n
                if n < READ_SIZE and total >= st.st_size:
                    break  # a short read at the stat size is EOF for a regular file: saves a syscall per file
        except OSError as exc:
            return replace(walked, error=_reason(exc)), False
        finally:
            os.close(fd)
        entry = FileEntry(walked.path, "file", st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_size, st.st_ino,
                          st.st_mtime_ns, st.st_ctime_ns, None, immutable, sha.hexdigest(),
                          md5.hexdigest() if md5 else None)
        return entry, True


def _dir_flags(host: str) -> bool | None:
    try:
        fd = os.open(host, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _flags(fd)
    finally:
        os.close(fd)


@dataclass(slots=True)
class _Scan:
    transport: _HostPaths
    options: FimOptions
    cache: HashCache
    full: bool
    hasher: _Hasher
    pool: ThreadPoolExecutor
    prune: frozenset[str]
    excluded: Callable[[str], bool] | None
    entries: list[FileEntry] = field(default_factory=list)
    todo: list[tuple[str, FileEntry, bool]] = field(default_factory=list)
    new_cache: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    def add(self, path: str, host: str, st: os.stat_result) -> None:
        """One walked entry: a cache hit completes it, a file to hash goes to the pool. Hot: 60k calls per
        re-check, so entries are built once, without dataclasses.replace."""
        mode = st.st_mode
        fmt = stat_mod.S_IFMT(mode)
        if fmt == stat_mod.S_IFREG:
            key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            want_md5 = path in self.options.md5_paths
            hit = None if self.full else self.cache.lookup(path, key, want_md5)
            if hit is not None:
                self.hits += 1
                self.new_cache[path] = self.cache.entries[path]
                self.entries.append(FileEntry(path, "file", mode & 0o7777, st.st_uid, st.st_gid, st.st_size,
                                              st.st_ino, st.st_mtime_ns, st.st_ctime_ns, None, hit.immutable,
                                              hit.sha256, hit.md5))
                return
            limit = self.options.max_file_size
            if limit is not None and st.st_size > limit:
                self.entries.append(_stat_entry(path, st, error=f"not hashed: larger than max_file_size ({limit} "
                                                                f"bytes)"))
                return
            self.todo.append((host, _stat_entry(path, st), want_md5))
        elif fmt == stat_mod.S_IFDIR:
            key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            hit = None if self.full else self.cache.lookup(path, key, False)
            if hit is not None:
                self.new_cache[path] = self.cache.entries[path]
                immutable = hit.immutable
            else:
                immutable = _dir_flags(host)
                self.new_cache[path] = Cached(key, None, None, immutable).encode()
            self.entries.append(FileEntry(path, "dir", mode & 0o7777, st.st_uid, st.st_gid, st.st_size, st.st_ino,
                                          st.st_mtime_ns, st.st_ctime_ns, None, immutable))
        elif fmt == stat_mod.S_IFLNK:
            try:
                target = os.readlink(host)
            except OSError as exc:
                self.entries.append(_stat_entry(path, st, error=_reason(exc)))
                return
            self.entries.append(_stat_entry(path, st, target=target))
        else:
            self.entries.append(_stat_entry(path, st))  # devices, fifos, sockets: never opened

    def walk(self, top: str) -> None:
        host_top = self.transport.host_path(top)
        try:
            st = os.lstat(host_top)
        except FileNotFoundError:
            return  # a configured path this system does not have (e.g. /boot in a container)
        except OSError as exc:
            self.entries.append(_error_entry(top, _reason(exc)))
            return
        self.add(top, host_top, st)
        if not stat_mod.S_ISDIR(st.st_mode):
            return
        stack = [(top, host_top)]
        while stack:
            path, host = stack.pop()
            try:
                with os.scandir(host) as it:
                    children = list(it)
            except OSError as exc:
                self._mark_unlistable(path, exc)
                continue
            for child in children:
                cpath = _join(path, child.name)
                if self.excluded is not None and self.excluded(cpath):
                    continue
                try:
                    cst = child.stat(follow_symlinks=False)
                except OSError as exc:
                    self.entries.append(_error_entry(cpath, _reason(exc)))
                    continue
                if stat_mod.S_ISDIR(cst.st_mode) and cpath in self.prune:
                    continue
                self.add(cpath, child.path, cst)
                if stat_mod.S_ISDIR(cst.st_mode):
                    stack.append((cpath, child.path))

    def _mark_unlistable(self, path: str, exc: OSError) -> None:
        for i in range(len(self.entries) - 1, -1, -1):
            if self.entries[i].path == path:
                self.entries[i] = replace(self.entries[i], error=f"cannot list: {_reason(exc)}")
                return


def _hash_all(todo: list[tuple[str, FileEntry, bool]], hasher: _Hasher,
              pool: ThreadPoolExecutor) -> list[tuple[FileEntry, bool]]:
    """Large files to the pool, biggest first (so no big file starts last); small ones in this thread."""
    large = sorted((t for t in todo if t[1].size >= INLINE_MAX), key=lambda t: -t[1].size)
    futures = [pool.submit(hasher.hash_one, *t) for t in large]
    out = [hasher.hash_one(*t) for t in todo if t[1].size < INLINE_MAX]
    out.extend(f.result() for f in futures)
    return out


def _pseudo_mounts(transport: _HostPaths) -> frozenset[str]:
    if transport.host_path("/") != "/":
        return ALWAYS_PRUNED  # a fixture root: the host's mount table says nothing about it
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            return ALWAYS_PRUNED | parse_pseudo_mounts(fh.read())
    except OSError:
        return ALWAYS_PRUNED


def scan_local(transport: _HostPaths, options: FimOptions, cache: HashCache, now: float | None = None,
               root_user: bool | None = None) -> tuple[FimResult, HashCache]:
    """Walk and hash through a transport with host paths. Returns the result and the cache for next time."""
    started = time.perf_counter()
    now = time.time() if now is None else now
    full = needs_full(cache, options, now)
    workers = options.workers or os.cpu_count() or 2
    hasher = _Hasher(os.geteuid() == 0 if root_user is None else root_user)
    excluded = compile_excludes(options.excludes)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fim") as pool:
        scan = _Scan(transport, options, cache, full, hasher, pool, _pseudo_mounts(transport), excluded)
        for top in normalise_paths(options.paths):
            if top in ALWAYS_PRUNED or (excluded is not None and excluded(top)):
                continue
            scan.walk(top)
        hashed = bytes_hashed = 0
        for entry, cacheable in _hash_all(scan.todo, hasher, pool):
            scan.entries.append(entry)
            if entry.sha256 is not None:
                hashed += 1
                bytes_hashed += entry.size
            if cacheable:
                scan.new_cache[entry.path] = Cached(entry.key, entry.sha256, entry.md5, entry.immutable).encode()
    entries = tuple(sorted(scan.entries, key=lambda e: e.path))
    new_cache = HashCache(scan.new_cache, now if full else cache.last_full)
    stats = FimStats(len(entries), hashed, scan.hits, bytes_hashed, sum(e.error is not None for e in entries), full,
                     time.perf_counter() - started)
    return FimResult(entries, stats), new_cache


def scan(transport: Transport, options: FimOptions, cache_dir: Path | None = None, now: float | None = None,
         via_commands: bool = False) -> FimResult:
    """Scan through ``transport`` with the on-disk cache in ``cache_dir`` (None: no cache, every file hashed).

    Local transports are read directly; others (or ``via_commands``) through find/sha256sum commands.
    """
    root = getattr(transport, "root", "/")
    path = cache_path(cache_dir, transport.name, str(root)) if cache_dir is not None else None
    cache = load_cache(path)
    host_paths = getattr(transport, "host_path", None)
    if host_paths is not None and not via_commands:
        result, new_cache = scan_local(transport, options, cache, now, root_user=transport.is_root)  # type: ignore[arg-type]
    else:
        from baselines.fim_remote import scan_commands

        result, new_cache = scan_commands(transport, options, cache, now)
    if path is not None and (new_cache.last_full != cache.last_full or new_cache.entries != cache.entries):
        save_cache(path, new_cache)  # an unchanged tree rewrites nothing
    return result
