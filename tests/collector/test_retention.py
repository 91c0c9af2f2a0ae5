"""Retention on both databases with a frozen clock: old runs (and their item keys) and batch acknowledgements go
in bounded chunks; findings, their audit trail, record entries and every run a finding or task names stay."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agent.wire.collector_api import IngestBatch
from collector.core.db import Database, open_database
from collector.core.migrate import upgrade
from collector.crud import ingest, retention
from collector.models import Agent, Batch, Finding, FindingAudit, FindingRun, RecordEntry, Run, Task
from tests.collector.client import finding, run
from tests.collector.conftest import BACKENDS, init_collector, pg_database

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)  # the frozen clock
AGENT = "r" * 32


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(pg_database()) if request.param == "postgresql" else f"sqlite:///{tmp_path}/c.db"
        db = open_database(url)
        stack.callback(db.dispose)
        upgrade(db.write_engine)
        yield db


def _seed(db: Database, now: dt.datetime = NOW) -> None:
    """Runs at 500, 450, 420, 410, 405 and 10 days before ``now`` (received when they finished)."""

    def _ago(days: int) -> dt.datetime:
        return now - dt.timedelta(days=days)

    with db.write() as s:
        agent = Agent(id=AGENT, unit="u-retention", hostname="db01", machine_id="m", boot_id="b", identity_key="k",
                      record_key="k", cert_serial="1", cert_pem="", cert_not_after=now, agent_version="",
                      enrolled_at=_ago(600), last_seen=now, record_seq=0, record_link="0" * 64)
        s.add(agent)
        s.flush()
        runs = [("old1", 500, ["f1", "f2"]), ("old2", 450, ["f1"]), ("old3", 420, ["f1"]), ("old4", 410, ["f1"]),
                ("task", 405, []), ("new", 10, ["f1"])]
        for run_id, days, fids in runs:
            probes = {"sshd": "ok"} if fids else {"other": "ok"}
            batch = IngestBatch.model_validate({
                "batch_id": f"b-{run_id}", "host": {"hostname": "db01", "machine_id": "m", "boot_id": "b"},
                "runs": [run(run_id, [finding(f) for f in fids], probes=probes, finished=_ago(days))]})
            ingest.ingest(s, agent, batch, _ago(days))
        s.add(Task(id="t1", agent_id=AGENT, unit="u-retention", reason="manual", tests=["host"], targets=[],
                   not_before=_ago(406), expires_at=_ago(400), state="done", created_at=_ago(406),
                   completed_at=_ago(405), run_id="task"))
        s.add(RecordEntry(agent_id=AGENT, seq=1, hash="0" * 64, kind="scan", time="t", line="{}",
                          received_at=_ago(500)))


def _count(db: Database, model: type[object]) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_purge_keeps_findings_their_runs_audit_and_record(database: Database) -> None:
    _seed(database)
    with database.read() as s:
        f1, f2 = (s.scalars(select(Finding).where(Finding.finding_id == fid)).one() for fid in ("f1", "f2"))
        assert (f1.first_run, f1.last_run, f2.first_run, f2.resolved_run, f2.state) == (
            "old1", "new", "old1", "old2", "resolved")
    audit, record = _count(database, FindingAudit), _count(database, RecordEntry)
    assert audit >= 1 and record == 1
    progress: list[tuple[int, int, int]] = []
    counts = retention.purge(database.write, now=NOW, runs_days=400, chunk=1,
                             progress=lambda c: progress.append((c.runs, c.item_keys, c.batches)))
    # old3 and old4 are named by no finding and no task: gone, with their item keys; one run per chunk
    assert (counts.runs, counts.item_keys, counts.batches) == (2, 2, 5)
    assert progress == [(1, 1, 0), (2, 2, 0), (2, 2, 1), (2, 2, 2), (2, 2, 3), (2, 2, 4), (2, 2, 5)]
    with database.read() as s:
        assert set(s.scalars(select(Run.run_id))) == {"old1", "old2", "task", "new"}
        assert set(s.execute(select(FindingRun.finding_id, FindingRun.run_id))) == {
            ("f1", "old1"), ("f2", "old1"), ("f1", "old2"), ("f1", "new")}
        assert set(s.scalars(select(Batch.batch_id))) == {"b-new"}
    assert _count(database, Finding) == 2
    assert _count(database, FindingAudit) == audit and _count(database, RecordEntry) == record
    assert _count(database, Task) == 1
    # nothing left to do: a second purge (another replica's, or the next round) changes nothing
    again = retention.purge(database.write, now=NOW, runs_days=400)
    assert (again.runs, again.item_keys, again.batches) == (0, 0, 0)
    # a shorter window takes the run seen 10 days ago only when no finding names it any more
    later = retention.purge(database.write, now=NOW, runs_days=5)
    assert later.runs == 0 and later.batches == 1


def test_serve_purges_by_itself(tmp_path: Path) -> None:
    c = init_collector(tmp_path / "home", None, "sqlite")
    db = open_database(c.db_url)
    try:
        _seed(db, dt.datetime.now(dt.UTC))
        c.start(extra_env={"PRECAUTION_COLLECTOR_MAINTENANCE_INTERVAL_S": "1"})
        try:
            deadline = time.monotonic() + 60
            while _count(db, Run) != 4:
                assert time.monotonic() < deadline, "serve did not purge"
                time.sleep(0.5)
            assert _count(db, Batch) == 1 and _count(db, Finding) == 2 and _count(db, RecordEntry) == 1
        finally:
            c.stop()
    finally:
        db.dispose()


def test_purge_command_reports_progress(tmp_path: Path) -> None:
    c = init_collector(tmp_path / "home", None, "sqlite")
    db = open_database(c.db_url)
    try:
        _seed(db, dt.datetime.now(dt.UTC))  # the command reads the real clock
    finally:
        db.dispose()
    done = c.cli("purge", "--days", "400")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("purging runs and batches older than 400 days")
    assert "  2 runs (2 item keys), 5 batches so far" in lines
    assert lines[-1] == "purged 2 runs (2 item keys) and 5 batches"
    bad = c.cli("purge", "--days", "0")
    assert bad.returncode == 2 and "retention_runs_days" in bad.stderr
