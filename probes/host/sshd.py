"""Effective OpenSSH server settings.

As root with sshd installed, ``sshd -T`` gives the settings exactly as the daemon would use them. Otherwise the
configuration files are parsed as sshd does: /etc/ssh/sshd_config with its Include globs, keywords
case-insensitive, the first value wins (list keywords such as Port or AcceptEnv accumulate), and keywords the
files leave unset get OpenSSH 9.2's compiled-in defaults (source "default"). Settings inside Match blocks are
reported with their Match criteria but not applied (that needs a connection's user, host and address).
"""

from __future__ import annotations

import fnmatch
import logging
import posixpath
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from probes import messages as msg
from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row
from probes.transport import CommandUnavailable

log = logging.getLogger(__name__)

SSHD_CONFIG = "/etc/ssh/sshd_config"
MAX_INCLUDE_DEPTH = 16  # sshd's own limit (SERVCONF_MAX_DEPTH)
SOURCE_T = "sshd -T"
SOURCE_DEFAULT = "default"

# Keywords sshd accumulates over several lines instead of keeping the first.
MULTI = frozenset({
    "port", "listenaddress", "hostkey", "hostcertificate", "acceptenv", "subsystem", "allowusers", "denyusers",
    "allowgroups", "denygroups", "channeltimeout",
})
# Values sshd itself prints in lower case (sshd -T); a file may spell them in any case.
_LOWER_VALUES = frozenset({
    "yes", "no", "without-password", "prohibit-password", "forced-commands-only", "all", "none", "local",
    "remote", "any", "inet", "inet6", "delayed", "point-to-point", "ethernet",
})
# OpenSSH 9.2 compiled-in defaults of the settings profiles look at, as `sshd -T` prints them.
DEFAULTS: dict[str, str] = {
    "port": "22",
    "permitrootlogin": "without-password",
    "passwordauthentication": "yes",
    "permitemptypasswords": "no",
    "pubkeyauthentication": "yes",
    "kbdinteractiveauthentication": "yes",
    "hostbasedauthentication": "no",
    "ignorerhosts": "yes",
    "usepam": "no",
    "x11forwarding": "no",
    "allowtcpforwarding": "yes",
    "allowagentforwarding": "yes",
    "gatewayports": "no",
    "permittunnel": "no",
    "permituserenvironment": "no",
    "strictmodes": "yes",
    "maxauthtries": "6",
    "maxsessions": "10",
    "maxstartups": "10:30:100",
    "logingracetime": "120",
    "loglevel": "INFO",
    "clientaliveinterval": "0",
    "clientalivecountmax": "3",
    "usedns": "no",
    "banner": "none",
    "authorizedkeysfile": ".ssh/authorized_keys .ssh/authorized_keys2",
    "ciphers": "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,"
               "aes256-gcm@openssh.com",
    "macs": "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
            "hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,"
            "hmac-sha2-256,hmac-sha2-512,hmac-sha1",
    "kexalgorithms": "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,"
                     "curve25519-sha256@libssh.org,"
                     "ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,"
                     "diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
                     "diffie-hellman-group18-sha512,diffie-hellman-group14-sha256",
}


@dataclass(frozen=True, slots=True)
class SshdSetting(Row):
    setting: str  # the keyword, plus " [Match ...]" for a setting inside a Match block
    keyword: str  # lower case, as sshd -T prints it
    value: str  # several lines of a list keyword (Port, AcceptEnv) are joined with spaces
    match: str  # "" for global settings, else the Match criteria as written
    source: str  # "sshd -T", "default", or the file that set it
    line: int  # 0 for sshd -T and defaults

    KEY: ClassVar[tuple[str, ...]] = ("setting",)
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"line"})


def split_line(line: str) -> tuple[str, list[str]] | None:
    """'Keyword value...' or 'Keyword=value' -> (lower-case keyword, arguments); None for blanks/comments."""
    s = line.strip()
    if not s or s.startswith("#"):
        return None
    head, sep, rest = s.partition("=") if ("=" in s.split(None, 1)[0]) else (s, "", "")
    if sep:
        keyword, args_text = head.strip(), rest
    else:
        parts = s.split(None, 1)
        keyword, args_text = parts[0], parts[1] if len(parts) > 1 else ""
        if args_text.startswith("="):
            args_text = args_text[1:]
    try:
        args = shlex.split(args_text, comments=True)
    except ValueError:
        args = args_text.split()
    return keyword.lower(), args


def include_patterns(args: list[str]) -> list[str]:
    """Include arguments made absolute: relative ones are relative to /etc/ssh, as sshd has it."""
    return [a if a.startswith("/") else posixpath.join("/etc/ssh", a) for a in args]


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def expand_glob(ctx: GatherContext, pattern: str, unreadable: list[str] | None = None) -> list[str]:
    """glob(3) through the transport: sorted, dotfiles only matched by a pattern starting with '.'."""
    paths = ["/"]
    for part in [p for p in pattern.split("/") if p]:
        nxt: list[str] = []
        for base in paths:
            if not _has_magic(part):
                candidate = posixpath.join(base, part)
                if ctx.transport.exists(candidate):
                    nxt.append(candidate)
                continue
            try:
                names = ctx.transport.list_dir(base)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except PermissionError:
                ctx.limited(msg.NOT_READABLE_BECAUSE(path=base, consequence=msg.INCLUDE_INCOMPLETE(pattern=pattern)))
                if unreadable is not None:
                    unreadable.append(base)
                continue
            nxt.extend(posixpath.join(base, n) for n in names
                       if fnmatch.fnmatchcase(n, part) and (part.startswith(".") or not n.startswith(".")))
        paths = nxt
    return sorted(p for p in paths if p != "/")


def read_config_files(ctx: GatherContext) -> Raw:
    """sshd_config and everything it includes: {"files": {path: text}, "globs": {pattern: [paths]}}."""
    files: dict[str, str] = {}
    globs: dict[str, list[str]] = {}
    unreadable: list[str] = []

    def read(path: str, depth: int) -> None:
        if path in files or depth > MAX_INCLUDE_DEPTH:
            return
        try:
            text = ctx.transport.read_text(path)
        except FileNotFoundError:
            return
        except (PermissionError, IsADirectoryError):
            ctx.limited(msg.NOT_READABLE(path=path))
            unreadable.append(path)
            return
        files[path] = text
        for line in text.splitlines():
            parsed = split_line(line)
            if parsed and parsed[0] == "include":
                for pattern in include_patterns(parsed[1]):
                    if pattern not in globs:
                        globs[pattern] = (expand_glob(ctx, pattern, unreadable) if _has_magic(pattern)
                                          else [pattern])
                    for target in globs[pattern]:
                        read(target, depth + 1)

    read(SSHD_CONFIG, 0)
    return {"files": files, "globs": globs, "unreadable": unreadable}


@dataclass(slots=True)
class _Acc:
    values: list[str]
    source: str
    line: int


def parse_files(files: dict[str, str], globs: dict[str, list[str]]) -> dict[tuple[str, str], _Acc]:
    """(match criteria, keyword) -> accumulated value, following Includes in order."""
    settings: dict[tuple[str, str], _Acc] = {}
    seen_subsystems: set[tuple[str, str]] = set()

    def walk(path: str, match: str, depth: int) -> None:
        if depth > MAX_INCLUDE_DEPTH or path not in files:
            return
        for number, line in enumerate(files[path].splitlines(), 1):
            parsed = split_line(line)
            if parsed is None:
                continue
            keyword, args = parsed
            if keyword == "include":
                for pattern in include_patterns(args):
                    for target in globs.get(pattern, []):
                        walk(target, match, depth + 1)  # a Match inside the file ends with the file
                continue
            if keyword == "match":
                criteria = " ".join(args)
                match = "" if criteria.lower() == "all" else criteria
                continue
            value = " ".join(args)
            if value.lower() in _LOWER_VALUES:
                value = value.lower()
            key = (match, keyword)
            if keyword in MULTI:
                if keyword == "subsystem":  # the first definition of each subsystem name wins
                    name = (match, args[0] if args else "")
                    if name in seen_subsystems:
                        continue
                    seen_subsystems.add(name)
                if key in settings:
                    settings[key].values.append(value)
                    continue
            if key not in settings:
                settings[key] = _Acc([value], path, number)

    walk(SSHD_CONFIG, "", 0)
    return settings


def parse_sshd_t(output: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in output.splitlines():
        parts = line.strip().split(None, 1)
        if parts:
            out.setdefault(parts[0].lower(), []).append(parts[1] if len(parts) > 1 else "")
    return out


def _row(keyword: str, values: list[str], match: str, source: str, line: int) -> SshdSetting:
    setting = f"{keyword} [Match {match}]" if match else keyword
    return SshdSetting(setting, keyword, " ".join(values), match, source, line)


class SshdProbe(Probe[SshdSetting]):
    id = "sshd"
    title = "OpenSSH server settings"
    title_zh = "OpenSSH 服务端设置"
    requires = Requirements(root=True, binaries_any=("sshd",), paths_any=(SSHD_CONFIG, "/usr/sbin/sshd"))

    def gather(self, ctx: GatherContext) -> Raw:
        raw: Raw = read_config_files(ctx)
        t = ctx.transport
        if not t.is_root:
            ctx.limited(msg.SSHD_T_NOT_ROOT())
            raw["source"] = "files"
            return raw
        try:
            result = t.run(["sshd", "-T"])
        except CommandUnavailable:
            raw["source"] = "files"
            return raw
        if result.returncode != 0:
            first = (result.stderr.strip().splitlines() or ["no output"])[0]
            ctx.limited(msg.SSHD_T_FAILED(error=first))
            raw["source"] = "files"
            return raw
        raw["source"] = SOURCE_T
        raw["sshd_t"] = result.stdout
        return raw

    @staticmethod
    def parse(raw: Raw) -> Sequence[SshdSetting]:
        from_files = parse_files(raw.get("files", {}), raw.get("globs", {}))
        rows: list[SshdSetting] = []
        if raw.get("source") == SOURCE_T:
            for keyword, values in parse_sshd_t(raw.get("sshd_t", "")).items():
                rows.append(_row(keyword, values, "", SOURCE_T, 0))
        else:
            for (match, keyword), acc in from_files.items():
                if not match:
                    rows.append(_row(keyword, acc.values, "", acc.source, acc.line))
            present = {r.keyword for r in rows}
            # A keyword no readable file sets has its compiled-in default only if no file went unread: an
            # unreadable sshd_config or include may set it, so its value is unknown and no rule may judge it.
            if not raw.get("unreadable"):
                rows.extend(_row(k, [v], "", SOURCE_DEFAULT, 0) for k, v in DEFAULTS.items() if k not in present)
        # Match blocks come from the files in both cases: sshd -T without -C applies none of them.
        rows.extend(_row(keyword, acc.values, match, acc.source, acc.line)
                    for (match, keyword), acc in from_files.items() if match)
        return sorted(rows, key=lambda r: (r.match, r.keyword))


def authorized_keys_patterns(raw: Raw) -> list[str]:
    """The global AuthorizedKeysFile patterns from a gathered sshd raw (files form)."""
    acc = parse_files(raw.get("files", {}), raw.get("globs", {})).get(("", "authorizedkeysfile"))
    value = " ".join(acc.values) if acc else DEFAULTS["authorizedkeysfile"]
    return [] if value.strip().lower() == "none" else value.split()
