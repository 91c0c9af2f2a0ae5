"""File integrity over a transport that only runs commands (SSH): ``find -printf`` for the stat data,
``sha256sum -z``/``md5sum -z`` for the files the cache cannot vouch for. Parsing is pure and kept here.

Limits compared with the local engine: immutable flags are not read (None), file names must be UTF-8, and
a file replaced between ``find`` and ``sha256sum`` is hashed as it is then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

from probes.fim.cache import Cached, HashCache
from probes.fim.model import ALWAYS_PRUNED, FileEntry, FimOptions, FimResult, FimStats, needs_full, normalise_paths
from probes.find_stamp import stamp_ns
from probes.transport import CommandUnavailable, Transport

log = logging.getLogger(__name__)

# type, path, permission bits (octal, with setuid/setgid/sticky), uid, gid, size, inode, mtime, ctime, target
FIND_FORMAT = r"%y\0%p\0%m\0%U\0%G\0%s\0%i\0%T@\0%C@\0%l\0"
FIND_FIELDS = 10
_TYPES = {"f": "file", "d": "dir", "l": "symlink"}
ARG_BYTES = 64 * 1024  # per sha256sum invocation: well under ARG_MAX on any Linux, also over SSH
COMMAND_TIMEOUT = 600.0


def find_argv(paths: Sequence[str], excludes: Sequence[str]) -> list[str]:
    prune = [*sorted(ALWAYS_PRUNED), *excludes]
    argv = ["find", *paths, "("]
    for i, glob in enumerate(prune):
        argv += (["-o"] if i else []) + ["-path", glob]
    return [*argv, ")", "-prune", "-o", "-printf", FIND_FORMAT]


def parse_find(output: str) -> list[FileEntry]:
    fields = output.split("\0")
    out: list[FileEntry] = []
    for i in range(0, len(fields) - FIND_FIELDS + 1, FIND_FIELDS):
        y, path, mode, uid, gid, size, ino, mtime, ctime, target = fields[i:i + FIND_FIELDS]
        try:
            out.append(FileEntry(path, _TYPES.get(y, "other"), int(mode, 8), int(uid), int(gid),
                                 int(size), int(ino), stamp_ns(mtime), stamp_ns(ctime),
                                 target=target if y == "l" else None))
        except ValueError:
            log.warning("unparsable find record for %r", path)
    return out


def parse_find_errors(stderr: str) -> dict[str, str]:
    """``find: '/x': Permission denied`` -> {"/x": "permission denied"} (C locale quoting)."""
    out: dict[str, str] = {}
    for line in stderr.splitlines():
        if line.startswith("find: '") and "': " in line:
            path, _, msg = line[len("find: '"):].rpartition("': ")
            out[path] = msg.strip().lower()
    return out


def parse_sums(output: str) -> dict[str, str]:
    """``sha256sum -z`` output ("<hex>  <path>\\0" records, names unescaped) -> path -> hex."""
    out: dict[str, str] = {}
    for record in output.split("\0"):
        digest, sep, path = record.partition("  ")
        if sep and digest:
            out[path] = digest
    return out


def parse_sum_errors(tool: str, stderr: str) -> dict[str, str]:
    out: dict[str, str] = {}
    prefix = f"{tool}: "
    for line in stderr.splitlines():
        if line.startswith(prefix):
            path, _, msg = line[len(prefix):].rpartition(": ")
            if path:
                out[path] = msg.strip().lower()
    return out


def batches(paths: Sequence[str], limit: int = ARG_BYTES) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for p in paths:
        if batch and size + len(p) + 1 > limit:
            yield batch
            batch, size = [], 0
        batch.append(p)
        size += len(p) + 1
    if batch:
        yield batch


def _sums(transport: Transport, tool: str, paths: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    digests: dict[str, str] = {}
    errors: dict[str, str] = {}
    for batch in batches(paths):
        res = transport.run([tool, "-z", "--", *batch], timeout=COMMAND_TIMEOUT)
        digests.update(parse_sums(res.stdout))
        errors.update(parse_sum_errors(tool, res.stderr))
    return digests, errors


def scan_commands(transport: Transport, options: FimOptions, cache: HashCache,
                  now: float | None = None) -> tuple[FimResult, HashCache]:
    """The same result as the local engine, built from commands run through the transport."""
    started = time.perf_counter()
    now = time.time() if now is None else now
    full = needs_full(cache, options, now)
    paths = [p for p in normalise_paths(options.paths) if p not in ALWAYS_PRUNED]
    # find fails on a missing start point only for that point; list the ones that exist, as the local engine does.
    paths = [p for p in paths if transport.exists(p)] if hasattr(transport, "exists") else paths
    if not paths:
        return FimResult((), FimStats(0, 0, 0, 0, 0, full, 0.0)), HashCache({}, cache.last_full)
    res = transport.run(find_argv(paths, options.excludes), timeout=COMMAND_TIMEOUT)
    walked = parse_find(res.stdout)
    find_errors = parse_find_errors(res.stderr)
    entries: dict[str, FileEntry] = {}
    new_cache: dict[str, str] = {}
    to_hash: list[str] = []
    hits = 0
    for e in walked:
        if e.path in find_errors and e.type == "dir":
            e = e._replace(error=f"cannot list: {find_errors.pop(e.path)}")
        entries[e.path] = e
        if e.type != "file":
            continue
        want_md5 = e.path in options.md5_paths
        hit = None if full else cache.lookup(e.path, e.key, want_md5)
        if hit is not None:
            hits += 1
            new_cache[e.path] = cache.entries[e.path]
            entries[e.path] = e._replace(sha256=hit.sha256, md5=hit.md5)
        elif options.max_file_size is not None and e.size > options.max_file_size:
            entries[e.path] = e._replace(error=f"not hashed: larger than max_file_size ({options.max_file_size} bytes)")
        else:
            to_hash.append(e.path)
    for path, msg in find_errors.items():
        entries.setdefault(path, FileEntry(path, "other", 0, -1, -1, 0, 0, 0, 0, error=msg))
    shas, sha_errors = _sums(transport, "sha256sum", to_hash)
    md5_wanted = [p for p in to_hash if p in options.md5_paths]
    try:
        md5s, _ = _sums(transport, "md5sum", md5_wanted) if md5_wanted else ({}, {})
    except CommandUnavailable:
        md5s = {}
    hashed = bytes_hashed = 0
    for path in to_hash:
        e = entries[path]
        if path in shas:
            e = e._replace(sha256=shas[path], md5=md5s.get(path))
            hashed += 1
            bytes_hashed += e.size
            new_cache[path] = Cached(e.key, e.sha256, e.md5, None).encode()
        else:
            e = e._replace(error=sha_errors.get(path, "not hashed"))
        entries[path] = e
    out = tuple(entries[p] for p in sorted(entries))
    stats = FimStats(len(out), hashed, hits, bytes_hashed, sum(e.error is not None for e in out), full,
                     time.perf_counter() - started)
    return FimResult(out, stats), HashCache(new_cache, now if full else cache.last_full)
