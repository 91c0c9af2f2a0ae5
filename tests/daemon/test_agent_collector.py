"""Agent and collector as separate real processes over real TLS (SQLite collector): enrolment, the spool drained
exactly once across a collector outage and across SIGKILLs mid-push, tasks under notice (and one refused)."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.daemon.spool import Priority, Spool
from tests.collector.conftest import FAST_ENV, Collector, running_collector, unit_name
from tests.daemon.agentproc import ROOT, AgentProcess, free_port, ran_ok

FAST_LINK = """
[collector]
push_interval = "1s"
task_poll_interval = "1s"
batch_items = 20
[self_inspection]
file_integrity_paths = ["/usr/share/doc/python3"]
"""


@pytest.fixture()
def collector(tmp_path: Path) -> Iterator[Collector]:
    with running_collector(tmp_path, "sqlite", FAST_ENV) as c:
        yield c


def enrol(agent: AgentProcess, c: Collector, unit: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli.main", "agent", "enroll", c.url, "--token", c.token(unit),
                           "--unit", unit, "--config", str(agent.config), *extra], cwd=ROOT, env=agent.env,
                          capture_output=True, text=True)


def db(c: Collector) -> sqlite3.Connection:
    return sqlite3.connect(str(c.home / "collector.db"))


def agent_record_kinds(agent: AgentProcess) -> list[str]:
    lines = (agent.state / "record.jsonl").read_text().splitlines()
    return [json.loads(line)["entry"]["kind"] for line in lines]


def spool_depth(agent: AgentProcess) -> int:
    spool = Spool(agent.state / "spool.db", check=False)
    try:
        return spool.stats().depth
    finally:
        spool.close()


def test_enrol_files_and_refusals(tmp_path: Path, collector: Collector) -> None:
    agent = AgentProcess(tmp_path / "a", FAST_LINK)
    agent.state.mkdir(parents=True)
    unit = unit_name()
    bad = subprocess.run([sys.executable, "-m", "agent.cli.main", "agent", "enroll", collector.url, "--token",
                          "not-a-real-token-000", "--unit", unit, "--ca", collector.ca, "--config", str(agent.config)],
                         cwd=ROOT, env=agent.env, capture_output=True, text=True)
    assert bad.returncode == 2 and "the collector refused the enrolment (HTTP 401" in bad.stderr, bad.stderr
    wrong_pin = enrol(agent, collector, unit, "--ca-fingerprint", "ab" * 32)
    assert wrong_pin.returncode == 2 and "presented no certificate with SHA-256" in wrong_pin.stderr
    done = enrol(agent, collector, unit, "--ca", collector.ca)
    assert done.returncode == 0, done.stderr
    assert f"unit {unit}" in done.stdout
    ident = agent.state / "identity"
    assert ident.stat().st_mode & 0o777 == 0o700
    for name in ("identity.key", "agent.crt", "collector-ca.pem", "enrolment.json"):
        assert (ident / name).stat().st_mode & 0o777 == 0o600, name
    # the server certificate's fingerprint pins it too (the collector sends no chain)
    import ssl

    pem = ssl.get_server_certificate(("127.0.0.1", collector.port))
    import hashlib

    fp = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    again = enrol(agent, collector, unit, "--ca-fingerprint", ":".join(fp[i:i + 2] for i in range(0, 64, 2)))
    assert again.returncode == 0, again.stderr
    ca = (ident / "collector-ca.pem").read_text()
    assert ca == Path(collector.ca).read_text()  # the CA it returned, checked against the pinned server cert


def test_a_kept_alive_connection_closed_while_idle_is_replaced_not_a_failure(tmp_path: Path,
                                                                            collector: Collector) -> None:
    """The collector closes a kept-alive connection after its keep-alive timeout, about the task poll interval:
    the next request on it gets no answer. The client sends it again once, newly signed, on a new connection
    (a replayed nonce would be refused); a new connection that fails is a failure as before."""
    import socket

    from agent.daemon.collector_client import CollectorClient, CollectorError
    from agent.daemon.identity import Identity, host_identity

    agent = AgentProcess(tmp_path / "a", FAST_LINK)
    agent.state.mkdir(parents=True)
    assert enrol(agent, collector, unit_name(), "--ca", collector.ca).returncode == 0
    identity = Identity(agent.state / "identity")
    enrolment = identity.enrolment()
    assert enrolment is not None
    client = CollectorClient(collector.url, str(identity.ca_path), enrolment.agent_id, identity.key(),
                             host_identity().boot_id)
    try:
        assert client.notices().notices == []
        kept = client._conn
        assert kept is not None and kept.sock is not None
        kept.sock.shutdown(socket.SHUT_RDWR)  # as the collector's side does when the connection was idle too long
        assert client.tasks().tasks == []  # answered, on a new connection
        assert client._conn is not None and client._conn is not kept
    finally:
        client.close()
    gone = CollectorClient(f"https://127.0.0.1:{free_port()}", str(identity.ca_path), enrolment.agent_id,
                           identity.key(), host_identity().boot_id)
    with pytest.raises(CollectorError) as refused:
        gone.notices()
    assert refused.value.reason == "unreachable"


def test_collector_down_then_up_everything_exactly_once(tmp_path: Path, collector: Collector) -> None:
    agent = AgentProcess(tmp_path / "a", FAST_LINK)
    agent.state.mkdir(parents=True)
    unit = unit_name()
    assert enrol(agent, collector, unit, "--ca", collector.ca).returncode == 0
    port = collector.port
    collector.stop()
    agent.start()
    try:
        agent.wait_for(lambda f: all(ran_ok(k)(f) for k in ("self_inspection", "file_integrity", "own_networks"))
                       and (f.get("precaution_agent_push_failures_total", reason="unreachable") or 0) >= 2)
        figures = agent.figures()
        assert figures is not None and figures.get("precaution_agent_collector_up") == 0
        assert figures.get("precaution_agent_enrolled") == 1
        assert spool_depth(agent) >= 6  # 3 runs and 3 record entries wait
        collector.start(port=port)
        agent.wait_for(lambda f: f.get("precaution_agent_collector_up") == 1
                       and sum(f.by("precaution_agent_spool_items", "priority").values()) == 0
                       and (f.get("precaution_agent_last_successful_push_timestamp_seconds") or 0) > 0)
    finally:
        agent.stop()
    kinds = agent_record_kinds(agent)
    # Enrolment made the record key through the record: a clean install is no "wiped record" on its first run.
    assert kinds[0] == "agent-key" and "record-break" not in kinds, kinds
    with db(collector) as conn:
        agent_id = json.loads((agent.state / "identity" / "enrolment.json").read_text())["agent_id"]
        runs = conn.execute("SELECT run_id FROM runs WHERE agent_id = ?", (agent_id,)).fetchall()
        records = conn.execute("SELECT seq FROM record_entries WHERE agent_id = ? ORDER BY seq",
                               (agent_id,)).fetchall()
    assert len(runs) == len(set(runs)) == kinds.count("scan") + kinds.count("netscan") == 3
    assert [r[0] for r in records] == list(range(1, len(kinds) + 1))
    assert spool_depth(agent) == 0


REAL_RUN: list[dict[str, object]] = []


def _synthetic_runs(agent: AgentProcess, n: int, start: int = 0) -> int:
    """Fill the spool with n copies of a real run report (new run ids): enough pushes to kill in the middle of."""
    spool = Spool(agent.state / "spool.db", max_bytes=2**30, check=False)  # the bound the agent.toml sets
    try:
        from agent.daemon.spool import SpoolItem

        real = SpoolItem("", "run", REAL_RUN[0]) if REAL_RUN else None
        if real is None:
            queued = next(q for q in spool.batch(100) if q.kind == "run" and q.body["findings"])
            REAL_RUN.append(queued.body)
            real = SpoolItem("", "run", queued.body)
        items = [SpoolItem(f"run:synthetic-{i}", "run", {**real.body, "run_id": f"synthetic-{i}"}, Priority.KEEP)
                 for i in range(start, start + n)]
        return spool.put_many(items).added
    finally:
        spool.close()


@pytest.mark.timeout(600)  # a hang guard only: beside other tests on a loaded 2-core machine the drain takes minutes
def test_sigkill_mid_push_50_times_no_loss_no_duplicate(tmp_path: Path, collector: Collector) -> None:
    toml = FAST_LINK.replace('batch_items = 20', 'batch_items = 5') + """
[schedule.self_inspection]
interval = "30d"
[schedule.file_integrity]
interval = "30d"
[schedule.own_networks]
interval = "30d"
[spool]
max_bytes = "1GiB"
"""
    agent = AgentProcess(tmp_path / "a", toml)
    agent.state.mkdir(parents=True)
    unit = unit_name()
    assert enrol(agent, collector, unit, "--ca", collector.ca).returncode == 0
    port = collector.port
    collector.stop()
    agent.start()  # one run of each kind, kept in the spool while the collector is down
    agent.wait_for(lambda f: all(ran_ok(k)(f) for k in ("self_inspection", "file_integrity", "own_networks")))
    agent.stop()
    added = _synthetic_runs(agent, 2000)
    assert added == 2000
    collector.start(port=port)
    rng = random.Random(50)
    total = 2000
    for _ in range(50):
        if spool_depth(agent) == 0:  # drained faster than the kills came: more to push through
            total += _synthetic_runs(agent, 500, start=total)
        agent.start()
        time.sleep(rng.uniform(0.4, 1.2))  # startup takes ~0.3 s; then it pushes a 5-item batch every few ms
        agent.stop(signal.SIGKILL)
    agent.start()
    try:
        agent.wait_for(lambda f: sum(f.by("precaution_agent_spool_items", "priority").values()) == 0, timeout=540)
    finally:
        agent.stop()
    agent_id = json.loads((agent.state / "identity" / "enrolment.json").read_text())["agent_id"]
    with db(collector) as conn:
        runs = [r[0] for r in conn.execute("SELECT run_id FROM runs WHERE agent_id = ?", (agent_id,))]
        records = [r[0] for r in conn.execute("SELECT seq FROM record_entries WHERE agent_id = ? ORDER BY seq",
                                              (agent_id,))]
        batches = conn.execute("SELECT COUNT(*), SUM(duplicate) FROM batches WHERE agent_id = ?",
                               (agent_id,)).fetchone()
    assert len(runs) == len(set(runs)) == total + 3
    assert {f"synthetic-{i}" for i in range(total)} <= set(runs)
    assert records == list(range(1, len(agent_record_kinds(agent)) + 1))
    assert batches[0] >= (total + 3) // 5  # runs went in batches of 5, through 50 kills
    assert spool_depth(agent) == 0


def _issue_notice(c: Collector, unit: str, start: dt.datetime, end: dt.datetime, lead_s: int) -> str:
    with c.login() as admin:
        r = admin.post("/api/v1/notices", json={
            "unit": unit, "targets": ["127.0.0.1"], "kinds": ["portscan"], "start": start.isoformat(),
            "end": end.isoformat(), "lead_time_s": lead_s, "contact": "ops@example"})
        assert r.status_code == 200, r.text
        return str(r.json()["id"])


def _task(c: Collector, unit: str, notice_id: str) -> str:
    with c.login() as admin:
        r = admin.post("/api/v1/tasks", json={"unit": unit, "notice_id": notice_id, "tests": ["portscan"],
                                              "targets": ["127.0.0.1"]})
        assert r.status_code == 200, r.text
        return str(r.json()[0]["id"])


def _task_state(c: Collector, unit: str, task_id: str) -> dict[str, object]:
    with c.login() as admin:
        tasks = admin.get("/api/v1/tasks", params={"unit": unit}).json()
    return next(t for t in tasks if t["id"] == task_id)


def _wait_task(c: Collector, unit: str, task_id: str, states: set[str], timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = _task_state(c, unit, task_id)
        if t["state"] in states:
            return t
        time.sleep(0.5)
    raise AssertionError(f"task {task_id} still {t['state']}")


NOTICE_LINK = FAST_LINK + """
[schedule.self_inspection]
interval = "30d"
[schedule.file_integrity]
interval = "30d"
[schedule.own_networks]
interval = "30d"
"""


def _notice_agent(tmp_path: Path, c: Collector, unit: str, env: dict[str, str] | None = None) -> AgentProcess:
    agent = AgentProcess(tmp_path / "a", NOTICE_LINK, env=env)
    agent.state.mkdir(parents=True)
    (agent.state / "config.toml").write_text(f'[notice]\nunit = "{unit}"\nlead_time = "2s"\n')
    assert enrol(agent, c, unit, "--ca", c.ca).returncode == 0
    return agent


def test_task_under_a_valid_notice_runs(tmp_path: Path, collector: Collector) -> None:
    unit = unit_name()
    agent = _notice_agent(tmp_path, collector, unit)
    now = dt.datetime.now(dt.UTC)
    notice_id = _issue_notice(collector, unit, now + dt.timedelta(seconds=12), now + dt.timedelta(minutes=10), 2)
    agent.start()
    try:
        task_id = _task(collector, unit, notice_id)
        done = _wait_task(collector, unit, task_id, {"done", "failed"})
        assert done["state"] == "done", done["message"]
        agent.wait_for(lambda f: (f.get("precaution_agent_tasks_total", outcome="completed") or 0) >= 1)
    finally:
        agent.stop()
    kinds = agent_record_kinds(agent)
    assert "acknowledgement" in kinds and "netscan" in kinds
    with db(collector) as conn:
        acks = conn.execute("SELECT COUNT(*) FROM notice_acks WHERE notice_id = ?", (notice_id,)).fetchone()[0]
        run = conn.execute("SELECT notice_id FROM runs WHERE task_id = ?", (task_id,)).fetchone()
    assert acks == 1 and run == (notice_id,)


@pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime missing (make deps installs it)")
def test_task_under_an_expired_notice_is_refused_on_the_agent(tmp_path: Path, collector: Collector) -> None:
    """The agent's clock runs 4 minutes ahead (within the collector's 5-minute skew allowance): the collector
    still hands out the task, the agent finds the notice's window over, refuses, records and reports it."""
    unit = unit_name()
    agent = _notice_agent(tmp_path, collector, unit)
    now = dt.datetime.now(dt.UTC)
    opens = now + dt.timedelta(seconds=6)
    notice_id = _issue_notice(collector, unit, opens, now + dt.timedelta(seconds=90), 2)
    task_id = _task(collector, unit, notice_id)
    time.sleep(max(0.0, (opens - dt.datetime.now(dt.UTC)).total_seconds()) + 1)  # the window is open at the collector
    agent.env["LD_PRELOAD"] = subprocess.run(["sh", "-c", "ls /usr/lib/*/faketime/libfaketime.so.1"],
                                             capture_output=True, text=True).stdout.strip()
    agent.env["FAKETIME"] = "+240s"
    agent.env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"  # a faked monotonic clock hangs condition waits
    agent.start()
    try:
        try:
            failed = _wait_task(collector, unit, task_id, {"done", "failed"}, timeout=60)
        except AssertionError:
            raise AssertionError(agent.log.read_text()[-4000:]) from None
        agent.wait_for(lambda f: (f.get("precaution_agent_tasks_total", outcome="refused") or 0) >= 1)
    finally:
        agent.stop()
    assert failed["state"] == "failed" and "refused on the agent" in str(failed["message"])
    assert "expired" in str(failed["message"])
    entries = [json.loads(line)["entry"] for line in (agent.state / "record.jsonl").read_text().splitlines()]
    refusals = [e for e in entries if e["kind"] == "refusal" and e.get("notice_id") == notice_id]
    assert refusals and any("expired" in json.dumps(e) for e in refusals)
    assert not any(e["kind"] == "netscan" and e.get("notice_id") == notice_id for e in entries)  # nothing tested
    with db(collector) as conn:  # the refusal reached the collector in the record
        kinds = [r[0] for r in conn.execute("SELECT kind FROM record_entries ORDER BY seq")]
    assert "refusal" in kinds


def test_damaged_spool_is_set_aside_and_reported_to_the_collector(tmp_path: Path, collector: Collector) -> None:
    agent = AgentProcess(tmp_path / "a", NOTICE_LINK)
    agent.state.mkdir(parents=True)
    unit = unit_name()
    assert enrol(agent, collector, unit, "--ca", collector.ca).returncode == 0
    (agent.state / "spool.db").write_bytes(b"this is not an SQLite database, a crash left it like this" * 100)
    agent.start()
    try:
        agent.wait_for(lambda f: ran_ok("self_inspection")(f) and f.get("precaution_agent_spool_damaged_files") == 1
                       and sum(f.by("precaution_agent_spool_items", "priority").values()) == 0)
    finally:
        agent.stop()
    assert "is damaged" in agent.log.read_text()
    agent_id = json.loads((agent.state / "identity" / "enrolment.json").read_text())["agent_id"]
    with db(collector) as conn:
        rows = conn.execute("SELECT rule_id, severity, state FROM findings WHERE agent_id = ? AND probe = "
                            "'agent_spool'", (agent_id,)).fetchall()
    assert rows == [("PC-AGENT-001", "high", "open")]
    assert len(list(agent.state.glob("spool.damaged-*.db"))) == 1


def test_revoked_agent_keeps_its_results_and_says_why(tmp_path: Path, collector: Collector) -> None:
    agent = AgentProcess(tmp_path / "a", NOTICE_LINK)
    agent.state.mkdir(parents=True)
    unit = unit_name()
    assert enrol(agent, collector, unit, "--ca", collector.ca).returncode == 0
    agent_id = json.loads((agent.state / "identity" / "enrolment.json").read_text())["agent_id"]
    with collector.login() as admin:
        assert admin.post(f"/api/v1/agents/{agent_id}/revoke").status_code == 200
    agent.start()
    try:
        figures = agent.wait_for(lambda f: ran_ok("self_inspection")(f)
                                 and (f.get("precaution_agent_push_failures_total", reason="http_4xx") or 0) >= 1)
        assert figures.get("precaution_agent_collector_up") == 0
        status = subprocess.run([sys.executable, "-m", "agent.cli.main", "agent", "status", "--config",
                                 str(agent.config)], cwd=ROOT, env=agent.env, capture_output=True, text=True)
        assert "Collector reachable: no" in status.stdout
    finally:
        agent.stop()
    assert "collector answered HTTP 40" in agent.log.read_text()
    assert spool_depth(agent) >= 2  # nothing was deleted: the results wait for a new enrolment
    with db(collector) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs WHERE agent_id = ?", (agent_id,)).fetchone()[0] == 0
