"""Two collector processes on one PostgreSQL database (every item stored once, every task leased once), and a
database that goes away for 30 s (SQLite: its file moved away; PostgreSQL: the test database refuses and drops
connections): 503 with Retry-After and a JSON body, never a 500, /readyz failing and /healthz up, nothing
half-stored, recovery by itself when the database returns."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from tests.collector.client import AgentSim, finding, run
from tests.collector.conftest import BACKENDS, FAST_ENV, PG_BASE, Collector, running_collector, unit_name

PG_ADMIN = PG_BASE.replace("postgresql+psycopg://", "postgresql://") + "/postgres"


def test_two_replicas_on_one_postgresql(tmp_path: Path) -> None:
    with running_collector(tmp_path, "postgresql", FAST_ENV) as c:
        second = c.start()
        assert second.poll() is None
        urls = [c.url, f"https://127.0.0.1:{c.ports[1]}"]
        unit = unit_name()
        sims = [c.agent(unit, base=urls[i % 2], hostname=f"h{i}") for i in range(4)]
        batches = []
        for sim in sims:
            runs = [run(f"{sim.hostname}-r{k}", [finding(f"{sim.hostname}-f{j}", host=sim.hostname)
                                                   for j in range(50)], host=sim.hostname) for k in range(2)]
            batches.append((sim, sim.batch(runs=runs, record=[sim.record_scan(), sim.record_scan()])))

        def send(pair: tuple[AgentSim, dict[str, object]], base: str) -> dict[str, object]:
            sim, batch = pair
            other = AgentSim(base, c.ca, hostname=sim.hostname, machine_id=sim.machine_id, boot_id=sim.boot_id,
                             identity=sim.identity, record_key=sim.record_key, agent_id=sim.agent_id)
            try:
                r = other.ingest(batch)
                assert r.status_code == 200, r.text
                return dict(r.json()["counts"])
            finally:
                other.close()

        # every batch is sent to both replicas at once, twice each (a load balancer retrying)
        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(lambda job: send(*job), [(b, u) for b in batches for u in urls for _ in range(2)]))
        accepted = sum(int(r["accepted"]) for r in results)
        per_batch = 2 + 2 * 50 + 2  # runs, findings (item key finding@run), record entries
        assert accepted == per_batch * len(sims)
        assert sum(int(r["duplicate"]) for r in results) == per_batch * len(sims) * 3
        with psycopg.connect(c.db_url.replace("+psycopg", "")) as conn:
            assert conn.execute("SELECT count(*) FROM findings").fetchone() == (200,)
            assert conn.execute("SELECT count(*) FROM finding_runs").fetchone() == (400,)
            assert conn.execute("SELECT count(*) FROM record_entries").fetchone() == (8,)
            assert conn.execute("SELECT count(*) FROM agent_alerts").fetchone() == (0,)
        # tasks: one per agent, each agent polling both replicas at the same time, many times
        with c.login() as admin:
            r = admin.post("/api/v1/tasks", json={"unit": unit, "tests": ["host"], "targets": []})
            assert r.status_code == 200 and len(r.json()) == len(sims)

        def poll(sim: AgentSim, base: str) -> list[str]:
            other = AgentSim(base, c.ca, hostname=sim.hostname, machine_id=sim.machine_id, boot_id=sim.boot_id,
                             identity=sim.identity, agent_id=sim.agent_id)
            try:
                out = []
                for _ in range(4):
                    r = other.tasks()
                    assert r.status_code == 200, r.text
                    out += [t["task_id"] for t in r.json()["tasks"]]
                return out
            finally:
                other.close()

        with ThreadPoolExecutor(12) as pool:
            leased = [t for ids in pool.map(lambda job: poll(*job), [(s, u) for s in sims for u in urls]) for t in ids]
        assert len(leased) == len(sims) and len(set(leased)) == len(sims)


OUTAGE_S = 30  # issue 10: "a database that goes away for 30 s"


@contextlib.contextmanager
def _sqlite_outage(c: Collector) -> Iterator[None]:
    """The database file is moved away (a disk unmounted, a volume detached) and comes back."""
    path = c.home / "collector.db"
    path.rename(path.with_suffix(".away"))
    try:
        yield
    finally:
        path.with_suffix(".away").rename(path)


@contextlib.contextmanager
def _postgresql_outage(c: Collector) -> Iterator[None]:
    """This test's database refuses connections and loses the ones it had (the shared server stays up)."""
    name = c.db_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                          "AND pid <> pg_backend_pid()", (name,))
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def _outage_then_recovery(tmp: Path, backend: str) -> None:
    with running_collector(tmp, backend, FAST_ENV) as c:
        unit = unit_name()
        sim = c.agent(unit)
        batch = sim.batch(runs=[run("during", [finding(f"o{i}") for i in range(20)])])
        outage = _sqlite_outage if backend == "sqlite" else _postgresql_outage
        admin = c.login()  # logged in before: its session is checked in the database on every request
        with outage(c), c.http() as http:
            started = time.monotonic()
            while time.monotonic() - started < OUTAGE_S:
                for r in (sim.ingest(batch), sim.notices(), sim.tasks(), admin.get("/api/v1/findings"),
                          admin.post("/api/v1/tokens", json={"unit": unit, "expires_hours": 1})):
                    assert r.status_code == 503, (backend, r.status_code, r.text)
                    assert int(r.headers["Retry-After"]) > 0
                    assert r.json()["error"] == "database-unavailable" and r.json()["message"]
                assert http.get("/healthz").status_code == 200
                ready = http.get("/readyz")
                assert ready.status_code == 503 and ready.json()["database"] == "unreachable"
                scrape = http.get("/metrics", headers={"Authorization": f"Bearer {c.metrics_token}"})
                assert scrape.status_code == 200 and "precaution_collector_database_up 0.0" in scrape.text
                time.sleep(1)
        # the database is back: the service recovers by itself, and the agent's re-sent batch lands exactly once
        deadline = time.monotonic() + 30
        while (r := sim.ingest(batch)).status_code != 200 and time.monotonic() < deadline:
            assert r.status_code == 503, r.text
            time.sleep(0.5)
        assert r.status_code == 200, r.text
        assert r.json()["counts"] == {"accepted": 21, "duplicate": 0, "rejected": 0}  # nothing half-stored before
        assert sim.ingest(batch).json()["counts"] == {"accepted": 0, "duplicate": 21, "rejected": 0}
        with c.http() as http:
            assert http.get("/readyz").status_code == 200
        with admin:
            assert admin.get("/api/v1/findings", params={"unit": unit}).json()["total"] == 20
        sim.close()
        log = "".join(p.read_text(errors="replace") for p in c.home.glob("serve-*.log"))
        assert "Traceback" not in log and "internal error" not in log


def test_database_outage_of_30_s_is_503_then_recovers_by_itself(tmp_path: Path) -> None:
    """Both databases at once (one 30 s wait for the two)."""
    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(_outage_then_recovery, tmp_path / b, b) for b in BACKENDS]:
            done.result()
