"""Shared helpers of the integrity tests: the real console script on a small fixture root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PRECAUTION = str(Path(sys.executable).parent / "precaution")
MACHINE_ID = "0123456789abcdef0123456789abcdef"
PROBES = ("--probe", "accounts", "--probe", "sysctl")


def run(*args: str, check: int | None = None, env: dict[str, str] | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([PRECAUTION, *args], capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def make_root(base: Path) -> Path:
    r = base / "root"
    (r / "etc").mkdir(parents=True)
    (r / "proc/sys/kernel").mkdir(parents=True)
    (r / "proc/sys/net/ipv4").mkdir(parents=True)
    (r / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n")
    (r / "etc/group").write_text("root:x:0:\nalice:x:1000:\n")
    (r / "etc/machine-id").write_text(MACHINE_ID + "\n")
    (r / "proc/sys/kernel/hostname").write_text("fixturehost\n")
    (r / "proc/sys/net/ipv4/ip_forward").write_text("0\n")
    return r


def capture(root: Path, *extra: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    return run("baseline", "capture", "--root", str(root), *PROBES, *extra, check=check)


def scope_dir(state: Path) -> Path:
    (path,) = (state / "baselines" / "host").glob("root-*")
    return path


EN_ERROR, ZH_ERROR = "precaution: error: ", "precaution：错误："


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """Exit 2, one line on stderr, never an internal error; the English line is returned.

    Commands whose output defaults to ``--lang both`` (notice) print the error once in each language: the
    English line, then the Chinese one, which must be a translation rather than the English line again."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [x for x in proc.stderr.splitlines()
             if x.strip() and not x.startswith(("usage:", " "))]  # argparse's usage block, then its one line
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    if len(lines) == 2 and lines[0].startswith(EN_ERROR) and lines[1].startswith(ZH_ERROR):
        assert lines[1][len(ZH_ERROR):] != lines[0][len(EN_ERROR):], f"not translated: {proc.stderr}"
        return lines[0]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def record_entries(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line)["entry"] for line in (state / "record.jsonl").read_text().splitlines()]
