"""SSH public keys that let someone log in: every account's authorized_keys files.

The files are those sshd's AuthorizedKeysFile names (read from sshd_config, default ~/.ssh/authorized_keys and
~/.ssh/authorized_keys2), for every account in /etc/passwd. Key sizes come from the key blob (SSH wire format,
RFC 4253 §6.6 and RFC 5656); fingerprints are SHA256 as ``ssh-keygen -l`` prints them.
"""

from __future__ import annotations

import base64
import binascii
import logging
import posixpath
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from probes.base import GatherContext, Probe, Raw, Requirements
from probes.host.sshd import authorized_keys_patterns, read_config_files
from probes.key_fingerprint import sha256_fingerprint
from probes.observation import Row
from probes.transport import text_of

log = logging.getLogger(__name__)

_CURVE_BITS = {"nistp256": 256, "nistp384": 384, "nistp521": 521}
_KEYTYPE_RE = re.compile(r"^(ssh-(rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp\d+|sk-(ecdsa-sha2-nistp256|ssh-ed25519)"
                         r"@openssh\.com)(-cert-v01@openssh\.com)?$")


@dataclass(frozen=True, slots=True)
class AuthorizedKey(Row):
    user: str
    file: str
    line: int
    key_type: str
    bits: int | None  # None when the blob cannot be decoded
    fingerprint: str  # "SHA256:..." or "invalid:<line>" for an undecodable key
    comment: str
    options: tuple[str, ...]  # as written: 'from="10.0.0.0/8"', 'command="..."', 'no-pty'
    has_from_restriction: bool
    forced_command: str | None
    valid: bool

    KEY: ClassVar[tuple[str, ...]] = ("user", "file", "fingerprint")
    VOLATILE: ClassVar[frozenset[str]] = frozenset({"line"})


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise ValueError("truncated key blob")
    (length,) = struct.unpack(">I", blob[offset:offset + 4])
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated key blob")
    return blob[offset + 4:end], end


def _mpint_bits(data: bytes) -> int:
    return int.from_bytes(data, "big", signed=False).bit_length()


def key_bits(blob: bytes) -> tuple[str, int]:
    """(key type inside the blob, size in bits) from an SSH public key blob."""
    name_b, off = _read_string(blob, 0)
    name = name_b.decode("ascii", errors="replace")
    base = name.removesuffix("-cert-v01@openssh.com")
    if base != name:
        _, off = _read_string(blob, off)  # certificates put a nonce before the key fields
    if base == "ssh-rsa":
        _, off = _read_string(blob, off)  # e
        n, _ = _read_string(blob, off)
        return name, _mpint_bits(n)
    if base == "ssh-dss":
        p, _ = _read_string(blob, off)
        return name, _mpint_bits(p)
    if base.startswith(("ecdsa-sha2-", "sk-ecdsa-sha2-")):
        curve, _ = _read_string(blob, off)
        bits = _CURVE_BITS.get(curve.decode("ascii", errors="replace"))
        if bits is None:
            raise ValueError(f"unknown curve {curve!r}")
        return name, bits
    if base in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        return name, 256
    if base == "ssh-ed448":
        return name, 456
    raise ValueError(f"unknown key type {name}")


fingerprint = sha256_fingerprint  # probes/key_fingerprint.py: the one fingerprint form


def split_options(text: str) -> list[str]:
    """Comma-separated options; commas inside double quotes belong to the value."""
    out, cur, quoted, i = [], "", False, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quoted and i + 1 < len(text):
            cur += text[i:i + 2]
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    out.append(cur)
    return [o for o in out if o]


def _split_leading_options(line: str) -> tuple[str, str]:
    """(options text, rest) where options end at the first blank outside double quotes."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"' and (i == 0 or line[i - 1] != "\\"):
            quoted = not quoted
        elif ch in " \t" and not quoted:
            return line[:i], line[i:].lstrip()
    return line, ""


def _option_value(options: list[str], name: str) -> str | None:
    for opt in options:
        key, sep, value = opt.partition("=")
        if sep and key.strip().lower() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value.replace('\\"', '"')
    return None


def parse_key_line(user: str, path: str, number: int, line: str) -> AuthorizedKey | None:
    s = line.strip()
    if not s or s.startswith("#"):
        return None
    first = s.split(None, 1)[0]
    options_text = ""
    if not _KEYTYPE_RE.match(first):
        options_text, s = _split_leading_options(s)
    parts = s.split(None, 2)
    key_type = parts[0] if parts else ""
    comment = parts[2].strip() if len(parts) > 2 else ""
    options = split_options(options_text)
    bits: int | None = None
    fp = f"invalid:{number}"
    valid = False
    if len(parts) >= 2:
        try:
            blob = base64.b64decode(parts[1], validate=True)
            inner_type, bits = key_bits(blob)
            fp = fingerprint(blob)
            valid = inner_type == key_type
        except (binascii.Error, ValueError) as exc:
            log.debug("%s:%d: undecodable key: %s", path, number, exc)
            bits = None
    return AuthorizedKey(
        user=user,
        file=path,
        line=number,
        key_type=key_type,
        bits=bits,
        fingerprint=fp,
        comment=comment,
        options=tuple(options),
        has_from_restriction=_option_value(options, "from") is not None,
        forced_command=_option_value(options, "command"),
        valid=valid,
    )


def expand_pattern(pattern: str, user: str, uid: int, home: str) -> str:
    """AuthorizedKeysFile tokens (%h %u %U %%); a relative path is relative to the home directory."""
    out = re.sub(r"%([%huU])", lambda m: {"%": "%", "h": home, "u": user, "U": str(uid)}[m.group(1)], pattern)
    return posixpath.normpath(out if out.startswith("/") else posixpath.join(home, out))


def accounts_from_passwd(text: str) -> list[dict[str, str | int]]:
    out: list[dict[str, str | int]] = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and parts[0] and not parts[0].startswith(("#", "+", "-")) and parts[2].isdigit():
            out.append({"name": parts[0], "uid": int(parts[2]), "home": parts[5]})
    return out


def key_files(raw: Raw) -> list[tuple[str, str]]:
    """(user, path) pairs in passwd order."""
    pairs: list[tuple[str, str]] = []
    for acct in raw.get("accounts", []):
        home = str(acct["home"]) or "/"
        for pattern in raw.get("patterns", []):
            pairs.append((str(acct["name"]), expand_pattern(pattern, str(acct["name"]), int(acct["uid"]), home)))
    return list(dict.fromkeys(pairs))


class AuthorizedKeysProbe(Probe[AuthorizedKey]):
    id = "authorized_keys"
    title = "SSH authorized keys"
    requires = Requirements(root=True, paths_any=("/etc/passwd",))

    def gather(self, ctx: GatherContext) -> Raw:
        t = ctx.transport
        raw: Raw = {
            "accounts": accounts_from_passwd(t.read_text("/etc/passwd")),
            "patterns": authorized_keys_patterns(read_config_files(ctx)),
            "files": {},
        }
        denied: list[str] = []
        read = t.read_many(path for _, path in key_files(raw))  # one round trip over SSH
        for path, value in read.items():
            try:
                raw["files"][path] = text_of(value)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            except PermissionError:
                denied.append(path)
        if denied:
            ctx.limited(f"{len(denied)} authorized_keys files not readable (e.g. {denied[0]})")
        return raw

    @staticmethod
    def parse(raw: Raw) -> Sequence[AuthorizedKey]:
        files: dict[str, str] = raw.get("files", {})
        rows: dict[tuple[str, str, str], AuthorizedKey] = {}
        for user, path in key_files(raw):
            if path not in files:
                continue
            for number, line in enumerate(files[path].splitlines(), 1):
                key = parse_key_line(user, path, number, line)
                if key is not None:
                    rows.setdefault((key.user, key.file, key.fingerprint), key)
        return list(rows.values())
