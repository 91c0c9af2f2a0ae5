"""The daemon as a real process: scheduled runs in children, metrics, status, sd_notify, budgets."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from agent.daemon.spool import Spool
from tests.daemon.agentproc import ROOT, AgentProcess, ran_ok

FAST = """
[self_inspection]
file_integrity_paths = ["/usr/share/doc/python3"]
"""


@pytest.fixture()
def agent(tmp_path: Path) -> AgentProcess:
    proc = AgentProcess(tmp_path, FAST).start()
    yield proc
    proc.stop(signal.SIGKILL)


def test_scheduled_runs_metrics_and_promtool(agent: AgentProcess, tmp_path: Path) -> None:
    figures = agent.wait_for(lambda f: ran_ok("self_inspection")(f) and ran_ok("file_integrity")(f))
    assert figures.get("precaution_agent_last_successful_run_timestamp_seconds", kind="self_inspection")
    assert figures.by("precaution_agent_findings", "severity").keys() == {"info", "low", "medium", "high",
                                                                          "critical"}
    assert figures.by("precaution_agent_probe_duration_seconds", "probe").keys() >= {"accounts", "listeners"}
    assert figures.get("precaution_agent_run_peak_resident_memory_bytes", kind="self_inspection") > 10 * 2**20
    assert figures.get("precaution_agent_process_resident_memory_bytes") > 0
    assert figures.get("precaution_agent_watchdog_memory_limit_bytes", process="daemon") == 100 * 2**20
    text = agent.text()
    assert text is not None
    check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
    # the run reports and the record entries of all three runs are in the spool before any send
    agent.wait_for(lambda f: ran_ok("own_networks")(f)
                   and sum(f.by("precaution_agent_spool_items", "priority").values()) >= 6)
    spool = Spool(agent.state / "spool.db", check=False)
    kinds = sorted(q.kind for q in spool.batch(1000))
    spool.close()
    assert kinds.count("run") == 3 and kinds.count("record") == 3  # self-inspection, file integrity, own networks
    assert agent.stop() == 0


def test_status_en_and_zh(agent: AgentProcess) -> None:
    agent.wait_for(ran_ok("self_inspection"))
    env = agent.env
    out = subprocess.run([sys.executable, "-m", "agent.cli.main", "agent", "status", "--config", str(agent.config)],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "precaution agent: running" in out.stdout
    assert "self-inspection: 20" in out.stdout and "Findings (last self-inspection): critical" in out.stdout
    assert "Spool:" in out.stdout and "RSS" in out.stdout
    zh = subprocess.run([sys.executable, "-m", "agent.cli.main", "agent", "status", "--config", str(agent.config),
                         "--lang", "zh-CN"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert "运行中" in zh.stdout and "自查: 20" in zh.stdout and "本地缓存队列" in zh.stdout
    agent.stop()
    stopped = subprocess.run([sys.executable, "-m", "agent.cli.main", "agent", "status", "--config",
                              str(agent.config)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert stopped.returncode == 1
    assert "NOT running" in stopped.stdout
    assert "self-inspection: 20" in stopped.stdout  # from the scheduler state on disk
    assert "Spool: " in stopped.stdout


def test_sd_notify_ready_and_watchdog(tmp_path: Path) -> None:
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(60)
    agent = AgentProcess(tmp_path, FAST, env={"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "400000"}).start()
    try:
        seen: list[str] = []
        while "WATCHDOG=1" not in seen or not any(m.startswith("READY=1") for m in seen):
            seen.append(sock.recv(4096).decode())
        assert seen[0].startswith("READY=1")
        agent.stop()
        while "STOPPING=1" not in seen:
            seen.append(sock.recv(4096).decode())
    finally:
        agent.stop(signal.SIGKILL)
        sock.close()


def test_run_over_memory_budget_is_killed_and_counted(tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path, FAST + "[limits]\nrun_memory = \"12MiB\"\n").start()
    try:
        figures = agent.wait_for(lambda f: (f.get("precaution_agent_runs_total", kind="self_inspection",
                                                  outcome="killed") or 0) >= 1)
        assert figures.get("precaution_agent_watchdog_kills_total", resource="memory") >= 1
        assert figures.get("precaution_agent_last_successful_run_timestamp_seconds", kind="self_inspection") is None
        assert "over its memory budget: killed" in agent.log.read_text()
    finally:
        agent.stop(signal.SIGKILL)


def test_daemon_over_its_own_budget_exits_for_restart(tmp_path: Path) -> None:
    agent = AgentProcess(tmp_path, FAST + "[limits]\ndaemon_memory = \"8MiB\"\n").start()
    assert agent.proc is not None
    assert agent.proc.wait(timeout=60) == 3
    assert "over its budget (memory" in agent.log.read_text()


def test_daemon_stays_light_and_returns_to_idle(agent: AgentProcess) -> None:
    """Runs happen in children: the daemon never imports probes, scapy or profile code, so its RSS after
    runs is what it was before them."""
    agent.wait_for(lambda f: f.get("precaution_agent_process_resident_memory_bytes") is not None)
    assert agent.proc is not None
    before = psutil.Process(agent.proc.pid).memory_info().rss
    agent.wait_for(lambda f: ran_ok("self_inspection")(f) and ran_ok("file_integrity")(f))
    after = psutil.Process(agent.proc.pid).memory_info().rss
    assert after < before + 4 * 2**20, (before, after)
    maps = Path(f"/proc/{agent.proc.pid}/maps").read_text()
    assert "_yaml" not in maps and "scapy" not in maps
    loaded = subprocess.run([sys.executable, "-c", "import sys, agent.daemon.service, agent.cli.agent; "
                             "print(' '.join(sorted(sys.modules)))"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.split()
    # agent.state's temp-file-fsync-rename helper, the reader of input files with clear errors and the message
    # catalogue the status and errors are written with, and its (en, zh) sentence pair for what the collector
    # says (all stdlib only, no probe or profile code)
    light = {"probes", "probes.atomic_file", "probes.i18n", "baselines", "baselines.input_file", "baselines.model"}
    heavy = [m for m in loaded if m.split(".")[0] in ("scapy", "probes", "baselines", "nmap", "paramiko", "rich",
                                                      "jinja2", "yaml") and m not in light]
    assert heavy == []


def test_file_integrity_runs_under_nice_and_idle_io(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(FAST)
    out = subprocess.run([sys.executable, "-m", "agent.daemon.job", "file_integrity", "--config", str(config),
                          "--state", str(tmp_path / "state")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    outcome = json.loads(out.stdout.strip().splitlines()[-1])
    assert outcome["nice"] == 10
    assert outcome["ionice_class"] == int(psutil.IOPRIO_CLASS_IDLE)
    assert [p["probe"] for p in outcome["probes"]] == ["files"]
    assert outcome["spooled"] is True


def test_restart_during_a_scan_reruns_it_once(tmp_path: Path) -> None:
    """SIGKILL the daemon while its self-inspection child runs: the restarted agent runs it again (once), the
    spool opens clean and holds the results."""
    agent = AgentProcess(tmp_path, FAST).start()
    assert agent.proc is not None
    deadline = time.monotonic() + 60
    child = None
    while child is None and time.monotonic() < deadline:
        for proc in psutil.Process(agent.proc.pid).children():
            with contextlib.suppress(psutil.Error):
                if "self_inspection" in proc.cmdline():
                    child = proc
        time.sleep(0.01)
    assert child is not None
    agent.stop(signal.SIGKILL)
    with contextlib.suppress(psutil.Error):
        child.wait(60)
    sched = json.loads((agent.state / "scheduler.json").read_text())
    assert sched["self_inspection"]["last_finished"] is None  # it was interrupted
    agent.start()
    try:
        figures = agent.wait_for(ran_ok("self_inspection"))
        assert (figures.get("precaution_agent_runs_total", kind="self_inspection", outcome="ok") or 0) == 1
        assert figures.get("precaution_agent_spool_damaged_files") == 0
    finally:
        agent.stop(signal.SIGKILL)


def test_a_task_interrupted_by_the_agent_stopping_runs_once_more_then_fails(tmp_path: Path) -> None:
    """The agent itself stopped (crash, reboot) while a task ran: its file is still in the inbox. It is started
    once more; interrupted again, it is reported failed with the reason and dropped, not started for ever."""
    from agent.daemon.config import parse_config
    from agent.daemon.service import AgentService

    service = AgentService(parse_config("[metrics]\nenabled = false\n", "agent.toml"), tmp_path / "state")
    try:
        service.inbox.mkdir(mode=0o700)
        task = service.inbox / "task-t1.json"
        task.write_text(json.dumps({"task_id": "t1", "not_before": "2026-01-01T00:00:00Z"}))
        assert service._may_run_again(task) and service._may_run_again(task)
        assert not service._may_run_again(task)
    finally:
        service.shutdown()
    done = json.loads((service.inbox / "done-t1.json").read_text())
    assert done["outcome"] == "failed" and done["completion"]["status"] == "failed"
    assert done["completion"]["message"].startswith("interrupted 2 times")
    assert not task.exists() and not task.with_suffix(".attempts").exists()
    failed = json.loads((service.inbox / "failed-t1.json").read_text())  # for the task_failed run's record entry
    assert failed["task_id"] == "t1" and failed["reason"].startswith("interrupted 2 times")
