"""Enrolment and agent identity over real TLS: tokens, signatures, replay, revocation, clones."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.collector.client import AgentSim
from tests.collector.conftest import Collector, unit_name


def test_enrol_then_signed_requests_work(collector: Collector) -> None:
    unit = unit_name()
    sim = collector.agent(unit)
    r = sim.notices()
    assert r.status_code == 200, r.text
    assert r.json() == {"notices": []}
    with collector.login() as admin:
        agents = admin.get("/api/v1/agents", params={"unit": unit}).json()
    assert [a["id"] for a in agents] == [sim.agent_id]
    assert agents[0]["state"] == "online"


def test_enrolment_returns_a_client_certificate_from_the_collector_ca(collector: Collector) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    unit = unit_name()
    sim = AgentSim(collector.url, collector.ca)
    r = sim.enrol(collector.token(unit), unit)
    body = r.json()
    cert = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
    ca = x509.load_pem_x509_certificate(Path(collector.ca).read_bytes())
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == body["agent_id"]
    assert cert.public_key() == sim.identity.public_key()
    assert body["issuers"] and body["issuers"][0]["public_key"]


@pytest.mark.parametrize("case", ["unknown", "reused", "expired", "wrong-unit"])
def test_enrolment_refusals(collector: Collector, case: str) -> None:
    unit = unit_name()
    token = collector.token(unit, hours=0.0003 if case == "expired" else 24)
    if case == "reused":
        assert AgentSim(collector.url, collector.ca).enrol(token, unit).status_code == 200
    if case == "expired":
        time.sleep(1.5)
    sim = AgentSim(collector.url, collector.ca)
    r = sim.enrol("pcenrol_" + "x" * 32 if case == "unknown" else token, "other-unit" if case == "wrong-unit" else unit)
    expected = {"unknown": (401, "unknown-token"), "reused": (401, "token-used"), "expired": (401, "token-expired"),
                "wrong-unit": (403, "wrong-unit")}[case]
    assert (r.status_code, r.json()["error"]) == expected
    assert r.json()["message_zh"]


def test_unsigned_unknown_bad_signature_and_replay_are_refused(collector: Collector) -> None:
    sim = collector.agent(unit_name())
    with collector.http() as http:
        r = http.get("/api/v1/agent/notices")
    assert (r.status_code, r.json()["error"]) == (401, "unsigned")
    stranger = AgentSim(collector.url, collector.ca, agent_id="f" * 32)
    assert stranger.notices().json()["error"] == "unknown-agent"
    forger = AgentSim(collector.url, collector.ca, agent_id=sim.agent_id)  # right id, another key
    assert forger.notices().json()["error"] == "bad-signature"
    headers = sim.signed_headers("GET", "/api/v1/agent/notices", b"")
    assert sim.signed("GET", "/api/v1/agent/notices", headers=headers).status_code == 200
    replay = sim.signed("GET", "/api/v1/agent/notices", headers=headers)
    assert (replay.status_code, replay.json()["error"]) == (401, "replayed-request")
    old = sim.signed("GET", "/api/v1/agent/notices", when=time.time() - 3600)
    assert (old.status_code, old.json()["error"]) == (401, "clock-skew")


def test_signature_covers_the_body(collector: Collector) -> None:
    sim = collector.agent(unit_name())
    batch = sim.batch()
    import json

    body = json.dumps(batch).encode()
    headers = sim.signed_headers("POST", "/api/v1/agent/ingest", body)
    tampered = body.replace(b'"runs": []', b'"runs": [] ')
    r = sim.signed("POST", "/api/v1/agent/ingest", raw=tampered, headers=headers)
    assert (r.status_code, r.json()["error"]) == (401, "bad-signature")


def test_revoked_agent_is_refused_on_its_next_request(collector: Collector) -> None:
    sim = collector.agent(unit_name())
    assert sim.notices().status_code == 200
    done = collector.cli("agent", "revoke", str(sim.agent_id))
    assert done.returncode == 0, done.stderr
    r = sim.notices()
    assert (r.status_code, r.json()["error"]) == (401, "revoked")
    listing = collector.cli("agent", "list", "--json")
    assert '"revoked"' in listing.stdout


def test_renewal_issues_a_new_certificate_for_a_new_key(collector: Collector) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.collector.client import make_csr

    sim = collector.agent(unit_name())
    new_key = Ed25519PrivateKey.generate()
    r = sim.signed("POST", "/api/v1/agent/renew", {"csr_pem": make_csr(new_key)})
    assert r.status_code == 200, r.text
    old_key, sim.identity = sim.identity, new_key
    assert sim.notices().status_code == 200
    sim.identity = old_key
    assert sim.notices().json()["error"] == "bad-signature"


def test_a_cloned_machine_is_detected_and_refused_not_merged(collector: Collector) -> None:
    unit = unit_name()
    original = collector.agent(unit)
    clone = AgentSim(collector.url, collector.ca, hostname=original.hostname, machine_id=original.machine_id,
                     identity=original.identity, record_key=original.record_key, agent_id=original.agent_id)
    assert original.notices().status_code == 200
    assert clone.notices().status_code == 200  # first sight of another boot id: could be a reboot
    r = original.notices()  # the first boot id comes back: two hosts share the identity
    assert (r.status_code, r.json()["error"]) == (409, "identity-conflict")
    other_machine = AgentSim(collector.url, collector.ca, hostname="db02", identity=original.identity,
                             agent_id=original.agent_id, boot_id=clone.boot_id)
    r = other_machine.ingest(other_machine.batch())
    assert (r.status_code, r.json()["error"]) == (409, "identity-conflict")
    with collector.login() as admin:
        alerts = admin.get("/api/v1/alerts", params={"unit": unit}).json()
    kinds = sorted(a["kind"] for a in alerts)
    assert kinds == ["clone-suspected", "clone-suspected"]


def test_rate_limit_is_429_with_retry_after(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.collector.conftest import running_collector

    with running_collector(tmp_path_factory.mktemp("rate"), "sqlite",
                           {"PRECAUTION_COLLECTOR_RATE_LIMIT_PER_MINUTE": "5"}) as c:
        sim = c.agent(unit_name())
        codes = [sim.notices() for _ in range(8)]
    limited = [r for r in codes if r.status_code == 429]
    assert [r.status_code for r in codes[:5]] == [200] * 5 and len(limited) == 3
    assert 1 <= int(limited[0].headers["Retry-After"]) <= 60
    assert limited[0].json()["error"] == "rate-limited"


def test_people_see_only_their_units(collector: Collector) -> None:
    unit_a, unit_b = unit_name(), unit_name()
    collector.agent(unit_a)
    collector.agent(unit_b)
    done = collector.cli("user", "add", "viewer-a", "--role", "viewer", "--unit", unit_a, "--password-stdin",
                         input="correct horse battery\n")
    assert done.returncode == 0, done.stderr
    with collector.login("viewer-a", "correct horse battery") as viewer:
        assert {a["unit"] for a in viewer.get("/api/v1/agents").json()} == {unit_a}
        assert viewer.get("/api/v1/agents", params={"unit": unit_b}).status_code == 403
        assert viewer.post("/api/v1/tokens", json={"unit": unit_a}).status_code == 403
        assert viewer.get("/api/v1/findings", params={"unit": unit_b}).status_code == 403
    with collector.http() as anon:
        assert anon.post("/api/v1/auth/login", json={"username": "viewer-a", "password": "wrong"}).status_code == 401
        assert anon.get("/api/v1/findings").status_code == 401
