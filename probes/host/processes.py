"""Running processes: executable, owner, command line and what their stdin/stdout are connected to.

Kernel threads and zombies (no executable) are left out. Processes that are identical in everything but pid
(same exe, comm, uid, command line and std streams: worker pools, several shells) collapse into one row whose
``count`` says how many there are, so that the subject stays stable across runs.

Two kinds of rows, because rules and baselines need different things:

- ``Process``: what runs right now, for the profile rules (a reverse shell, a binary in /tmp, a deleted
  executable). Never kept in a baseline: command lines, pids and short-lived commands are not state.
- ``ProcessIdentity``: the set of long-lived programs, for baselines only: executable, name, user, owning
  systemd unit and listening role, one row however many instances run. A process is long-lived when it holds
  a listening socket or has run for ``min_age_s`` seconds (default 600). Age rather than "in a service unit":
  a service's cgroup also holds its short-lived children (cron jobs, per-connection workers). Processes of an
  interactive login session (``session-N.scope``) count by age only once they left the session's process tree
  (re-parented to init, as ``nohup cmd &`` after logout or a daemonising tool), so that an admin's shell is
  not drift.

precaution's own process, everything it started (``sshd -T``, ``find``) and the processes it runs under (the
shell that started it, ``time``, ``sudo``) are never identities: they are the inspection, not the host (only
the inspecting process itself is left out of the Process rows). The process tree is that of the reading side:
``/proc/self`` as the transport sees it.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from probes.base import GatherContext, Probe, ProbeSettings, Raw, Requirements
from probes.errors import ProbeInputError
from probes.observation import Row
from probes.procfs import list_pids, parse_net_table, read_net_tables, read_socket_inodes
from probes.transport import text_of

log = logging.getLogger(__name__)

CMDLINE_MAX = 512  # characters kept of a joined command line; enough for rules, bounded for huge argv
DELETED_SUFFIX = " (deleted)"
_STATUS_FIELDS = ("Name:", "State:", "PPid:", "Uid:", "Kthread:")
_TTY_PREFIXES = ("/dev/pts/", "/dev/tty", "/dev/console", "/dev/ptmx")
DEFAULT_MIN_AGE_S = 600
USER_HZ = 100  # /proc/PID/stat start times are in USER_HZ ticks, 100 on every Linux ABI
_UNIT_SUFFIXES = (".service", ".scope")
# Instance parts of unit names that change every time although the unit is "the same": login sessions,
# systemd-run transients, containers.
_UNIT_INSTANCES = ((re.compile(r"^session-[^.]+\.scope$"), "session.scope"),
                   (re.compile(r"^run-[A-Za-z0-9]+\.(scope|service)$"), r"run.\1"),
                   (re.compile(r"^(docker|libpod|cri-containerd|crio)-[0-9a-f]{12,}\.scope$"), r"\1.scope"))


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
    unit: str  # owning systemd unit (from /proc/PID/cgroup, instance numbers folded), "" when none or unknown
    listener: bool  # holds a listening TCP or bound UDP socket

    KEY: ClassVar[tuple[str, ...]] = ("exe", "comm", "uid", "cmdline", "stdin", "stdout")
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"pid", "ppid", "count"})
    IN_BASELINE: ClassVar[bool] = False  # what runs now; the baseline keeps ProcessIdentity rows


@dataclass(frozen=True, slots=True)
class ProcessIdentity(Row):
    """A long-lived program as baselines compare it: one row per identity, however many instances run."""

    exe: str
    comm: str
    uid: int
    unit: str
    role: str  # "listener" or ""
    pid: int  # lowest pid, for the operator
    count: int

    KEY: ClassVar[tuple[str, ...]] = ("exe", "comm", "uid", "unit", "role")
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"pid", "count"})
    IN_RULES: ClassVar[bool] = False  # the Process rows of the same processes are what rules judge


class ProcessesOptions(BaseModel):
    """``[probes.processes]`` in config.toml."""

    model_config = ConfigDict(extra="forbid")
    min_age_s: int = Field(DEFAULT_MIN_AGE_S, ge=0, le=10 * 365 * 86400)  # long-lived from this age on


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
    args = raw_cmdline.split("\0")
    while args and args[-1] == "":
        args.pop()
    joined = " ".join(args).rstrip()  # programs that rewrite argv pad it with blanks
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


def unit_of(cgroup: str) -> str:
    """The systemd unit owning a process, from /proc/PID/cgroup (v2 "0::/path", or v1 "N:name=systemd:/path"):
    the innermost .service or .scope in the path, with instance numbers folded (session-4.scope ->
    session.scope). "" when the process is in no unit (no systemd, a container, the root cgroup)."""
    paths = {}
    for line in cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" or controllers == "name=systemd":
            paths[hierarchy == "0"] = path
    for path in (paths.get(True, ""), paths.get(False, "")):  # a hybrid host has units only in the v1 path
        for part in reversed(path.split("/")):
            if part.endswith(_UNIT_SUFFIXES):
                for pattern, repl in _UNIT_INSTANCES:
                    if pattern.match(part):
                        return pattern.sub(repl, part)
                return part
    return ""


def start_ticks(stat: str) -> int | None:
    """Field 22 of /proc/PID/stat (start time after boot, in USER_HZ ticks); the name in field 2 may hold
    blanks and parentheses, so the fields are counted from its last closing parenthesis."""
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def listening_inodes(net: Mapping[str, str]) -> set[str]:
    out: set[str] = set()
    for table, text in net.items():
        for e in parse_net_table(table, text):
            if (e.proto == "tcp" and e.state == "LISTEN") or (e.proto == "udp" and e.state == "UNCONN"):
                out.add(str(e.inode))
    return out


def own_tree(parents: Mapping[int, int], me: int | None) -> tuple[set[int], set[int]]:
    """(the inspecting process and its descendants, its ancestors short of init)."""
    if me is None or me not in parents:
        return set(), set()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    mine, todo = set(), [me]
    while todo:
        pid = todo.pop()
        if pid not in mine:
            mine.add(pid)
            todo.extend(children.get(pid, ()))
    above: set[int] = set()
    pid = parents.get(me, 0)
    while pid > 1 and pid not in above and pid not in mine:
        above.add(pid)
        pid = parents.get(pid, 0)
    return mine, above


def long_lived(row: Process, age_s: float | None, min_age_s: int) -> bool:
    if row.listener:
        return True
    if age_s is not None and age_s < min_age_s:
        return False  # an unknown age counts as long-lived: a process we cannot date is not dismissed
    return row.unit != "session.scope" or row.ppid == 1


def identities(rows: Sequence[tuple[Process, float | None]], min_age_s: int) -> list[ProcessIdentity]:
    found: dict[tuple[str, str, int, str, str], ProcessIdentity] = {}
    for row, age in rows:
        if not long_lived(row, age, min_age_s):
            continue
        key = (row.exe, row.comm, row.uid, row.unit, "listener" if row.listener else "")
        prev = found.get(key)
        found[key] = (ProcessIdentity(*key, pid=row.pid, count=1) if prev is None
                      else replace(prev, pid=min(prev.pid, row.pid), count=prev.count + 1))
    return [found[k] for k in sorted(found)]


class ProcessesProbe(Probe[Row]):
    id = "processes"
    title = "Running processes"
    requires = Requirements(root=True, paths_any=("/proc/self/status",))
    options_model = ProcessesOptions

    def __init__(self, options: ProcessesOptions | None = None) -> None:
        self.options = options or ProcessesOptions(min_age_s=DEFAULT_MIN_AGE_S)

    @classmethod
    def configured(cls, settings: ProbeSettings) -> Self:
        try:
            options = ProcessesOptions.model_validate(dict(settings.options))
        except ValidationError as exc:
            raise ProbeInputError("probes.processes: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(table)'}: {e['msg']}" for e in exc.errors())) from None
        return cls(options)

    def gather(self, ctx: GatherContext) -> Raw:
        # Batched: every status, cmdline, stat and cgroup, then every exe/fd link in one call each (over SSH, a
        # few round trips instead of several per process).
        t = ctx.transport
        procs: dict[str, dict[str, str | None]] = {}
        denied = 0
        try:
            me: str | None = t.readlink("/proc/self")
        except OSError:
            me = None
        pids = list_pids(ctx)
        statuses = t.read_many((f"/proc/{pid}/status" for pid in pids), 16384)
        alive = [pid for pid in pids if not isinstance(statuses[f"/proc/{pid}/status"], OSError)]
        cmdlines = t.read_many((f"/proc/{pid}/cmdline" for pid in alive), 65536)
        stats = t.read_many((f"/proc/{pid}/stat" for pid in alive), 4096)
        cgroups = t.read_many((f"/proc/{pid}/cgroup" for pid in alive), 16384)
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
            if isinstance(stats.get(f"{base}/stat"), FileNotFoundError | ProcessLookupError):
                continue  # exited while we looked (its exe link is gone too): not a process of unknown age
            entry: dict[str, str | None] = {
                "status": "\n".join(line for line in status.splitlines() if line.startswith(_STATUS_FIELDS)),
                "cmdline": cmdline,
                "exe": _link(links[f"{base}/exe"]),
                "fd0": _link(links[f"{base}/fd/0"]),
                "fd1": _link(links[f"{base}/fd/1"]),
                "stat": _text_or_none(stats.get(f"{base}/stat")),
                "cgroup": _text_or_none(cgroups.get(f"{base}/cgroup")),
            }
            if entry["exe"] is None:
                denied += 1
            procs[pid] = entry
        if denied:
            ctx.limited(f"{denied} processes not fully readable: exe or std streams unknown for them")
        try:
            uptime: str | None = t.read_text("/proc/uptime")
        except OSError:
            uptime = None
        return {"procs": procs, "net": read_net_tables(ctx), "sockets": read_socket_inodes(ctx), "self": me,
                "uptime": uptime, "min_age_s": self.options.min_age_s}

    @staticmethod
    def parse(raw: Raw) -> Sequence[Row]:
        net = raw.get("net", {})
        inet = inet_inodes(net)
        listening = listening_inodes(net)
        listeners = {pid for pid, inodes in (raw.get("sockets") or {}).items() if listening.intersection(inodes)}
        now_ticks = _uptime_ticks(raw.get("uptime"))
        rows: dict[tuple[object, ...], Process] = {}
        ages: dict[int, float | None] = {}
        instances: list[Process] = []
        for pid_text, entry in raw.get("procs", {}).items():
            row = _process(pid_text, entry, inet, pid_text in listeners)
            if row is None:
                continue
            start = start_ticks(entry.get("stat") or "")
            ages[row.pid] = None if start is None or now_ticks is None else (now_ticks - start) / USER_HZ
            instances.append(row)
        me = _int_or_none(raw.get("self"))
        mine, above = own_tree({r.pid: r.ppid for r in instances}, me)
        # Rules see every process but the inspecting one (what it started is judged like anything else: in a
        # test harness or a library caller that is the workload itself); identities leave out the whole
        # inspection, down and up its process tree.
        inspected = [r for r in instances if r.pid not in mine and not (r.pid in above and not r.listener)]
        for row in (r for r in instances if r.pid != me):
            key = tuple(getattr(row, k) for k in Process.KEY)
            prev = rows.get(key)
            if prev is None:
                rows[key] = row
            else:
                first = row if row.pid < prev.pid else prev
                rows[key] = replace(first, count=prev.count + 1)
        current = sorted(rows.values(), key=lambda r: (r.exe, r.comm, r.uid, r.cmdline, r.stdin, r.stdout))
        min_age = int(raw.get("min_age_s", DEFAULT_MIN_AGE_S))
        return [*current, *identities([(r, ages.get(r.pid)) for r in inspected], min_age)]


def _process(pid_text: str, entry: Mapping[str, Any], inet: dict[str, str], listener: bool) -> Process | None:
    status = parse_status(entry.get("status") or "")
    exe_link = entry.get("exe")
    cmdline = join_cmdline(entry.get("cmdline") or "")
    if status.get("Kthread") == "1" or status.get("State", "").startswith("Z"):
        return None
    if exe_link == "" and not cmdline:
        return None  # a kernel thread on kernels without the Kthread field
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
        return None
    return Process(
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
        unit=unit_of(entry.get("cgroup") or ""),
        listener=listener,
    )


def _text_or_none(value: bytes | OSError | None) -> str | None:
    if value is None or isinstance(value, OSError):
        return None
    return value.decode("utf-8", errors="replace")


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _uptime_ticks(text: object) -> float | None:
    try:
        return float(str(text).split()[0]) * USER_HZ
    except (IndexError, ValueError):
        return None
