"""Whole-file writes: a reader sees the old file or the new one, never half of either (temp file in the same
directory, fsync, rename, fsync of the directory). Here, in the lowest layer that writes files (the
file-integrity caches), so that the agent's state files use the same code.

The temporary file is created with O_EXCL (mkstemp), so a symbolic link planted under its name is never
followed, and renaming replaces a link at the target rather than writing through it. Its mode is set on the
open descriptor, so the umask never decides it; missing parent directories are created 0700.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a whole file or nothing: temp file in the same directory, fsync, rename. OSError on failure
    (nothing is left behind)."""
    parent = path.parent
    if not parent.is_dir():
        os.makedirs(parent, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
