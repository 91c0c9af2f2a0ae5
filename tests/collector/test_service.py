"""Set-up and operations: init, settings failing with the key named, serve's TLS and loopback rule, migrate with
progress, backup, CLI administration, OpenAPI, /healthz, /readyz, /metrics (checked with promtool)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.collector.client import finding, run
from tests.collector.conftest import BIN, Collector, init_collector, unit_name


def test_health_readiness_and_openapi(collector: Collector) -> None:
    with collector.http() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz").json()
        assert ready["status"] == "ok" and ready["schema"]
        spec = http.get("/openapi.json").json()
    for path in ("/api/v1/enroll", "/api/v1/agent/ingest", "/api/v1/agent/tasks", "/api/v1/findings",
                 "/api/v1/findings/{finding_id}/transition", "/api/v1/notices", "/metrics", "/readyz"):
        assert path in spec["paths"], path
    assert "IngestBatch" in spec["components"]["schemas"]


def test_plain_http_is_not_served(collector: Collector) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{collector.port}/healthz", timeout=5)
    with pytest.raises(httpx.ConnectError):  # a certificate from another CA is not trusted
        httpx.get(f"{collector.url}/healthz", timeout=5)


def test_metrics_are_protected_and_pass_promtool(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    sim.ingest(sim.batch(runs=[run("r1", [finding("m1", severity="critical"), finding("m2")])]))
    odd = 'quote " backslash \\ newline \n ' + "长" * 150  # a huge, hostile label value (unit names <= 200)
    odd_sim = collector.agent(odd)
    odd_sim.ingest(odd_sim.batch(runs=[run("r1", [finding("m3", subject="s" * 50_000)])]))
    with collector.login() as admin:
        summary = admin.get("/api/v1/findings/summary", params={"unit": unit}).json()
    assert summary == {"unit": unit, "active": {"critical": 1, "high": 1, "medium": 0, "low": 0, "info": 0},
                       "overdue": 0}
    with collector.http() as http:
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = http.get("/metrics", headers={"Authorization": f"Bearer {collector.metrics_token}"})
    assert r.status_code == 200
    text = r.text
    assert f'precaution_collector_open_findings{{severity="critical",unit="{unit}"}} 1.0' in text
    assert 'precaution_collector_agents{state="online"}' in text
    assert 'precaution_collector_ingest_items_total{kind="finding",status="accepted"}' in text
    assert "precaution_collector_request_duration_seconds_bucket" in text
    # labelled by the matched route (the latency middleware sees the route the router put in the scope)
    assert 'precaution_collector_request_duration_seconds_count{method="POST",route="/api/v1/agent/ingest"}' in text
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: make deps installs the Debian prometheus package"
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


def test_cli_administration(collector: Collector, tmp_path: Path) -> None:
    unit = unit_name()
    token = collector.cli("token", "create", "--unit", unit, "--expires", "2h")
    assert token.returncode == 0 and token.stdout.startswith("pcenrol_")
    added = collector.cli("user", "add", "op1", "--role", "operator", "--unit", unit)
    assert added.returncode == 0 and "password (shown once)" in added.stdout
    password = added.stdout.rsplit(": ", 1)[1].strip()
    with collector.login("op1", password) as op:
        assert op.get("/api/v1/findings", params={"unit": unit}).status_code == 200
    changed = collector.cli("user", "passwd", "op1", "--password-stdin", input="a much longer secret\n")
    assert changed.returncode == 0
    with collector.http() as http:
        assert http.post("/api/v1/auth/login", json={"username": "op1", "password": password}).status_code == 401
    assert collector.cli("user", "role", "op1", "--unit", unit, "--remove").returncode == 0
    with collector.login("op1", "a much longer secret") as op:
        assert op.get("/api/v1/findings", params={"unit": unit}).status_code == 403
    short = collector.cli("user", "add", "op2", "--password-stdin", input="short\n")
    assert short.returncode == 2 and "at least 12" in short.stderr
    issued = collector.cli("notice", "issue", "--unit", unit, "--target", "10.231.0.5", "--kind", "host",
                           "--start", "2099-03-02T08:00Z", "--end", "2099-03-02T18:00Z",
                           "-o", str(tmp_path / "n.json"))
    assert issued.returncode == 0, issued.stderr
    assert '"subject_unit": "' + unit in (tmp_path / "n.json").read_text()
    if collector.backend == "sqlite":
        copy = tmp_path / "copy.db"
        assert collector.cli("backup", str(copy)).returncode == 0
        with sqlite3.connect(copy) as conn:
            assert conn.execute("SELECT count(*) FROM notices").fetchone()[0] >= 1
        assert copy.stat().st_mode & 0o777 == 0o600
    else:
        pointer = collector.cli("backup", str(tmp_path / "x.db"))
        assert pointer.returncode == 2 and "pg_dump" in pointer.stderr


def test_init_refuses_twice_and_state_is_private(collector: Collector) -> None:
    again = collector.cli("init")
    assert again.returncode == 2 and "already set up" in again.stderr
    assert collector.home.stat().st_mode & 0o777 == 0o700
    for name in ("ca.key", "server.key", "issuer.key", "config.toml"):
        assert (collector.home / name).stat().st_mode & 0o777 == 0o600, name


def test_start_up_checks_settings_loopback_rule_schema_and_plain_http_dev_mode(tmp_path: Path) -> None:
    """One set-up, every refusal `serve` makes before it listens, then `--insecure-dev` on loopback."""
    from tests.collector.conftest import free_port

    c = init_collector(tmp_path / "home", None, "sqlite")
    done = subprocess.run([str(BIN), "serve"], env={**c.env, "PRECAUTION_COLLECTOR_MAX_BATCH_BYTES": "-3"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "'max_batch_bytes'" in done.stderr
    config = (c.home / "config.toml").read_text()
    (c.home / "config.toml").write_text(config + 'listen_typo = "x"\n')
    done = subprocess.run([str(BIN), "serve"], env=c.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "'listen_typo'" in done.stderr
    (c.home / "config.toml").write_text(config)
    done = subprocess.run([str(BIN), "serve", "--insecure-dev", "--listen", "0.0.0.0:18999"], env=c.env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "loopback only" in done.stderr
    db = c.home / "collector.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM alembic_version")
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name != 'alembic_version'"
                                    ).fetchall():
            conn.execute(f'DROP TABLE "{name}"')
    refused = subprocess.run([str(BIN), "serve"], env=c.env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "precaution-collector migrate" in refused.stderr
    migrated = c.cli("migrate")
    assert migrated.returncode == 0 and "applied 0001" in migrated.stdout
    added = c.cli("user", "add", "root-admin", "--role", "admin", "--password-stdin", input="x" * 12 + "\n")
    assert added.returncode == 0, added.stderr
    port = free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--insecure-dev", "--listen", f"127.0.0.1:{port}"], env=c.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_with_worker_processes(collector: Collector) -> None:
    """`serve --workers 2`: two worker processes on one port, each with the application built from the
    settings; agents spread over both connections get exact per-item answers (the replay check, rate window and
    record heads are in the database, shared by the workers), and the supervisor takes them down with it."""
    import signal

    import psutil

    from tests.collector.conftest import free_port, wait_ready

    port = free_port()
    base = f"https://127.0.0.1:{port}"
    refused = subprocess.run([str(BIN), "serve", "--listen", f"127.0.0.1:{port}", "--workers", "0"], env=collector.env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--workers" in refused.stderr
    log = open(collector.home / f"serve-workers-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(BIN), "serve", "--listen", f"127.0.0.1:{port}", "--workers", "2",
                             "--log-level", "warning"], env=collector.env, stdout=log, stderr=subprocess.STDOUT)
    workers: list[psutil.Process] = []
    try:
        wait_ready(base, collector.ca, proc)
        workers += [p for p in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2
        unit = unit_name()
        sims = [collector.agent(unit, base=base, hostname=f"w{i}") for i in range(6)]
        for i, sim in enumerate(sims):  # each agent its own connection: the kernel hands them to either worker
            batch = sim.batch(runs=[run(f"wr-{i}", [finding(f"w{i}-{j}", host=f"w{i}") for j in range(5)],
                                        host=f"w{i}")], record=[sim.record_scan(5)])
            assert sim.ingest(batch).json()["counts"] == {"accepted": 7, "duplicate": 0, "rejected": 0}
            assert sim.ingest(batch).json()["counts"] == {"accepted": 0, "duplicate": 7, "rejected": 0}
        with collector.login(base=base) as admin:
            r = admin.get("/api/v1/findings", params={"unit": unit, "state": "all", "limit": 100})
            assert r.json()["total"] == 30
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def test_worker_socket_is_tcp_so_answers_are_not_delayed() -> None:
    """The socket `serve --workers` shares says it is TCP: asyncio sets TCP_NODELAY only on such sockets
    (uvicorn's own had protocol 0, and every answer then waited for the client's delayed ACK)."""
    import socket

    from collector.api.workers import TcpConfig
    from tests.collector.conftest import free_port

    sock = TcpConfig("collector.service:worker_app", factory=True, host="127.0.0.1", port=free_port(),
                     workers=2).bind_socket()
    try:
        assert (sock.family, sock.type, sock.proto) == (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        assert sock.get_inheritable()
    finally:
        sock.close()
