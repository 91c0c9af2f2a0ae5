"""Helpers shared by the tests of the host probes accounts..connections (issue 2, part A)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def run_as_nobody(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a forked child with uid/gid 65534 and return its JSON-serialisable result.

    A real unprivileged process, so that permission errors are the kernel's and not a fake."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            payload = json.dumps({"ok": fn()}, default=str)
        except BaseException as exc:  # report anything to the parent, which fails the test
            payload = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
            code = 1
        with os.fdopen(write_fd, "w") as fh:
            fh.write(payload)
        os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as fh:
        data = json.loads(fh.read() or '{"error": "no output"}')
    os.waitpid(pid, 0)
    assert "error" not in data, data.get("error")
    return data["ok"]


@contextlib.contextmanager
def open_tmpdir() -> Iterator[Path]:
    """A temporary directory under /tmp that other users may traverse (pytest's tmp_path is 0700)."""
    with tempfile.TemporaryDirectory(prefix="precaution-test-", dir="/tmp") as name:
        os.chmod(name, 0o755)
        yield Path(name)
