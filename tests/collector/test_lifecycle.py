"""Rectification lifecycle (Art. 27, 28): working days (PRC holidays and 调休, per-unit overrides, a year without
data warned about), SLA deadlines, a frozen clock on both databases, and the re-test flow over HTTPS."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.core.db import Database, open_database
from collector.core.migrate import upgrade
from collector.core.workdays import CHINA, WorkCalendar
from collector.crud import ingest, lifecycle
from collector.models import Agent, CalendarOverride, Finding, FindingAudit, UnitSettings
from tests.collector.client import finding, run
from tests.collector.conftest import BACKENDS, Collector, pg_database, unit_name

D = dt.date.fromisoformat


def test_fifteen_working_days_skip_national_day_and_count_the_adjusted_saturday() -> None:
    # 2026: 1-7 October off; Saturday 10 October is a working day (调休)
    count = WorkCalendar().add_working_days(D("2026-09-30"), 15)
    assert count.due == D("2026-10-27") and count.warnings == []


def test_a_weekend_is_not_counted() -> None:
    assert WorkCalendar().add_working_days(D("2026-06-05"), 1).due == D("2026-06-08")  # Friday -> Monday


def test_a_year_without_data_is_an_explicit_warning_and_an_override_list_covers_it() -> None:
    bare = WorkCalendar().add_working_days(D("2026-12-20"), 15)
    assert bare.due == D("2027-01-08")  # weekends only: 1 January counted as a working day
    assert len(bare.warnings) == 1 and "2027" in bare.warnings[0]
    covered = WorkCalendar({D("2027-01-01"): False}).add_working_days(D("2026-12-20"), 15)
    assert covered.due == D("2027-01-11") and covered.warnings == []


def test_a_unit_override_changes_a_day_the_library_knows() -> None:
    local = WorkCalendar({D("2026-10-27"): False}).add_working_days(D("2026-09-30"), 15)
    assert local.due == D("2026-10-28")


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(pg_database()) if request.param == "postgresql" else f"sqlite:///{tmp_path}/c.db"
        db = open_database(url)
        stack.callback(db.dispose)
        upgrade(db.write_engine)
        yield db


def _china(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=CHINA)


def _seed(db: Database, unit: str, now: dt.datetime, severity: str = "high") -> int:
    from agent.wire.collector_api import IngestBatch

    with db.write() as s:
        agent = Agent(id="a" * 32, unit=unit, hostname="db01", machine_id="m", boot_id="b", identity_key="k",
                      record_key="k", cert_serial="1", cert_pem="", cert_not_after=now + dt.timedelta(days=365),
                      agent_version="", enrolled_at=now, last_seen=now, record_seq=0, record_link="0" * 64)
        s.add(agent)
        s.flush()
        batch = IngestBatch.model_validate({"batch_id": "b1", "host": {"hostname": "db01", "machine_id": "m",
                                                                       "boot_id": "b"},
                                            "runs": [run("r1", [finding("f1", severity=severity)], finished=now)]})
        ingest.ingest(s, agent, batch, now)
        return int(s.query(Finding.id).filter_by(finding_id="f1").one()[0])


def test_lifecycle_with_a_frozen_clock_across_a_weekend_and_a_holiday(database: Database) -> None:
    unit = unit_name()
    friday = _china("2026-09-25T10:00:00")
    pk = _seed(database, unit, friday)
    with database.write() as s:
        s.add(UnitSettings(unit=unit, sla_high=10))
    with database.write() as s:
        f = s.get(Finding, pk)
        assert f is not None
        lifecycle.transition(s, f, lifecycle.Change("rectification_ordered", "fix sshd", "li.ming"), friday, 15)
        assert f.deadline == friday + dt.timedelta(days=10)  # the unit's SLA for high, not the default 30
    report = _china("2026-09-30T16:00:00")
    with database.write() as s:
        f = s.get(Finding, pk)
        assert f is not None
        with pytest.raises(Exception, match="note"):
            lifecycle.transition(s, f, lifecycle.Change("reported_rectified", "  ", "li.ming"), report, 15)
        lifecycle.transition(s, f, lifecycle.Change("reported_rectified", "PermitRootLogin no", "li.ming"), report, 15)
        assert f.retest_due is not None
        assert f.retest_due.astimezone(CHINA).date() == D("2026-10-27")
        assert f.calendar_warning is None
    with database.read() as s:
        audit = s.query(FindingAudit).filter_by(finding=pk).order_by(FindingAudit.id).all()
        assert [(a.actor, a.from_state, a.to_state) for a in audit] == [
            ("li.ming", "open", "rectification_ordered"), ("li.ming", "rectification_ordered", "reported_rectified")]
        assert audit[1].at == report and "2026-10-27" in audit[1].note


def test_a_report_crossing_into_a_year_without_data_carries_the_warning(database: Database) -> None:
    unit = unit_name()
    now = _china("2026-12-20T09:00:00")
    pk = _seed(database, unit, now)
    with database.write() as s:
        f = s.get(Finding, pk)
        assert f is not None
        lifecycle.transition(s, f, lifecycle.Change("reported_rectified", "done", "ops"), now, 15)
        assert f.calendar_warning is not None and "2027" in f.calendar_warning
    with database.write() as s:
        s.add(CalendarOverride(unit=unit, day=D("2027-01-01"), workday=False, note="New Year"))
        f = s.get(Finding, pk)
        assert f is not None
        lifecycle.transition(s, f, lifecycle.Change("risk_accepted", "vendor box", "ops", "zhang.wei",
                                                    now + dt.timedelta(days=3)), now, 15)
    with database.write() as s:
        assert lifecycle.expire_acceptances(s, now + dt.timedelta(days=2)) == 0
    with database.write() as s:
        assert lifecycle.expire_acceptances(s, now + dt.timedelta(days=3, seconds=1)) == 1
    with database.read() as s:
        f = s.get(Finding, pk)
        assert f is not None and f.state == "open" and f.accepted_until is None
        last = s.query(FindingAudit).filter_by(finding=pk).order_by(FindingAudit.id.desc()).first()
        assert last is not None and (last.from_state, last.to_state) == ("risk_accepted", "open")


def test_retest_flow_over_https_verifies_the_fix_only_after_a_clean_complete_run(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    sim.ingest(sim.batch(runs=[run("r1", [finding("f1"), finding("f2", probe="accounts")],
                                   probes={"sshd": "ok", "accounts": "ok"})]))
    with collector.login() as admin:
        items = admin.get("/api/v1/findings", params={"unit": unit}).json()["items"]
        f1 = next(i for i in items if i["finding_id"] == "f1")
        url = f"/api/v1/findings/{f1['id']}"
        assert admin.post(f"{url}/transition", json={"to": "fix_verified", "note": "trust me"}).status_code == 422
        r = admin.post(f"{url}/transition", json={"to": "rectification_ordered", "note": "order"})
        assert r.status_code == 200 and r.json()["deadline"]
        assert admin.post(f"{url}/retest", json={}).status_code == 409  # nothing reported yet
        r = admin.post(f"{url}/transition", json={"to": "reported_rectified", "note": "fixed the config"})
        assert r.status_code == 200 and r.json()["retest_due"]
        r = admin.post(f"{url}/retest", json={})
        assert r.status_code == 200 and r.json()["state"] == "retest_scheduled"
        task_id = r.json()["task_id"]
    lease = sim.tasks().json()["tasks"]
    assert [(t["task_id"], t["tests"], t["targets"]) for t in lease] == [(task_id, ["sshd"], ["db01"])]
    # a re-test with a login failure verifies nothing
    sim.ingest(sim.batch(runs=[run("rt0", [], login_failed=True, task_id=None)]))
    with collector.login() as admin:
        assert admin.get(url).json()["state"] == "retest_scheduled"
    sim.ingest(sim.batch(runs=[run("rt1", [finding("f2", probe="accounts")], task_id=task_id,
                                   probes={"sshd": "ok", "accounts": "ok"})]))
    with collector.login() as admin:
        detail = admin.get(url).json()
        assert detail["state"] == "fix_verified" and detail["resolved_run"] == "rt1"
        assert [a["to_state"] for a in detail["audit"]] == ["rectification_ordered", "reported_rectified",
                                                            "retest_scheduled", "fix_verified"]
        tasks = admin.get("/api/v1/tasks", params={"unit": unit}).json()
        assert [(t["id"], t["state"], t["run_id"]) for t in tasks] == [(task_id, "done", "rt1")]
        f2 = next(i for i in admin.get("/api/v1/findings", params={"unit": unit}).json()["items"]
                  if i["finding_id"] == "f2")
        assert f2["state"] == "open"


def test_a_retest_that_still_finds_it_reopens(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    sim.ingest(sim.batch(runs=[run("r1", [finding("f1")])]))
    with collector.login() as admin:
        f1 = admin.get("/api/v1/findings", params={"unit": unit}).json()["items"][0]
        url = f"/api/v1/findings/{f1['id']}"
        admin.post(f"{url}/transition", json={"to": "reported_rectified", "note": "fixed"})
    sim.ingest(sim.batch(runs=[run("r2", [finding("f1")], finished=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5))]))
    with collector.login() as admin:
        assert admin.get(url).json()["state"] == "reopened"
        units = admin.put(f"/api/v1/units/{unit}/settings", json={"sla_days": {"critical": 3},
                                                                  "calendar": [{"day": "2027-01-01",
                                                                                "workday": False}]})
        assert units.status_code == 200 and units.json()["sla_days"]["critical"] == 3
        overdue = admin.get("/api/v1/findings/overdue", params={"unit": unit})
        assert overdue.status_code == 200 and overdue.json()["total"] == 0


def test_overdue_list_past_deadline_first_then_due_for_retest(collector: Collector) -> None:
    """The overdue list: active findings past their deadline (by deadline), then those past their re-test due
    date (one with no deadline sorts last); closed ones and ones inside their deadline are not in it."""
    unit = unit_name()
    sim = collector.agent(unit)
    sim.ingest(sim.batch(runs=[run("r1", [finding(f"o{i}") for i in range(6)])]))
    now = dt.datetime.now(dt.UTC)
    changes = {  # finding -> (state, deadline, re-test due)
        "o0": ("rectification_ordered", now - dt.timedelta(days=1), None),
        "o1": ("rectification_ordered", now - dt.timedelta(days=3), None),
        "o2": ("rectification_ordered", now + dt.timedelta(days=3), None),
        "o3": ("reported_rectified", None, now - dt.timedelta(days=1)),
        "o4": ("resolved", now - dt.timedelta(days=5), None),
        "o5": ("retest_scheduled", now + dt.timedelta(days=1), now - dt.timedelta(hours=1)),
    }
    db = open_database(collector.db_url)
    try:
        with db.write() as s:
            for fid, (state, deadline, due) in changes.items():
                s.query(Finding).filter(Finding.unit == unit, Finding.finding_id == fid).update(
                    {"state": state, "deadline": deadline, "retest_due": due})
    finally:
        db.dispose()
    with collector.login() as admin:
        page = admin.get("/api/v1/findings/overdue", params={"unit": unit}).json()
        assert page["total"] == 4
        assert [i["finding_id"] for i in page["items"]] == ["o1", "o0", "o5", "o3"]
        assert [i["finding_id"] for i in admin.get("/api/v1/findings/overdue",
                                                   params={"unit": unit, "limit": 2}).json()["items"]] == ["o1", "o0"]
        assert admin.get("/api/v1/findings/summary", params={"unit": unit}).json()["overdue"] == 2
