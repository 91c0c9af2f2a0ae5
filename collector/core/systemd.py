"""systemd integration of ``serve``: sd_notify(3) (READY=1, WATCHDOG=1, STATUS=; STOPPING=1 is sent by the server
as its shutdown begins) and the task that decides whether the collector is alive enough to keep its watchdog fed.

The agent has its own few lines for the datagram (agent/daemon/sdnotify.py); the collector may import only
agent.wire, so it carries the same few lines rather than a dependency on the agent daemon.

Liveness: every ``WatchdogSec/2`` the supervisor (a coroutine on the serving event loop, so a blocked loop
sends nothing) runs a database round trip on the same worker threads the plain ``def`` routes use. When that
check does not finish within the interval (loop blocked, every worker thread stuck, a database call that
hangs), or the maintenance thread has died, no WATCHDOG=1 is sent and systemd restarts the collector. A
database that answers with an error (it is down) is not a wedged collector: requests get 503 and the
collector recovers by itself, so the watchdog is still fed and STATUS= says the database is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import anyio.to_thread

log = logging.getLogger(__name__)


def notify(state: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``state`` to $NOTIFY_SOCKET; False when not under systemd (or the socket is gone)."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":  # abstract namespace
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
        except OSError:
            return False
    return True


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of $WATCHDOG_USEC (when it is meant for this process)."""
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


@dataclass(frozen=True, slots=True)
class ServerState:
    started: Callable[[], bool]  # the listening socket is open
    exiting: Callable[[], bool]  # a shutdown was asked for (SIGTERM, SIGINT)
    database_ok: Callable[[], bool]  # a round trip to the database (blocking; run on a worker thread)
    housekeeping_alive: Callable[[], bool]  # the maintenance thread (expiries, schedules, retention) still runs
    where: str  # for STATUS=


async def _check(state: ServerState, timeout: float) -> bool | None:
    """True: database answers; False: it answers with an error; None: wedged (the check did not finish in
    time, or the maintenance thread died)."""
    if not state.housekeeping_alive():
        return None
    try:
        return await asyncio.wait_for(anyio.to_thread.run_sync(state.database_ok, abandon_on_cancel=True), timeout)
    except TimeoutError:
        return None


async def _sleep_unless_exiting(state: ServerState, seconds: float) -> bool:
    """Sleep up to ``seconds``; True as soon as a shutdown is asked for."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not state.exiting():
        left = end - loop.time()
        if left <= 0:
            return False
        await asyncio.sleep(min(0.2, left))
    return True


async def supervise(state: ServerState, environ: dict[str, str] | None = None) -> None:
    """READY=1 once listening with the database reachable, then WATCHDOG=1 while alive, until a shutdown is
    asked for (the server itself sends STOPPING=1 as its shutdown begins)."""
    while not state.started():
        if await _sleep_unless_exiting(state, 0.05):
            return
    while not await _check(state, 10.0):
        log.warning("not ready yet: the database does not answer")
        if await _sleep_unless_exiting(state, 1.0):
            return
    notify(f"READY=1\nSTATUS=serving on {state.where}", environ)
    interval = watchdog_interval(environ)
    if interval is None:
        while not await _sleep_unless_exiting(state, 3600):
            pass
        return
    was = True
    while not await _sleep_unless_exiting(state, interval):
        ok = await _check(state, interval)
        if ok is None:  # wedged: let systemd's watchdog restart us
            log.error("watchdog: the database check did not finish within %.1fs (or the maintenance thread "
                      "died); not feeding the watchdog", interval)
            continue
        if ok != was:
            log.warning("database %s", "reachable again" if ok else "unreachable: answering 503")
            was = ok
        notify("WATCHDOG=1\nSTATUS=" + (f"serving on {state.where}" if ok else
                                        f"serving on {state.where}; database unreachable (503)"), environ)
