"""Worker processes for file-integrity hashing.

Per-file work (open, fstat, ioctl, close, the hashlib objects) holds the GIL, so threads cannot spread 60k
small files over cores; processes can. The workers are fresh interpreters (``python -I -S``) running
probes/fim/hashing.serve, not multiprocessing children: multiprocessing's spawn/forkserver re-import the
caller's ``__main__`` (an unguarded script then starts itself again), and ``fork`` from the agent, whose
probes run in threads, could copy a lock another thread holds. Batches are handed out as workers finish, so
faster workers take more batches; two batches are queued per worker so that none waits for this process
to be scheduled between batches.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import selectors
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from probes.fim.hashing import HashJob, WireDigest

log = logging.getLogger(__name__)

_PROJECT = str(Path(__file__).resolve().parent.parent.parent)
IN_FLIGHT = 2  # batches queued per worker: the next one is there when it finishes the current one


class PoolFailed(Exception):
    """A worker could not start or died; the caller hashes what is left itself."""


def _start(root_user: bool) -> subprocess.Popen[bytes]:
    code = f"import sys; sys.path.insert(0, {_PROJECT!r}); from probes.fim.hashing import serve; serve({root_user!r})"
    return subprocess.Popen([sys.executable, "-I", "-S", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=None, close_fds=True)


def hash_batches(count: int, jobs: Callable[[int], list[HashJob]], workers: int,
                 root_user: bool) -> Iterator[tuple[int, list[WireDigest]]]:
    """(batch index, digests) as workers finish them; ``jobs(i)`` is batch i, asked for as it is sent. Raises
    PoolFailed (after yielding what did complete) if a worker cannot be started or dies."""
    procs: list[subprocess.Popen[bytes]] = []
    sel = selectors.DefaultSelector()
    pending = iter(range(count))
    queued: dict[int, deque[int]] = {}  # pid -> batch indexes sent to it, oldest first (answered in order)
    try:
        for _ in range(min(workers, count)):
            try:
                procs.append(_start(root_user))
            except OSError as exc:
                raise PoolFailed(f"cannot start a worker: {exc}") from exc

        def give(proc: subprocess.Popen[bytes]) -> None:
            index = next(pending, None)
            if index is None:
                return
            assert proc.stdin is not None
            try:
                pickle.dump(jobs(index), proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                proc.stdin.flush()
            except OSError as exc:  # EPIPE: the worker is gone
                raise PoolFailed(f"worker {proc.pid} stopped: {exc}") from exc
            queued[proc.pid].append(index)

        for proc in procs:
            queued[proc.pid] = deque()
            for _ in range(IN_FLIGHT):
                give(proc)
            sel.register(proc.stdout, selectors.EVENT_READ, proc)  # type: ignore[arg-type]
        while any(queued.values()):
            for key, _ in sel.select():
                proc = key.data
                try:
                    digests = pickle.load(key.fileobj)  # type: ignore[arg-type]
                except (EOFError, pickle.UnpicklingError) as exc:
                    raise PoolFailed(f"worker {proc.pid} died (exit {proc.poll()})") from exc
                index = queued[proc.pid].popleft()
                give(proc)
                yield index, digests
    finally:
        sel.close()
        unfinished = any(queued.values())
        for proc in procs:
            assert proc.stdin is not None and proc.stdout is not None
            with contextlib.suppress(OSError):  # EPIPE from a dead worker
                proc.stdin.close()  # EOF: the worker's loop ends
            if unfinished:
                proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        log.debug("hash workers done: %s", [p.returncode for p in procs])


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
