"""Secrets out of command lines before they become observations (and so before any table, JSON, HTML report,
record entry or baseline holds them).

A process's argv often carries credentials: ``--password x``, ``--token=x``, ``DB_PASS=x``, a URL with
``user:pass@``, a curl ``-H "Authorization: Bearer x"``, a whole JSON blob of environment variables. What is
replaced is the value, never the option name, so an operator still sees what the program was given and rules
can still match the program; the result is the same for the same input, so a redacted command line is still a
stable identity. Pure functions; the probes call ``redact_args`` at the observation boundary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

MASK = "***"

# Option or variable names that hold secrets (matched within the name, case-insensitive).
_SECRET_NAME = re.compile(
    r"(pass(word|wd|phrase)?|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|auth|credential|"
    r"cookie|session|bearer|signature)", re.IGNORECASE)
# Options whose next argument is a whole environment (docker -e takes one VAR=value, handled by name=value)
_ENV_OPTIONS = frozenset({"--env", "--environment", "--env-json", "--envs"})
_OPTION = re.compile(r"^(-{1,2}[A-Za-z0-9][A-Za-z0-9_.-]*)(=(.*))?$", re.DOTALL)
_ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)(?P<sep>=)(?P<value>[^&;,\s]+)"
                         r"|(?P<cname>[A-Za-z_][A-Za-z0-9_.-]*)(?P<csep>:)(?P<cvalue>[^&;,\s/@?]+)")
_HEADER = re.compile(r"^(?P<name>(proxy-)?authorization|cookie|set-cookie|x-api-key|x-auth-token)\s*:\s*.+$",
                     re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/:@\s]*):(?P<pw>[^/@\s]+)@")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b")
_BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)


def redact_args(args: Sequence[str]) -> list[str]:
    """The arguments with every secret-looking value replaced by ``***``."""
    out: list[str] = []
    mask_next = False
    for arg in args:
        option = _OPTION.match(arg)
        if mask_next:
            mask_next = False
            if option is None:  # the value of a secret option given as its own argument
                out.append(MASK)
                continue
        if option is not None:
            name, value = option.group(1), option.group(3)
            if _SECRET_NAME.search(name.lstrip("-")) or name in _ENV_OPTIONS:
                if value is None:
                    out.append(arg)
                    mask_next = True
                else:
                    out.append(f"{name}={MASK}")
                continue
        out.append(redact_arg(arg))
    return out


def redact_arg(arg: str) -> str:
    """One argument: a JSON object keeps only its key names; headers, URLs, NAME=value pairs and bearer tokens
    lose their secret parts."""
    stripped = arg.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            blob = json.loads(stripped)
        except ValueError:
            blob = None
        if isinstance(blob, dict):
            names = ", ".join(str(k) for k in list(blob)[:8]) + (", ..." if len(blob) > 8 else "")
            return "{" + f"{len(blob)} keys redacted: {names}" + "}"
    header = _HEADER.match(stripped)
    if header is not None:
        return f"{header.group('name')}: {MASK}"
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{MASK}@", arg)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _JWT.sub(MASK, text)
    return _ASSIGNMENT.sub(_assignment, text)


def _assignment(m: re.Match[str]) -> str:
    name, sep, value = (m.group("name"), "=", m.group("value")) if m.group("sep") else (
        m.group("cname"), ":", m.group("cvalue"))
    if _SECRET_NAME.search(name) and value != MASK:
        return f"{name}{sep}{MASK}"
    return m.group(0)
