"""Collector task leasing: 10,000 agents poll for their tasks over HTTPS (signed requests, asyncio load
generator in this process, the collector in its own), on SQLite and PostgreSQL. Every task must be handed out
exactly once. Reference in the same run: the same number of signed polls for notices (authentication, replay
check and rate window, no lease), the cost of an authenticated round trip."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

TITLE = "Collector task leasing: 10,000 agents polling"
AGENTS = 10_000
CONCURRENCY = 64


def _one(backend: str, tmp: Path) -> dict[str, float]:
    from bench.collector_load import BENCH_ENV, drive, pct, seed_agents
    from tests.collector.conftest import running_collector

    with running_collector(tmp, backend, BENCH_ENV) as c:
        agents = seed_agents(c, "fleet", AGENTS)
        with c.login() as admin:
            r = admin.post("/api/v1/tasks", json={"unit": "fleet", "tests": ["host"], "targets": []}, timeout=600)
            assert r.status_code == 200, r.text
            created = len(r.json())
        ref_wall, ref_lat, _ = asyncio.run(drive(c, [(a, "GET", "/api/v1/agent/notices", None) for a in agents],
                                                 CONCURRENCY))
        jobs = [(a, "GET", "/api/v1/agent/tasks", None) for a in agents for _ in range(2)]  # each polls twice
        t = time.perf_counter()
        wall, lat, results = asyncio.run(drive(c, jobs, CONCURRENCY))
        _ = t
        leased = Counter(task["task_id"] for body in results for task in body["tasks"])
        from collector.core.db import open_database
        from collector.models import Task

        db = open_database(c.db_url)
        with db.read() as s:
            multi = s.query(Task).filter(Task.leases != 1).count()
        db.dispose()
    return {"created": created, "handed": sum(leased.values()), "distinct": len(leased),
            "double": sum(1 for n in leased.values() if n > 1) + multi, "rate": len(leased) / wall,
            "polls": len(jobs) / wall, "p99": pct(lat, 0.99), "ref_polls": AGENTS / ref_wall,
            "ref_p99": pct(ref_lat, 0.99)}


def run() -> str:
    from bench.collector_load import WORKERS, load_average

    rows = []
    load_start = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgresql"):
            r = _one(backend, Path(tmp) / backend)
            rows.append(f"| {backend} | {r['created']:,.0f} | {r['handed']:,.0f} | {r['double']:.0f} | "
                        f"{r['rate']:,.0f}/s | {r['polls']:,.0f}/s | {r['p99'] * 1000:.0f} ms | "
                        f"{r['ref_polls']:,.0f}/s | {r['polls'] / r['ref_polls']:.2f} |")
    return "\n".join([
        f"{AGENTS:,} agents (rows written straight into the database; enrolment is measured in the ingest "
        "benchmark), one task each queued through the API, then every agent polls twice "
        f"(`GET /api/v1/agent/tasks`, {CONCURRENCY} in flight): the first poll leases its task, the second must "
        "get nothing. Double leases: tasks seen in more than one answer plus tasks whose lease count is not 1. "
        "Reference: one signed `GET /api/v1/agent/notices` per agent (the authenticated round trip alone). "
        f"Collector: `serve --workers {WORKERS}`. Load average (1/5/15 min) at the start: {load_start}, at the "
        f"end: {load_average()} (other jobs share this machine).",
        "",
        "| database | tasks | handed out | double leases | tasks/s | polls/s | p99 poll | reference polls/s | "
        "ratio |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])
