"""Where precaution keeps its state: one directory.

/var/lib/precaution as root, else ~/.local/state/precaution; $PRECAUTION_HOME overrides both.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from agent.errors import UserError


def state_dir(environ: dict[str, str] | None = None, euid: int | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("PRECAUTION_HOME"):
        return Path(env["PRECAUTION_HOME"]).expanduser()
    if (os.geteuid() if euid is None else euid) == 0:
        return Path("/var/lib/precaution")
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local" / "state")
    return Path(base) / "precaution"


def ensure_state_dir(path: Path | None = None) -> Path:
    path = path or state_dir()
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise UserError(f"cannot create state directory {path}: {exc.strerror or exc}") from None
    return path


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a whole file or nothing: temp file in the same directory, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
