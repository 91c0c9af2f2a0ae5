"""What an agent does against the collector, over real HTTPS with the collector CA pinned: enrol with a CSR,
sign every request with the enrolled key, send batches (findings, record lines, acknowledgements), lease tasks.
Tests and benchmarks use it; the daemon's own client is issue 11's."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from agent.record import make_body, seal
from agent.wire.chain import GENESIS, link_of
from agent.wire.collector_api import (
    HEADER_AGENT,
    HEADER_BOOT,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIME,
    request_signing_bytes,
)
from agent.wire.record import HostScope, ScanContent, ScanSummaryDoc
from agent.wire.signatures import fingerprint, raw_public_key

SEVERITY_COUNTS = {"info": 0, "low": 0, "medium": 0, "high": 0, "critical": 0}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def make_csr(key: Ed25519PrivateKey, name: str = "precaution-agent") -> str:
    from cryptography.hazmat.primitives import serialization

    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])).sign(key, None))
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def finding(fid: str, *, host: str = "db01", probe: str = "sshd", severity: str = "high",
            rule: str = "PC-SSH-004", subject: str | None = None) -> dict[str, Any]:
    """A wire Finding (agent.wire.findings.Finding) as JSON."""
    return {
        "id": fid, "rule_id": rule, "kind": "rule", "host": host, "probe": probe,
        "subject": subject or f"{probe}:{fid}", "severity": severity,
        "title": {"en": f"finding {fid}", "zh-CN": f"问题 {fid}"},
        "rationale": {"en": "why", "zh-CN": "理由"},
        "remediation": {"action": "reconfigure", "steps": {"en": "fix it", "zh-CN": "整改"}, "command": None},
        "evidence": {"value": "yes"}, "references": ["Art. 24"], "waived": None,
    }


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def run(run_id: str, findings: list[dict[str, Any]], *, host: str = "db01", probes: dict[str, str] | None = None,
        finished: dt.datetime | None = None, login_failed: bool = False, task_id: str | None = None,
        kind: str = "scan", coverage: dict[str, Any] | None = None) -> dict[str, Any]:
    """A RunReport: ``probes`` maps probe id -> status (default: each finding's probe, ok); ``coverage`` a
    RunCoverage (none: an older agent's run, without the field)."""
    finished = finished or dt.datetime.now(dt.UTC)
    probes = probes if probes is not None else {f["probe"]: "ok" for f in findings} or {"sshd": "ok"}
    extra = {} if coverage is None else {"coverage": coverage}
    return {**extra,
        "run_id": run_id, "kind": kind, "host": host, "started": iso(finished - dt.timedelta(seconds=2)),
        "finished": iso(finished), "task_id": task_id, "notice_id": None, "login_failed": login_failed,
        "probes": [{"id": p, "title": p, "status": s, "duration_s": 0.1, "observations": 1, "message": None,
                    "limitations": []} for p, s in probes.items()],
        "findings": findings,
    }


@dataclass
class AgentSim:
    base_url: str
    ca_file: str
    hostname: str = "db01"
    machine_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    boot_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    identity: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    record_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    agent_id: str | None = None
    unit: str | None = None
    seq: int = 0
    link: str = GENESIS
    lines: list[str] = field(default_factory=list)
    http: httpx.Client | None = None
    enrolment: dict[str, Any] = field(default_factory=dict)

    def client(self) -> httpx.Client:
        if self.http is None:
            self.http = httpx.Client(base_url=self.base_url, verify=ssl.create_default_context(cafile=self.ca_file),
                                     timeout=60)
        return self.http

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None

    @property
    def host(self) -> dict[str, str]:
        return {"hostname": self.hostname, "machine_id": self.machine_id, "boot_id": self.boot_id}

    def enrol_request(self, token: str, unit: str) -> dict[str, Any]:
        return {"schema": "precaution.collector.enrol/v1", "token": token, "unit": unit,
                "csr_pem": make_csr(self.identity),
                "record_public_key": b64(raw_public_key(self.record_key.public_key())),
                "host": self.host, "agent_version": "test"}

    def enrol(self, token: str, unit: str) -> httpx.Response:
        response = self.client().post("/api/v1/enroll", json=self.enrol_request(token, unit))
        if response.status_code == 200:
            self.agent_id, self.unit, self.enrolment = response.json()["agent_id"], unit, response.json()
        return response

    def signed_headers(self, method: str, path_qs: str, body: bytes, *, when: float | None = None,
                       nonce: str | None = None) -> dict[str, str]:
        assert self.agent_id is not None
        timestamp = str(int(time.time() if when is None else when))
        nonce = nonce or secrets.token_hex(16)
        sig = b64(self.identity.sign(request_signing_bytes(method, path_qs, timestamp, nonce, body)))
        return {HEADER_AGENT: self.agent_id, HEADER_TIME: timestamp, HEADER_NONCE: nonce, HEADER_SIGNATURE: sig,
                HEADER_BOOT: self.boot_id, "Content-Type": "application/json"}

    def signed(self, method: str, path_qs: str, payload: Any = None, *, raw: bytes | None = None,
               headers: dict[str, str] | None = None, **sign: Any) -> httpx.Response:
        body = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        h = headers or self.signed_headers(method, path_qs, body, **sign)
        return self.client().request(method, path_qs, content=body or None, headers=h)

    # -- the record -------------------------------------------------------------------------------------

    def record_scan(self, findings: int = 0, when: dt.datetime | None = None) -> str:
        """Append one real record line (agent.record's own sealing), as the agent writes it."""
        content = ScanContent(scope=HostScope(host=self.hostname), tests=["host"],
                              summary=ScanSummaryDoc(findings={**SEVERITY_COUNTS, "high": findings}, probe_errors=0,
                                                     baseline=None))
        body = make_body(self.seq + 1, self.link, fingerprint(self.record_key.public_key()), "test@" + self.hostname,
                         content, time=when or dt.datetime.now(dt.UTC))
        line, entry = seal(body, self.record_key)
        self.seq, self.link = entry.seq, link_of(entry.hash, entry.sig)
        text = line.decode("utf-8").rstrip("\n")
        self.lines.append(text)
        return text

    def batch(self, runs: list[dict[str, Any]] | None = None, record: list[str] | None = None,
              acks: list[dict[str, Any]] | None = None, batch_id: str | None = None) -> dict[str, Any]:
        return {"schema": "precaution.collector.ingest/v1", "batch_id": batch_id or uuid.uuid4().hex,
                "host": self.host, "runs": runs or [], "record_lines": record or [], "acknowledgements": acks or []}

    def ingest(self, batch: dict[str, Any]) -> httpx.Response:
        return self.signed("POST", "/api/v1/agent/ingest", batch)

    def tasks(self, wait: int = 0) -> httpx.Response:
        return self.signed("GET", f"/api/v1/agent/tasks?wait={wait}")

    def notices(self) -> httpx.Response:
        return self.signed("GET", "/api/v1/agent/notices")


def notice_digest(document: dict[str, Any]) -> str:
    """What the agent binds its acknowledgement to (agent.wire.signatures.notice_digest)."""
    from agent.wire.signatures import canonical_json
    from agent.wire.signatures import notice_digest as digest

    return digest(canonical_json(document["notice"]), (document.get("signature") or {}).get("value"))
