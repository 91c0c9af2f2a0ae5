"""Batched file operations over one SSH exec: POSIX sh scripts that read many files, links or directories on the
target, and the pure parser of what they print.

Why: each SFTP request is a round trip that costs CPU in paramiko (pure-Python packets) and in sftp-server; the
probes that look at every /proc/PID (hundreds of links and small files) spent seconds per host on them. One
script per batch does the same work in one round trip, with builtins where possible (globbing lists
directories, ``[ ]`` answers most "missing" cases) and one ``head`` per file read, one GNU ``find`` for all links.

Record format, one per path in the order given: ``<T>:`` payload ``<T>=`` status ``\\n``. ``<T>`` is a fresh
random token per call, so file content cannot forge a record boundary (it would have to guess 128 random bits).
The status is ``0`` or an errno name derived from the C-locale message of the failing tool (``head``, ``ls``),
so callers see the same OSError subclass a local call raises.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shlex
import stat as stat_mod
from collections.abc import Sequence

from probes.find_stamp import stamp_ns
from probes.transport import FileStat

# Errno names a script may report; anything else reads as EIO.
_ERRNOS = {name: getattr(errno, name) for name in
           ("ENOENT", "EACCES", "EPERM", "EISDIR", "ENOTDIR", "ELOOP", "ESRCH", "EINVAL", "EIO", "ENAMETOOLONG")}

# errno name from a C-locale error message (glibc and musl wording), into $c; no fork.
_CLASSIFY = """\
k() {
  case $1 in
    *'No such file or directory') c=ENOENT;;
    *'Permission denied') c=EACCES;;
    *'Operation not permitted') c=EPERM;;
    *'Is a directory') c=EISDIR;;
    *'Not a directory') c=ENOTDIR;;
    *'Too many levels of symbolic links'|*'Symbolic link loop') c=ELOOP;;
    *'No such process') c=ESRCH;;
    *'Invalid argument') c=EINVAL;;
    *'File name too long'|*'Filename too long') c=ENAMETOOLONG;;
    *) c=EIO;;
  esac
}
"""

# read_many: a directory, or a missing file in an existing searchable directory, is answered without a fork;
# everything else runs head once (its stdout to the channel through fd 3, its stderr captured for the errno).
_READ = """\
for p do
  printf '%s:' "$T"
  d=${p%/*}
  if [ -d "$p" ]; then
    if [ -r "$p" ]; then c=EISDIR; else c=EACCES; fi
  elif [ ! -e "$p" ] && [ ! -L "$p" ] && [ -d "${d:-/}" ] && [ -x "${d:-/}" ]; then
    c=ENOENT
  elif m=$(head -c "$N" -- "$p" 2>&1 >&3); then
    c=0
  else
    k "$m"
  fi
  printf '%s=%s\\n' "$T" "$c"
done 3>&1
"""

# list_many: shell globbing reads the directory (no fork); names end in NUL.
_LIST = """\
for p do
  printf '%s:' "$T"
  if [ -d "$p" ] && [ -r "$p" ]; then
    for f in "$p"/* "$p"/.[!.]* "$p"/..?*; do
      if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\\0' "${f##*/}"; fi
    done
    c=0
  elif [ -d "$p" ]; then
    c=EACCES
  elif m=$(ls -dL -- "$p" 2>&1 >/dev/null); then
    c=ENOTDIR
  else
    k "$m"
  fi
  printf '%s=%s\\n' "$T" "$c"
done
"""

# readlink_many, fast path: one GNU find prints every operand's type and link target (NUL-separated triples).
# $G remembers, for the life of the batch shell, whether find has -printf (GNU find).
# Operands find cannot lstat are missing from its output; those, and links it could not read, go to the slow
# path for an exact errno. Without GNU find (busybox) it prints nothing and everything takes the slow path.
_READLINK_FAST = """\
if [ "${G:=$(find / -maxdepth 0 -printf 1 2>/dev/null)}" = 1 ]; then
  printf '%s:' "$T"
  e=$(find "$@" -maxdepth 0 -printf '%p\\0%y\\0%l\\0' 2>&1 >&3)
  printf '%s=0\\n%s:%s%s=0\\n' "$T" "$T" "$e" "$T"
else
  printf '%s:%s=1\\n%s:%s=1\\n' "$T" "$T" "$T" "$T"
fi
"""

# stat_many: one GNU find (-H: operands followed, as stat(2) does; dangling links then show as links).
_STAT_FAST = """\
if [ "${G:=$(find / -maxdepth 0 -printf 1 2>/dev/null)}" = 1 ]; then
  printf '%s:' "$T"
  e=$(find $H "$@" -maxdepth 0 -printf '%p\\0%y\\0%m\\0%U\\0%G\\0%s\\0%i\\0%T@\\0%C@\\0' 2>&1 >&3)
  printf '%s=0\\n%s:%s%s=0\\n' "$T" "$T" "$e" "$T"
else
  printf '%s:%s=1\\n%s:%s=1\\n' "$T" "$T" "$T" "$T"
fi
"""

_WHICH = """\
for p do
  if w=$(command -v -- "$p"); then printf '%s:%s%s=0\\n' "$T" "$w" "$T"; else printf '%s:%s=ENOENT\\n' "$T" "$T"; fi
done
"""

# run(): the command's stdout as the first record; its stderr, a dot and its exit status as the second.
_RUN = """\
printf '%s:' "$T"
e=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C LANG=C "$@" 2>&1 >&3; printf '.%s' "$?")
printf '%s=0\\n%s:%s%s=0\\n' "$T" "$T" "$e" "$T"
"""

_UID = """\
printf '%s:%s%s=0\\n' "$T" "$(id -u)" "$T"
"""

# stat_many, for the paths find could not stat: why not (ls fails the same way); status 0 when it now can.
_STAT_ERRORS = """\
for p do
  printf '%s:' "$T"
  if [ "$H" = -H ]; then m=$(ls -dL -- "$p" 2>&1 >/dev/null); else m=$(ls -d -- "$p" 2>&1 >/dev/null); fi
  if [ $? -eq 0 ]; then c=0; else k "$m"; fi
  printf '%s=%s\\n' "$T" "$c"
done
"""

# readlink_many, slow path: readlink per path; on failure ls says why (it reads the link too).
_READLINK_SLOW = """\
for p do
  printf '%s:' "$T"
  if t=$(readlink -- "$p" 2>/dev/null && echo .); then
    printf '%s' "${t%??}"
    c=0
  elif m=$(ls -ld -- "$p" 2>&1 >/dev/null); then
    if [ -L "$p" ]; then c=EIO; else c=EINVAL; fi
  else
    k "$m"
  fi
  printf '%s=%s\\n' "$T" "$c"
done
"""

SCRIPTS = {"read": _READ, "list": _LIST, "readlink_fast": _READLINK_FAST, "readlink_slow": _READLINK_SLOW,
           "stat_fast": _STAT_FAST, "stat_errors": _STAT_ERRORS, "which": _WHICH, "uid": _UID,
           "run": _RUN}
_FIND_TYPES = {"f": stat_mod.S_IFREG, "d": stat_mod.S_IFDIR, "l": stat_mod.S_IFLNK, "b": stat_mod.S_IFBLK,
               "c": stat_mod.S_IFCHR, "p": stat_mod.S_IFIFO, "s": stat_mod.S_IFSOCK}
# Paths per script (never split for "run": its arguments are one command): keeps the argument list of one find
# well under ARG_MAX and the script under the SSH window.
CHUNK_PATHS = 2000


class BatchProtocolError(Exception):
    """The script's output does not have the expected records (the shell died, or the output was cut)."""


def record_count(kind: str, paths: Sequence[str]) -> int:
    """Records a script prints for these paths: GNU find's output and its messages, or one per path."""
    return {"readlink_fast": 2, "stat_fast": 2, "run": 2, "uid": 1}.get(kind, len(paths))


_MESSAGES = (("No such file or directory", "ENOENT"), ("Permission denied", "EACCES"),
             ("Operation not permitted", "EPERM"), ("Not a directory", "ENOTDIR"),
             ("Too many levels of symbolic links", "ELOOP"), ("Symbolic link loop", "ELOOP"),
             ("No such process", "ESRCH"), ("Invalid argument", "EINVAL"), ("File name too long", "ENAMETOOLONG"))
# GNU find in the C locale: "find: '<path>': <strerror>". Paths with quotes or control characters are quoted
# differently; they do not match and take the per-path script.
_FIND_ERROR_RE = re.compile(r"^find: '([^'\\\n]*)': (.+)$", re.MULTILINE)


def parse_find_errors(text: bytes) -> dict[str, OSError]:
    out: dict[str, OSError] = {}
    for m in _FIND_ERROR_RE.finditer(text.decode("utf-8", errors="surrogateescape")):
        path, message = m.group(1), m.group(2)
        code = next((c for suffix, c in _MESSAGES if message.endswith(suffix)), None)
        if code is not None:
            out.setdefault(path, error_for(code, path))
    return out


def wrap_script(script: bytes) -> bytes:
    """What the batch shell is sent: the script with stdin closed, fd 3 the output, and a terminator line, so
    that one long-lived shell runs script after script."""
    return b"{\n" + script + b"} </dev/null 3>&1 2>/dev/null\nprintf '%s;\\n' \"$T\"\n"


def terminator(token: str) -> bytes:
    return f"{token};\n".encode()


def new_token() -> str:
    return secrets.token_hex(16)


def build_script(kind: str, paths: Sequence[str], token: str, max_bytes: int = 0, follow: bool = False) -> bytes:
    for p in paths:
        if kind not in ("which", "run") and not p.startswith("/"):
            raise ValueError(f"transport paths must be absolute: {p!r}")
        if "\0" in p:
            raise ValueError(f"NUL in path: {p!r}")
    head = f"T={token}\nN={int(max_bytes)}\nH={'-H' if follow else '-P'}\nexport LC_ALL=C\n{_CLASSIFY}"
    args = "set --" + "".join(" " + shlex.quote(p) for p in paths) + "\n"
    return (head + args + SCRIPTS[kind]).encode("utf-8", errors="surrogateescape")


def error_for(code: str, path: str) -> OSError:
    num = _ERRNOS.get(code, errno.EIO)
    # OSError(errno, ...) builds the matching subclass (FileNotFoundError, PermissionError, ...).
    return OSError(num, os.strerror(num), path)


def parse_records(out: bytes, token: str, count: int) -> list[tuple[bytes, str]]:
    """(payload, status) for each of ``count`` records."""
    start, end = f"{token}:".encode(), f"{token}=".encode()
    records: list[tuple[bytes, str]] = []
    pos = 0
    while len(records) < count:
        if not out.startswith(start, pos):
            raise BatchProtocolError(f"record {len(records) + 1} of {count}: no start marker")
        stop = out.find(end, pos + len(start))
        if stop < 0:
            raise BatchProtocolError(f"record {len(records) + 1} of {count}: no end marker")
        nl = out.find(b"\n", stop)
        if nl < 0:
            raise BatchProtocolError(f"record {len(records) + 1} of {count}: no status")
        records.append((out[pos + len(start):stop], out[stop + len(end):nl].decode("ascii", errors="replace")))
        pos = nl + 1
    return records


def decode_path(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


def parse_find_links(payload: bytes) -> dict[str, tuple[str, str]]:
    """path -> (type letter, link target) from the fast readlink script's find output."""
    fields = payload.split(b"\0")
    out: dict[str, tuple[str, str]] = {}
    for i in range(0, len(fields) - 2, 3):
        out[decode_path(fields[i])] = (fields[i + 1].decode("ascii", errors="replace"), decode_path(fields[i + 2]))
    return out


def parse_find_stats(payload: bytes) -> dict[str, tuple[str, FileStat]]:
    """path -> (type letter, FileStat) from the fast stat script's find output."""
    fields = payload.split(b"\0")
    out: dict[str, tuple[str, FileStat]] = {}
    for i in range(0, len(fields) - 8, 9):
        path = decode_path(fields[i])
        kind, mode, uid, gid, size, ino, mtime, ctime = (f.decode("ascii", errors="replace")
                                                         for f in fields[i + 1:i + 9])
        try:
            st = FileStat(_FIND_TYPES.get(kind, 0) | int(mode, 8), int(uid), int(gid), int(size), int(ino),
                          stamp_ns(mtime), stamp_ns(ctime))
        except ValueError:
            continue  # unexpected output for this path: the caller asks again one by one
        out[path] = (kind, st)
    return out
