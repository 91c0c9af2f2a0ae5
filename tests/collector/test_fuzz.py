"""Fuzz every operation of the OpenAPI spec with schemathesis (bounded examples, valid and invalid inputs):
never a server error. People routes are called logged in as an admin; the signed agent routes are called with
each generated request signed by an enrolled agent's key (the exact bytes sent), so generated bodies get past
the signature to validation and storage; the other operations as generated."""

from __future__ import annotations

from collections import Counter
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.collector.client import AgentSim
from tests.collector.conftest import Collector, unit_name

EXAMPLES = 5
SIGNED_EXAMPLES = 10  # per signed operation and mode
SIGNED_PREFIX = "/api/v1/agent/"
_REQUEST_KEYS = ("method", "url", "headers", "params", "data", "json", "cookies", "files")


def _send_signed(case: Any, sim: AgentSim, session: requests.Session, base_url: str, ca: str) -> requests.Response:
    """The request schemathesis built, prepared as it will go on the wire, then signed over those bytes."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    params = kwargs.get("params") or {}
    if isinstance(params.get("wait"), int) and params["wait"] > 1:
        params["wait"] = 1  # a long poll of up to 25 s per example would eat the budget; 0-1 s tests the same code
    document = kwargs.get("json")
    if isinstance(document, dict) and "host" in document:
        document["host"] = sim.host  # the signer's own host identity (another one is a 409 before storage)
    prepared = session.prepare_request(requests.Request(**{k: v for k, v in kwargs.items() if k in _REQUEST_KEYS}))
    body = prepared.body or b""
    body = body.encode("utf-8") if isinstance(body, str) else body
    assert isinstance(body, bytes) and prepared.method and prepared.path_url
    signing = sim.signed_headers(prepared.method, prepared.path_url, body)
    if "Content-Type" in prepared.headers:  # keep a generated (possibly wrong) media type
        del signing["Content-Type"]
    prepared.headers.update(signing)
    prepared.headers.pop("Authorization", None)  # the agent's signature alone, not the admin's session
    return session.send(prepared, verify=ca, timeout=30)


def test_no_server_errors(collector: Collector) -> None:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override the pinned collector CA
    r = session.post(f"{collector.url}/api/v1/auth/login", verify=collector.ca,
                     json={"username": "admin", "password": collector.admin_password})
    session.headers["Authorization"] = f"Bearer {r.json()['token']}"
    spec = session.get(f"{collector.url}/openapi.json", verify=collector.ca).json()
    schema = schemathesis.openapi.from_dict(spec)
    sim = collector.agent(unit_name(), hostname="fuzz-host")
    failures: list[str] = []
    signed_status: Counter[tuple[str, int]] = Counter()
    operations = exercised = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        signed = operation.path.startswith(SIGNED_PREFIX)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=SIGNED_EXAMPLES if signed else EXAMPLES, deadline=None,
                      suppress_health_check=list(HealthCheck), derandomize=True, database=None)
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: Any) -> None:
                if case.operation.path.startswith(SIGNED_PREFIX):
                    response = _send_signed(case, sim, session, collector.url, collector.ca)
                    signed_status[(case.operation.path, response.status_code)] += 1
                else:
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
    sim.close()
    assert operations >= 20 and exercised > operations
    assert failures == []
    # the signature held: generated bodies reached validation (422) and storage (200), not only the 401 wall
    by_path: dict[str, Counter[int]] = {}
    for (path, status), n in signed_status.items():
        by_path.setdefault(path, Counter())[status] += n
    assert {"/api/v1/agent/ingest", "/api/v1/agent/tasks", "/api/v1/agent/notices"} <= set(by_path), by_path
    for path, statuses in by_path.items():
        assert statuses[401] == 0, (path, statuses)  # every generated request, odd paths included, verified
    assert by_path["/api/v1/agent/ingest"][200] > 0 and by_path["/api/v1/agent/ingest"][422] > 0, by_path
