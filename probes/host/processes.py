"""Running processes: executable, owner, command line and what their stdin/stdout are connected to.

Kernel threads and zombies (no executable) are left out. Processes that are identical in everything but pid
(same exe, comm, uid, command line and std streams: worker pools, several shells) collapse into one row whose
``count`` says how many there are, so that the subject stays stable across runs.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row
from probes.procfs import list_pids, parse_net_table, read_net_tables
from probes.redact import redact_args
from probes.transport import text_of

log = logging.getLogger(__name__)

CMDLINE_MAX = 512  # characters kept of a joined command line; enough for rules, bounded for huge argv
DELETED_SUFFIX = " (deleted)"
_STATUS_FIELDS = ("Name:", "State:", "PPid:", "Uid:", "Kthread:")
_TTY_PREFIXES = ("/dev/pts/", "/dev/tty", "/dev/console", "/dev/ptmx")


@dataclass(frozen=True, slots=True)
class Process(Row):
    exe: str  # without the kernel's " (deleted)" suffix; "" when not readable
    comm: str
    uid: int  # real uid
    euid: int
    cmdline: str  # arguments joined with spaces, at most CMDLINE_MAX characters
    stdin: str  # tcp | udp | socket | pipe | tty | null | file | anon | closed | unknown
    stdout: str
    exe_deleted: bool
    exe_dir: str
    pid: int  # lowest pid of the processes this row stands for
    ppid: int
    count: int

    KEY: ClassVar[tuple[str, ...]] = ("exe", "comm", "uid", "cmdline", "stdin", "stdout")
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"pid", "ppid", "count"})


def fd_kind(link: str | None, inet: dict[str, str]) -> str:
    """What a /proc/PID/fd/N link points at; ``inet`` maps socket inodes to tcp/udp."""
    if link is None:
        return "unknown"
    if link == "":
        return "closed"
    if link.startswith("socket:["):
        return inet.get(link[8:-1], "socket")
    if link.startswith("pipe:["):
        return "pipe"
    if link == "/dev/null":
        return "null"
    if link.startswith(_TTY_PREFIXES):
        return "tty"
    if link.startswith("anon_inode:"):
        return "anon"
    return "file"


def parse_status(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def join_cmdline(raw_cmdline: str) -> str:
    """The argv as one line, secrets redacted (probes.redact: before any output or baseline sees it), at most
    CMDLINE_MAX characters."""
    args = raw_cmdline.split("\0")
    while args and args[-1] == "":
        args.pop()
    if len(args) == 1 and " " in args[0]:
        args = args[0].split(" ")  # a program that rewrote its argv into one string: judge its words
    joined = " ".join(redact_args(args)).rstrip()  # programs that rewrite argv pad it with blanks
    return joined if len(joined) <= CMDLINE_MAX else joined[:CMDLINE_MAX - 3] + "..."


def inet_inodes(net: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for table, text in net.items():
        for entry in parse_net_table(table, text):
            out.setdefault(str(entry.inode), entry.proto)
    return out


def _link(value: str | OSError) -> str | None:
    """A readlink_many value: the target; "" when the link does not exist (closed fd); None when it cannot be
    read."""
    if isinstance(value, FileNotFoundError):
        return ""
    if isinstance(value, OSError):
        return None
    return value


class ProcessesProbe(Probe[Process]):
    id = "processes"
    title = "Running processes"
    requires = Requirements(root=True, paths_any=("/proc/self/status",))

    def gather(self, ctx: GatherContext) -> Raw:
        # Batched: every status, every cmdline, then every exe/fd link in one call each (over SSH, three round
        # trips instead of five per process).
        t = ctx.transport
        procs: dict[str, dict[str, str | None]] = {}
        denied = 0
        pids = list_pids(ctx)
        statuses = t.read_many((f"/proc/{pid}/status" for pid in pids), 16384)
        cmdlines = t.read_many((f"/proc/{pid}/cmdline" for pid in pids
                                if not isinstance(statuses[f"/proc/{pid}/status"], OSError)), 65536)
        texts: dict[str, tuple[str, str]] = {}
        for pid in pids:
            base = f"/proc/{pid}"
            try:
                status = text_of(statuses[f"{base}/status"])
                cmdline = text_of(cmdlines[f"{base}/cmdline"])
            except (FileNotFoundError, ProcessLookupError):
                continue  # exited while we looked
            except PermissionError:
                denied += 1
                continue
            texts[pid] = (status, cmdline)
        links = t.readlink_many(f"/proc/{pid}/{name}" for pid in texts for name in ("exe", "fd/0", "fd/1"))
        for pid, (status, cmdline) in texts.items():
            base = f"/proc/{pid}"
            entry: dict[str, str | None] = {
                "status": "\n".join(line for line in status.splitlines() if line.startswith(_STATUS_FIELDS)),
                "cmdline": cmdline,
                "exe": _link(links[f"{base}/exe"]),
                "fd0": _link(links[f"{base}/fd/0"]),
                "fd1": _link(links[f"{base}/fd/1"]),
            }
            if entry["exe"] is None:
                denied += 1
            procs[pid] = entry
        if denied:
            ctx.limited(f"{denied} processes not fully readable: exe or std streams unknown for them")
        return {"procs": procs, "net": read_net_tables(ctx)}

    @staticmethod
    def parse(raw: Raw) -> Sequence[Process]:
        inet = inet_inodes(raw.get("net", {}))
        rows: dict[tuple[object, ...], Process] = {}
        for pid_text, entry in raw.get("procs", {}).items():
            status = parse_status(entry.get("status") or "")
            exe_link = entry.get("exe")
            cmdline = join_cmdline(entry.get("cmdline") or "")
            if status.get("Kthread") == "1" or status.get("State", "").startswith("Z"):
                continue
            if exe_link == "" and not cmdline:
                continue  # a kernel thread on kernels without the Kthread field
            exe = exe_link or ""
            deleted = exe.endswith(DELETED_SUFFIX)
            if deleted:
                exe = exe[:-len(DELETED_SUFFIX)]
            uids = status.get("Uid", "").split()
            try:
                uid, euid = int(uids[0]), int(uids[1])
                ppid = int(status.get("PPid", "0"))
                pid = int(pid_text)
            except (IndexError, ValueError):
                continue
            row = Process(
                exe=exe,
                comm=status.get("Name", ""),
                uid=uid,
                euid=euid,
                cmdline=cmdline,
                stdin=fd_kind(entry.get("fd0"), inet),
                stdout=fd_kind(entry.get("fd1"), inet),
                exe_deleted=deleted,
                exe_dir=posixpath.dirname(exe) if exe.startswith("/") else "",
                pid=pid,
                ppid=ppid,
                count=1,
            )
            key = tuple(getattr(row, k) for k in Process.KEY)
            prev = rows.get(key)
            if prev is None:
                rows[key] = row
            else:
                first = row if row.pid < prev.pid else prev
                rows[key] = replace(first, count=prev.count + 1)
        return sorted(rows.values(), key=lambda r: (r.exe, r.comm, r.uid, r.cmdline, r.stdin, r.stdout))
