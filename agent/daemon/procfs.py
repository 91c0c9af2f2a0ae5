"""The daemon's own process figures from /proc (psutil costs the idle daemon 2.5 MiB; runs may use it)."""

from __future__ import annotations

import os

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str]:
    """Fields of /proc/PID/stat after the command name: [0] is field 3 (state)."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        data = fh.read()
    return data[data.rindex(b")") + 2:].decode("ascii").split()


def rss_bytes(pid: int | str = "self") -> int:
    return int(_stat(pid)[21]) * PAGE


def cpu_seconds(pid: int | str = "self") -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS


def group_rss(pgid: int) -> int:
    """RSS of every process in a process group (a run's child leads its own, with nmap, find... in it)."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = _stat(name)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid:
            total += int(fields[21]) * PAGE
    return total
