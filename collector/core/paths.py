"""Where the collector keeps its state: one directory, like the agent's.

/var/lib/precaution-collector as root, else ~/.local/state/precaution-collector;
$PRECAUTION_COLLECTOR_HOME overrides both.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from collector.core.errors import CollectorUserError

CONFIG_FILE = "config.toml"
DB_FILE = "collector.db"
CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
ISSUER_KEY = "issuer.key"


def home_dir(environ: dict[str, str] | None = None, euid: int | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("PRECAUTION_COLLECTOR_HOME"):
        return Path(env["PRECAUTION_COLLECTOR_HOME"]).expanduser()
    if (os.geteuid() if euid is None else euid) == 0:
        return Path("/var/lib/precaution-collector")
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local" / "state")
    return Path(base) / "precaution-collector"


def ensure_home(path: Path) -> Path:
    if path.is_symlink():
        raise CollectorUserError(f"{path}: the state directory is a symlink; refusing to use it")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise CollectorUserError(f"cannot create state directory {path}: {exc.strerror or exc}") from None
    return path


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Whole file or nothing (temp file, fsync, rename), never through a symlink, mode regardless of umask."""
    if path.is_symlink():
        raise CollectorUserError(f"{path}: is a symlink; refusing to write through it")
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


def read_private(path: Path) -> bytes:
    """Read a state file without following a symlink."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise CollectorUserError(f"{path}: missing; run `precaution-collector init` first") from None
    except OSError as exc:
        raise CollectorUserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        return fh.read()
