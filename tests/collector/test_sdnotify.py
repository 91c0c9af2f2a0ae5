"""`precaution-collector serve` under a (simulated) systemd: a real datagram socket as $NOTIFY_SOCKET receives
READY=1 once the collector listens with its database reachable, WATCHDOG=1 while it is alive, none while its
worker threads are wedged (so systemd would restart it), WATCHDOG=1 again once they are free, STOPPING=1 on
SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.collector.client import AgentSim
from tests.collector.conftest import Collector, running_collector

WATCHDOG_USEC = 1_000_000  # WatchdogSec=1s: a check and a ping every 0.5 s


@contextlib.contextmanager
def _notify_socket() -> Iterator[tuple[socket.socket, str]]:
    path = os.path.join(tempfile.gettempdir(), f"precaution-notify-{os.getpid()}-{uuid.uuid4().hex[:8]}.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    try:
        yield sock, path
    finally:
        sock.close()
        os.unlink(path)


def _until(sock: socket.socket, wanted: str, seen: list[str]) -> None:
    while not any(m.split("\n")[0] == wanted for m in seen):
        seen.append(sock.recv(4096).decode())


def _drain(sock: socket.socket) -> list[str]:
    out = []
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            out.append(sock.recv(4096).decode())
    sock.settimeout(30)
    return out


def _log(c: Collector) -> str:
    return "".join(p.read_text(errors="replace") for p in c.home.glob("serve-*.log"))


def test_ready_watchdog_wedge_and_stopping(tmp_path: Path) -> None:
    with _notify_socket() as (sock, path), running_collector(tmp_path, "sqlite", start=False) as c:
        proc = c.start(extra_env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": str(WATCHDOG_USEC)})
        seen: list[str] = []
        _until(sock, "READY=1", seen)
        assert seen[0].startswith("READY=1\nSTATUS=serving on 127.0.0.1:")
        _until(sock, "WATCHDOG=1", seen)
        _until(sock, "WATCHDOG=1", seen[-1:])

        # wedge it: another process holds the SQLite write lock, and enough requests wait behind it to hold
        # every worker thread; the watchdog's database check cannot run, so no WATCHDOG=1 is sent
        blocker = sqlite3.connect(c.home / "collector.db", isolation_level=None, timeout=5)
        blocker.execute("BEGIN IMMEDIATE")
        sim = AgentSim(c.url, c.ca)
        body = sim.enrol_request("not-a-real-token-" + "x" * 20, "unit-wedge")

        def enrol(_i: int) -> int:
            with c.http() as http:
                return http.post("/api/v1/enroll", json=body, timeout=180).status_code

        pool = ThreadPoolExecutor(48)
        try:
            answers = [pool.submit(enrol, i) for i in range(48)]
            deadline = time.monotonic() + 60
            while "did not finish within" not in _log(c):
                assert time.monotonic() < deadline, "the watchdog kept feeding a wedged collector"
                time.sleep(0.2)
            _drain(sock)
            mark = len(_log(c))
            while _log(c)[mark:].count("did not finish within") < 2:  # two more rounds skipped, however slow
                assert time.monotonic() < deadline, "the watchdog check stopped running"
                time.sleep(0.2)
            pings = [m for m in _drain(sock) if m.startswith("WATCHDOG=1")]
            assert pings == [], pings  # not one ping over those rounds
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
            statuses = {a.result() for a in answers}
            pool.shutdown()
        assert statuses <= {401, 403, 422, 503}, statuses  # each refused in the end (bad token, or busy: 503)
        seen = []
        _until(sock, "WATCHDOG=1", seen)  # fed again once the threads are free
        assert seen[-1] == "WATCHDOG=1\nSTATUS=serving on " + seen[-1].split("serving on ", 1)[1]

        # a database that is down is not a wedged collector: it answers 503 and recovers by itself, so the
        # watchdog is still fed, and STATUS= says why
        db = c.home / "collector.db"
        db.rename(db.with_suffix(".away"))
        try:
            seen = []
            while not any("database unreachable" in m for m in seen):
                seen.append(sock.recv(4096).decode())
            assert seen[-1].startswith("WATCHDOG=1\nSTATUS=") and seen[-1].endswith("database unreachable (503)")
        finally:
            db.with_suffix(".away").rename(db)
        seen = []
        while not seen or "unreachable" in seen[-1]:
            seen.append(sock.recv(4096).decode())
        assert seen[-1].startswith("WATCHDOG=1") and "unreachable" not in seen[-1]

        proc.send_signal(signal.SIGTERM)
        _until(sock, "STOPPING=1", seen)
        proc.wait(timeout=30)
        assert "Traceback" not in _log(c)
