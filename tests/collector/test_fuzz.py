"""Fuzz every operation of the OpenAPI spec with schemathesis (bounded examples, valid and invalid inputs):
never a server error. People routes are called logged in as an admin; agent routes unsigned (their signed
paths are covered by the ingest tests with malformed, oversized and hostile bodies)."""

from __future__ import annotations

from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.collector.conftest import Collector

EXAMPLES = 5


def test_no_server_errors(collector: Collector) -> None:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override the pinned collector CA
    r = session.post(f"{collector.url}/api/v1/auth/login", verify=collector.ca,
                     json={"username": "admin", "password": collector.admin_password})
    session.headers["Authorization"] = f"Bearer {r.json()['token']}"
    spec = session.get(f"{collector.url}/openapi.json", verify=collector.ca).json()
    schema = schemathesis.openapi.from_dict(spec)
    failures: list[str] = []
    operations = exercised = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                      derandomize=True, database=None)
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: Any) -> None:
                response = case.call(base_url=collector.url, session=session, timeout=30, verify=collector.ca)
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text}")

            try:
                call()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE  # nothing to get wrong (no parameters, no body)
            else:
                exercised += 1
    session.close()
    assert operations >= 20 and exercised > operations
    assert failures == []
