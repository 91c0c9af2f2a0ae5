"""Helpers shared by the host probe tests of part B: run the CLI in a throw-away network or mount namespace."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PRECAUTION = [sys.executable, "-m", "agent.cli.main"]


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=60)


@contextmanager
def netns() -> Iterator[str]:
    """A fresh network namespace, removed afterwards even on failure. Nothing in it reaches the host's links."""
    name = f"pcx-{uuid.uuid4().hex[:8]}"
    sh("ip", "netns", "add", name)
    try:
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


def in_ns(ns: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *argv)


def probe_json(prefix: list[str], probe_id: str, raw: bool = False) -> Any:
    """Run `precaution probe run ID` (optionally inside a namespace via ``prefix``) and load its JSON."""
    argv = [*prefix, *PRECAUTION, "probe", "run", probe_id, *(["--raw"] if raw else [])]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def have(binary: str) -> bool:
    return shutil.which(binary, path="/usr/sbin:/usr/bin:/sbin:/bin") is not None
