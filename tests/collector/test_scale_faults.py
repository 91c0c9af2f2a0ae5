"""Two collector processes on one PostgreSQL database (every item stored once, every task leased once), and a
database that goes away: 503 with Retry-After and a JSON body, never a 500, nothing half-stored, recovery by
itself when the database returns."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from tests.collector.client import AgentSim, finding, run
from tests.collector.conftest import FAST_ENV, free_port, running_collector, unit_name


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


class Proxy:
    """A TCP relay between the collector and PostgreSQL that the test can cut (the database 'goes away')."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.up = threading.Event()
        self.up.set()
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up.clear()
        with self.lock:
            for s in self.conns:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self.conns.clear()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


OUTAGE_S = 12


def test_database_outage_is_503_then_recovers_by_itself(tmp_path: Path) -> None:
    proxy = Proxy(("127.0.0.1", 5432))
    try:
        with running_collector(tmp_path, "postgresql", FAST_ENV, start=False) as c:
            # the collector reaches PostgreSQL through the relay
            host_part = c.db_url.rsplit("/", 1)
            relayed = host_part[0].replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}") + "/" + host_part[1]
            c.env["PRECAUTION_COLLECTOR_DATABASE_URL"] = relayed
            c.start()
            unit = unit_name()
            sim = c.agent(unit)
            batch = sim.batch(runs=[run("during", [finding(f"o{i}") for i in range(20)])])
            proxy.cut()
            started = time.monotonic()
            seen = set()
            while time.monotonic() - started < OUTAGE_S:
                for r in (sim.ingest(batch), sim.notices()):
                    seen.add(r.status_code)
                    assert r.status_code == 503, r.text
                    assert r.headers["Retry-After"] and r.json()["error"] == "database-unavailable"
                with c.http() as http:
                    assert http.get("/healthz").status_code == 200
                    assert http.get("/readyz").status_code == 503
                time.sleep(1)
            assert seen == {503}
            proxy.restore()
            deadline = time.monotonic() + 30
            while True:
                r = sim.ingest(batch)
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert r.status_code == 200, r.text
            assert r.json()["counts"] == {"accepted": 21, "duplicate": 0, "rejected": 0}  # nothing half-stored before
            with c.login() as admin:
                total = admin.get("/api/v1/findings", params={"unit": unit}).json()["total"]
            assert total == 20
            log = "".join(p.read_text(errors="replace") for p in c.home.glob("serve-*.log"))
            assert "Traceback" not in log and "internal error" not in log
    finally:
        proxy.close()
