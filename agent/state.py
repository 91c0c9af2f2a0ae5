"""Where precaution keeps its state: one directory, passed around as a ``StateDir`` value.

/var/lib/precaution as root, else ~/.local/state/precaution; $PRECAUTION_HOME overrides both. Only the entry
points (CLI, daemon) read the environment (``StateDir.from_environment``); everything below takes the object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.errors import UserError
from probes.atomic_file import atomic_write as atomic_write  # one implementation, shared with the probes


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
        """Create it (0700) when missing; the path."""
        return ensure_state_dir(self.path)

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


def ensure_state_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise UserError(f"cannot create state directory {path}: {exc.strerror or exc}") from None
    return path
