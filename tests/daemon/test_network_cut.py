"""Issue 11: a network cut between a real agent and a real collector. The agent daemon runs inside a lab network
namespace, the collector in the root namespace on the lab bridge's address (TLS certificate naming it); the link
goes down (inside the namespace, or on the bridge side) while the agent has results to push, then comes back.
Every item then arrives exactly once, and the agent's metrics said unreachable during the cut, reachable after."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.daemon.spool import Spool
from agent.daemon.status import Figures
from tests.collector.conftest import BIN, FAST_ENV, Collector, free_port, unit_name, wait_ready
from tests.conftest import needs_root
from tests.daemon.agentproc import ROOT, AgentProcess, ran_ok
from tests.daemon.test_agent_collector import FAST_LINK, agent_record_kinds, db
from tests.lab import Lab, LabHost

pytestmark = [pytest.mark.root, needs_root()]

# A self-inspection every few seconds, so that results come while the link is down; one run of the others. A
# short request timeout: a push caught by a bridge-side cut waits for it (no RST comes over a dead link).
CUT_LINK = FAST_LINK.replace("batch_items = 20", 'batch_items = 20\ntimeout = "5s"') + """
[schedule.self_inspection]
interval = "3s"
splay = 0.0
[schedule.file_integrity]
interval = "30d"
[schedule.own_networks]
interval = "30d"
"""

_FETCH = ("import sys, urllib.request\n"
          "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\n")


@dataclass
class BridgeCollector(Collector):
    """A collector serving on the lab bridge's address rather than loopback."""

    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self, port: int | None = None, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        port = port or free_port()
        log = open(self.home / f"serve-{port}.log", "wb")  # noqa: SIM115 - kept open for the process
        proc = subprocess.Popen([str(BIN), "serve", "--listen", f"{self.host}:{port}", "--log-level", "warning"],
                                env={**self.env, **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        self.ports.append(port)
        self.port = port
        wait_ready(self.url, self.ca, proc)
        return proc


class NetnsAgent(AgentProcess):
    """`precaution agent run` inside a namespace; its metrics (on the namespace's loopback) are read from there."""

    def __init__(self, tmp: Path, netns: str, toml: str = "") -> None:
        super().__init__(tmp, toml)
        self.netns = netns

    def start(self) -> NetnsAgent:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(["ip", "netns", "exec", self.netns, sys.executable, "-m", "agent.cli.main",
                                          "agent", "run", "--config", str(self.config)], cwd=ROOT, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT)
        return self

    def text(self) -> str | None:
        done = subprocess.run(["ip", "netns", "exec", self.netns, sys.executable, "-c", _FETCH, self.url],
                              capture_output=True, text=True, timeout=30)
        return done.stdout if done.returncode == 0 else None

    def enrol(self, c: Collector, unit: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.netns, sys.executable, "-m", "agent.cli.main", "agent",
                               "enroll", c.url, "--token", c.token(unit), "--unit", unit, "--ca", c.ca, "--config",
                               str(self.config)], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=120)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    the_lab = Lab(n_hosts=1, ssh=False)
    try:
        yield the_lab
    finally:
        the_lab.close()


@pytest.fixture()
def collector(tmp_path: Path, lab: Lab) -> Iterator[BridgeCollector]:
    home = tmp_path / "collector"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRECAUTION_COLLECTOR_")}
    env.update({"PRECAUTION_COLLECTOR_HOME": str(home), **FAST_ENV})
    done = subprocess.run([str(BIN), "init", "--server-name", lab.bridge_ip], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    password = re.search(r"password \(shown once\)[^:]*: (\S+)", done.stdout)
    token = re.search(r'metrics_token = "([^"]+)"', (home / "config.toml").read_text())
    assert password and token
    c = BridgeCollector(home, f"sqlite:///{home}/collector.db", "sqlite", password.group(1), token.group(1), env,
                        host=lab.bridge_ip)
    try:
        c.start()
        yield c
    finally:
        c.stop()
    shutil.rmtree(home, ignore_errors=True)


def _link(lab: Lab, host: LabHost, side: str, state: str) -> None:
    argv = ["ip", "-n", host.netns, "link", "set", "eth0", state] if side == "namespace" else \
        ["ip", "link", "set", host.veth, state]
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def _cut_failures(f: Figures) -> float:
    return sum((f.get("precaution_agent_push_failures_total", reason=r) or 0) for r in ("unreachable", "timeout"))


def _collector_items(c: Collector, agent_id: str) -> tuple[list[str], list[int]]:
    with db(c) as conn:
        runs = [r[0] for r in conn.execute("SELECT run_id FROM runs WHERE agent_id = ?", (agent_id,))]
        records = [r[0] for r in conn.execute("SELECT seq FROM record_entries WHERE agent_id = ? ORDER BY seq",
                                              (agent_id,))]
    return runs, records


def _spool_keys(agent: AgentProcess) -> list[str]:
    spool = Spool(agent.state / "spool.db", check=False)
    try:
        return [q.key for q in spool.batch(100_000, max_bytes=2**40)]
    finally:
        spool.close()


def _unshipped_record_seqs(agent: AgentProcess) -> set[int]:
    """Record entries written after the agent last copied the record into its spool (a run that ended as the
    agent stopped): they wait in record.jsonl, past the offset the spool keeps, for the next start."""
    spool = Spool(agent.state / "spool.db", check=False)
    try:
        offset = int(spool.get_meta("record_offset") or 0)
    finally:
        spool.close()
    tail = (agent.state / "record.jsonl").read_bytes()[offset:]
    return {int(json.loads(line)["entry"]["seq"]) for line in tail.splitlines() if line.strip()}


def _spooled(f: Figures) -> float:
    return sum(f.by("precaution_agent_spool_items", "priority").values())


@pytest.mark.parametrize("side", ["namespace", "bridge"])
def test_link_cut_and_restored_everything_exactly_once(tmp_path: Path, lab: Lab, collector: BridgeCollector,
                                                       side: str) -> None:
    host = lab.hosts[0]
    agent = NetnsAgent(tmp_path / "a", host.netns, CUT_LINK)
    agent.state.mkdir(parents=True)
    unit = unit_name()
    enrolled = agent.enrol(collector, unit)  # over the link, from inside the namespace
    assert enrolled.returncode == 0, enrolled.stderr
    agent_id = json.loads((agent.state / "identity" / "enrolment.json").read_text())["agent_id"]
    agent.start()
    try:
        # reachable before: the first run of each kind went through the link
        before = agent.wait_for(lambda f: all(ran_ok(k)(f) for k in ("self_inspection", "file_integrity",
                                                                     "own_networks"))
                                and f.get("precaution_agent_collector_up") == 1 and _spooled(f) == 0, timeout=60)
        runs_before = before.get("precaution_agent_runs_total", kind="self_inspection", outcome="ok") or 0
        failures_before = _cut_failures(before)
        _link(lab, host, side, "down")
        try:
            # during the cut: new results pile up, every push fails, nothing reaches the collector
            cut = agent.wait_for(lambda f: (f.get("precaution_agent_runs_total", kind="self_inspection",
                                                  outcome="ok") or 0) >= runs_before + 1
                                 and _cut_failures(f) >= failures_before + 2, timeout=60)
            assert cut.get("precaution_agent_collector_up") == 0
            waiting = _spool_keys(agent)
            assert any(k.startswith("run:") for k in waiting) and any(k.startswith("record:") for k in waiting)
        finally:
            _link(lab, host, side, "up")
        # reachable after: what waited went through
        after = agent.wait_for(lambda f: f.get("precaution_agent_collector_up") == 1
                               and (f.get("precaution_agent_last_successful_push_timestamp_seconds") or 0)
                               > (before.get("precaution_agent_last_successful_push_timestamp_seconds") or 0)
                               and not set(waiting) & set(_spool_keys(agent)), timeout=60)
        assert _cut_failures(after) >= _cut_failures(cut)
    finally:
        if agent.proc is not None:
            agent.stop()
    # exactly once: the collector holds each run and record entry of the agent once; each one it lacks still waits
    # on the agent (one that came after the last push, or whose push the stop cut short: a resend is deduplicated)
    kinds = agent_record_kinds(agent)
    pending = _spool_keys(agent)
    runs, records = _collector_items(collector, agent_id)
    pending_runs = {k.removeprefix("run:") for k in pending if k.startswith("run:")}
    pending_records = {int(k.removeprefix("record:")) for k in pending if k.startswith("record:")}
    pending_records |= _unshipped_record_seqs(agent)
    assert len(runs) == len(set(runs)) and len(records) == len(set(records))
    assert len(set(runs) | pending_runs) == kinds.count("scan") + kinds.count("netscan") >= 4
    assert set(records) | pending_records == set(range(1, len(kinds) + 1))
