"""Fuzz every operation of the OpenAPI spec with schemathesis (bounded examples): never a server error.
People routes are called logged in as an admin; agent routes unsigned (their signed paths are covered by the
ingest tests with malformed, oversized and hostile bodies)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from tests.collector.conftest import Collector

schema = schemathesis.pytest.from_fixture("collector_spec")


@pytest.fixture(scope="session")
def collector_spec(collector: Collector) -> Any:
    with collector.http() as http:
        spec = http.get("/openapi.json").json()
    return schemathesis.openapi.from_dict(spec)


@pytest.fixture(scope="session")
def fuzz_session(collector: Collector) -> Iterator[requests.Session]:
    session = requests.Session()
    session.verify = collector.ca
    r = session.post(f"{collector.url}/api/v1/auth/login",
                     json={"username": "admin", "password": collector.admin_password})
    session.headers["Authorization"] = f"Bearer {r.json()['token']}"
    yield session
    session.close()


_ = ssl


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case: Any, collector: Collector, fuzz_session: requests.Session) -> None:
    response = case.call(base_url=collector.url, session=fuzz_session, timeout=30)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        assert "error" in body or "detail" in body, body
