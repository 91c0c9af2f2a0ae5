"""Dashboard pages with 1,000,000 findings stored (SQLite and PostgreSQL), over HTTPS with a cookie session, each
page rendered in full (HTML) as a browser gets it: a unit's overview, findings lists, one finding, one host, the
notices and tasks page and the printable rectification report. Reference in the same run: `/healthz`."""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

TITLE = "Collector dashboard pages: 1,000,000 findings"
REPEAT = 30
BUDGET_P99_S = 0.1


def _timed(client: Any, path: str) -> list[float]:
    out = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        r = client.get(path)
        out.append(time.perf_counter() - start)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return out


def _one(backend: str, tmp: Path) -> tuple[list[tuple[str, float, float]], float]:
    from bench.bench_collector_queries import _seed
    from bench.collector_load import BENCH_ENV, pct
    from tests.collector.conftest import running_collector

    with running_collector(tmp, backend, BENCH_ENV) as c:
        t = time.perf_counter()
        agents = _seed(c.db_url)
        seed_s = time.perf_counter() - t
        with c.http() as browser:
            form = browser.get("/ui/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf
            r = browser.post("/ui/login", data={"csrf": csrf.group(1), "username": "admin",
                                                "password": c.admin_password, "next": "/ui/overview"})
            assert r.status_code == 303, r.text
            page = browser.get("/ui/findings?unit=unit-3&severity=critical").text
            one = re.search(r'href="/ui/findings/(\d+)"', page)
            assert one
            cases = [
                ("healthz (reference)", "/healthz"),
                ("overview of a unit", "/ui/overview?unit=unit-3"),
                ("a unit's critical findings, page 1", "/ui/findings?unit=unit-3&severity=critical"),
                ("a unit's active findings, page 1", "/ui/findings?unit=unit-3"),
                ("a unit's active findings, page 100", "/ui/findings?unit=unit-3&page=100"),
                ("one finding with its audit", f"/ui/findings/{one.group(1)}"),
                ("one host (50 of its 700 findings, 20 runs)", f"/ui/hosts/{agents[123]}"),
                ("one host's findings, page 5", f"/ui/findings?unit=unit-3&agent={agents[123]}&page=5"),
                ("notices and tasks of a unit", "/ui/work?unit=unit-3"),
                ("rectification report of a unit (50 rows a section)", "/ui/report?unit=unit-3"),
            ]
            for _, path in cases:  # warm up
                browser.get(path)
            rows = [(name, pct(lat, 0.5), pct(lat, 0.99)) for name, path in cases for lat in [_timed(browser, path)]]
    return rows, seed_s


def run() -> str:
    lines = ["The data set of the API query benchmark (1,000,000 findings over 1,000 agents in 10 units, written "
             f"straight into the database), then each page {REPEAT} times over HTTPS as a logged-in admin with "
             "the dashboard's session cookie. Budget p99 <= 100 ms.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("sqlite", "postgresql"):
            rows, seed_s = _one(backend, Path(tmp) / backend)
            lines.append(f"load average after the {backend} pages: {os.getloadavg()[0]:.1f}")
            ref = rows[0][2]
            lines += [f"**{backend}** (seeding {seed_s:.0f} s)", "",
                      "| page | p50 | p99 | p99 / healthz p99 | budget |", "|---|---|---|---|---|"]
            for name, p50, p99 in rows:
                verdict = "" if name.startswith("healthz") else ("met" if p99 <= BUDGET_P99_S else "NOT met")
                lines.append(f"| {name} | {p50 * 1000:.1f} ms | {p99 * 1000:.1f} ms | {p99 / ref:.1f} | {verdict} |")
            lines.append("")
    return "\n".join(lines)
