"""sudo policy: /etc/sudoers and every file it includes (#include, @include, #includedir, @includedir).

One row per user specification (``who hosts = (runas) TAGS: commands``) and per Defaults line, as written;
aliases are kept as written, except that a Cmnd_Alias standing for ALL counts as all commands.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from probes import messages as msg
from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row

log = logging.getLogger(__name__)

SUDOERS = "/etc/sudoers"
MAX_DEPTH = 8  # sudo itself stops at 128; real configurations nest one or two levels
TAGS = frozenset({
    "NOPASSWD", "PASSWD", "NOEXEC", "EXEC", "SETENV", "NOSETENV", "LOG_INPUT", "NOLOG_INPUT", "LOG_OUTPUT",
    "NOLOG_OUTPUT", "MAIL", "NOMAIL", "FOLLOW", "NOFOLLOW", "INTERCEPT", "NOINTERCEPT",
})
ALIAS_KINDS = ("User_Alias", "Runas_Alias", "Host_Alias", "Cmnd_Alias", "Cmd_Alias")
_INCLUDE_RE = re.compile(r"^[#@](include|includedir)\s+(.+?)\s*$")
_OPTION_RE = re.compile(r"^(ROLE|TYPE|CWD|CHROOT|TIMEOUT|NOTBEFORE|NOTAFTER|APPARMOR_PROFILE)=\S+\s*")


@dataclass(frozen=True, slots=True)
class SudoRule(Row):
    kind: str  # rule | defaults
    source: str
    line: int
    text: str  # the logical line, whitespace collapsed
    who: tuple[str, ...]  # users, %groups, #uids, aliases as written; Defaults: the binding (":user", "@host")
    hosts: tuple[str, ...]
    runas: str  # as written inside (...); "root" when the rule names none (sudo's default)
    commands: tuple[str, ...]
    tags: tuple[str, ...]
    nopasswd: bool
    all_commands: bool
    settings: tuple[str, ...]  # Defaults only

    KEY: ClassVar[tuple[str, ...]] = ("source", "text")
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"line"})


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with backslash continuations joined and comments removed."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        stripped = _strip_comment(buf).strip()
        buf = ""
        if stripped:
            out.append((start, stripped))
    return out


def _strip_comment(line: str) -> str:
    s = line.lstrip()
    if _INCLUDE_RE.match(s):
        return s
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"' and (i == 0 or line[i - 1] != "\\"):
            quoted = not quoted
        elif ch == "#" and not quoted and (i == 0 or line[i - 1] != "\\"):
            # "#1000" is a uid in a user or runas list, not a comment.
            if i + 1 < len(line) and line[i + 1].isdigit():
                continue
            return line[:i]
    return line


def include_targets(path: str, text: str) -> list[tuple[str, str]]:
    """[("include" | "includedir", absolute path)] in file order; relative paths are relative to ``path``."""
    out = []
    for _, line in logical_lines(text):
        m = _INCLUDE_RE.match(line)
        if m:
            target = m.group(2).strip('"')
            out.append((m.group(1), posixpath.normpath(posixpath.join(posixpath.dirname(path), target))))
    return out


def includedir_entry_ok(name: str) -> bool:
    """sudo skips files in an includedir whose names end in '~' or contain '.'."""
    return not name.endswith("~") and "." not in name


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside parentheses and quotes, honouring backslash escapes."""
    parts, depth, quoted, cur = [], 0, False, []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth = max(0, depth - 1)
        if ch == sep and depth == 0 and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _list(text: str) -> tuple[str, ...]:
    return tuple(p for p in _split_top(text, ",") if p)


def _split_host_groups(rest: str) -> list[str]:
    """'h1 = cmds : h2 = cmds' -> groups; a ':' right after a tag word (NOPASSWD:) belongs to the tag."""
    groups, depth, cur = [], 0, ""
    for ch in rest:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch == ":" and depth == 0:
            word = re.search(r"([A-Z_]+)\s*$", cur)
            if not (word and word.group(1) in TAGS):
                groups.append(cur)
                cur = ""
                continue
        cur += ch
    groups.append(cur)
    return [g.strip() for g in groups if g.strip()]


@dataclass(frozen=True, slots=True)
class _Cmnd:
    runas: str | None
    tags: tuple[str, ...]
    command: str


def _parse_cmnds(text: str) -> list[_Cmnd]:
    out: list[_Cmnd] = []
    runas: str | None = None
    tags: dict[str, None] = {}
    for item in _list(text):
        s = item
        if s.startswith("("):
            end = s.find(")")
            if end > 0:
                runas = s[1:end].strip()  # inherited by the following commands, like the tags
                s = s[end + 1:].lstrip()
        while True:
            m = _OPTION_RE.match(s)
            if not m:
                break
            s = s[m.end():]
        while True:
            m = re.match(r"^([A-Z_]+)\s*:\s*", s)
            if not (m and m.group(1) in TAGS):
                break
            tags[m.group(1)] = None
            s = s[m.end():]
        out.append(_Cmnd(runas, tuple(tags), " ".join(s.split())))
    return out


def _nopasswd(tags: tuple[str, ...]) -> bool:
    state = False
    for tag in tags:
        if tag in ("NOPASSWD", "PASSWD"):
            state = tag == "NOPASSWD"
    return state


class _Parser:
    def __init__(self, raw: Raw) -> None:
        self.files: dict[str, str] = raw.get("files", {})
        self.dirs: dict[str, list[str]] = raw.get("dirs", {})
        self.cmnd_aliases: dict[str, tuple[str, ...]] = {}
        self.specs: list[tuple[str, int, str]] = []
        self.seen: set[str] = set()

    def walk(self, path: str, depth: int = 0) -> None:
        if path in self.seen or depth > MAX_DEPTH or path not in self.files:
            return
        self.seen.add(path)
        for number, line in logical_lines(self.files[path]):
            m = _INCLUDE_RE.match(line)
            if m:
                target = posixpath.normpath(posixpath.join(posixpath.dirname(path), m.group(2).strip('"')))
                if m.group(1) == "include":
                    self.walk(target, depth + 1)
                else:
                    for name in sorted(self.dirs.get(target, [])):
                        if includedir_entry_ok(name):
                            self.walk(posixpath.join(target, name), depth + 1)
                continue
            first = line.split(None, 1)[0]
            if first in ALIAS_KINDS:
                self._alias(first, line[len(first):])
                continue
            self.specs.append((path, number, line))

    def _alias(self, kind: str, body: str) -> None:
        if kind not in ("Cmnd_Alias", "Cmd_Alias"):
            return
        for part in _split_host_groups(body):
            name, _, value = part.partition("=")
            self.cmnd_aliases[name.strip()] = tuple(c.command for c in _parse_cmnds(value))

    def _is_all(self, command: str, depth: int = 0) -> bool:
        if command == "ALL":
            return True
        if depth < 8 and command in self.cmnd_aliases:
            return any(self._is_all(c, depth + 1) for c in self.cmnd_aliases[command])
        return False

    def rows(self) -> list[SudoRule]:
        out: list[SudoRule] = []
        for path, number, line in self.specs:
            text = " ".join(line.split())
            if re.match(r"^Defaults([:@!>]|\s|$)", line):
                binding = line[len("Defaults"):].split(None, 1)
                scoped = bool(binding) and line[len("Defaults")] in ":@!>"
                who = (binding[0],) if scoped else ()
                settings_text = (binding[1] if len(binding) > 1 else "") if scoped else line[len("Defaults"):]
                out.append(SudoRule("defaults", path, number, text, who, (), "", (), (), False, False,
                                    _list(settings_text)))
                continue
            row = self._user_spec(path, number, line, text)
            if row is not None:
                out.append(row)
        return out

    def _user_spec(self, path: str, number: int, line: str, text: str) -> SudoRule | None:
        eq = line.find("=")
        if eq < 0:
            log.debug("%s:%d: not a sudoers user specification: %s", path, number, text)
            return None
        head = re.sub(r"\s*,\s*", ",", line[:eq].strip())
        head_parts = head.split()
        if len(head_parts) < 2:
            return None
        who = _list(head_parts[0])
        hosts: list[str] = list(_list(" ".join(head_parts[1:])))
        commands: list[_Cmnd] = []
        for index, group in enumerate(_split_host_groups(line[eq + 1:].strip())):
            if index > 0:
                h, _, group = group.partition("=")
                hosts.extend(_list(h))
            commands.extend(_parse_cmnds(group))
        runas = tuple(dict.fromkeys(c.runas if c.runas is not None else "root" for c in commands))
        tags = tuple(dict.fromkeys(t for c in commands for t in c.tags))
        return SudoRule(
            kind="rule",
            source=path,
            line=number,
            text=text,
            who=who,
            hosts=tuple(dict.fromkeys(hosts)),
            runas=", ".join(runas),
            commands=tuple(c.command for c in commands),
            tags=tags,
            nopasswd=any(_nopasswd(c.tags) for c in commands),
            all_commands=any(self._is_all(c.command) for c in commands),
            settings=(),
        )


class SudoersProbe(Probe[SudoRule]):
    id = "sudoers"
    title = "sudo rules"
    title_zh = "sudo 授权规则"
    requires = Requirements(root=True)

    def gather(self, ctx: GatherContext) -> Raw:
        files: dict[str, str] = {}
        dirs: dict[str, list[str]] = {}
        self._read(ctx, SUDOERS, files, dirs, 0)
        return {"files": files, "dirs": dirs}

    def _read(self, ctx: GatherContext, path: str, files: dict[str, str], dirs: dict[str, list[str]],
              depth: int) -> None:
        if path in files or depth > MAX_DEPTH:
            return
        try:
            text = ctx.transport.read_text(path)
        except FileNotFoundError:
            return  # no sudo installed, or a dangling include (sudo warns and goes on)
        except PermissionError:
            ctx.limited(msg.NOT_READABLE(path=path))
            return
        files[path] = text
        for kind, target in include_targets(path, text):
            if kind == "include":
                self._read(ctx, target, files, dirs, depth + 1)
                continue
            try:
                names = ctx.transport.list_dir(target)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except PermissionError:
                ctx.limited(msg.NOT_READABLE(path=target))
                continue
            dirs[target] = names
            for name in names:
                if includedir_entry_ok(name):
                    self._read(ctx, posixpath.join(target, name), files, dirs, depth + 1)

    @staticmethod
    def parse(raw: Raw) -> Sequence[SudoRule]:
        parser = _Parser(raw)
        parser.walk(SUDOERS)
        rows: dict[tuple[str, str], SudoRule] = {}
        for row in parser.rows():
            rows.setdefault((row.source, row.text), row)
        return list(rows.values())
