"""Local accounts: /etc/passwd, the password state from /etc/shadow, membership of administrative groups.

Password hashes never leave gather(): the passwd and shadow texts are redacted there (``redact_password``)
down to what identifies the scheme, so neither the raw data, golden files nor observations hold a hash.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from probes import messages as msg
from probes.base import GatherContext, Probe, Raw, Requirements
from probes.observation import Row

log = logging.getLogger(__name__)

ADMIN_GROUPS = ("root", "sudo", "wheel", "adm", "admin")
NOLOGIN_SHELLS = frozenset({"nologin", "false", "true", "sync", "shutdown", "halt"})
DEFAULT_UID_MIN = 1000
DEFAULT_UID_MAX = 60000

# crypt(5) prefixes -> scheme names.
_SCHEMES = {
    "1": "md5", "2": "blowfish", "2a": "blowfish", "2b": "blowfish", "2x": "blowfish", "2y": "blowfish",
    "5": "sha256", "6": "sha512", "y": "yescrypt", "gy": "gost-yescrypt", "7": "scrypt", "md5": "sunmd5",
    "3": "nt", "sha1": "sha1crypt",
}
_DES_RE = re.compile(r"^[./0-9A-Za-z]{13}$")
_BSDI_RE = re.compile(r"^_[./0-9A-Za-z]{19}$")
REDACTED = "<redacted>"


def redact_password(field: str) -> str:
    """Keep what tells the scheme and lock state, drop the hash: ``!$6$salt$hash`` -> ``!$6$<redacted>``."""
    lock = len(field) - len(field.lstrip("!"))
    prefix, rest = field[:lock], field[lock:]
    if rest.startswith("$"):
        parts = rest.split("$")
        return f"{prefix}${parts[1]}${REDACTED}" if len(parts) > 2 else prefix + rest
    if _DES_RE.match(rest):
        return f"{prefix}<des>"
    if _BSDI_RE.match(rest):
        return f"{prefix}<bsdi>"
    if len(rest) < 13:
        return field  # "*", "x", "*LK*", "NP": markers, too short to be any hash
    return f"{prefix}<unknown>"


def redact_passwd_file(text: str, field_index: int) -> str:
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) > field_index and not line.lstrip().startswith("#"):
            parts[field_index] = redact_password(parts[field_index])
        out.append(":".join(parts))
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def hash_scheme(field: str) -> str:
    """Classify a (redacted) password field: empty, locked, or the crypt scheme of a usable hash."""
    if field == "":
        return "empty"
    if field.startswith(("!", "*")):
        return "locked"
    if field.startswith("$"):
        parts = field.split("$")
        return _SCHEMES.get(parts[1], "unknown") if len(parts) > 2 else "unknown"
    if field == "<des>" or _DES_RE.match(field):
        return "des"
    if field == "<bsdi>" or _BSDI_RE.match(field):
        return "bsdi"
    if len(field) < 13:
        return "locked"  # "x" without a shadow entry, "NP", "LK": no password matches these
    return "unknown"


@dataclass(frozen=True, slots=True)
class Account(Row):
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    login_shell: bool  # the shell lets one log in (not nologin/false)
    system: bool  # uid outside UID_MIN..UID_MAX (root excluded)
    groups: tuple[str, ...]  # primary group first, then supplementary from /etc/group
    admin_groups: tuple[str, ...]  # of those, root/sudo/wheel/adm/admin
    password_source: str  # shadow | passwd | unknown (shadow not readable)
    hash_scheme: str | None  # empty | locked | des | md5 | blowfish | sha256 | sha512 | yescrypt | ... | None
    password_empty: bool | None
    password_max_days: int | None
    last_change_days: int | None  # days since 1970-01-01 of the last change (0: must change at next login)

    KEY: ClassVar[tuple[str, ...]] = ("name",)


def parse_login_defs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#"):
            out[parts[0]] = parts[1]
    return out


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def parse_shadow(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 2 and parts[0] and not parts[0].startswith("#"):
            out.setdefault(parts[0], parts)
    return out


def parse_groups(text: str) -> tuple[dict[int, str], dict[str, list[str]]]:
    """(gid -> group name, user -> supplementary group names)."""
    names: dict[int, str] = {}
    members: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 4 or not parts[0]:
            continue
        gid = _int(parts[2])
        if gid is not None:
            names.setdefault(gid, parts[0])
        for user in filter(None, (u.strip() for u in parts[3].split(","))):
            members.setdefault(user, []).append(parts[0])
    return names, members


class AccountsProbe(Probe[Account]):
    id = "accounts"
    title = "Local accounts and password state"
    title_zh = "本地账户与口令状态"
    requires = Requirements(root=True, paths_any=("/etc/passwd",))

    def gather(self, ctx: GatherContext) -> Raw:
        t = ctx.transport
        raw: Raw = {"passwd": redact_passwd_file(t.read_text("/etc/passwd"), 1)}
        for key, path in (("shadow", "/etc/shadow"), ("group", "/etc/group"), ("login_defs", "/etc/login.defs")):
            try:
                text = t.read_text(path)
            except FileNotFoundError:
                continue
            except PermissionError:
                ctx.limited(msg.NOT_READABLE_BECAUSE(path=path, consequence=msg.PASSWORD_STATE_UNKNOWN()))
                continue
            if key == "shadow":
                text = redact_passwd_file(text, 1)
            elif key == "login_defs":  # only the settings; the stock file is mostly comments
                text = "\n".join(ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
            raw[key] = text
        return raw

    @staticmethod
    def parse(raw: Raw) -> Sequence[Account]:
        defs = parse_login_defs(raw.get("login_defs", ""))
        uid_min = _int(defs.get("UID_MIN", "")) or DEFAULT_UID_MIN
        uid_max = _int(defs.get("UID_MAX", "")) or DEFAULT_UID_MAX
        shadow_text = raw.get("shadow")
        shadow = parse_shadow(shadow_text) if shadow_text is not None else None
        gid_names, members = parse_groups(raw.get("group", ""))
        rows: dict[str, Account] = {}
        for line in raw.get("passwd", "").splitlines():
            parts = line.split(":")
            if len(parts) < 7 or not parts[0] or parts[0].startswith(("#", "+", "-")):
                continue  # NIS compat lines (+/-) name no local account
            name, pw_field = parts[0], parts[1]
            uid, gid = _int(parts[2]), _int(parts[3])
            if uid is None or gid is None:
                continue
            shell = parts[6]
            primary = gid_names.get(gid, str(gid))
            groups = tuple(dict.fromkeys([primary, *members.get(name, [])]))
            scheme: str | None
            max_days = last_change = None
            if pw_field != "x":
                source, scheme = "passwd", hash_scheme(pw_field)
            elif shadow is None:
                source, scheme = "unknown", None
            elif name in shadow:
                sp = shadow[name]
                source, scheme = "shadow", hash_scheme(sp[1])
                last_change = _int(sp[2]) if len(sp) > 2 else None
                max_days = _int(sp[4]) if len(sp) > 4 else None
            else:
                source, scheme = "shadow", "locked"  # "x" and no shadow line: no password can match
            rows.setdefault(name, Account(
                name=name,
                uid=uid,
                gid=gid,
                home=parts[5],
                shell=shell,
                # An empty shell field means /bin/sh.
                login_shell=shell.rsplit("/", 1)[-1] not in NOLOGIN_SHELLS,
                system=uid != 0 and (uid < uid_min or uid > uid_max),
                groups=groups,
                admin_groups=tuple(g for g in groups if g in ADMIN_GROUPS),
                password_source=source,
                hash_scheme=scheme,
                password_empty=None if scheme is None else scheme == "empty",
                password_max_days=max_days,
                last_change_days=last_change,
            ))
        return [rows[k] for k in sorted(rows, key=lambda n: (rows[n].uid, n))]
