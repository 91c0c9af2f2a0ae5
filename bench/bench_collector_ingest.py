"""Collector ingest: 1,000 agents (enrolled over HTTPS) send batches of findings through an asyncio load
generator (its own process, the collector in another), on SQLite and on PostgreSQL.

Reference, measured in the same run: the same finding rows written straight into the same kind of database
with the same INSERT ... ON CONFLICT statements and no HTTP, TLS, signature or validation (the storage
ceiling); the ratio says what the service layer costs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

TITLE = "Collector ingest: 1,000 simulated agents"
AGENTS = 1000
ROUNDS = 2
FINDINGS = 100  # per batch
CONCURRENCY = 32
BUDGET = {"sqlite": 5000, "postgresql": 20000}
BUDGET_P99_S = 0.2


def _reference(db_url: str, n: int) -> float:
    """Findings per second written directly (same statements as ingest, one transaction per 100)."""
    import uuid

    from collector.core.db import open_database
    from collector.crud.identity import _insert
    from collector.models import Agent, Finding, FindingRun

    db = open_database(db_url)
    now = dt.datetime.now(dt.UTC)
    aid = uuid.uuid4().hex
    with db.write() as s:
        s.add(Agent(id=aid, unit="ref", hostname="ref", machine_id="m", boot_id="b", identity_key="k",
                    record_key="k", cert_serial="0", cert_pem="", cert_not_after=now, agent_version="",
                    enrolled_at=now, last_seen=now, record_seq=0, record_link="0" * 64))
    start = time.perf_counter()
    for b in range(n // FINDINGS):
        with db.write() as s:
            ids = [f"ref-{b}-{j}" for j in range(FINDINGS)]
            s.execute(_insert(s, FindingRun).on_conflict_do_nothing().returning(FindingRun.finding_id),
                      [{"agent_id": aid, "finding_id": i, "run_id": f"r{b}", "seen_at": now} for i in ids]).all()
            s.execute(_insert(s, Finding).on_conflict_do_nothing(), [{
                "agent_id": aid, "unit": "ref", "host": "ref", "finding_id": i, "rule_id": "R", "probe": "p",
                "subject": "s", "severity": "high", "title_en": "t", "title_zh": "t", "document": {"x": 1},
                "first_seen": now, "last_seen": now, "first_run": "r", "last_run": "r", "state": "open",
                "updated_at": now} for i in ids])
    rate = n / (time.perf_counter() - start)
    db.dispose()
    return rate


def _one(backend: str, tmp: Path) -> dict[str, float]:
    from bench.collector_load import BENCH_ENV, batch_body, drive, enrol_over_https, pct, rss_mb
    from tests.collector.conftest import running_collector

    with running_collector(tmp, backend, BENCH_ENV) as c:
        t = time.perf_counter()
        agents = enrol_over_https(c, "bench", AGENTS)
        enrol_s = time.perf_counter() - t
        jobs = [(a, "POST", "/api/v1/agent/ingest", batch_body(a, r, FINDINGS)) for r in range(ROUNDS) for a in agents]
        wall, lat, results = asyncio.run(drive(c, jobs, CONCURRENCY))
        accepted = sum(r["counts"]["accepted"] for r in results)
        expected = len(jobs) * (FINDINGS + 1)
        assert accepted == expected, (accepted, expected)
        rss = rss_mb(c)
        ref = _reference(c.db_url, 20_000)
    findings = len(jobs) * FINDINGS
    return {"enrol_s": enrol_s, "rate": findings / wall, "p50": pct(lat, 0.5), "p99": pct(lat, 0.99),
            "rss": rss, "ref": ref, "findings": findings, "wall": wall}


def run() -> str:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgresql"):
            r = _one(backend, Path(tmp) / backend)
            ok = r["rate"] >= BUDGET[backend] and r["p99"] <= BUDGET_P99_S
            verdict = "met" if ok else "NOT met"
            rows.append(f"| {backend} | {r['findings']:,} | {r['rate']:,.0f}/s | {r['p50'] * 1000:.0f} ms | "
                        f"{r['p99'] * 1000:.0f} ms | {r['rss']:.0f} MB | {r['ref']:,.0f}/s | "
                        f"{r['rate'] / r['ref']:.2f} | {r['enrol_s']:.1f} s | "
                        f">= {BUDGET[backend]:,}/s, p99 <= 200 ms: {verdict} |")
    return "\n".join([
        f"{AGENTS:,} agents enrolled over HTTPS (CSR, certificate), then each sends {ROUNDS} batches of {FINDINGS} "
        f"findings (one run each), {CONCURRENCY} requests in flight from one asyncio load generator; every "
        "request signed (Ed25519) and verified, every item acknowledged. Collector: one uvicorn process, TLS. "
        "Reference: the same rows inserted straight into the database with the same ON CONFLICT statements "
        "(no HTTP, TLS, signature, validation), 100 per transaction. The load generator shares the 2 cores "
        "with the collector and the database.",
        "",
        "| database | findings | sustained | p50 batch | p99 batch | collector RSS | direct insert (reference) | "
        "ratio | enrolment of 1,000 | budget |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])
