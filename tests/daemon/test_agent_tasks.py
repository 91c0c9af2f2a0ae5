"""Collector tasks of every kind through a real agent daemon: a real collector over TLS queues a remote SSH test
under a notice, the agent (a separate process) verifies the notice itself, logs in to a real OpenSSH server in
a lab network namespace with the credentials of agent.toml's [remote], and the findings arrive at the collector.
A target without configured credentials is refused, and the refusal is visible at the collector. A task whose
run the agent's watchdog kills (memory budget) is reported failed with the reason and not run again."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.daemon.spool import Spool
from agent.wire.collector_api import TaskItem
from probes.key_fingerprint import sha256_fingerprint
from tests.collector.conftest import FAST_ENV, Collector, running_collector, unit_name
from tests.conftest import needs_root
from tests.daemon.agentproc import AgentProcess
from tests.daemon.test_agent_collector import FAST_LINK, _task_state, _wait_task, db, enrol
from tests.remote.conftest import UNIT, SshLab, build_ssh_lab, close_ssh_lab_parts

pytestmark = [pytest.mark.root, needs_root()]

QUIET = FAST_LINK + """
[schedule.self_inspection]
interval = "30d"
enabled = false
[schedule.file_integrity]
interval = "30d"
enabled = false
[schedule.own_networks]
interval = "30d"
enabled = false
"""


@pytest.fixture(scope="module")
def one_ssh_host() -> Iterator[SshLab]:
    lab = build_ssh_lab(1)
    try:
        yield lab
    finally:
        close_ssh_lab_parts(lab.lab, lab.hosts, lab.dir)


@pytest.fixture()
def collector(tmp_path: Path) -> Iterator[Collector]:
    with running_collector(tmp_path, "sqlite", FAST_ENV) as c:
        yield c


def _host_key_fingerprint(lab: SshLab) -> str:
    pub = (lab.hosts[0].dir / "ssh_host_ed25519_key.pub").read_text().split()
    return sha256_fingerprint(base64.b64decode(pub[1]))


def _notice(c: Collector, unit: str, targets: list[str], kinds: list[str]) -> str:
    """Open in 8 s: the (running) agent fetches and acknowledges it more than its 2 s lead time before."""
    now = dt.datetime.now(dt.UTC)
    with c.login() as admin:
        r = admin.post("/api/v1/notices", json={
            "unit": unit, "targets": targets, "kinds": kinds, "start": (now + dt.timedelta(seconds=8)).isoformat(),
            "end": (now + dt.timedelta(minutes=10)).isoformat(), "lead_time_s": 2, "contact": "ops@example"})
        assert r.status_code == 200, r.text
        return str(r.json()["id"])


def _task(c: Collector, unit: str, notice_id: str | None, tests: list[str], targets: list[str]) -> str:
    with c.login() as admin:
        r = admin.post("/api/v1/tasks", json={"unit": unit, "notice_id": notice_id, "tests": tests,
                                              "targets": targets})
        assert r.status_code == 200, r.text
        return str(r.json()[0]["id"])


def _wait_record(c: Collector, kind: str, timeout: float = 120) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db(c) as conn:
            row = conn.execute("SELECT line FROM record_entries WHERE kind = ?", (kind,)).fetchone()
        if row:
            return str(row[0])
        time.sleep(0.5)
    raise AssertionError(f"no {kind} record entry reached the collector")


def test_remote_task_runs_refuses_without_credentials_and_a_killed_task_is_failed_once(
        tmp_path: Path, collector: Collector, one_ssh_host: SshLab) -> None:
    lab = one_ssh_host
    ip = lab.hosts[0].ip
    missing = ip.rsplit(".", 1)[0] + ".250"  # in the lab's range, never contacted: refused before connecting
    unit = unit_name()
    remote = f"""
[remote]
user = "root"
probes = ["sshd", "sysctl"]
connect_timeout = "5s"
[remote.targets."{ip}"]
key = "{lab.client_key}"
host_keys = ["{_host_key_fingerprint(lab)}"]
"""
    agent = AgentProcess(tmp_path / "a", QUIET + remote)
    agent.state.mkdir(parents=True)
    (agent.state / "config.toml").write_text(f'[notice]\nunit = "{unit}"\nlead_time = "2s"\n')
    assert enrol(agent, collector, unit, "--ca", collector.ca).returncode == 0
    agent.start()
    try:
        agent.wait_for(lambda f: f.get("precaution_agent_collector_up") == 1)  # polling: it gets the notice soon
        notice_id = _notice(collector, unit, [ip, missing], ["host"])
        ran = _task(collector, unit, notice_id, ["host"], [ip])
        refused = _task(collector, unit, notice_id, ["host"], [missing])
        mixed = _task(collector, unit, notice_id, ["host"], [ip, missing])
        done = _wait_task(collector, unit, ran, {"done", "failed"})
        assert done["state"] == "done", done["message"]
        failed = _wait_task(collector, unit, refused, {"done", "failed"})
        agent.wait_for(lambda f: (f.get("precaution_agent_tasks_total", outcome="failed") or 0) >= 1)
        part = _task_state(collector, unit, mixed)
    finally:
        agent.stop()
    assert failed["state"] == "failed"
    assert "refused on the agent" in str(failed["message"]) and "no SSH credentials" in str(failed["message"])
    # One target tested, one refused: the run arrived (and marked the task done), the agent's completion then
    # says what failed.
    assert part["state"] == "failed" and part["run_id"] and f"{missing}: no SSH credentials" in str(part["message"])
    with db(collector) as conn:
        run = conn.execute("SELECT run_id, kind, notice_id, probes_ok, findings FROM runs WHERE task_id = ?",
                           (ran,)).fetchone()
        assert run is not None and run[1:3] == ("remote", notice_id)
        assert sorted(json.loads(run[3])) == ["sshd", "sysctl"]  # both probes ran completely over SSH
        stored = conn.execute("SELECT COUNT(*) FROM finding_runs WHERE run_id = ?", (run[0],)).fetchone()[0]
        assert stored == run[4] and stored >= 1  # every finding of the run arrived
        assert conn.execute("SELECT COUNT(*) FROM runs WHERE task_id = ?", (refused,)).fetchone()[0] == 0
        lines = [r[0] for r in conn.execute("SELECT line FROM record_entries WHERE kind = 'refusal'")]
        kinds = [r[0] for r in conn.execute("SELECT kind FROM record_entries ORDER BY seq")]
    assert any("no-credentials" in line and missing in line for line in lines)  # the refusal, in the record
    assert "remote" in kinds and "acknowledgement" in kinds

    # The same agent with a run budget no run fits in: the watchdog kills the task's run.
    agent.config.write_text(agent.config.read_text() + '[limits]\nrun_memory = "20MiB"\n')
    killed = _task(collector, unit, None, ["portscan"], ["127.0.0.1"])  # loopback: no notice needed
    late = _notice(collector, unit, [ip], ["host"])  # its acknowledging run is killed too
    agent.start()
    try:
        state = _wait_task(collector, unit, killed, {"done", "failed"})
        recorded = _wait_record(collector, "task-failed")
        figures = agent.wait_for(lambda f: (f.get("precaution_agent_tasks_total", outcome="failed") or 0) >= 1
                                 and (f.get("precaution_agent_runs_total", kind="notices", outcome="killed") or 0) >= 1)
    finally:
        agent.stop()
    assert killed in recorded and "killed: memory budget 20 MiB exceeded" in recorded  # in the record too
    assert state["state"] == "failed" and str(state["message"]).startswith("killed: memory budget 20 MiB exceeded")
    assert figures.get("precaution_agent_runs_total", kind="task", outcome="killed") == 1
    inbox = agent.state / "inbox"
    assert not list(inbox.glob(f"task-{killed}*.json")) and not list(inbox.glob("*.attempts"))  # not run again
    assert _task_state(collector, unit, killed)["leases"] == 1
    # the notice whose run was killed is set aside, not offered to a new run for ever
    assert figures.get("precaution_agent_runs_total", kind="notices", outcome="killed") == 1
    assert [p.name for p in inbox.glob(f"notice-{late}*")] == [f"notice-{late}.unhandled"]


# --- each kind in the task's child process code (agent.daemon.inbox.run_task), in process --------------------

@pytest.fixture()
def task_env(tmp_path: Path) -> Iterator[tuple[Path, Path, Spool]]:
    """A state dir whose config.toml names the unit (no lead time) and trusts a test issuer; a spool."""
    from agent.cli.main import main
    from agent.notice import add_trusted, load_issuer_key
    from agent.state import StateDir

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "config.toml").write_text(f'[notice]\nunit = "{UNIT}"\nlead_time = "0s"\n')
    key = tmp_path / "issuer.key"
    assert main(["notice", "keygen", str(key)]) == 0
    add_trusted("State Security Bureau (test)", load_issuer_key(key).public_key(), StateDir(state))
    spool = Spool(state / "spool.db", check=False)
    try:
        yield state, key, spool
    finally:
        spool.close()


def _signed_task(tmp: Path, key: Path, tests: list[str], targets: list[str], notice_targets: list[str]) -> TaskItem:
    import time

    from agent.notice import Notice, RateLimits, load_issuer_key, sign_notice
    from agent.wire.notice import NoticeDocument

    now = dt.datetime.now(dt.UTC)
    notice = Notice(f"N-{tmp.name[-12:]}", "State Security Bureau (test)", UNIT, "+86 10 0000 0000",
                    tuple(notice_targets), tuple(tests), now + dt.timedelta(seconds=1), now + dt.timedelta(hours=1),
                    RateLimits(None, None), dt.timedelta(0), now)
    from agent.cli.main import main

    data = sign_notice(notice, load_issuer_key(key)).to_document()
    (tmp / "notice.json").write_bytes(data)
    # Acknowledged ahead of its window, as the daemon does when the collector delivers it (PRECAUTION_HOME is
    # this state directory: tests.conftest._isolated_state)
    assert main(["notice", "ack", str(tmp / "notice.json"), "--unit", UNIT, "--lead-time", "0"]) == 0
    doc = NoticeDocument.model_validate_json(data)
    time.sleep(max(0.0, (notice.window_start - dt.datetime.now(dt.UTC)).total_seconds()) + 0.05)
    later = (now + dt.timedelta(hours=1)).isoformat()
    return TaskItem(task_id=f"t-{uuid.uuid4().hex[:8]}", notice_id=notice.id, tests=tests, targets=targets,
                    not_before=now.isoformat(), expires_at=later, lease_until=later, notice=doc)


def _run(state: Path, spool: Spool, task: TaskItem, toml: str = "",
         run_id: str = "task-run") -> tuple[str, str, list[dict[str, Any]]]:
    from agent.daemon import inbox
    from agent.daemon.config import parse_config
    from agent.daemon.job import context
    from agent.state import StateDir

    config = parse_config(toml, "agent.toml")
    box = state / "inbox"
    box.mkdir(exist_ok=True)
    outcome, message, _ = inbox.run_task(context(config, StateDir(state), "task"), config, spool, task, box,
                                         run_id)
    done = json.loads((box / f"done-{task.task_id}.json").read_text())
    assert done["outcome"] == outcome and done["completion"]["message"] == message
    return outcome, message, [i.body for i in spool.batch() if i.kind == "run"]


def test_passive_task_listens_on_the_configured_interface(task_env: tuple[Path, Path, Spool],
                                                           one_ssh_host: SshLab, tmp_path: Path) -> None:
    state, key, spool = task_env
    lab = one_ssh_host.lab
    task = _signed_task(tmp_path, key, ["passive"], [str(lab.network)], [str(lab.network)])
    outcome, message, runs = _run(state, spool, task, f'[passive]\ninterface = "{lab.bridge}"\nduration = "1s"\n')
    assert outcome == "completed", message
    (run,) = runs
    assert run["task_id"] == task.task_id and run["notice_id"] == task.notice_id and run["kind"] == "netscan"
    assert [(p["id"], p["status"]) for p in run["probes"]] == [("link", "ok")]  # listened only: no port scan
    entries = [json.loads(line)["entry"] for line in (state / "record.jsonl").read_text().splitlines()]
    (net,) = [e for e in entries if e["kind"] == "netscan"]
    assert net["tests"] == ["passive"] and net["notice_id"] == task.notice_id


def test_passive_task_without_an_interface_is_refused(task_env: tuple[Path, Path, Spool], tmp_path: Path) -> None:
    state, key, spool = task_env
    task = _signed_task(tmp_path, key, ["passive"], ["10.231.250.0/24"], ["10.231.250.0/24"])
    outcome, message, runs = _run(state, spool, task)
    assert outcome == "refused" and "[passive] interface" in message and not runs
    refusals = [json.loads(line)["entry"] for line in (state / "record.jsonl").read_text().splitlines()
                if '"refusal"' in line]
    assert any(r["summary"]["code"] == "not-configured" for r in refusals)


def test_remote_task_without_a_notice_is_refused(task_env: tuple[Path, Path, Spool]) -> None:
    state, _key, spool = task_env
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    task = TaskItem(task_id="t-no-notice", notice_id=None, tests=["host"], targets=["10.231.250.7"],
                    not_before=later, expires_at=later, lease_until=later, notice=None)
    outcome, message, runs = _run(state, spool, task)
    assert outcome == "refused" and "needs an advance notice" in message and not runs


def test_a_task_without_targets_is_refused_not_done(task_env: tuple[Path, Path, Spool]) -> None:
    state, _key, spool = task_env
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    task = TaskItem(task_id="t-empty", notice_id=None, tests=["host"], targets=[], not_before=later,
                    expires_at=later, lease_until=later, notice=None)
    outcome, message, runs = _run(state, spool, task)
    assert outcome == "refused" and "names no targets" in message and not runs


def test_host_task_of_the_agents_own_host_runs_the_host_probes(task_env: tuple[Path, Path, Spool],
                                                                tmp_path: Path) -> None:
    """Under a notice that names this host (loopback) for host tests: the host probes run here, no SSH."""
    state, key, spool = task_env
    task = _signed_task(tmp_path, key, ["host"], ["127.0.0.1"], ["127.0.0.1"])
    outcome, message, runs = _run(state, spool, task, '[remote]\nprobes = ["sysctl"]\n')
    assert outcome == "completed", message
    (run,) = runs
    assert run["kind"] == "scan" and run["task_id"] == task.task_id
    assert [p["id"] for p in run["probes"]] == ["sysctl"]


def test_a_failed_task_is_in_the_record(task_env: tuple[Path, Path, Spool], capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.cli.main import main
    from agent.daemon import inbox
    from agent.daemon.config import DaemonConfig
    from agent.daemon.job import context
    from agent.state import StateDir

    state, _key, _spool = task_env
    box = state / "inbox"
    box.mkdir()
    (box / "failed-t9.json").write_text(json.dumps({
        "task_id": "t9", "reason": "killed: memory budget 400 MiB exceeded (peak 512 MiB)",
        "task": {"task_id": "t9", "notice_id": "N-1", "tests": ["host"], "targets": ["10.231.250.9"]}}))
    assert inbox.record_failed_tasks(context(DaemonConfig(), StateDir(state), "task_failed"), box) == 1
    assert not list(box.iterdir())
    assert main(["record", "verify"]) == 0
    monkeypatch.setenv("COLUMNS", "400")  # one table row per line
    for lang, words in (("en", ("task-failed", "task t9 failed: killed: memory budget 400 MiB exceeded")),
                        ("zh-CN", ("任务失败", "任务 t9 失败：killed: memory budget 400 MiB exceeded"))):
        capsys.readouterr()
        assert main(["record", "show", "--lang", lang]) == 0
        out = capsys.readouterr().out
        assert all(w in out for w in words), out


def test_a_retest_task_reruns_the_findings_host_probe_here(task_env: tuple[Path, Path, Spool]) -> None:
    """The collector's re-test (Art. 28) names the finding's probe and the run's host, with no notice: a host
    probe of this host runs here; on another host, or for a network probe, it is refused with the reason."""
    from agent.daemon.task_runs import own_host_names

    state, _key, spool = task_env
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    (me,) = own_host_names()

    def retest(tests: list[str], target: str) -> TaskItem:
        return TaskItem(task_id=f"t-{uuid.uuid4().hex[:8]}", notice_id=None, tests=tests, targets=[target],
                        not_before=later, expires_at=later, lease_until=later, notice=None)

    outcome, message, runs = _run(state, spool, retest(["sysctl"], me))
    assert outcome == "completed", message
    (run,) = runs
    assert run["kind"] == "scan" and [p["id"] for p in run["probes"]] == ["sysctl"] and run["host"] == me
    outcome, message, _ = _run(state, spool, retest(["sysctl"], "db07.example"))
    assert outcome == "refused" and "runs on this host only, not on db07.example" in message
    outcome, message, _ = _run(state, spool, retest(["ports"], me))
    assert outcome == "refused" and "a re-test of network probe ports is a network task" in message
    outcome, message, _ = _run(state, spool, retest(["nonsense"], me))
    assert outcome == "refused" and "no such test kind or probe nonsense" in message


def test_an_own_network_run_does_not_resolve_a_lab_targets_finding(task_env: tuple[Path, Path, Spool],
                                                                   one_ssh_host: SshLab, tmp_path: Path,
                                                                   collector: Collector) -> None:
    """Through the agent's real task path and the real collector: a notice port scan of the lab (one host up,
    one address nobody answers) and a loopback own-network scan each name only what they covered; the loopback
    run resolves a closed loopback port's finding and leaves the lab's alone; the lab run resolves its own
    closed port's finding but not that of the address that was down."""
    import ipaddress
    import socket

    from tests.collector.client import finding, iso, run

    state, key, spool = task_env
    up = one_ssh_host.hosts[0].ip
    down = str(ipaddress.ip_network(str(one_ssh_host.lab.network))[200])
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    lab_task = _signed_task(tmp_path, key, ["portscan"], [up, down], [str(one_ssh_host.lab.network)])
    own_task = TaskItem(task_id=f"t-{uuid.uuid4().hex[:8]}", notice_id=None, tests=["portscan"],
                        targets=["127.0.0.1"], not_before=later, expires_at=later, lease_until=later, notice=None)
    for task in (lab_task, own_task):
        outcome, message, _ = _run(state, spool, task, run_id=f"run-{task.task_id}")
        assert outcome == "completed", message
    runs = {r["task_id"]: r for r in (i.body for i in spool.batch() if i.kind == "run")}
    lab_run, own_run = runs[lab_task.task_id], runs[own_task.task_id]
    (lab_cov,) = lab_run["coverage"]["networks"]
    assert lab_run["coverage"]["host"] is False and lab_cov["targets"] == [f"{up}/32"]  # not the silent address
    (own_cov,) = own_run["coverage"]["networks"]
    assert own_cov["targets"] == ["127.0.0.1/32"] and set(own_cov["probes"]) >= {"hosts", "ports"}

    def closed_port(ip: str, ranges: list[str]) -> int:
        for text in ranges:
            lo, _, hi = text.partition("-")
            for port in range(int(lo), int(hi or lo) + 1):
                if port == 22:
                    continue
                with socket.socket() as s:
                    s.settimeout(1.0)
                    if s.connect_ex((ip, port)) != 0:
                        return port
        raise AssertionError(f"no closed port on {ip}")

    lo_port = closed_port("127.0.0.1", own_cov["tcp_ports"])
    lab_port = next(int(t.partition("-")[0]) for t in lab_cov["tcp_ports"] if not t.startswith("22"))

    def seeded(ip: str, port: int) -> dict[str, Any]:
        return finding(f"seed-{ip}-{port}", host=ip, probe="ports", rule="PC-NET-001", subject=f"{ip}|tcp|{port}")

    seeds = [seeded(up, lab_port), seeded(down, lab_port), seeded("127.0.0.1", lo_port)]
    unit = unit_name()
    sim = collector.agent(unit)
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    everything = {"host": False, "networks": [{"probes": ["ports"], "targets": [up, down, "127.0.0.1"],
                                               "tcp_ports": ["1-65535"]}]}
    assert sim.ingest(sim.batch(runs=[run("seed", seeds, kind="netscan", finished=earlier, coverage=everything,
                                          probes={"ports": "ok"}, host=own_run["host"])])).status_code == 200
    assert iso(earlier) < own_run["started"]

    def states() -> dict[str, str]:
        with collector.login() as admin:
            items = admin.get("/api/v1/findings", params={"unit": unit, "state": "all"}).json()["items"]
        return {i["finding_id"]: i["state"] for i in items}

    r = sim.ingest(sim.batch(runs=[own_run]))
    assert r.status_code == 200, r.text
    assert states() == {f"seed-{up}-{lab_port}": "open", f"seed-{down}-{lab_port}": "open",
                        f"seed-127.0.0.1-{lo_port}": "resolved"}
    r = sim.ingest(sim.batch(runs=[lab_run]))
    assert r.status_code == 200, r.text
    assert states() == {f"seed-{up}-{lab_port}": "resolved", f"seed-{down}-{lab_port}": "open",
                        f"seed-127.0.0.1-{lo_port}": "resolved"}
