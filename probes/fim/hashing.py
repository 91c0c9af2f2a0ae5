"""Hashing one file for file integrity, shared by the in-process path and the worker processes.

Only the standard library is imported here: a worker process (``python -I -S -c ... serve()``, started by
probes/fim/pool.py) loads this module and nothing of the agent, so the pool starts in ~20 ms. The digest
and the stat facts come from the same open file descriptor, so they always belong together.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pickle
import stat as stat_mod
import sys
from typing import NamedTuple

READ_SIZE = 1 << 20  # large reads: hashlib drops the GIL per update, so big buffers mean real parallelism
FS_IOC_GETFLAGS = 0x80086601  # _IOR('f', 1, long) on 64-bit Linux
FS_IMMUTABLE_FL = 0x00000010
REPLACED = "replaced during scan"


class Digest(NamedTuple):
    """What reading one file gave: the open file's fstat, flags and digests, or only ``error``.

    A NamedTuple, not a dataclass: tens of thousands cross the process boundary per scan and a tuple pickles
    to a fraction of the bytes."""

    mode: int = 0  # permission bits (S_IMODE)
    uid: int = -1
    gid: int = -1
    size: int = 0
    inode: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    immutable: bool | None = None
    sha256: str | None = None
    md5: str | None = None
    error: str | None = None


def reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "vanished during scan"
    return exc.strerror.lower() if exc.strerror else type(exc).__name__


def immutable_flag(fd: int) -> bool | None:
    buf = bytearray(8)
    try:
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
    except OSError:
        return None  # ENOTTY/EINVAL: the filesystem keeps no such flags
    return bool(int.from_bytes(buf[:4], "little") & FS_IMMUTABLE_FL)


def open_flags(root_user: bool) -> int:
    # O_NOATIME keeps a scan from rewriting every atime (it is refused for files we do not own unless root).
    return os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_NOATIME if root_user else 0)


def encode_entry(inode: int, size: int, mtime_ns: int, ctime_ns: int, sha256: str | None, md5: str | None,
                 immutable: bool | None) -> str:
    """A hash-cache entry ("ino:size:mtime:ctime:sha256:md5:immutable"; probes/fim/cache.py reads it)."""
    imm = "" if immutable is None else "1" if immutable else "0"
    return f"{inode}:{size}:{mtime_ns}:{ctime_ns}:{sha256 or ''}:{md5 or ''}:{imm}"


def hash_file(host: str, inode: int, want_md5: bool, flags: int, buf: bytearray, view: memoryview) -> Digest:
    """Open ``host`` (never following a symlink), check it is still the regular file with ``inode`` that the
    walk saw, and hash it with one reused buffer (``view`` is ``memoryview(buf)``)."""
    try:
        fd = os.open(host, flags)
    except OSError as exc:
        return Digest(error=reason(exc))
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode) or st.st_ino != inode:
            return Digest(error=REPLACED)
        immutable = immutable_flag(fd)
        size = len(buf)
        sha = hashlib.sha256()
        md5 = hashlib.md5(usedforsecurity=False) if want_md5 else None
        total = 0
        while True:
            n = os.readv(fd, [buf])
            if not n:
                break
            chunk = view[:n] if n < size else view
            sha.update(chunk)
            if md5 is not None:
                md5.update(chunk)
            total += n
            if n < size and total >= st.st_size:
                break  # a short read at the stat size is EOF for a regular file: saves a syscall per file
    except OSError as exc:
        return Digest(error=reason(exc))
    finally:
        os.close(fd)
    return Digest(st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns,
                  immutable, sha.hexdigest(), md5.hexdigest() if md5 else None)


# One read buffer per worker process, made on its first batch.
_buffer: tuple[bytearray, memoryview] | None = None

HashJob = tuple[str, int, bool]  # host path, inode the walk saw, MD5 wanted
WireDigest = tuple[object, ...]  # a Digest's first ten fields and its encode_entry text, or (error,)


def hash_batch(jobs: list[HashJob], root_user: bool) -> list[WireDigest]:
    """A worker process's task: many files per call, so one IPC round trip is spread over all of them. Each
    result is a WireDigest."""
    global _buffer
    if _buffer is None:
        buf = bytearray(READ_SIZE)
        _buffer = (buf, memoryview(buf))
    buf, view = _buffer
    flags = open_flags(root_user)
    out: list[WireDigest] = []
    for host, inode, want_md5 in jobs:
        d = hash_file(host, inode, want_md5, flags, buf, view)
        # Plain tuples: unpickling a NamedTuple calls its Python-level __new__ once per file in the parent.
        # The cache entry is encoded here too, in parallel, instead of serially in the parent.
        out.append((*d[:10], encode_entry(d.inode, d.size, d.mtime_ns, d.ctime_ns, d.sha256, d.md5, d.immutable))
                   if d.error is None else (d.error,))
    return out


def serve(root_user: bool) -> None:
    """A worker process's loop: pickled lists of HashJobs on stdin, the pickled list of Digests for each on
    stdout, in order, until stdin closes. Only ever talks to the process that started it.

    stdin is drained by its own thread, so the parent can queue the next batch while this one is hashed
    (no round trip between batches, which costs a lot on a loaded machine) and neither side ever blocks
    writing into a full pipe that the other is not reading."""
    import queue
    import threading

    jobs: queue.SimpleQueue[list[HashJob] | None] = queue.SimpleQueue()

    def read() -> None:
        stdin = sys.stdin.buffer
        while True:
            try:
                jobs.put(pickle.load(stdin))
            except EOFError:
                jobs.put(None)
                return

    threading.Thread(target=read, daemon=True).start()
    stdout = sys.stdout.buffer
    while (batch := jobs.get()) is not None:
        pickle.dump(hash_batch(batch, root_user), stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()
