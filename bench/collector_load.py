"""Shared parts of the collector benchmarks: a real collector (`init` + `serve` subprocess, TLS), agents
enrolled over HTTPS or seeded directly for large fleets, and an asyncio load generator (in this process,
the server in its own) that signs every request as an agent does."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import secrets
import ssl
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.wire.collector_api import (
    HEADER_AGENT,
    HEADER_BOOT,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIME,
    request_signing_bytes,
)
from agent.wire.signatures import raw_public_key
from tests.collector.client import AgentSim
from tests.collector.conftest import Collector

WORKERS = os.cpu_count() or 1  # serve --workers: one worker process per core
BENCH_ENV = {"PRECAUTION_COLLECTOR_RATE_LIMIT_PER_MINUTE": "1000000", "PRECAUTION_COLLECTOR_DB_POOL_SIZE": "20",
             "PRECAUTION_COLLECTOR_WORKERS": str(WORKERS)}


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


@dataclass
class LoadAgent:
    agent_id: str
    key: Ed25519PrivateKey
    host: dict[str, str]
    latencies: list[float] = field(default_factory=list)

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        sig = base64.b64encode(self.key.sign(request_signing_bytes(method, path, ts, nonce, body))).decode()
        return {HEADER_AGENT: self.agent_id, HEADER_TIME: ts, HEADER_NONCE: nonce, HEADER_SIGNATURE: sig,
                HEADER_BOOT: self.host["boot_id"], "Content-Type": "application/json"}


def enrol_over_https(c: Collector, unit: str, n: int) -> list[LoadAgent]:
    out = []
    with c.login() as admin:
        for i in range(n):
            token = admin.post("/api/v1/tokens", json={"unit": unit}).json()["token"]
            sim = AgentSim(c.url, c.ca, hostname=f"host{i:05d}")
            sim.http = admin  # reuse the connection (the enrol call carries no credentials)
            r = sim.enrol(token, unit)
            assert r.status_code == 200, r.text
            out.append(LoadAgent(str(sim.agent_id), sim.identity, sim.host))
    return out


def seed_agents(c: Collector, unit: str, n: int) -> list[LoadAgent]:
    """Large fleets are written straight into the database (set-up, not measured): same rows enrolment makes."""
    from collector.core.db import open_database
    from collector.models import Agent

    now = dt.datetime.now(dt.UTC)
    agents = []
    rows = []
    for i in range(n):
        key = Ed25519PrivateKey.generate()
        host = {"hostname": f"host{i:05d}", "machine_id": uuid.uuid4().hex, "boot_id": str(uuid.uuid4())}
        a = LoadAgent(uuid.uuid4().hex, key, host)
        agents.append(a)
        rows.append({"id": a.agent_id, "unit": unit, "hostname": host["hostname"], "machine_id": host["machine_id"],
                     "boot_id": host["boot_id"], "identity_key": base64.b64encode(raw_public_key(key.public_key()))
                     .decode(), "record_key": base64.b64encode(raw_public_key(key.public_key())).decode(),
                     "cert_serial": "0", "cert_pem": "", "cert_not_after": now + dt.timedelta(days=30),
                     "agent_version": "bench", "enrolled_at": now, "last_seen": now, "record_seq": 0,
                     "record_link": "0" * 64})
    db = open_database(c.db_url)
    try:
        with db.write() as s:
            s.execute(Agent.__table__.insert(), rows)
    finally:
        db.dispose()
    return agents


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def collector_processes(c: Collector) -> list[psutil.Process]:
    """The serve processes and their workers."""
    procs = [psutil.Process(p.pid) for p in c.procs if p.poll() is None]
    return procs + [k for p in procs for k in p.children(recursive=True)]


def rss_mb(c: Collector) -> float:
    """Resident memory of the collector: the supervisor and every worker process."""
    return sum(p.memory_info().rss for p in collector_processes(c)) / 2**20


def cpu_s(c: Collector) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in collector_processes(c))


async def drive(c: Collector, jobs: list[tuple[LoadAgent, str, str, bytes | None]], concurrency: int
                ) -> tuple[float, list[float], list[Any]]:
    """Send (agent, method, path, body) requests with ``concurrency`` in flight; wall time, latencies, bodies."""
    ctx = ssl.create_default_context(cafile=c.ca)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results: list[Any] = [None] * len(jobs)
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(jobs)):
        queue.put_nowait(i)
    async with httpx.AsyncClient(base_url=c.url, verify=ctx, limits=limits, timeout=120) as client:

        async def worker() -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                agent, method, path, body = jobs[i]
                headers = agent.headers(method, path, body or b"")
                start = time.perf_counter()
                r = await client.request(method, path, content=body, headers=headers)
                latencies.append(time.perf_counter() - start)
                if r.status_code != 200:
                    raise AssertionError(f"{method} {path}: {r.status_code} {r.text[:300]}")
                results[i] = r.json()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return wall, latencies, results


async def offer(c: Collector, jobs: list[tuple[LoadAgent, str, str, bytes | None]], per_second: float,
                connections: int) -> tuple[float, list[float]]:
    """Open loop: start one request every 1/``per_second`` s whatever the answers (as agents finishing their
    runs do), over up to ``connections`` keep-alive connections; wall time and latencies (from the planned
    start, so a request that waits for a free connection counts its wait)."""
    ctx = ssl.create_default_context(cafile=c.ca)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=c.url, verify=ctx, limits=limits, timeout=120) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def one(i: int) -> None:
            planned = start + i / per_second
            await asyncio.sleep(max(0.0, planned - loop.time()))
            agent, method, path, body = jobs[i]
            r = await client.request(method, path, content=body, headers=agent.headers(method, path, body or b""))
            latencies.append(loop.time() - planned)
            if r.status_code != 200:
                raise AssertionError(f"{method} {path}: {r.status_code} {r.text[:300]}")

        await asyncio.gather(*(one(i) for i in range(len(jobs))))
        wall = loop.time() - start
    return wall, latencies


def batch_body(agent: LoadAgent, round_no: int, findings: int) -> bytes:
    from tests.collector.client import finding, run

    fs = [finding(f"{agent.host['hostname']}-{j}", host=agent.host["hostname"]) for j in range(findings)]
    batch = {"schema": "precaution.collector.ingest/v1", "batch_id": uuid.uuid4().hex, "host": agent.host,
             "runs": [run(f"{agent.agent_id}-{round_no}", fs, host=agent.host["hostname"])], "record_lines": [],
             "acknowledgements": []}
    return json.dumps(batch).encode()


_ = statistics
