"""kill -9 at random moments of scan, baseline capture and baseline accept (real processes): afterwards the
record verifies and the baseline still diffs. Crash artefacts are recovered, never reported as tampering."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integrity.common import PRECAUTION, PROBES, make_root, run

RUNS = 10


@pytest.mark.parametrize("command", ["scan", "capture", "accept"])
def test_kill_9_at_random_moments(command: str, tmp_path: Path, _isolated_state: Path) -> None:
    root = make_root(tmp_path)
    run("baseline", "capture", "--root", str(root), *PROBES, check=0)
    argv = {"scan": ["scan", "--root", str(root), *PROBES, "--json"],
            "capture": ["baseline", "capture", "--root", str(root), *PROBES, "--force"],
            "accept": ["baseline", "accept", "--root", str(root), "--all"]}[command]
    (root / "proc/sys/net/ipv4/ip_forward").write_text("1\n")  # drift: accept has work to do when timed
    start = time.monotonic()
    run(*argv)  # how long one run takes here: the kills land anywhere inside it
    took = time.monotonic() - start
    rng = random.Random(f"{command}-kill9")  # reproducible moments
    killed = 0
    for i in range(RUNS):
        (root / "proc/sys/net/ipv4/ip_forward").write_text(f"{i % 2}\n")  # drift for accept to take in
        proc = subprocess.Popen([PRECAUTION, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.0, took * 0.8))  # the machine's load varies: stay inside a run
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(60)
        verify = run("record", "verify")
        assert verify.returncode == 0, (i, verify.stderr)
        diff = run("baseline", "diff", "--root", str(root))
        assert diff.returncode in (0, 1), (i, diff.stderr)
    assert killed >= 3  # runs were really interrupted (not every one: a loaded machine's timing varies)
    # and a normal run afterwards leaves everything intact
    assert run(*argv).returncode in (0, 1)
    run("record", "verify", check=0)
    assert run("baseline", "diff", "--root", str(root)).returncode in (0, 1)
