"""Files that run code at boot or login: /etc/rc.local, /etc/ld.so.preload, system shell profiles and the shell
start-up files in each account's home.

For each file: hash, size, mode, the number of command lines, and the lines that match known persistence
patterns (download piped into a shell, LD_PRELOAD, PROMPT_COMMAND, a DEBUG trap, sudo/ssh/su redefined), as
facts with the matched text. How many such lines are acceptable, and where, is for the profile to say.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from probes import messages as msg
from probes.base import GatherContext, Probe, Raw, Requirements
from probes.host._homes import read_homes
from probes.observation import Row
from probes.transport import text_of

log = logging.getLogger(__name__)

RC_LOCAL = "/etc/rc.local"
LD_SO_PRELOAD = "/etc/ld.so.preload"
SYSTEM_PROFILES = ("/etc/profile", "/etc/bash.bashrc", "/etc/bashrc", "/etc/zsh/zshrc", "/etc/zshrc")
PROFILE_D = "/etc/profile.d"
ENVIRONMENT = "/etc/environment"
USER_FILES = (".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".zprofile", ".zshenv")
MAX_BYTES = 1024 * 1024
MAX_ENTRIES = 50
MAX_SNIPPET = 200

_SHELL = r"(?:sudo\s+)?(?:/usr)?(?:/bin/)?(?:ba|da|z|k|fi)?sh\b"
_FETCH = r"(?:curl|wget|fetch)\b"
# (kind, pattern) over one comment-free line.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("download_exec", re.compile(
        rf"{_FETCH}[^|;&]*\|\s*{_SHELL}"  # curl ... | sh
        rf"|{_SHELL}\s+(?:-c\s+)?[\"']?\$\(\s*{_FETCH}"  # sh -c "$(curl ...)"
        rf"|{_SHELL}\s+<\(\s*{_FETCH}"  # bash <(curl ...)
        rf"|{_FETCH}.*\|\s*(?:python[0-9.]*|perl|ruby)\b")),  # curl ... | python
    ("ld_preload", re.compile(r"\bLD_PRELOAD\s*=|\bexport\s+LD_PRELOAD\b")),
    ("prompt_command", re.compile(r"\bPROMPT_COMMAND\s*\+?=|\bexport\s+PROMPT_COMMAND\b")),
    ("debug_trap", re.compile(r"\btrap\s+.+\s+DEBUG\b")),
    ("command_override", re.compile(r"^\s*alias\s+(?:sudo|su|ssh|scp|passwd)=|^\s*(?:function\s+)?"
                                    r"(?:sudo|su|ssh|scp|passwd)\s*\(\s*\)")),
)


@dataclass(frozen=True, slots=True)
class StartupFile(Row):
    path: str
    kind: str  # rc_local | ld_so_preload | profile | environment | user_shell
    account: str | None  # user_shell: the account whose home holds the file
    exists: bool
    executable: bool | None  # any execute bit (rc.local runs only when executable)
    size: int | None
    mode: str | None  # octal permission bits, e.g. "0644"
    owner_uid: int | None
    sha256: str | None
    command_count: int  # lines that are not blank or comments (rc.local: not counting a final "exit")
    entries: tuple[str, ...]  # ld.so.preload: the libraries; rc.local: its command lines (first 50)
    suspicious_lines: int  # lines matching any pattern in PATTERNS
    suspicious_kinds: tuple[str, ...]  # which patterns matched (download_exec, ld_preload, ...)
    suspicious_snippets: tuple[str, ...]  # "<line>: <text>" of the matched lines (first 50)

    KEY: ClassVar[tuple[str, ...]] = ("path",)


def command_lines(text: str) -> list[tuple[int, str]]:
    out = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if line and not line.startswith("#"):
            out.append((number, line))
    return out


def match_kinds(line: str) -> list[str]:
    return [kind for kind, pattern in PATTERNS if pattern.search(line)]


def preload_entries(text: str) -> list[str]:
    """ld.so(8): names separated by whitespace or colons; '#' starts a comment."""
    out: list[str] = []
    for line in text.splitlines():
        out += [e for e in re.split(r"[\s:]+", line.split("#", 1)[0]) if e]
    return out


def parse_file(path: str, kind: str, account: str | None, meta: dict[str, int] | None,
               text: str | None) -> StartupFile:
    if meta is None:
        return StartupFile(path, kind, account, False, None, None, None, None, None, 0, (), 0, (), ())
    mode = meta["mode"]
    if text is None:  # present but not readable by us: what stat says, nothing about the content
        return StartupFile(path, kind, account, True, bool(mode & 0o111), meta["size"], f"{mode & 0o7777:04o}",
                           meta["uid"], None, 0, (), 0, (), ())
    lines = command_lines(text)
    if kind == "rc_local" and lines and re.fullmatch(r"exit(\s+0)?", lines[-1][1]):
        lines = lines[:-1]  # the stock rc.local template ends in "exit 0" and does nothing else
    entries: list[str] = []
    if kind == "ld_so_preload":
        entries = preload_entries(text)
        count = len(entries)
    else:
        count = len(lines)
        if kind == "rc_local":
            entries = [line for _, line in lines]
    kinds: set[str] = set()
    snippets: list[str] = []
    for number, line in lines:
        found = match_kinds(line)
        if found:
            kinds.update(found)
            snippets.append(f"{number}: {line[:MAX_SNIPPET]}")
    return StartupFile(
        path=path,
        kind=kind,
        account=account,
        exists=True,
        executable=bool(mode & 0o111),
        size=meta["size"],
        mode=f"{mode & 0o7777:04o}",
        owner_uid=meta["uid"],
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        command_count=count,
        entries=tuple(entries[:MAX_ENTRIES]),
        suspicious_lines=len(snippets),
        suspicious_kinds=tuple(sorted(kinds)),
        suspicious_snippets=tuple(snippets[:MAX_ENTRIES]),
    )


class StartupFilesProbe(Probe[StartupFile]):
    id = "startup_files"
    title = "Boot and login start-up files (rc.local, ld.so.preload, shell profiles)"
    title_zh = "开机与登录启动文件（rc.local、ld.so.preload、shell 配置文件）"
    requires = Requirements(root=True)

    def gather(self, ctx: GatherContext) -> Raw:
        # Candidates first, then one stat and one read of all of them (one round trip each over SSH).
        candidates: list[tuple[str, str, str | None, bool]] = []  # path, kind, account, reported when absent

        def add(path: str, kind: str, account: str | None = None, always: bool = False) -> None:
            candidates.append((path, kind, account, always))

        # rc.local and ld.so.preload are reported even when absent: their appearing later is the news.
        add(RC_LOCAL, "rc_local", always=True)
        add(LD_SO_PRELOAD, "ld_so_preload", always=True)
        for path in SYSTEM_PROFILES:
            add(path, "profile")
        try:
            for name in ctx.transport.list_dir(PROFILE_D):
                add(f"{PROFILE_D}/{name}", "profile")
        except (FileNotFoundError, NotADirectoryError):
            pass
        except PermissionError:
            ctx.limited(msg.NOT_READABLE(path=PROFILE_D))
        add(ENVIRONMENT, "environment")
        seen: set[str] = set()
        for acct in read_homes(ctx):
            for name in USER_FILES:
                path = f"{acct.home}/{name}"
                if path not in seen:  # accounts sharing a home: the file is reported once, for the first
                    seen.add(path)
                    add(path, "user_shell", acct.name)
        entries = _read_files(ctx, [c[0] for c in candidates])
        files: list[dict[str, object]] = []
        for path, kind, account, always in candidates:
            entry = entries[path]
            if entry is not None or always:
                files.append({"path": path, "kind": kind, "account": account, **(entry or {})})
        return {"files": files}

    @staticmethod
    def parse(raw: Raw) -> Sequence[StartupFile]:
        rows: dict[str, StartupFile] = {}
        for f in raw.get("files", []):
            meta = f.get("stat")
            rows.setdefault(f["path"], parse_file(f["path"], f["kind"], f.get("account"), meta, f.get("text")))
        return list(rows.values())


def _read_files(ctx: GatherContext, paths: list[str]) -> dict[str, dict[str, object] | None]:
    """path -> {"stat": {...}, "text": ...} for a regular file; None when absent or not a regular file."""
    t = ctx.transport
    out: dict[str, dict[str, object] | None] = {}
    stats = t.stat_many(paths)
    regular: dict[str, dict[str, int]] = {}
    for path in dict.fromkeys(paths):
        st = stats[path]
        if isinstance(st, (FileNotFoundError, NotADirectoryError)):
            out[path] = None
        elif isinstance(st, PermissionError):
            ctx.limited(msg.NOT_READABLE(path=path))
            out[path] = None
        elif isinstance(st, OSError):
            raise st
        elif not st.is_file:
            out[path] = None
        else:
            regular[path] = {"mode": st.mode, "size": st.size, "uid": st.uid}
    texts = t.read_many(regular, MAX_BYTES)
    for path, meta in regular.items():
        try:
            out[path] = {"stat": meta, "text": text_of(texts[path])}
        except FileNotFoundError:
            out[path] = None  # removed between stat and read
        except PermissionError:
            ctx.limited(msg.NOT_READABLE_BECAUSE(path=path, consequence=msg.CONTENT_NOT_INSPECTED()))
            out[path] = {"stat": meta}
    return out
