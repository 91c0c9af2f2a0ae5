"""Lossless, idempotent ingest over real TLS on both databases: per-item acknowledgement, re-sent batches,
the agent's record chain checked against the head held per agent, first/last seen, resolution by a later
complete run, bad input refused with a clear body and nothing stored half-way."""

from __future__ import annotations

import datetime as dt
import json

from tests.collector.client import finding, run
from tests.collector.conftest import Collector, unit_name


def _findings(collector: Collector, unit: str, state: str = "all") -> list[dict[str, object]]:
    with collector.login() as admin:
        r = admin.get("/api/v1/findings", params={"unit": unit, "state": state, "limit": 1000})
        assert r.status_code == 200, r.text
        return list(r.json()["items"])


def test_batch_is_acknowledged_per_item_and_a_resend_changes_nothing(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    lines = [sim.record_scan(2), sim.record_scan(0)]
    batch = sim.batch(runs=[run("run-1", [finding("f1"), finding("f2", severity="critical")])], record=lines)
    first = sim.ingest(batch)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["counts"] == {"accepted": 5, "duplicate": 0, "rejected": 0}  # 1 run, 2 findings, 2 entries
    assert body["replayed_batch"] is False and body["record_head"] == 2
    assert {i["key"] for i in body["items"] if i["kind"] == "finding"} == {"f1@run-1", "f2@run-1"}
    before = _findings(collector, unit)
    again = sim.ingest(batch)  # the agent did not get the answer and sends the same batch again
    assert again.json()["counts"] == {"accepted": 0, "duplicate": 5, "rejected": 0}
    assert again.json()["replayed_batch"] is True
    assert _findings(collector, unit) == before
    assert sorted(f["severity"] for f in before) == ["critical", "high"]


def test_first_and_last_seen_and_resolution_by_a_complete_later_run(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    sim.ingest(sim.batch(runs=[run("r1", [finding("a"), finding("b")], finished=t0)]))
    sim.ingest(sim.batch(runs=[run("r2", [finding("a"), finding("b")], finished=t0 + dt.timedelta(hours=1))]))
    # r3: the sshd probe errored: nothing is resolved by it
    sim.ingest(sim.batch(runs=[run("r3", [], probes={"sshd": "error"}, finished=t0 + dt.timedelta(hours=2))]))
    state = {f["finding_id"]: f for f in _findings(collector, unit)}
    assert {k: v["state"] for k, v in state.items()} == {"a": "open", "b": "open"}
    assert state["a"]["first_run"] == "r1" and state["a"]["last_run"] == "r2"
    assert state["a"]["first_seen"] < state["a"]["last_seen"]
    # r4: complete, only "a" still there: "b" is resolved by r4; another host's run resolves nothing here
    sim.ingest(sim.batch(runs=[run("r4", [finding("a")], finished=t0 + dt.timedelta(hours=3))]))
    sim.ingest(sim.batch(runs=[run("r5", [], host="other", finished=t0 + dt.timedelta(hours=3))]))
    state = {f["finding_id"]: f for f in _findings(collector, unit)}
    assert state["a"]["state"] == "open"
    assert (state["b"]["state"], state["b"]["resolved_run"]) == ("resolved", "r4")
    # an older run arriving late does not move last seen back, nor reopen anything
    sim.ingest(sim.batch(runs=[run("r0", [finding("a"), finding("b")], finished=t0 - dt.timedelta(hours=1))]))
    late = {f["finding_id"]: f for f in _findings(collector, unit)}
    assert late["a"]["last_run"] == "r4" and late["b"]["state"] == "resolved"
    # seen again by a newer run: reopened, audited
    sim.ingest(sim.batch(runs=[run("r6", [finding("b")], finished=t0 + dt.timedelta(hours=4))]))
    b = {f["finding_id"]: f for f in _findings(collector, unit)}["b"]
    assert b["state"] == "reopened"
    with collector.login() as admin:
        audit = admin.get(f"/api/v1/findings/{b['id']}").json()["audit"]
    assert [(a["from_state"], a["to_state"]) for a in audit] == [("open", "resolved"), ("resolved", "reopened")]


def _record_alerts(collector: Collector, unit: str) -> tuple[list[str], list[dict[str, object]]]:
    with collector.login() as admin:
        alerts = [a["kind"] for a in admin.get("/api/v1/alerts", params={"unit": unit}).json()]
    crit = [f for f in _findings(collector, unit, "active") if f["rule_id"] == "PC-COLLECTOR-RECORD"]
    return alerts, crit


def test_record_chain_continues_across_batches_and_a_gap_waits(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    l1, l2, l3 = sim.record_scan(), sim.record_scan(), sim.record_scan()
    assert sim.ingest(sim.batch(record=[l1])).json()["record_head"] == 1
    gap = sim.ingest(sim.batch(record=[l3])).json()
    assert gap["items"][0]["status"] == "rejected" and "gap" in gap["items"][0]["reason"]
    ok = sim.ingest(sim.batch(record=[l2, l3])).json()
    assert ok["record_head"] == 3 and ok["counts"]["accepted"] == 2
    assert _record_alerts(collector, unit) == ([], [])


def test_wiped_record_raises_a_critical_finding(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    sim.ingest(sim.batch(record=[sim.record_scan(), sim.record_scan()]))
    sim.seq, sim.link = 0, "0" * 64  # the agent's record was deleted: it starts again at entry 1
    r = sim.ingest(sim.batch(record=[sim.record_scan()])).json()
    assert r["items"][0] == {"kind": "record", "key": "1", "status": "rejected", "reason": "record-wiped"}
    alerts, crit = _record_alerts(collector, unit)
    assert alerts == ["record-wiped"]
    assert len(crit) == 1 and crit[0]["severity"] == "critical"


def test_truncated_or_forked_record_raises_a_critical_finding(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    sim.ingest(sim.batch(record=[sim.record_scan() for _ in range(3)]))
    # truncated to 1 entry, then written on: entry 2 differs from the one held
    sim.seq, sim.link = 1, json.loads(sim.lines[1])["entry"]["prev"]
    r = sim.ingest(sim.batch(record=[sim.record_scan()])).json()
    assert r["items"][0]["reason"] == "record-forked"
    alerts, crit = _record_alerts(collector, unit)
    assert alerts == ["record-forked"] and crit[0]["severity"] == "critical"


def test_entry_signed_by_another_key_is_refused(collector: Collector) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    unit = unit_name()
    sim = collector.agent(unit)
    sim.record_key = Ed25519PrivateKey.generate()
    r = sim.ingest(sim.batch(record=[sim.record_scan()])).json()
    assert r["items"][0]["reason"] == "record-tampered" and r["record_head"] == 0
    edited = sim.lines[0].replace('"tests":["host"]', '"tests":["host","portscan"]', 1)
    assert edited != sim.lines[0]
    r2 = sim.ingest(sim.batch(record=[edited])).json()
    assert r2["items"][0]["reason"].startswith("bad hash")


def test_bad_input_is_a_clear_4xx_and_stores_nothing(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    cases = {
        "malformed": (b'{"schema": "precaution.collector.ingest/v1", "batch_id": ', 422),
        "wrong-schema": (json.dumps({**sim.batch(), "schema": "precaution.collector.ingest/v0"}).encode(), 422),
        "bad-finding": (json.dumps(sim.batch(runs=[run("x", [{**finding("z"), "severity": "apocalyptic"}])])).encode(),
                        422),
        "sql-ish": (json.dumps(sim.batch(runs=[run("r'; DROP TABLE findings; --",
                                                   [finding("f'); DELETE FROM agents; --", rule="' OR 1=1 --")])])
                               ).encode(), 200),
    }
    for name, (raw, status) in cases.items():
        r = sim.signed("POST", "/api/v1/agent/ingest", raw=raw)
        assert r.status_code == status, (name, r.text)
        if status != 200:
            assert r.json()["error"] == "invalid-request" and r.json()["message"], name
    items = _findings(collector, unit)
    assert [f["finding_id"] for f in items] == ["f'); DELETE FROM agents; --"]
    with collector.login() as admin:
        assert len(admin.get("/api/v1/agents", params={"unit": unit}).json()) == 1


def test_oversized_batches_are_413(collector: Collector) -> None:
    sim = collector.agent(unit_name())
    huge = sim.batch(runs=[run("big", [finding(f"f{i}", subject="x" * 2000) for i in range(5000)])])
    r = sim.ingest(huge)  # > 8 MiB
    assert (r.status_code, r.json()["error"]) == (413, "too-large")
    raw = json.dumps(huge).encode()
    headers = sim.signed_headers("POST", "/api/v1/agent/ingest", raw)

    def chunks():  # type: ignore[no-untyped-def]  # no Content-Length: counted while it arrives
        for i in range(0, len(raw), 65536):
            yield raw[i:i + 65536]

    r = sim.client().post("/api/v1/agent/ingest", content=chunks(), headers=headers)
    assert (r.status_code, r.json()["error"]) == (413, "too-large")
    small = json.dumps(sim.batch(runs=[run("chunked", [finding("c1")])])).encode()
    r = sim.client().post("/api/v1/agent/ingest", content=iter([small[:100], small[100:]]),
                          headers=sim.signed_headers("POST", "/api/v1/agent/ingest", small))
    assert r.status_code == 200 and r.json()["counts"]["accepted"] == 2, r.text
    many = sim.batch(runs=[run("many", [finding(f"g{i}") for i in range(20_001)])])
    r = sim.ingest(many)
    assert r.status_code == 413 and r.json()["error"] in ("too-many-items", "too-large")


def test_a_batch_for_another_machine_is_refused(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    batch = sim.batch(runs=[run("r", [finding("f")])])
    batch["host"] = {**batch["host"], "machine_id": "another-machine"}
    r = sim.ingest(batch)
    assert (r.status_code, r.json()["error"]) == (409, "identity-conflict")
    assert _findings(collector, unit) == []


def test_a_batch_mixing_new_and_duplicate_items_gets_exact_counts(collector: Collector) -> None:
    """More findings in one run than one multi-row statement takes (1,000 rows): every item counted once,
    whether it was new or held already, and what was stored is exactly the new items."""
    unit = unit_name()
    sim = collector.agent(unit)
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    first = [finding(f"f{i}") for i in range(1200)]
    entry1 = sim.record_scan(1)
    r = sim.ingest(sim.batch(runs=[run("big-1", first, finished=t0)], record=[entry1]))
    assert r.status_code == 200, r.text
    assert r.json()["counts"] == {"accepted": 1202, "duplicate": 0, "rejected": 0}
    # a new batch: the same run again (all duplicates), a later run with half of those and 10 new findings,
    # the record entry again and a new one
    later = [finding(f"f{i}") for i in range(600)] + [finding(f"n{i}") for i in range(10)]
    lines = [entry1, sim.record_scan(0)]
    mixed = sim.batch(runs=[run("big-1", first, finished=t0), run("big-2", later)], record=lines)
    r = sim.ingest(mixed)
    body = r.json()
    assert body["counts"] == {"accepted": 1 + 610 + 1, "duplicate": 1 + 1200 + 1, "rejected": 0}
    status = {(i["kind"], i["key"]): i["status"] for i in body["items"]}
    assert status[("finding", "f0@big-1")] == "duplicate" and status[("finding", "f0@big-2")] == "accepted"
    assert status[("finding", "n9@big-2")] == "accepted" and status[("run", "big-1")] == "duplicate"
    assert sum(1 for (kind, _), s in status.items() if kind == "finding" and s == "accepted") == 610
    with collector.login() as admin:
        pages = [admin.get("/api/v1/findings", params={"unit": unit, "state": "all", "limit": 1000, "offset": o})
                 .json() for o in (0, 1000)]
    stored = {f["finding_id"]: f for page in pages for f in page["items"]}
    assert len(stored) == pages[0]["total"] == 1210
    assert (stored["f0"]["first_run"], stored["f0"]["last_run"]) == ("big-1", "big-2")
    assert (stored["f1199"]["first_run"], stored["f1199"]["last_run"]) == ("big-1", "big-1")
    # big-2 was complete for sshd: f600..f1199 are absent from it and resolved by it
    assert stored["f1199"]["state"] == "resolved" and stored["f0"]["state"] == "open"
    assert sim.ingest(mixed).json()["counts"] == {"accepted": 0, "duplicate": 1814, "rejected": 0}
