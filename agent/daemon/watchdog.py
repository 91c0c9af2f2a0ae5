"""Self-limits like osquery's watchdog: budgets for the daemon and for each run's child process.

A run's process tree is polled while it runs: above ``run_memory`` or past ``run_timeout`` it is killed (the
whole process group) and the run is recorded as killed. The daemon watches itself: RSS above
``daemon_memory``, or CPU above ``daemon_cpu_percent`` sustained over ``cpu_window``, makes it exit with
status 3 after a log line, and systemd (Restart=on-failure) starts a fresh one, as osquery's watcher restarts
its worker. Both budgets and the measured CPU ratio are exported as metrics.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from agent.daemon.procfs import cpu_seconds, group_rss, rss_bytes

log = logging.getLogger(__name__)

EXIT_OVER_BUDGET = 3


@dataclass(slots=True)
class RunWatch:
    """Polls one run's child process; ``check()`` returns the resource it broke ("memory", "time") or None."""

    pid: int
    memory_limit: int
    timeout: float
    started: float
    peak_rss: int = 0

    def check(self, now: float) -> str | None:
        rss = group_rss(self.pid)
        self.peak_rss = max(self.peak_rss, rss)
        if rss > self.memory_limit:
            return "memory"
        if now - self.started > self.timeout:
            return "time"
        return None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # the child leads its own process group


class DaemonWatchdog:
    """The daemon's own budget. ``check()`` returns a reason to exit, or None."""

    def __init__(self, memory_limit: int, cpu_percent: float, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.memory_limit = memory_limit
        self.cpu_ratio_limit = cpu_percent / 100.0
        self.window = window
        self.clock = clock
        self.samples: deque[tuple[float, float]] = deque()
        self.usage = 0.0

    def check(self) -> str | None:
        now = self.clock()
        self.samples.append((now, cpu_seconds()))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()
        first_t, first_cpu = self.samples[0]
        span = now - first_t
        if span > 0:
            self.usage = (self.samples[-1][1] - first_cpu) / span
        rss = rss_bytes()
        if rss > self.memory_limit:
            return f"memory {rss} bytes above the daemon budget of {self.memory_limit}"
        if span >= self.window and self.usage > self.cpu_ratio_limit:
            return (f"CPU {self.usage * 100:.1f} % over {span:.0f} s above the daemon budget of "
                    f"{self.cpu_ratio_limit * 100:.1f} %")
        return None
