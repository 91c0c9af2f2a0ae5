"""Where precaution keeps its state: one directory.

/var/lib/precaution as root, else ~/.local/state/precaution; $PRECAUTION_HOME overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent.errors import UserError
from probes.atomic_file import atomic_write as atomic_write  # one implementation, shared with the probes


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
