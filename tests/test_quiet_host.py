"""Acceptance: an unchanged host stays quiet. Ten consecutive `precaution scan`s and `baseline diff`s (the real
console script, each a fresh process, one fresh state directory) after `baseline capture` report no drift
while the host churns: short processes started in a loop, the account files rewritten with identical content
(new inode and times, as useradd/userdel leave them). Then planted changes are still found.

The host is this machine's kernel, files and programs, seen from its own PID, mount and network namespaces
(`unshare --pid --mount-proc --net`): the other jobs on this shared machine (their processes and loopback
listeners come and go) are not part of the host under test, the namespace's processes are. The file-integrity
probe watches a copy of /etc (rewriting the real account files is unsafe) and /usr/sbin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import needs_root

pytestmark = needs_root()

PRECAUTION = str(Path(sys.executable).parent / "precaution")
ROUNDS = 10
MIN_AGE_S = 3  # [probes.processes] min_age_s: long-lived from 3 s on, so that the test need not wait minutes
ACCOUNT_FILES = ("passwd", "passwd-", "shadow", "shadow-", "group", "group-", "gshadow", "gshadow-", "subuid",
                 "subgid")


class Namespace:
    """A PID + mount + network namespace (its own /proc and /sys) whose init is `sleep infinity`; commands run
    inside with nsenter."""

    def __init__(self) -> None:
        # sysfs shows the network devices of the namespace that mounted it: mount the namespace's own
        self.holder = subprocess.Popen(["unshare", "--fork", "--pid", "--mount-proc", "--net", "--", "sh", "-c",
                                        "mount -t sysfs sysfs /sys && exec sleep infinity"])
        children = Path(f"/proc/{self.holder.pid}/task/{self.holder.pid}/children")
        for _ in range(500):
            if children.exists() and children.read_text().split():
                break
            time.sleep(0.01)
        self.init = int(children.read_text().split()[0])
        self.started: list[subprocess.Popen[bytes]] = []

    def argv(self, *args: str) -> list[str]:
        return ["nsenter", "-t", str(self.init), "-p", "-m", "-n", "--", *args]

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(self.argv(*args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        self.started.append(proc)
        return proc

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout, check=False)

    def close(self) -> None:
        for proc in self.started:
            proc.kill()
            proc.wait()
        self.holder.kill()  # its child, the namespace's init, takes every process of the namespace with it
        self.holder.wait()


@pytest.fixture
def ns() -> Iterator[Namespace]:
    n = Namespace()
    try:
        assert n.run("ip", "link", "set", "lo", "up").returncode == 0
        yield n
    finally:
        n.close()


@pytest.fixture
def host_config(tmp_path: Path) -> tuple[Path, Path]:
    etc = tmp_path / "etc"
    shutil.copytree("/etc", etc, symlinks=True)
    config = tmp_path / "config.toml"
    config.write_text(f'[probes.files]\npaths = ["{etc}", "/usr/sbin"]\nssh_dirs = false\n\n'
                      f"[probes.processes]\nmin_age_s = {MIN_AGE_S}\n")
    return etc, config


def rewrite_identically(etc: Path, stop: threading.Event) -> None:
    """What useradd/userdel do to the account files, with the content put back: write a new file, rename it
    over the old one (new inode, new times; same content, mode and owner). The new file is written beside the
    inspected tree, not in it: a scan that lists /etc while a temp file exists there would rightly see one more
    file, which is an event of the test's own making, not churn of an unchanged host."""
    staging = etc.with_name(etc.name + ".staging")
    staging.mkdir(exist_ok=True)
    while not stop.is_set():
        for name in ACCOUNT_FILES:
            path = etc / name
            if not path.exists():
                continue
            st = path.stat()
            tmp = staging / name
            tmp.write_bytes(path.read_bytes())
            os.chown(tmp, st.st_uid, st.st_gid)
            os.chmod(tmp, st.st_mode & 0o7777)
            os.replace(tmp, path)
        stop.wait(0.05)


def drift_of(report: dict) -> list[tuple[str, str, str]]:
    return [(f["rule_id"], f["severity"], f["subject"]) for f in report["findings"] if f.get("kind") == "drift"]


def test_unchanged_host_is_quiet_under_churn_and_planted_changes_are_found(
        ns: Namespace, host_config: tuple[Path, Path], tmp_path: Path) -> None:
    etc, config = host_config
    cfg = ["--config", str(config)]
    # The namespace's long-lived programs: a listener and a daemon, started before the baseline
    ns.start(sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "8931", "--directory", str(tmp_path))
    ns.start("sleep", "infinity")
    # churn: short processes in a loop, for as long as the test runs
    ns.start("bash", "-c", "while :; do sleep 0.2 & ls / >/dev/null; /bin/true; wait; done")
    time.sleep(MIN_AGE_S + 1)  # the long-lived ones are long-lived by now; churn never lives that long

    capture = ns.run(PRECAUTION, "baseline", "capture", *cfg)
    assert capture.returncode == 0, capture.stderr
    stop = threading.Event()
    rewriter = threading.Thread(target=rewrite_identically, args=(etc, stop), daemon=True)
    rewriter.start()
    try:
        noisy: list[object] = []
        for _ in range(ROUNDS):
            scan = ns.run(PRECAUTION, "scan", *cfg, "--json")
            assert scan.returncode in (0, 1), scan.stderr
            report = json.loads(scan.stdout)
            assert report["baseline"]["status"] == "compared"
            noisy += drift_of(report)
            diff = ns.run(PRECAUTION, "baseline", "diff", *cfg, "--json")
            assert diff.returncode in (0, 1), diff.stderr
            data = json.loads(diff.stdout)
            noisy += [(i["probe"], i["subject"]) for kind in ("added", "removed", "changed")
                      for i in data["diff"][kind]]
        assert noisy == []
        assert any(reason.startswith("rewritten, content unchanged") for reason in data["diff"]["ignored"])
    finally:
        stop.set()
        rewriter.join()

    # Planted: a new long-lived program run from a temporary directory, and an account file really changed.
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", drop / "implant")
    ns.start(str(drop / "implant"), "infinity")
    with (etc / "passwd").open("a") as fh:
        fh.write("toor:x:0:0::/root:/bin/bash\n")
    time.sleep(MIN_AGE_S + 1)
    report = json.loads(ns.run(PRECAUTION, "scan", *cfg, "--json").stdout)
    rules = {(f["rule_id"], f["subject"]) for f in report["findings"]}
    implant = str(drop / "implant")
    assert ("PC-DRIFT-PROC-001", f"{implant}|implant|0||") in rules  # new long-lived process (drift)
    assert any(r == "PC-PROC-006" and s.startswith(implant) for r, s in rules)  # run from a temporary directory
    assert any(r.startswith("PC-DRIFT") and s == str(etc / "passwd") for r, s in rules)  # content changed
