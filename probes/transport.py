"""Transports: how probes read files and run commands, locally or (later) over SSH.

Probes never call ``open`` or ``subprocess`` themselves; they ask the transport injected into them. This is what
lets one probe run unchanged on this host, on a fixture root in tests, or on an agentless target over SSH.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import shutil
import signal
import stat as stat_mod
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from probes import cancel

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
# A FIFO or device that never delivers gives up after this long even outside a probe run (no deadline).
SPECIAL_READ_TIMEOUT = 10.0
_POLL_SLICE_MS = 50  # how quickly a read of a FIFO/device notices cancellation


class CommandUnavailable(Exception):
    """The command does not exist on the target or the transport does not run commands."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class FileStat:
    mode: int
    uid: int
    gid: int
    size: int
    inode: int
    mtime_ns: int
    ctime_ns: int

    @property
    def is_dir(self) -> bool:
        return stat_mod.S_ISDIR(self.mode)

    @property
    def is_file(self) -> bool:
        return stat_mod.S_ISREG(self.mode)

    @property
    def is_link(self) -> bool:
        return stat_mod.S_ISLNK(self.mode)


class Transport(Protocol):
    """What a probe may do on a target. File errors surface as the usual OSError subclasses."""

    name: str

    @property
    def is_root(self) -> bool: ...

    def read_text(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str: ...

    def read_bytes(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes: ...

    def list_dir(self, path: str) -> list[str]: ...

    def exists(self, path: str) -> bool: ...

    def stat(self, path: str, follow: bool = True) -> FileStat: ...

    def readlink(self, path: str) -> str: ...

    def which(self, name: str) -> str | None: ...

    def run(self, argv: list[str], timeout: float = 10.0) -> CommandResult: ...

    # Batched calls: one result per distinct path, the value the single call returns or the OSError it raises
    # (as a value, so that one missing file does not lose the others). Over SSH each is one round trip.

    def read_many(self, paths: Iterable[str], max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, bytes | OSError]: ...

    def readlink_many(self, paths: Iterable[str]) -> dict[str, str | OSError]: ...

    def list_many(self, paths: Iterable[str]) -> dict[str, list[str] | OSError]: ...

    def stat_many(self, paths: Iterable[str], follow: bool = True) -> dict[str, FileStat | OSError]: ...


class _Single(Protocol):
    def read_bytes(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes: ...

    def readlink(self, path: str) -> str: ...

    def list_dir(self, path: str) -> list[str]: ...

    def stat(self, path: str, follow: bool = True) -> FileStat: ...


def read_each(t: _Single, paths: Iterable[str], max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, bytes | OSError]:
    """read_many by looping over read_bytes: the semantics every transport's read_many must have."""
    out: dict[str, bytes | OSError] = {}
    for path in dict.fromkeys(paths):
        try:
            out[path] = t.read_bytes(path, max_bytes)
        except OSError as exc:
            out[path] = exc
    return out


def readlink_each(t: _Single, paths: Iterable[str]) -> dict[str, str | OSError]:
    out: dict[str, str | OSError] = {}
    for path in dict.fromkeys(paths):
        try:
            out[path] = t.readlink(path)
        except OSError as exc:
            out[path] = exc
    return out


def list_each(t: _Single, paths: Iterable[str]) -> dict[str, list[str] | OSError]:
    out: dict[str, list[str] | OSError] = {}
    for path in dict.fromkeys(paths):
        try:
            out[path] = t.list_dir(path)
        except OSError as exc:
            out[path] = exc
    return out


def stat_each(t: _Single, paths: Iterable[str], follow: bool = True) -> dict[str, FileStat | OSError]:
    out: dict[str, FileStat | OSError] = {}
    for path in dict.fromkeys(paths):
        try:
            out[path] = t.stat(path, follow)
        except OSError as exc:
            out[path] = exc
    return out


def text_of(value: bytes | OSError) -> str:
    """A read_many value as read_text would return it; raises the OSError the read met."""
    if isinstance(value, OSError):
        raise value
    return value.decode("utf-8", errors="replace")


class LocalTransport:
    """Reads this host. ``root`` re-roots file paths (a fixture tree in tests); ``proc_root``/``sys_root``/
    ``dev_root`` let /proc, /sys and /dev come from elsewhere, as in prometheus_client's ``proc_root``.

    Commands run only when ``root`` is "/" (a command would see the real host, not the fixture tree), unless
    ``allow_commands`` says otherwise.
    """

    name = "local"

    def __init__(
        self,
        root: str = "/",
        proc_root: str | None = None,
        sys_root: str | None = None,
        dev_root: str | None = None,
        allow_commands: bool | None = None,
        euid: int | None = None,
    ) -> None:
        self.root = os.path.abspath(root)
        self._mounts = {
            "/proc": os.path.abspath(proc_root) if proc_root else None,
            "/sys": os.path.abspath(sys_root) if sys_root else None,
            "/dev": os.path.abspath(dev_root) if dev_root else None,
        }
        self.allow_commands = (self.root == "/") if allow_commands is None else allow_commands
        self._euid = os.geteuid() if euid is None else euid

    @property
    def is_root(self) -> bool:
        return self._euid == 0

    def host_path(self, path: str) -> str:
        """Map a target path to the path on this machine."""
        if not path.startswith("/"):
            raise ValueError(f"transport paths must be absolute: {path!r}")
        for prefix, mapped in self._mounts.items():
            if mapped and (path == prefix or path.startswith(prefix + "/")):
                return mapped + path[len(prefix):]
        if self.root == "/":
            return path
        return self.root + path

    def read_bytes(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        token = cancel.current()
        token.check()
        # O_NONBLOCK: opening a FIFO must not wait for a writer; regular files ignore the flag.
        fd = os.open(self.host_path(path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            if stat_mod.S_ISREG(os.fstat(fd).st_mode):
                with os.fdopen(fd, "rb", closefd=False) as fh:
                    return fh.read(max_bytes)
            return _read_special(fd, max_bytes, token)
        finally:
            os.close(fd)

    def read_text(self, path: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
        return self.read_bytes(path, max_bytes).decode("utf-8", errors="replace")

    def list_dir(self, path: str) -> list[str]:
        cancel.current().check()
        return sorted(os.listdir(self.host_path(path)))

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.host_path(path))

    def stat(self, path: str, follow: bool = True) -> FileStat:
        cancel.current().check()
        st = os.stat(self.host_path(path), follow_symlinks=follow)
        return FileStat(st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)

    def readlink(self, path: str) -> str:
        return os.readlink(self.host_path(path))

    def read_many(self, paths: Iterable[str], max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, bytes | OSError]:
        return read_each(self, paths, max_bytes)

    def readlink_many(self, paths: Iterable[str]) -> dict[str, str | OSError]:
        return readlink_each(self, paths)

    def list_many(self, paths: Iterable[str]) -> dict[str, list[str] | OSError]:
        return list_each(self, paths)

    def stat_many(self, paths: Iterable[str], follow: bool = True) -> dict[str, FileStat | OSError]:
        return stat_each(self, paths, follow)

    def which(self, name: str) -> str | None:
        if not self.allow_commands:
            return None
        return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")

    def run(self, argv: list[str], timeout: float = 10.0) -> CommandResult:
        if not self.allow_commands:
            raise CommandUnavailable(f"commands are disabled on this transport ({argv[0]})")
        exe = self.which(argv[0])
        if exe is None:
            raise CommandUnavailable(f"{argv[0]}: not installed")
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "LANG": "C"}
        token = cancel.current()
        token.check()
        # Its own process group, so that a timeout or a cancelled run kills the command and its children.
        proc = subprocess.Popen([exe, *argv[1:]], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, start_new_session=True)
        try:
            with token.on_cancel(lambda: _kill_group(proc)):
                stdout, stderr = proc.communicate(timeout=token.bound(timeout))
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            token.check()  # the run's deadline, not the command's own timeout
            raise subprocess.TimeoutExpired(argv, timeout) from None
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
        token.check()  # killed because the run was cancelled: its output is not a result
        return CommandResult(
            tuple(argv),
            proc.returncode,
            stdout.decode("utf-8", errors="replace"),
            stderr.decode("utf-8", errors="replace"),
        )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _read_special(fd: int, max_bytes: int, token: cancel.CancelToken) -> bytes:
    """Read a FIFO or device without blocking past the run's deadline (or SPECIAL_READ_TIMEOUT)."""
    give_up = time.monotonic() + token.bound(SPECIAL_READ_TIMEOUT)
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    chunks: list[bytes] = []
    size = 0
    while size < max_bytes:
        try:
            chunk = os.read(fd, min(65536, max_bytes - size))
        except BlockingIOError:
            token.check()
            if time.monotonic() >= give_up:
                raise TimeoutError(errno.ETIMEDOUT, "no data within the time allowed") from None
            poller.poll(_POLL_SLICE_MS)
            continue
        if not chunk:  # EOF (for a FIFO: no writer left)
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
