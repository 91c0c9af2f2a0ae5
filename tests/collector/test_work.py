"""Notices (signed by the issuer key, checked by the agent's own code), acknowledgements, tasks queued for offline
agents and leased once, windows that expire visibly, schedules."""

from __future__ import annotations

import datetime as dt
import json
import time

from tests.collector.client import iso, notice_digest
from tests.collector.conftest import Collector, unit_name


def _notice(admin: object, unit: str, start: dt.datetime, end: dt.datetime, lead_s: int = 0) -> dict[str, object]:
    r = admin.post("/api/v1/notices", json={  # type: ignore[attr-defined]
        "unit": unit, "targets": ["10.231.0.0/24", "audit@10.231.0.7:22"], "kinds": ["portscan", "host"],
        "start": iso(start), "end": iso(end), "lead_time_s": lead_s, "contact": "Bureau desk"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_notice_is_delivered_verified_by_the_agent_and_acknowledged(collector: Collector) -> None:
    from agent.notice import NoticeSettings, TrustedIssuer, check, parse_document

    unit = unit_name()
    sim = collector.agent(unit)
    now = dt.datetime.now(dt.UTC)
    with collector.login() as admin:
        short = admin.post("/api/v1/notices", json={"unit": unit, "targets": ["10.231.0.1"], "kinds": ["host"],
                                                    "start": iso(now + dt.timedelta(hours=1)),
                                                    "end": iso(now + dt.timedelta(hours=2)), "lead_time_s": 86400})
        assert (short.status_code, short.json()["error"]) == (422, "short-lead-time")
        issued = _notice(admin, unit, now + dt.timedelta(days=2), now + dt.timedelta(days=2, hours=8), 86400)
    delivered = sim.notices().json()["notices"]
    assert [d["notice"]["id"] for d in delivered] == [issued["id"]]
    # the agent's own notice code accepts it: signed by the issuer key handed out at enrolment, for its unit
    issuer_key = sim.enrolment["issuers"][0]["public_key"]  # trusted at enrolment
    assert delivered[0]["signature"]["public_key"] == issuer_key
    signed = parse_document(json.dumps(delivered[0]).encode())
    result = check(signed, now=now, trusted=[TrustedIssuer("collector", issuer_key, "", "")],
                   settings=NoticeSettings(unit=unit, lead_time=dt.timedelta(hours=24)), ack=None, require_ack=False)
    assert result.ok, [p.en for p in result.problems]
    assert signed.digest == notice_digest(delivered[0])
    ack = {"notice_id": issued["id"], "digest": signed.digest, "acknowledged_at": iso(now), "actor": "ops@db01"}
    bad = {**ack, "digest": "0" * 64}
    r = sim.ingest(sim.batch(acks=[ack, bad])).json()
    assert [i["status"] for i in r["items"]] == ["accepted", "rejected"]
    assert sim.ingest(sim.batch(acks=[ack])).json()["items"][0]["status"] == "duplicate"
    stranger = collector.agent(unit_name())  # another unit: never sees this notice, cannot acknowledge it
    assert stranger.notices().json()["notices"] == []
    foreign = stranger.ingest(stranger.batch(acks=[ack])).json()["items"][0]
    assert (foreign["status"], foreign["reason"]) == ("rejected", "no such notice for this unit")
    assert sim.notices().json()["notices"] == []  # acknowledged: not delivered again
    with collector.login() as admin:
        listed = admin.get("/api/v1/notices", params={"unit": unit}).json()
    assert [(a["agent_id"], a["acknowledged_at"][:19]) for a in listed[0]["acknowledgements"]] == [
        (sim.agent_id, iso(now)[:19])]


def test_offline_agent_gets_its_queued_task_once_when_it_returns(collector: Collector) -> None:
    unit = unit_name()
    online, offline = collector.agent(unit), collector.agent(unit, hostname="db02")
    now = dt.datetime.now(dt.UTC)
    with collector.login() as admin:
        notice = _notice(admin, unit, now + dt.timedelta(seconds=4), now + dt.timedelta(hours=1))
        r = admin.post("/api/v1/tasks", json={"unit": unit, "notice_id": notice["id"], "tests": ["portscan"],
                                              "targets": ["10.231.0.7"]})
        assert r.status_code == 200, r.text
        assert len(r.json()) == 2
    assert online.tasks().json()["tasks"] == []  # the window has not opened yet
    deadline = time.monotonic() + 30
    while not (got := online.tasks().json()["tasks"]) and time.monotonic() < deadline:
        time.sleep(0.2)  # until the window opens
    assert len(got) == 1 and got[0]["notice"]["notice"]["id"] == notice["id"]
    assert online.tasks().json()["tasks"] == []  # leased: not handed out again
    # the offline agent comes back later and finds its task waiting
    back = offline.tasks().json()["tasks"]
    assert len(back) == 1 and back[0]["task_id"] != got[0]["task_id"]
    done = online.signed("POST", f"/api/v1/agent/tasks/{got[0]['task_id']}/complete",
                         {"status": "done", "run_id": "run-9", "message": "ok"})
    assert done.status_code == 200 and done.json()["state"] == "done"
    with collector.login() as admin:
        states = sorted(t["state"] for t in admin.get("/api/v1/tasks", params={"unit": unit}).json())
    assert states == ["done", "leased"]


def test_a_long_poll_returns_when_the_window_opens(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    now = dt.datetime.now(dt.UTC)
    with collector.login() as admin:
        notice = _notice(admin, unit, now + dt.timedelta(seconds=4), now + dt.timedelta(hours=1))
        admin.post("/api/v1/tasks", json={"unit": unit, "notice_id": notice["id"], "tests": ["host"]})
    r = sim.tasks(wait=10).json()
    assert len(r["tasks"]) == 1 and r["poll_interval_s"] > 0


def test_work_for_an_agent_that_stays_away_expires_visibly(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    with collector.login() as admin:
        now = dt.datetime.now(dt.UTC)  # after the login (an argon2 check, slow on a loaded machine)
        notice = _notice(admin, unit, now + dt.timedelta(seconds=3), now + dt.timedelta(seconds=4))
        admin.post("/api/v1/tasks", json={"unit": unit, "notice_id": notice["id"], "tests": ["host"]})
        deadline = time.monotonic() + 30
        # the maintenance loop (every second here) expires it once the window has closed; so would a poll
        while (tasks := admin.get("/api/v1/tasks", params={"unit": unit}).json())[0]["state"] != "expired" \
                and time.monotonic() < deadline:
            time.sleep(0.2)
    assert [(t["state"], t["message"]) for t in tasks] == [("expired", "notice window closed before it ran")]
    assert sim.tasks().json()["tasks"] == []


def test_a_schedule_issues_notices_ahead_and_their_tasks(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    with collector.login() as admin:
        bad = admin.post("/api/v1/schedules", json={"unit": unit, "name": "x", "rule": "every tuesday",
                                                    "duration_s": 3600, "kinds": ["host"], "targets": ["db01"]})
        assert (bad.status_code, bad.json()["error"]) == (422, "bad-rule")
        r = admin.post("/api/v1/schedules", json={"unit": unit, "name": "nightly", "rule": "0 3 * * *",
                                                  "duration_s": 3600, "lead_s": 0, "kinds": ["host"],
                                                  "targets": ["db01"]})
        assert r.status_code == 200, r.text
        sched = r.json()
        assert len(sched["next_windows"]) == 3
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            notices = admin.get("/api/v1/notices", params={"unit": unit}).json()
            if notices:
                break
            time.sleep(0.5)
        assert len(notices) == 1 and notices[0]["id"].startswith(f"S{sched['id']}-")
        assert notices[0]["window_start"] == sched["next_windows"][0]
        time.sleep(1.5)  # another maintenance round: the same window is not issued twice
        assert len(admin.get("/api/v1/notices", params={"unit": unit}).json()) == 1
        tasks = admin.get("/api/v1/tasks", params={"unit": unit}).json()
    assert [(t["agent_id"], t["reason"], t["notice_id"]) for t in tasks] == [(sim.agent_id, "schedule",
                                                                             notices[0]["id"])]


def test_rrule_occurrences() -> None:
    from collector.crud.schedules import occurrences

    after = dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC)  # a Monday
    starts = occurrences("DTSTART:20260302T080000Z\nRRULE:FREQ=WEEKLY;BYDAY=MO,TH", after,
                         after + dt.timedelta(days=8))
    assert [s.isoformat() for s in starts] == ["2026-03-02T08:00:00+00:00", "2026-03-05T08:00:00+00:00",
                                               "2026-03-09T08:00:00+00:00"]
    assert [s.hour for s in occurrences("30 2 * * *", after, after + dt.timedelta(days=2))] == [2, 2]


def test_a_failed_completion_after_the_tasks_run_arrived_fails_the_task(collector: Collector) -> None:
    """The run marks its task done on arrival; the agent's completion then says a part failed (a target refused):
    the task is failed with that reason, the run kept. A later completion changes nothing."""
    from tests.collector.client import run

    unit = unit_name()
    sim = collector.agent(unit)
    with collector.login() as admin:
        r = admin.post("/api/v1/tasks", json={"unit": unit, "tests": ["host"], "targets": ["127.0.0.1"]})
        assert r.status_code == 200, r.text
    (task,) = sim.tasks().json()["tasks"]
    assert sim.ingest(sim.batch([run("run-half", [], task_id=task["task_id"])])).status_code == 200
    path = f"/api/v1/agent/tasks/{task['task_id']}/complete"
    reason = "refused on the agent: 10.231.0.9: no SSH credentials configured for this target"
    assert sim.signed("POST", path, {"status": "failed", "run_id": "run-half", "message": reason}).json()["state"] \
        == "failed"
    assert sim.signed("POST", path, {"status": "done", "run_id": "run-half", "message": ""}).json()["state"] \
        == "failed"
    with collector.login() as admin:
        (view,) = admin.get("/api/v1/tasks", params={"unit": unit}).json()
    assert (view["state"], view["run_id"], view["message"]) == ("failed", "run-half", reason)
