from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from probes.base import GatherContext
from probes.host.timesync import TimeSyncProbe, servers_for
from probes.transport import LocalTransport
from tests.probes.golden import FIXTURES, cases, check_case
from tests.spawn import spawn


@pytest.mark.parametrize("raw_path", cases("timesync"), ids=lambda p: p.name)
def test_golden(raw_path):
    check_case("timesync", raw_path)


def _row(case):
    (obs,) = check_case("timesync", FIXTURES / "timesync" / case)
    return obs.attrs


def test_cases():
    chrony = _row("chrony-synchronised.raw.json")
    assert chrony["daemon"] == "chronyd" and chrony["synchronized"] is True
    assert chrony["servers"] == ("2.debian.pool.ntp.org", "ntp1.corp.example", "ntp.ntsc.ac.cn")
    assert _row("timesyncd-unsynchronised.raw.json")["synchronized"] is False
    assert _row("chrony-container-chronyc.raw.json")["sync_source"] == "chronyc"


def test_timesyncd_dropin_overrides_and_empty_resets():
    configs = {"/etc/systemd/timesyncd.conf": "[Time]\nNTP=a.example\n",
               "/etc/systemd/timesyncd.conf.d/x.conf": "[Time]\nNTP=\nFallbackNTP=f.example\n"}
    assert servers_for("systemd-timesyncd", configs) == ("f.example",)


def _wait_for_exec(pid: int, comm: str) -> None:
    """Popen returns after fork, before exec: until exec, the child still carries the parent's name."""
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}/comm").read_text().strip() != comm:
        assert time.monotonic() < deadline, f"process {pid} never became {comm}"
        time.sleep(0.01)


def test_live_process_and_config(tmp_path):
    """A real process named chronyd (a copy of sleep) is found in /proc; config comes from a fixture root."""
    exe = tmp_path / "chronyd"
    shutil.copy("/bin/sleep", exe)
    conf = tmp_path / "etc" / "chrony"
    (conf / "sources.d").mkdir(parents=True)
    (conf / "chrony.conf").write_text("pool 2.debian.pool.ntp.org iburst\nsourcedir /etc/chrony/sources.d\n")
    (conf / "sources.d" / "corp.sources").write_text("server ntp1.corp.example iburst\n")
    proc = spawn([str(exe), "30"])
    try:
        _wait_for_exec(proc.pid, "chronyd")
        probe = TimeSyncProbe()
        transport = LocalTransport(root=str(tmp_path), proc_root="/proc")
        (row,) = probe.parse(probe.gather(GatherContext(transport)))
        assert row.daemon == "chronyd" and row.servers == ("2.debian.pool.ntp.org", "ntp1.corp.example")
        assert row.synchronized is None  # commands are off on a fixture root: nothing could tell
    finally:
        proc.kill()
        proc.wait()
    (row,) = probe.parse(probe.gather(GatherContext(transport)))
    assert row.daemon == "none"


def test_hidden_processes_make_the_daemon_unknown_not_none():
    """/proc mounted hidepid=2, not root: no other user's process is listed, so "no time daemon" cannot be
    told; PC-TIME-001 must not fire on that."""
    from baselines.evaluate import evaluate
    from baselines.profile import load_profile
    from probes.host.timesync import TimeSyncProbe
    from probes.observation import Observation

    def judged(raw: dict) -> tuple[str, set[str]]:
        (row,) = TimeSyncProbe.parse(raw)
        obs = [Observation.from_row("timesync", row)]
        return row.daemon, {f.rule_id for f in evaluate(load_profile(), obs, "h", {"timesync"}).findings}

    raw = {"running": [], "configs": {}, "timedatectl": None, "chronyc": None}
    assert judged(raw) == ("none", {"PC-TIME-001"})
    assert judged({**raw, "processes_hidden": True}) == ("unknown", set())
