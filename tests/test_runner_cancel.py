"""A probe that overruns its timeout is stopped: its command killed, its read abandoned, its thread returned.
200 runs in one process with probes that hang keep the thread count, the child processes and RSS flat."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil
import pytest

from agent.runner import run_probes
from probes.base import GatherContext, Probe, Raw
from probes.cancel import CancelToken, bound_to
from probes.errors import ProbeCancelled
from probes.observation import Row
from probes.transport import LocalTransport

RUNS = 200


class HangsInCommand(Probe[Row]):
    id = "hangs_in_command"
    title = "runs a command that never ends"
    timeout = 0.05

    def gather(self, ctx: GatherContext) -> Raw:
        # sh and its child sleep: killing only sh would leave sleep behind, so the group must go.
        ctx.transport.run(["sh", "-c", "sleep 1000; echo never"], timeout=1000)
        return {}

    @staticmethod
    def parse(raw: Raw) -> Sequence[Row]:
        return []


class HangsInRead(HangsInCommand):
    id = "hangs_in_read"
    title = "reads a FIFO whose writer never writes"
    fifo = ""

    def gather(self, ctx: GatherContext) -> Raw:
        ctx.transport.read_bytes(self.fifo)
        return {}


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    writer = os.open(path, os.O_RDWR)  # a writer that never writes: a plain read would block forever
    try:
        yield str(path)
    finally:
        os.close(writer)


def _new_children(before: set[int]) -> list[psutil.Process]:
    """Child processes started since ``before`` (other tests' lab servers may be running already)."""
    return [c for c in psutil.Process().children(recursive=True) if c.pid not in before]


def _children() -> set[int]:
    return {c.pid for c in psutil.Process().children(recursive=True)}


def _probe_threads() -> int:
    return sum(t.name.startswith("probe") for t in threading.enumerate())


def test_hanging_probes_are_stopped_without_leaks(fifo: str) -> None:
    HangsInRead.fifo = fifo
    me = psutil.Process()
    transport = LocalTransport()
    probes = [HangsInCommand(), HangsInRead()]
    before = _children()

    def cycle() -> None:
        runs = run_probes(probes, transport)
        assert [(r.probe, r.status) for r in runs] == [("hangs_in_command", "timeout"), ("hangs_in_read", "timeout")]

    for _ in range(20):  # warm-up: allocator arenas, imports, caches
        cycle()
    threads, rss = threading.active_count(), me.memory_info().rss
    for _ in range(RUNS - 20):
        cycle()
    assert _new_children(before) == []  # every sh and sleep killed and reaped
    assert threading.active_count() <= threads and _probe_threads() == 0
    assert me.memory_info().rss - rss < 4 * 2**20  # flat: under 4 MiB over 180 runs


def test_cancel_kills_the_command_in_flight() -> None:
    token = CancelToken()
    before = _children()
    threading.Timer(0.1, token.cancel).start()
    with bound_to(token), pytest.raises(ProbeCancelled):
        LocalTransport().run(["sh", "-c", "sleep 1000"], timeout=1000)  # returns: the group was killed
    assert _new_children(before) == []


def test_a_command_timeout_still_raises_timeout_expired() -> None:
    import subprocess

    before = _children()
    with pytest.raises(subprocess.TimeoutExpired):
        LocalTransport().run(["sh", "-c", "sleep 1000"], timeout=0.1)
    assert _new_children(before) == []


def test_fifo_reads(fifo: str, tmp_path: Path) -> None:
    token = CancelToken(deadline=time.monotonic() + 0.1)
    with bound_to(token), pytest.raises(ProbeCancelled):
        LocalTransport().read_bytes(fifo)
    lonely = tmp_path / "no-writer"
    os.mkfifo(lonely)
    assert LocalTransport().read_bytes(str(lonely)) == b""  # no writer: EOF at once, not a hang


def test_cancelled_token_stops_the_next_transport_call(tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    with bound_to(token):
        for call in (lambda t: t.read_text("/etc/hostname"), lambda t: t.list_dir("/"), lambda t: t.stat("/"),
                     lambda t: t.run(["true"])):
            with pytest.raises(ProbeCancelled):
                call(LocalTransport())
    assert LocalTransport().read_text("/etc/hostname")  # unbound: the never-cancelled token


def test_the_shared_never_token_cannot_be_cancelled() -> None:
    from probes.cancel import NEVER, current

    NEVER.cancel()
    assert current() is NEVER and not NEVER.cancelled and NEVER.remaining() is None
