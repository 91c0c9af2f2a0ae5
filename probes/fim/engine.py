"""File integrity: walk configured trees, stat every entry, hash regular files (SHA-256, plus MD5 for the files
a package database can verify), reusing last scan's digests for files whose (inode, size, mtime_ns, ctime_ns)
did not change.

This is the I/O edge of file integrity. Locally it reads through ``LocalTransport.host_path`` (so fixture roots
work): GNU find lists each tree (probes/fim/walk.py; os.scandir when find is missing or reports an error).
Files are hashed in this process (large ones in a thread pool: hashlib and os.readv release the GIL), or,
with 4+ CPUs and much to hash, in worker processes (probes/fim/pool.py), because the per-file Python work
holds the GIL and stays serial in threads.
Over a transport without local file access (SSH) it runs ``find -printf`` and ``sha256sum`` through
``transport.run`` instead (probes/fim/remote.py). Vanished or unreadable files become entries with an
``error``; nothing about one file aborts a scan.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import stat as stat_mod
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from probes.fim.cache import HashCache, cache_path, load_cache, match_entry, save_cache
from probes.fim.hashing import (
    READ_SIZE,
    HashJob,
    WireDigest,
    encode_entry,
    hash_file,
    immutable_flag,
    open_flags,
    reason,
)
from probes.fim.model import ALWAYS_PRUNED as ALWAYS_PRUNED
from probes.fim.model import DEFAULT_PATHS as DEFAULT_PATHS
from probes.fim.model import FileEntry as FileEntry
from probes.fim.model import FimOptions as FimOptions
from probes.fim.model import FimResult as FimResult
from probes.fim.model import FimStats as FimStats
from probes.fim.model import needs_full as needs_full
from probes.fim.model import normalise_paths as normalise_paths
from probes.fim.pool import PoolFailed, cpu_count, hash_batches
from probes.fim.remote import scan_commands
from probes.fim.walk import WalkRow, find_available, walk_find
from probes.transport import Transport

log = logging.getLogger(__name__)

# A "large" file: it spends its time in hashlib without the GIL, which is where threads pay. Small files cost
# syscalls (open, fstat, ioctl, read, close), each a GIL hand-off; spread over threads they convoy on the GIL
# (measured: /usr/lib, 62k files, 2 cores), so one thread takes them from the small end (_hash_in_threads).
INLINE_MAX = 256 * 1024
# Worker processes pay off from here: starting the pool costs ~0.05 s, a process hashes ~60k small files/s.
POOL_MIN_CPUS = 4  # below this, threads are faster (see _hash_all)
POOL_MIN_FILES = 2000
POOL_MIN_BYTES = 256 * 1024 * 1024
BATCH_FILES = 1024  # per task sent to a worker: one pickle round trip spread over many files
# Kernel pseudo filesystems: their trees describe the running system, not files, and reading some blocks.
PSEUDO_FS = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs", "pstore",
    "bpf", "configfs", "fusectl", "mqueue", "hugetlbfs", "autofs", "binfmt_misc", "efivarfs", "nsfs", "rpc_pipefs",
})


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


def _join(parent: str, name: str) -> str:
    return parent + name if parent.endswith("/") else parent + "/" + name


def _error_entry(path: str, error: str) -> FileEntry:
    return FileEntry(path, "other", 0, -1, -1, 0, 0, 0, 0, error=error)


_reason = reason


def _merge(walked: WalkRow, d: WireDigest) -> tuple[FileEntry, str | None]:
    """The walked file completed by what a worker read: (entry, its cache text or None: not cacheable)."""
    if len(d) == 1:
        return FileEntry(*walked, error=d[0]), None  # type: ignore[arg-type]
    return FileEntry._make((walked[0], "file", *d[:7], None, *d[7:10], None)), d[10]  # type: ignore[return-value]


class _Hasher:
    """Hashes files in this process (the walking thread and a thread pool); each thread keeps one buffer."""

    def __init__(self, root_user: bool) -> None:
        self._local = threading.local()
        self._flags = open_flags(root_user)

    def _buffer(self) -> tuple[bytearray, memoryview]:
        buf = getattr(self._local, "buf", None)
        if buf is None:
            buf = bytearray(READ_SIZE)
            self._local.buf = buf
            self._local.view = memoryview(buf)
        return buf, self._local.view

    def hash_one(self, host: str, walked: FileEntry, want_md5: bool) -> tuple[FileEntry, str | None]:
        """(entry with digests, its cache text or None: not cacheable). Uses the open file's own stat, so
        digest and key belong together."""
        buf, view = self._buffer()
        d = hash_file(host, walked.inode, want_md5, self._flags, buf, view)
        if d.error is not None:
            return walked._replace(error=d.error), None
        entry = FileEntry(walked.path, "file", d.mode, d.uid, d.gid, d.size, d.inode, d.mtime_ns, d.ctime_ns, None,
                          d.immutable, d.sha256, d.md5)
        return entry, encode_entry(d.inode, d.size, d.mtime_ns, d.ctime_ns, d.sha256, d.md5, d.immutable)


def _dir_flags(host: str) -> bool | None:
    try:
        fd = os.open(host, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return immutable_flag(fd)
    finally:
        os.close(fd)


def _row(path: str, st: os.stat_result) -> WalkRow:
    return (path, entry_type(st.st_mode), st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_size, st.st_ino,
            st.st_mtime_ns, st.st_ctime_ns, None)


def _row_entry(row: WalkRow, error: str | None = None) -> FileEntry:
    return FileEntry(*row, error=error)


Todo = tuple[str, WalkRow, bool]  # host path, what the walk saw, MD5 wanted


@dataclass(slots=True)
class _Scan:
    transport: _HostPaths
    options: FimOptions
    cached: dict[str, str]  # last scan's encoded entries; empty for a full re-hash
    prune: frozenset[str]
    excluded: Callable[[str], bool] | None
    find: str | None  # GNU find's path, None: walk with os.scandir
    entries: list[FileEntry] = field(default_factory=list)
    todo: list[Todo] = field(default_factory=list)
    new_cache: dict[str, str] = field(default_factory=dict)
    hits: int = 0
    to_host: Callable[[str], str] = str  # the walked top's path mapping (identity unless a fixture root)

    def add(self, row: WalkRow, host: str | None = None) -> None:
        """One walked entry: a cache hit completes it, a file to hash goes to ``todo``. Hot: 75k calls per
        re-check of /usr/lib, so entries are built once, the cache entry is matched without objects and the
        host path is only made when a file is opened."""
        path, kind, mode, uid, gid, size, ino, mtime, ctime, target = row
        if kind == "file":
            want_md5 = path in self.options.md5_paths
            text = self.cached.get(path)
            hit = None if text is None else match_entry(text, ino, size, mtime, ctime, want_md5)
            if hit is not None:
                self.hits += 1
                self.new_cache[path] = text  # type: ignore[assignment]  # hit implies text
                self.entries.append(FileEntry(path, "file", mode, uid, gid, size, ino, mtime, ctime, None,
                                              hit[2], hit[0], hit[1]))
                return
            limit = self.options.max_file_size
            if limit is not None and size > limit:
                self.entries.append(_row_entry(row, f"not hashed: larger than max_file_size ({limit} bytes)"))
                return
            self.todo.append((host or self.to_host(path), row, want_md5))
        elif kind == "dir":
            text = self.cached.get(path)
            hit = None if text is None else match_entry(text, ino, size, mtime, ctime, False)
            if hit is not None:
                self.new_cache[path] = text  # type: ignore[assignment]
                immutable = hit[2]
            else:
                immutable = _dir_flags(host or self.to_host(path))
                self.new_cache[path] = encode_entry(ino, size, mtime, ctime, None, None, immutable)
            self.entries.append(FileEntry(path, "dir", mode, uid, gid, size, ino, mtime, ctime, None, immutable))
        elif kind == "symlink" and target is None:
            try:
                target = os.readlink(host or self.to_host(path))
            except OSError as exc:
                self.entries.append(_row_entry(row, _reason(exc)))
                return
            self.entries.append(FileEntry(path, kind, mode, uid, gid, size, ino, mtime, ctime, target))
        else:
            self.entries.append(_row_entry(row))  # devices, fifos, sockets: never opened

    def walk(self, top: str) -> None:
        host_top = self.transport.host_path(top)
        try:
            st = os.lstat(host_top)
        except FileNotFoundError:
            return  # a configured path this system does not have (e.g. /boot in a container)
        except OSError as exc:
            self.entries.append(_error_entry(top, _reason(exc)))
            return
        self.add(_row(top, st), host_top)
        if not stat_mod.S_ISDIR(st.st_mode):
            return
        if self.find is None or not self._walk_find(top, host_top):
            self._walk_python(top, host_top)

    def _walk_find(self, top: str, host_top: str) -> bool:
        """The tree below ``top`` from find's output; False (nothing added) when find could not be trusted."""
        host_top = host_top.rstrip("/") or "/"  # a fixture root maps "/" to "ROOT/"

        def host(path: str) -> str:
            return path if top == host_top else host_top + path[len(top.rstrip("/")):]

        below = top.rstrip("/") + "/"
        prune = [host(p) for p in self.prune if p.startswith(below)]
        self.to_host = host
        marks = len(self.entries), len(self.todo), self.hits
        seen: list[list[WalkRow]] = []
        add, excluded = self.add, self.excluded
        skip = "\0"  # no path starts with a NUL: nothing skipped until an excluded directory is met

        cached, md5_paths, new_cache, append = self.cached.get, self.options.md5_paths, self.new_cache, \
            self.entries.append

        def sink(rows: list[WalkRow]) -> None:
            nonlocal skip
            seen.append(rows)
            hits = 0
            for row in rows:
                path = row[0]
                if path == top or path.startswith(skip):
                    continue
                if excluded is not None and excluded(path):
                    if row[1] == "dir":
                        skip = path + "/"  # find lists a directory's whole subtree right after it
                    continue
                # The common case of a re-check, inline (add() does the same): an unchanged file.
                if row[1] == "file" and (text := cached(path)) is not None:
                    hit = match_entry(text, row[6], row[5], row[7], row[8], path in md5_paths)
                    if hit is not None:
                        hits += 1
                        new_cache[path] = text
                        append(FileEntry(path, "file", row[2], row[3], row[4], row[5], row[6], row[7], row[8], None,
                                         hit[2], hit[0], hit[1]))
                        continue
                add(row)
            self.hits += hits

        if walk_find(self.find, top, host_top, prune, sink):  # type: ignore[arg-type]  # find checked by caller
            return True
        # Undo what the rows added (all of it under ``top``): the Python walk adds the tree again.
        del self.entries[marks[0]:], self.todo[marks[1]:]
        self.hits = marks[2]
        for rows in seen:
            for row in rows:
                if row[0] != top:
                    self.new_cache.pop(row[0], None)
        return False

    def _walk_python(self, top: str, host_top: str) -> None:
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
                self.add(_row(cpath, cst), child.path)
                if stat_mod.S_ISDIR(cst.st_mode):
                    stack.append((cpath, child.path))

    def _mark_unlistable(self, path: str, exc: OSError) -> None:
        for i in range(len(self.entries) - 1, -1, -1):
            if self.entries[i].path == path:
                self.entries[i] = self.entries[i]._replace(error=f"cannot list: {_reason(exc)}")
                return


Hashed = tuple[FileEntry, str | None]  # entry, cache text (None: not cacheable)


def _hash_in_threads(todo: list[Todo], hasher: _Hasher, workers: int) -> list[Hashed]:
    """Pool threads take files from the large end (hashlib releases the GIL, so they run in parallel), this
    thread from the small end (many syscalls each, convoying on the GIL if spread over threads). Whoever
    runs out first helps with the other end, so no core idles while one thread finishes its share."""
    queue = deque(sorted(todo, key=lambda t: t[1][5], reverse=True))

    def drain(take: Callable[[], Todo]) -> list[Hashed]:
        done: list[Hashed] = []
        while True:
            try:
                host, row, want_md5 = take()
            except IndexError:  # empty: the deque's pops are atomic, so no lock is needed
                return done
            done.append(hasher.hash_one(host, _row_entry(row), want_md5))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fim") as pool:
        futures = [pool.submit(drain, queue.popleft) for _ in range(workers)]
        out = drain(queue.pop)
        for f in futures:
            out.extend(f.result())
    return out


def _batches(todo: list[Todo], workers: int) -> list[list[int]]:
    """Indexes into ``todo``, largest files first, cut so that each batch is a similar amount of work and the
    small files at the end even out the workers' finishing times."""
    sizes = [t[1][5] for t in todo]
    order = sorted(range(len(todo)), key=sizes.__getitem__, reverse=True)
    cap = max(1 << 20, sum(sizes) // (workers * 16))
    out: list[list[int]] = []
    batch: list[int] = []
    size = 0
    for i in order:
        batch.append(i)
        size += sizes[i] + 4096  # a file's fixed cost (open, fstat, ioctl, close) as bytes
        if size >= cap or len(batch) >= BATCH_FILES:
            out.append(batch)
            batch, size = [], 0
    if batch:
        out.append(batch)
    return out


def _hash_in_processes(todo: list[Todo], workers: int, root_user: bool) -> list[Hashed]:
    """Hash in worker processes (probes/fim/pool.py); what a failed pool left undone is hashed here."""
    batches = _batches(todo, workers)

    def jobs(index: int) -> list[HashJob]:  # built as each batch is sent: workers start without waiting for all
        return [(todo[i][0], todo[i][1][6], todo[i][2]) for i in batches[index]]

    out: list[Hashed] = []
    done: set[int] = set()
    try:
        for index, digests in hash_batches(len(batches), jobs, workers, root_user):
            done.add(index)
            out.extend(map(_merge, [todo[i][1] for i in batches[index]], digests))
    except PoolFailed as exc:
        log.warning("file-integrity worker processes failed (%s): hashing the rest in this process", exc)
        rest = [todo[i] for n, b in enumerate(batches) if n not in done for i in b]
        out.extend(_hash_in_threads(rest, _Hasher(root_user), workers))
    return out


def _hash_all(todo: list[Todo], options: FimOptions, root_user: bool) -> list[Hashed]:
    """Threads or worker processes. Measured on 2 cores (/usr/lib, 62k files): threads need ~5.5 s CPU, the
    pool ~6.6 s (pickling, a second interpreter, merging), and both keep the 2 cores busy, so threads win
    there. The threads' serial part (walk + small files in one thread, ~1.9 s) does not shrink with more
    cores while the pool's work divides, hence processes from POOL_MIN_CPUS up."""
    workers = options.workers or cpu_count()
    big = len(todo) >= POOL_MIN_FILES or sum(t[1][5] for t in todo) >= POOL_MIN_BYTES
    auto = big and cpu_count() >= POOL_MIN_CPUS
    if workers > 1 and todo and (options.processes or (options.processes is None and auto)):
        return _hash_in_processes(todo, workers, root_user)
    return _hash_in_threads(todo, _Hasher(root_user), workers)


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
    root_user = os.geteuid() == 0 if root_user is None else root_user
    excluded = compile_excludes(options.excludes)
    find = find_available() if options.find_walk else None
    scan = _Scan(transport, options, {} if full else cache.entries, _pseudo_mounts(transport), excluded, find)
    for top in normalise_paths(options.paths):
        if top in ALWAYS_PRUNED or (excluded is not None and excluded(top)):
            continue
        scan.walk(top)
    hashed = bytes_hashed = 0
    for entry, text in _hash_all(scan.todo, options, root_user):
        scan.entries.append(entry)
        if entry.sha256 is not None:
            hashed += 1
            bytes_hashed += entry.size
        if text is not None:
            scan.new_cache[entry.path] = text
    entries = tuple(sorted(scan.entries))  # paths are unique, so tuple order is path order
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
        result, new_cache = scan_commands(transport, options, cache, now)
    if path is not None and (new_cache.last_full != cache.last_full or new_cache.entries != cache.entries):
        save_cache(path, new_cache)  # an unchanged tree rewrites nothing
    return result
