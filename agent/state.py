"""Where precaution keeps its state: one directory, passed around as a ``StateDir`` value, and how files in it
are written.

/var/lib/precaution as root, else ~/.local/state/precaution; $PRECAUTION_HOME overrides both. Only the entry
points (CLI, daemon) read the environment (``StateDir.from_environment``); everything below takes the object.

The agent often runs as root while the state directory sits where another local user might reach it, so:
every directory is 0700 and every file 0600 whatever the umask; a pre-existing state directory that group or
others may write is tightened (when it is ours) or refused; a symbolic link is never followed below the
state directory (directories are checked component by component, files are opened with O_NOFOLLOW or written
through a fresh temporary file renamed into place); a full disk is one clear line.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.errors import UserError
from probes.atomic_file import atomic_write as _atomic_write

DIR_MODE = 0o700
FILE_MODE = 0o600
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def state_dir(environ: Mapping[str, str] | None = None, euid: int | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("PRECAUTION_HOME"):
        return Path(env["PRECAUTION_HOME"]).expanduser()
    if (os.geteuid() if euid is None else euid) == 0:
        return Path("/var/lib/precaution")
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local" / "state")
    return Path(base) / "precaution"


@dataclass(frozen=True, slots=True)
class StateDir:
    """The agent's state directory and the files in it."""

    path: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, euid: int | None = None) -> StateDir:
        return cls(state_dir(environ, euid))

    def ensure(self) -> Path:
        """Create it (0700) when missing, tighten or refuse it when others may write it; the path."""
        return ensure_state_dir(self.path)

    def subdir(self, *parts: str) -> Path:
        """A directory below it, created 0700, never through a link."""
        return state_subdir(self.ensure(), *parts)

    @property
    def record(self) -> Path:
        return self.path / "record.jsonl"

    @property
    def config(self) -> Path:
        return self.path / "config.toml"

    @property
    def waivers(self) -> Path:
        return self.path / "waivers.yaml"

    @property
    def cache(self) -> Path:
        return self.path / "cache"

    @property
    def known_hosts(self) -> Path:
        return self.path / "known_hosts"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a regular file"


def _kind_zh(mode: int) -> str:
    return {"a directory": "目录", "a symbolic link": "符号链接", "a FIFO (named pipe)": "命名管道",
            "a device": "设备文件", "a socket": "套接字"}.get(_kind(mode), "普通文件")


def no_space(where: Path) -> UserError:
    return UserError(f"no space left in {where}", f"{where} 所在磁盘空间已满")


def _oserror(path: Path, exc: OSError, what: str = "cannot write") -> UserError:
    if exc.errno in _NO_SPACE:
        return no_space(_state_root_of(path) or path.parent)
    return UserError(f"{path}: {what}: {exc.strerror or exc}", f"{path}：无法写入：{exc.strerror or exc}")


def _state_root_of(path: Path) -> Path | None:
    root = state_dir()  # the default one; a message only (which directory is full)
    try:
        path.absolute().relative_to(root.absolute())
    except ValueError:
        return None
    return root


def ensure_state_dir(path: Path | None = None) -> Path:
    """The state directory, created 0700. An existing one must be a directory we own; group- or
    other-writable is tightened to 0700 (another user could otherwise plant links the root agent writes
    through)."""
    path = path or state_dir()
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        try:
            os.makedirs(path, mode=DIR_MODE, exist_ok=True)
            os.chmod(path, DIR_MODE)
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise no_space(path) from None
            raise UserError(f"cannot create state directory {path}: {exc.strerror or exc}",
                            f"无法创建状态目录 {path}：{exc.strerror or exc}") from None
        return path
    except OSError as exc:
        raise UserError(f"state directory {path}: {exc.strerror or exc}",
                        f"状态目录 {path}：{exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"state directory {path} (PRECAUTION_HOME) is {_kind(st.st_mode)}, not a directory",
                        f"状态目录 {path}（PRECAUTION_HOME）是{_kind_zh(st.st_mode)}，不是目录")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"state directory {path}: not writable by this user",
                        f"状态目录 {path}：当前用户无写权限")
    if st.st_mode & 0o077:
        if st.st_uid != os.geteuid():
            raise UserError(f"state directory {path} is owned by uid {st.st_uid} and open to group or others "
                            f"(mode {stat.S_IMODE(st.st_mode):04o}): refusing it",
                            f"状态目录 {path} 属于 uid {st.st_uid} 且组或其他用户可访问"
                            f"（权限 {stat.S_IMODE(st.st_mode):04o}），拒绝使用")
        os.chmod(path, DIR_MODE)
    return path


def state_subdir(state: Path, *parts: str) -> Path:
    """``state/part/...``: each component created 0700 or checked to be a real directory (never a link)."""
    current = state
    for part in parts:
        if not part or part in (".", "..") or "/" in part:
            raise ValueError(f"bad state path component {part!r}")
        current = current / part
        try:
            os.mkdir(current, DIR_MODE)
            os.chmod(current, DIR_MODE, follow_symlinks=False)
            continue
        except FileExistsError:
            pass
        except OSError as exc:
            raise _oserror(current, exc, "cannot create directory") from None
        st = os.lstat(current)
        if not stat.S_ISDIR(st.st_mode):
            raise UserError(f"{current} is {_kind(st.st_mode)}, not a directory: refusing to follow it inside "
                            "the state directory",
                            f"{current} 是{_kind_zh(st.st_mode)}而不是目录：不在状态目录内跟随它")
        if stat.S_IMODE(st.st_mode) != DIR_MODE and st.st_uid == os.geteuid():
            os.chmod(current, DIR_MODE)
    return current


def check_not_link(path: Path) -> None:
    """Refuse a state file that is a symbolic link or not a regular file (absent is fine)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path} is {_kind(st.st_mode)}, not a regular file: refusing to use it inside the state "
                        "directory", f"{path} 是{_kind_zh(st.st_mode)}而不是普通文件：拒绝在状态目录内使用")


def open_state_file(path: Path, flags: int, mode: int = FILE_MODE) -> int:
    """os.open with O_NOFOLLOW and O_NONBLOCK (a FIFO planted in place of a file must not hang us), then a
    check that it is a regular file. Returns the descriptor (blocking again)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UserError(f"{path} is a symbolic link: refusing to follow it inside the state directory",
                            f"{path} 是符号链接：不在状态目录内跟随它") from None
        if exc.errno in _NO_SPACE:
            raise no_space(_state_root_of(path) or path.parent) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{path} is {_kind(st.st_mode)}, not a regular file: refusing to use it inside the "
                            "state directory", f"{path} 是{_kind_zh(st.st_mode)}而不是普通文件：拒绝在状态目录内使用")
        os.set_blocking(fd, True)
        if flags & os.O_CREAT and stat.S_IMODE(st.st_mode) != mode and st.st_uid == os.geteuid():
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_state_file(path: Path) -> bytes:
    """The whole file, never through a link and never blocking on a FIFO; FileNotFoundError if absent."""
    fd = open_state_file(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive flock on ``path`` (created 0600, never through a link) for the duration."""
    fd = open_state_file(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def fsync_dir(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """probes.atomic_file.atomic_write (one implementation), with a full disk or a refused write as one
    clear line."""
    try:
        _atomic_write(path, data, mode)
    except OSError as exc:
        raise _oserror(path, exc) from None


def write_output(path: Path, data: bytes, option: str, mode: int = 0o644) -> None:
    """A report or document the user asked for (--html, --output, -o): atomically, and never replacing a
    directory, device or FIFO with a file."""
    check_output(path, option)
    atomic_write(path, data, mode)


def check_output(path: Path, option: str) -> None:
    """Refuse an output path before any work is done: its directory must exist and the path, if it exists,
    must be a regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise UserError(f"{option} {path}: {exc.strerror or exc}", f"{option} {path}：{exc.strerror or exc}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UserError(f"{option} {path}: is {_kind(st.st_mode)}, not a regular file; give a file path",
                        f"{option} {path}：是{_kind_zh(st.st_mode)}而不是普通文件，请指定文件路径")
    if not path.parent.is_dir():
        raise UserError(f"{option} {path}: directory {path.parent} does not exist",
                        f"{option} {path}：目录 {path.parent} 不存在")
