"""Start a real process for a test and wait until it has exec'd (Popen returns after fork, and until exec
the child still shows the parent's name and executable in /proc)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any


def spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    proc: subprocess.Popen[bytes] = subprocess.Popen(argv, **kwargs)
    parent_exe = os.readlink("/proc/self/exe")
    deadline = time.monotonic() + 10
    while True:
        try:
            # exec switches /proc/PID/exe first and fills in cmdline a moment later: wait for both
            if os.readlink(f"/proc/{proc.pid}/exe") != parent_exe and Path(f"/proc/{proc.pid}/cmdline").read_bytes():
                return proc
        except FileNotFoundError:
            return proc  # already gone: the caller's assertions will say so
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{argv[0]} did not start within 10 s")
        time.sleep(0.005)
