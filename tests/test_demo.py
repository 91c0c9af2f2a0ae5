"""`make demo` is one of the README's two commands: its whole loop must keep working (collector on SQLite, one
enrolled agent, a pushed self-inspection, the collector's summary), and a second run must reuse the state."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _demo(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "deploy" / "demo.py"), "--once"], cwd=ROOT,
                          env={**os.environ, "DEMO_HOME": str(home)}, capture_output=True, text=True, timeout=600)


def test_demo_runs_the_whole_loop_and_reuses_its_state(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    first = _demo(home)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "enrolled with https://127.0.0.1:18443" in first.stdout
    summary = re.search(r"findings at the collector for unit demo-unit: critical (\d+), high (\d+), medium (\d+)",
                        first.stdout)
    assert summary, first.stdout
    assert sum(int(n) for n in summary.groups()) > 0  # this host's self-inspection arrived at the collector
    assert "agent metrics:  http://127.0.0.1:19847/metrics" in first.stdout
    assert (home / "collector-admin.password").stat().st_mode & 0o077 == 0
    second = _demo(home)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "agent already enrolled (state reused)" in second.stdout
    assert "precaution-collector init" not in second.stdout
    for port in (18443, 19847):  # both processes were stopped: nothing listens any more
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
