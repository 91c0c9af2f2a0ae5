"""systemd service, timer, socket and path units: where each is defined, whether it is enabled, what it runs.

System units come from the unit search path (/etc first, then /run, /usr/local/lib, /lib, /usr/lib); user units
from each account's ~/.config/systemd/user, the place a user (or an intruder with a user's rights) installs
persistence without root. "Enabled" means a symlink in some ``*.wants`` or ``*.requires`` directory.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from probes import messages as msg
from probes.base import GatherContext, Probe, Raw, Requirements
from probes.host._homes import home_owner, read_homes
from probes.observation import Row

log = logging.getLogger(__name__)

SYSTEM_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
               "/lib/systemd/system", "/usr/lib/systemd/system")
USER_DIR = ".config/systemd/user"
UNIT_TYPES = ("service", "timer", "socket", "path")
DEP_SUFFIXES = (".wants", ".requires")
MAX_UNIT_BYTES = 256 * 1024
_EXEC_PREFIX = "-@:+!"
_INSTANCE_RE = re.compile(r"^([^@]+@)[^.]*(\.[a-z]+)$")


@dataclass(frozen=True, slots=True)
class SystemdUnit(Row):
    scope: str  # system | user:<account>
    account: str | None  # user scope: the account; None for system units
    name: str
    type: str  # service | timer | socket | path
    path: str  # the unit file in effect ("" when only a dependency link names the unit)
    sha256: str | None
    enabled: bool
    enabled_by: tuple[str, ...]  # "<target>.wants/<link name>"
    masked: bool
    aliases: tuple[str, ...]
    dropins: tuple[str, ...]
    description: str | None
    exec_start: str | None  # the first ExecStart= in effect, prefixes (-@:+!) removed
    exec_path: str | None  # its program
    exec_home_of: str | None  # account (root or a regular user) whose home holds exec_path
    user: str | None  # User=
    on_calendar: tuple[str, ...]
    on_boot_sec: str | None
    triggers: str | None  # timers, sockets, paths: the unit they start

    KEY: ClassVar[tuple[str, ...]] = ("scope", "name")


@dataclass(slots=True)
class _Unit:
    name: str
    path: str = ""
    text: str | None = None
    masked: bool = False
    aliases: list[str] = field(default_factory=list)
    enabled_by: list[str] = field(default_factory=list)


def unit_type(name: str) -> str | None:
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    return suffix if suffix in UNIT_TYPES else None


def parse_unit_file(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections -> (key, value) in order; continuation lines (trailing backslash) joined."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw_line in text.splitlines():
        line = pending + raw_line.strip() if pending else raw_line.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        if current is None or "=" not in line:
            continue
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return sections


def _values(sections: list[dict[str, list[tuple[str, str]]]], section: str, key: str) -> list[str]:
    """All values of a list setting across the unit file and its drop-ins; an empty assignment resets."""
    out: list[str] = []
    for doc in sections:
        for k, v in doc.get(section, []):
            if k == key:
                if v == "":
                    out = []
                else:
                    out.append(v)
    return out


def _last(sections: list[dict[str, list[tuple[str, str]]]], section: str, key: str) -> str | None:
    values = _values(sections, section, key)
    return values[-1] if values else None


def exec_program(exec_start: str) -> tuple[str, str]:
    """(command line without the special prefixes, program path) of an ExecStart= value."""
    line = exec_start.lstrip(_EXEC_PREFIX).strip()
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    return line, (words[0] if words else "")


class SystemdUnitsProbe(Probe[SystemdUnit]):
    id = "systemd_units"
    title = "systemd units (services, timers, sockets, paths)"
    title_zh = "systemd 单元（服务、定时器、套接字、路径）"
    requires = Requirements(root=True)

    def gather(self, ctx: GatherContext) -> Raw:
        t = ctx.transport
        dirs: list[str] = []
        seen_inodes: set[int | str] = set()
        stats = t.stat_many(SYSTEM_DIRS)
        for d in SYSTEM_DIRS:
            st = stats[d]
            if isinstance(st, OSError):
                continue
            # /lib is /usr/lib on merged-/usr systems. Inode 0 means unknown (SFTP carries none): the path then.
            identity = st.inode or d
            if st.is_dir and identity not in seen_inodes:
                seen_inodes.add(identity)
                dirs.append(d)
        homes = read_homes(ctx)
        candidates = [(acct.name, f"{acct.home}/{USER_DIR}") for acct in homes]
        present = t.stat_many((d for _, d in candidates), follow=False)  # exists() is lexists()
        user_dirs = [(name, d) for name, d in candidates if not isinstance(present[d], OSError)]
        # All directories of every scope in one pass: a few batched calls in all, whatever the number of units.
        read = _read_unit_dirs(ctx, dirs + [d for _, d in user_dirs])
        scopes: dict[str, Any] = {"system": [read[d] for d in dirs]}
        for name, d in user_dirs:
            scopes[f"user:{name}"] = [read[d]]
        return {"scopes": scopes, "homes": [[a.name, a.home] for a in homes if a.regular]}

    @staticmethod
    def parse(raw: Raw) -> Sequence[SystemdUnit]:
        homes = [(str(n), str(h)) for n, h in raw.get("homes", [])]
        rows: list[SystemdUnit] = []
        for scope, dir_list in sorted(raw.get("scopes", {}).items()):
            rows += _parse_scope(scope, dir_list, homes)
        return rows


def _read_unit_dirs(ctx: GatherContext, directories: list[str]) -> dict[str, dict[str, Any]]:
    """What each unit directory holds: unit files, links (and the linked files), dependency directories and
    drop-ins. Batched by phase across all directories; the same reads, the same errors as one call per file."""
    t = ctx.transport
    outs: dict[str, dict[str, Any]] = {}
    listings = t.list_many(directories)
    entries: list[tuple[dict[str, Any], str, str]] = []  # out, name, path
    for directory in dict.fromkeys(directories):
        out: dict[str, Any] = {"dir": directory, "files": {}, "links": {}, "deps": {}, "dropins": {}, "linked": {}}
        outs[directory] = out
        names = listings[directory]
        if isinstance(names, PermissionError):
            ctx.limited(msg.NOT_READABLE(path=directory))
            continue
        if isinstance(names, (FileNotFoundError, NotADirectoryError)):
            continue
        if isinstance(names, OSError):
            raise names
        entries += [(out, name, f"{directory}/{name}") for name in names]
    stats = t.stat_many((path for _, _, path in entries), follow=False)
    kinds: list[tuple[dict[str, Any], str, str, str]] = []  # out, name, path, link | deps | dropins | file
    for out, name, path in entries:
        st = stats[path]
        if isinstance(st, FileNotFoundError):
            continue  # removed while we looked
        if isinstance(st, PermissionError):
            ctx.limited(msg.NOT_READABLE(path=path))
            continue
        if isinstance(st, OSError):
            raise st
        if st.is_link:
            kinds.append((out, name, path, "link"))
        elif st.is_dir and name.endswith(DEP_SUFFIXES):
            kinds.append((out, name, path, "deps"))
        elif st.is_dir and name.endswith(".d") and unit_type(name[:-2]):
            kinds.append((out, name, path, "dropins"))
        elif st.is_file and unit_type(name):
            kinds.append((out, name, path, "file"))
    links = t.readlink_many(path for _, _, path, kind in kinds if kind == "link")
    subdirs = t.list_many(path for _, _, path, kind in kinds if kind in ("deps", "dropins"))
    to_read: list[tuple[dict[str, str], str, str]] = []  # into, path, entry path (for its errors)
    dep_links: list[tuple[dict[str, str], str, str]] = []  # into, link name, path
    for out, name, path, kind in kinds:
        if kind == "link":
            target = links[path]
            if isinstance(target, FileNotFoundError):
                continue
            if isinstance(target, PermissionError):
                ctx.limited(msg.NOT_READABLE(path=path))
                continue
            if isinstance(target, OSError):
                raise target
            out["links"][name] = target
            full = posixpath.normpath(posixpath.join(out["dir"], target))
            # A link to a same-named file outside the search path is a linked unit (systemctl link):
            # its text is read from wherever it lives.
            if unit_type(name) and posixpath.basename(full) == name and full != "/dev/null":
                to_read.append((out["linked"], full, path))
        elif kind == "file":
            to_read.append((out["files"], path, path))
        else:
            listed = subdirs[path]
            if isinstance(listed, FileNotFoundError):
                continue
            if isinstance(listed, PermissionError):
                ctx.limited(msg.NOT_READABLE(path=path))
                continue
            if isinstance(listed, OSError):
                raise listed
            if kind == "deps":
                deps: dict[str, str] = {}
                out["deps"][name] = deps
                dep_links += [(deps, n, f"{path}/{n}") for n in listed]
            else:
                confs: dict[str, str] = {}
                out["dropins"][name[:-2]] = confs
                to_read += [(confs, f"{path}/{conf}", f"{path}/{conf}") for conf in listed if conf.endswith(".conf")]
    targets = t.readlink_many(path for _, _, path in dep_links)
    for deps, link_name, path in dep_links:
        target = targets[path]
        # A plain file in a .wants directory also enables the unit; no target to show.
        deps[link_name] = "" if isinstance(target, OSError) else target
    texts = t.read_many((path for _, path, _ in to_read), MAX_UNIT_BYTES)
    for into, path, _ in to_read:
        text = texts[path]
        if isinstance(text, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
            continue
        if isinstance(text, PermissionError):
            ctx.limited(msg.NOT_READABLE(path=path))
            continue
        if isinstance(text, OSError):
            raise text
        into[path] = text.decode("utf-8", errors="replace")
    return outs


def _template_of(name: str) -> str | None:
    m = _INSTANCE_RE.match(name)
    return f"{m.group(1)}{m.group(2)}" if m else None


def _parse_scope(scope: str, dir_list: list[dict[str, Any]], homes: list[tuple[str, str]]) -> list[SystemdUnit]:
    units: dict[str, _Unit] = {}
    alias_of: dict[str, str] = {}
    # First pass: unit files and links, the first directory in the search path wins.
    for d in dir_list:
        directory = d["dir"]
        for name, text in d["files"].items():
            unit_name = posixpath.basename(name)
            if unit_name not in units and unit_name not in alias_of:
                units[unit_name] = _Unit(unit_name, name, text)
        for name, target in d["links"].items():
            if not unit_type(name) or name in units or name in alias_of:
                continue
            full = posixpath.normpath(posixpath.join(directory, target))
            if full == "/dev/null":
                units[name] = _Unit(name, full, None, masked=True)
            elif posixpath.basename(full) == name:
                units[name] = _Unit(name, full, d["linked"].get(full))
            else:
                alias_of[name] = posixpath.basename(full)
    # Files of lower-precedence directories first come under names that were aliases; resolve aliases now.
    for alias, target in sorted(alias_of.items()):
        unit = units.setdefault(target, _Unit(target))
        unit.aliases.append(alias)
    # Second pass: dependency links enable units.
    for d in dir_list:
        for dep_dir, entries in sorted(d["deps"].items()):
            for link_name, target in sorted(entries.items()):
                if not unit_type(link_name):
                    continue
                name = alias_of.get(link_name, link_name)
                if name not in units:
                    template = _template_of(name)
                    if template and template in units:
                        name = template
                    else:
                        full = posixpath.normpath(posixpath.join(d["dir"], dep_dir, target)) if target else ""
                        units[name] = _Unit(name, full)
                units[name].enabled_by.append(f"{dep_dir}/{link_name}")
    dropins: dict[str, dict[str, tuple[str, str]]] = {}
    for d in reversed(dir_list):  # higher-precedence directories override a same-named drop-in
        for unit_name, confs in d["dropins"].items():
            for path, text in confs.items():
                dropins.setdefault(unit_name, {})[posixpath.basename(path)] = (path, text)
    rows = [_row(scope, u, dropins.get(u.name, {}), homes) for u in units.values()]
    return sorted(rows, key=lambda r: r.name)


def _row(scope: str, unit: _Unit, dropins: dict[str, tuple[str, str]], homes: list[tuple[str, str]]) -> SystemdUnit:
    utype = unit_type(unit.name) or ""
    docs = [parse_unit_file(unit.text)] if unit.text is not None else []
    docs += [parse_unit_file(text) for _, (_, text) in sorted(dropins.items())]
    exec_start = exec_path = None
    if utype == "service":
        starts = _values(docs, "Service", "ExecStart")
        if starts:
            exec_start, exec_path = exec_program(starts[0])
    section = {"timer": "Timer", "socket": "Socket", "path": "Path"}.get(utype)
    triggers = None
    if section:
        base = unit.name.rsplit(".", 1)[0]
        # A socket with Accept=yes starts instances of a template service; the default target name is the same.
        triggers = _last(docs, section, "Unit") or f"{base}.service"
    return SystemdUnit(
        scope=scope,
        account=scope.split(":", 1)[1] if scope.startswith("user:") else None,
        name=unit.name,
        type=utype,
        path=unit.path,
        sha256=hashlib.sha256(unit.text.encode("utf-8")).hexdigest() if unit.text is not None else None,
        enabled=bool(unit.enabled_by),
        enabled_by=tuple(sorted(set(unit.enabled_by))),
        masked=unit.masked,
        aliases=tuple(sorted(unit.aliases)),
        dropins=tuple(path for _, (path, _) in sorted(dropins.items())),
        description=_last(docs, "Unit", "Description"),
        exec_start=exec_start,
        exec_path=exec_path,
        exec_home_of=home_owner(exec_path, homes) if exec_path else None,
        user=_last(docs, "Service", "User") if utype == "service" else None,
        on_calendar=tuple(_values(docs, "Timer", "OnCalendar")) if utype == "timer" else (),
        on_boot_sec=_last(docs, "Timer", "OnBootSec") if utype == "timer" else None,
        triggers=triggers,
    )
