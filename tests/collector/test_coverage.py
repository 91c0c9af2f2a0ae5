"""Resolution and fix verification only inside what a run covered (agent.wire.coverage), over the real collector
on both databases: a network finding about one target is not resolved by a run that scanned another (or that
found the target down, or scanned other ports); an older agent's run (no coverage) resolves host-level findings
only; the migration backfills the targets of findings stored before it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from collector.core.migrate import _config
from tests.collector.client import finding, run
from tests.collector.conftest import BACKENDS, Collector, pg_database, unit_name

T0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)
NET_PROBES = {"discovery": "ok", "ports": "ok"}


def _at(hours: int) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def port_finding(ip: str, port: int, agent_host: str = "db01") -> dict[str, Any]:
    """A netscan rule finding about one open port of ``ip`` (named like agent/services/netscan.py names it)."""
    f = finding(f"{ip}-{port}", host=ip, probe="ports", rule="PC-NET-001", subject=f"{ip}|tcp|{port}")
    return f | {"id": f"net-{ip}-{port}-{agent_host}"}


def net_coverage(*targets: str, ports: str = "1-65535", services: bool = False) -> dict[str, Any]:
    probes = ["hosts", "ports", *(["services", "tls", "ssh_algos"] if services else [])]
    return {"host": False, "networks": [{"probes": probes, "targets": list(targets), "tcp_ports": [ports]}]}


def _states(collector: Collector, unit: str) -> dict[str, tuple[str, str | None, str | None]]:
    with collector.login() as admin:
        r = admin.get("/api/v1/findings", params={"unit": unit, "state": "all", "limit": 1000})
        assert r.status_code == 200, r.text
        return {f["finding_id"]: (f["state"], f["resolved_run"], f["target"]) for f in r.json()["items"]}


def test_a_loopback_run_does_not_resolve_a_notice_scan_finding_of_another_target(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    lab, lo = port_finding("10.231.0.5", 8080), port_finding("127.0.0.1", 631)
    lab_id, lo_id = lab["id"], lo["id"]
    # the notice scan of 10.231.0.0/24 (10.231.0.5 answered) and the own-networks loopback run
    sim.ingest(sim.batch(runs=[
        run("notice-1", [lab], kind="netscan", probes=NET_PROBES, finished=_at(0),
            coverage=net_coverage("10.231.0.5/32")),
        run("own-1", [lo], kind="netscan", probes=NET_PROBES, finished=_at(1), coverage=net_coverage("127.0.0.1/32"))]))
    assert _states(collector, unit) == {lab_id: ("open", None, "10.231.0.5"), lo_id: ("open", None, "127.0.0.1")}
    # a later complete loopback-only run that no longer sees 631: that one is resolved, the lab's port is not
    sim.ingest(sim.batch(runs=[run("own-2", [], kind="netscan", probes=NET_PROBES, finished=_at(2),
                                   coverage=net_coverage("127.0.0.1/32"))]))
    states = _states(collector, unit)
    assert states[lo_id][:2] == ("resolved", "own-2") and states[lab_id][:2] == ("open", None)
    # a scan of 10.231.0.5 that tried only ports 1-1024 says nothing about 8080
    sim.ingest(sim.batch(runs=[run("notice-2", [], kind="netscan", probes=NET_PROBES, finished=_at(3),
                                   coverage=net_coverage("10.231.0.5/32", ports="1-1024"))]))
    assert _states(collector, unit)[lab_id][:2] == ("open", None)
    # a scan whose ports stage did not run completely resolves nothing, whatever coverage it claims
    sim.ingest(sim.batch(runs=[run("notice-3", [], kind="netscan", probes={"discovery": "ok", "ports": "limited"},
                                   finished=_at(4), coverage=net_coverage("10.231.0.0/24"))]))
    assert _states(collector, unit)[lab_id][:2] == ("open", None)
    # a complete later scan that covered 10.231.0.5 (inside 10.231.0.0/24) and no longer reports the port
    sim.ingest(sim.batch(runs=[run("notice-4", [], kind="netscan", probes=NET_PROBES, finished=_at(5),
                                   coverage=net_coverage("10.231.0.0/24"))]))
    assert _states(collector, unit)[lab_id][:2] == ("resolved", "notice-4")
    with collector.login() as admin:
        pk = next(f["id"] for f in admin.get("/api/v1/findings", params={"unit": unit, "state": "all"}).json()["items"]
                  if f["finding_id"] == lab_id)
        audit = admin.get(f"/api/v1/findings/{pk}").json()["audit"]
    assert [(a["to_state"], "10.231.0.5" in a["note"]) for a in audit] == [("resolved", True)]


def test_an_unreachable_target_keeps_its_findings(collector: Collector) -> None:
    """10.231.0.6 was down in the second scan: the agent names only the targets that answered (10.231.0.5)."""
    unit = unit_name()
    sim = collector.agent(unit)
    up, down = port_finding("10.231.0.5", 22), port_finding("10.231.0.6", 22)
    sim.ingest(sim.batch(runs=[run("n1", [up, down], kind="netscan", probes=NET_PROBES, finished=_at(0),
                                   coverage=net_coverage("10.231.0.5/32", "10.231.0.6/32"))]))
    sim.ingest(sim.batch(runs=[run("n2", [], kind="netscan", probes=NET_PROBES, finished=_at(1),
                                   coverage=net_coverage("10.231.0.5/32"))]))
    states = _states(collector, unit)
    assert states[up["id"]][:2] == ("resolved", "n2") and states[down["id"]][:2] == ("open", None)
    # nothing answered at all: no network coverage, nothing resolved
    sim.ingest(sim.batch(runs=[run("n3", [], kind="netscan", probes=NET_PROBES, finished=_at(2),
                                   coverage={"host": False, "networks": []})]))
    assert _states(collector, unit)[down["id"]][:2] == ("open", None)


def test_a_retest_of_another_target_does_not_verify_the_fix(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    lab = port_finding("10.231.0.5", 23)
    sim.ingest(sim.batch(runs=[run("n1", [lab], kind="netscan", probes=NET_PROBES, finished=_at(0),
                                   coverage=net_coverage("10.231.0.5/32"))]))
    with collector.login() as admin:
        pk = admin.get("/api/v1/findings", params={"unit": unit}).json()["items"][0]["id"]
        url = f"/api/v1/findings/{pk}"
        r = admin.post(f"{url}/transition", json={"to": "reported_rectified", "note": "telnet removed"})
        assert r.status_code == 200, r.text
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    # re-tests that covered 10.231.0.7, or 10.231.0.5 with a login failure, or the agent's host: not verified
    sim.ingest(sim.batch(runs=[
        run("rt1", [], kind="netscan", probes=NET_PROBES, finished=later, coverage=net_coverage("10.231.0.7/32")),
        run("rt2", [], kind="netscan", probes=NET_PROBES, finished=later + dt.timedelta(seconds=1),
            login_failed=True, coverage=net_coverage("10.231.0.5/32")),
        run("rt3", [], kind="scan", probes={"ports": "ok"}, finished=later + dt.timedelta(seconds=2),
            coverage={"host": True, "networks": []})]))
    with collector.login() as admin:
        assert admin.get(url).json()["state"] == "reported_rectified"
    sim.ingest(sim.batch(runs=[run("rt4", [], kind="netscan", probes=NET_PROBES,
                                   finished=later + dt.timedelta(seconds=3), coverage=net_coverage("10.231.0.5/32"))]))
    with collector.login() as admin:
        detail = admin.get(url).json()
    assert (detail["state"], detail["resolved_run"]) == ("fix_verified", "rt4")


def test_old_agents_runs_resolve_host_level_findings_only(collector: Collector) -> None:
    """No coverage (an agent older than the field): a complete host run still resolves its host's absent
    findings; its netscan run resolves no network finding; a remote run of another host touches neither."""
    unit = unit_name()
    sim = collector.agent(unit)
    lab = port_finding("10.231.0.5", 8080)
    sim.ingest(sim.batch(runs=[
        run("n1", [lab], kind="netscan", probes=NET_PROBES, finished=_at(0)),
        run("s1", [finding("h1"), finding("h2")], finished=_at(0)),
        run("x1", [finding("x1", host="web02")], host="web02", kind="remote", finished=_at(0))]))
    assert _states(collector, unit)[lab["id"]][2] == "10.231.0.5"  # the target is named without coverage too
    sim.ingest(sim.batch(runs=[
        run("n2", [], kind="netscan", probes=NET_PROBES, finished=_at(1)),
        run("s2", [finding("h1")], finished=_at(1)),
        run("x2", [], host="web03", kind="remote", probes={"sshd": "ok"}, finished=_at(1))]))
    states = _states(collector, unit)
    assert states[lab["id"]][:2] == ("open", None)
    assert states["h1"][:2] == ("open", None) and states["h2"][:2] == ("resolved", "s2")
    assert states["x1"][:2] == ("open", None)
    # a new agent's netscan run (host not covered) leaves the host-level findings alone
    sim.ingest(sim.batch(runs=[run("n3", [], kind="netscan", probes={"sshd": "ok", **NET_PROBES}, finished=_at(2),
                                   coverage=net_coverage("127.0.0.1/32"))]))
    assert _states(collector, unit)["h1"][:2] == ("open", None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_backfills_targets(backend: str, tmp_path: Path) -> None:
    """Rows stored before 0004: a netscan run's findings get their target, host findings stay host-level."""
    import contextlib

    with contextlib.ExitStack() as stack:
        url = stack.enter_context(pg_database()) if backend == "postgresql" else f"sqlite:///{tmp_path / 'c.db'}"
        engine = sa.create_engine(url)
        stack.callback(engine.dispose)
        cfg = _config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0003")
        meta = sa.MetaData()
        meta.reflect(engine, only=["agents", "runs", "findings"])
        now = dt.datetime.now(dt.UTC)
        agent = {"id": "a1", "unit": "u", "hostname": "db01", "machine_id": "m", "boot_id": "b", "identity_key": "k",
                 "record_key": "k", "cert_serial": "1", "cert_pem": "-", "cert_not_after": now, "agent_version": "",
                 "enrolled_at": now, "last_seen": now, "record_seq": 0, "record_link": ""}
        agent = {k: v for k, v in agent.items() if k in meta.tables["agents"].c}
        for c in meta.tables["agents"].c:  # any later NOT NULL column without a default
            if c.name not in agent and not c.nullable and c.server_default is None:
                agent[c.name] = False if isinstance(c.type, sa.Boolean) else 0 if isinstance(c.type, sa.Integer) else ""
        run_row = {"agent_id": "a1", "host": "db01", "started": now, "finished": now, "task_id": None,
                   "notice_id": None, "login_failed": False, "probes_ok": ["ports"], "probes_failed": [],
                   "findings": 1, "received_at": now}
        rows = [("f-net", "ports", "10.231.0.5|tcp|80", "10.231.0.5", "n1"),
                ("f-gone", "link", "dhcp|10.231.0.9", "link:eth0", "n-deleted"),  # its run is no longer kept
                ("f-host", "sshd", "sshd:PermitRootLogin", "db01", "s1")]
        with engine.begin() as conn:
            conn.execute(meta.tables["agents"].insert(), agent)
            conn.execute(meta.tables["runs"].insert(), [run_row | {"run_id": "n1", "kind": "netscan"},
                                                        run_row | {"run_id": "s1", "kind": "scan"}])
            conn.execute(meta.tables["findings"].insert(), [
                {"agent_id": "a1", "unit": "u", "host": "db01", "finding_id": fid, "rule_id": "R", "probe": probe,
                 "subject": subject, "severity": "high", "title_en": "t", "title_zh": "t",
                 "document": {"id": fid, "host": wire_host, "probe": probe, "subject": subject},
                 "first_seen": now, "last_seen": now, "first_run": first, "last_run": first, "state": "open",
                 "updated_at": now} for fid, probe, subject, wire_host, first in rows])
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        with engine.connect() as conn:
            got = dict(conn.execute(sa.text("SELECT finding_id, target FROM findings")).all())
        assert got == {"f-net": "10.231.0.5", "f-gone": "link:eth0", "f-host": None}
