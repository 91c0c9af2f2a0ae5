"""Certificate renewal and re-enrolment (issue 11 item 2) with a real collector process over TLS issuing
short-lived certificates and the real agent: renewed in the last third of the certificate's life, same id and
unit, the spool queued before it delivered exactly once after it, the old key refused, a renewal cut off after
the collector switched keys finished on the next try, a revoked agent's renewal refused with a clear line, and
`precaution agent enroll` again keeping the spool."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from agent.daemon.collector_client import CollectorClient, CollectorError
from agent.daemon.identity import Enrolment, Identity, host_identity, make_csr, renewal_due, renewal_time
from agent.daemon.metrics import AgentMetrics
from agent.daemon.push import PushWorker
from agent.daemon.spool import Priority, Spool, SpoolItem
from agent.keys import load_private_key_file
from baselines import ed25519
from collector.core.errors import CollectorUserError
from tests.collector.conftest import FAST_ENV, Collector, running_collector, unit_name
from tests.daemon.agentproc import AgentProcess, ran_ok
from tests.daemon.test_agent_collector import enrol, spool_depth
from tests.zh_check import data_words, english_words

LIFETIME_S = 24  # the collector's certificates live 24 s: renewal is due 16 s after issue
SHORT_CERTS = {**FAST_ENV, "PRECAUTION_COLLECTOR_CERT_DAYS": repr(LIFETIME_S / 86400),
               "PRECAUTION_COLLECTOR_TASK_POLL_INTERVAL_S": "1"}
LINK = """
[collector]
push_interval = "1s"
task_poll_interval = "1s"
[self_inspection]
file_integrity_paths = ["/usr/share/doc/python3"]
[schedule.self_inspection]
interval = "30d"
[schedule.file_integrity]
interval = "30d"
[schedule.own_networks]
interval = "30d"
"""
BACKDATE = dt.timedelta(minutes=5)  # the collector's CA backdates not_valid_before by 5 minutes (clock slack)


def _enrolment(at: str, until: str) -> Enrolment:
    return Enrolment(url="https://x", agent_id="a", unit="u", not_after=until, enrolled_at=at, issuers=[],
                     poll_interval_s=30)


def test_renewal_is_due_in_the_last_third_of_the_life_whatever_its_length() -> None:
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for life in (dt.timedelta(seconds=90), dt.timedelta(days=2), dt.timedelta(days=365)):
        e = _enrolment(t0.isoformat(), (t0 + life).isoformat())
        assert renewal_time(e) == t0 + life * 2 / 3
        assert not renewal_due(e, t0 + life * 0.66) and renewal_due(e, t0 + life * 0.67)


def test_collector_certificate_lifetime_is_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from collector.core.settings import load_settings

    monkeypatch.setenv("PRECAUTION_COLLECTOR_HOME", str(tmp_path))
    assert load_settings(cert_days=0.5).cert_days == 0.5
    assert load_settings(cert_days=0.001, task_poll_interval_s=10).cert_days == 0.001  # 86 s > 6 polls of 10 s
    with pytest.raises(CollectorUserError, match=r"cert_days 0\.0005 is 43 s, shorter than 6 task polls"):
        load_settings(cert_days=0.0005, task_poll_interval_s=10)
    with pytest.raises(CollectorUserError, match="'cert_days'"):
        load_settings(cert_days=0)


@pytest.fixture()
def collector(tmp_path: Path) -> Iterator[Collector]:
    with running_collector(tmp_path, "sqlite", SHORT_CERTS) as c:
        yield c


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _worker(agent: AgentProcess, c: Collector, identity: Identity) -> PushWorker:
    """The agent's collector link, in this process: its renewal driven through the real client."""
    enrolment = identity.enrolment()
    assert enrolment is not None
    host = host_identity()
    client = CollectorClient(c.url, str(identity.ca_path), enrolment.agent_id, identity.key(), host.boot_id)
    return PushWorker(client, lambda: Spool(agent.state / "spool.db", check=False), AgentMetrics(), agent.state,
                      host, 1.0, 1.0, 20, threading.Event(), identity)


def _db(c: Collector) -> sqlite3.Connection:
    return sqlite3.connect(str(c.home / "collector.db"))


def test_renewal_before_expiry_keeps_identity_and_spool_then_revoked_refused_and_reenrolment_keeps_spool(
        tmp_path: Path, collector: Collector, caplog: pytest.LogCaptureFixture) -> None:
    agent = AgentProcess(tmp_path / "a", LINK)
    agent.state.mkdir(parents=True)
    unit = unit_name()
    # Runs before enrolment: queued in the spool, sent only once there is a collector to send them to.
    agent.start()
    try:
        agent.wait_for(lambda f: all(ran_ok(k)(f) for k in ("self_inspection", "file_integrity", "own_networks")))
    finally:
        agent.stop()
    queued = spool_depth(agent)
    assert queued >= 6  # 3 runs and their record entries
    spool = Spool(agent.state / "spool.db", check=False)
    try:
        real_run = next(q.body for q in spool.batch(100) if q.kind == "run")
    finally:
        spool.close()

    assert enrol(agent, collector, unit, "--ca", collector.ca).returncode == 0
    ident = Identity(agent.state / "identity")
    first = ident.enrolment()
    assert first is not None
    old_key_pem, old_cert = ident.key_path.read_bytes(), _cert(ident.cert_path)
    assert (old_cert.not_valid_after_utc - old_cert.not_valid_before_utc - BACKDATE).total_seconds() == LIFETIME_S
    wait = (renewal_time(first) - dt.datetime.now(dt.UTC)).total_seconds() + 0.5
    assert wait > 0, "the agent ran into its renewal window before it was meant to"
    time.sleep(wait)  # the certificate is in its last third: the agent's first act is to renew it
    agent.start()
    try:
        agent.wait_for(lambda f: sum(f.by("precaution_agent_spool_items", "priority").values()) == 0
                       and (f.get("precaution_agent_last_successful_push_timestamp_seconds") or 0) > 0
                       and _cert(ident.cert_path).serial_number != old_cert.serial_number)
    finally:
        agent.stop()
    renewed = ident.enrolment()
    assert renewed is not None and (renewed.agent_id, renewed.unit, renewed.url) == (first.agent_id, unit, first.url)
    new_cert = _cert(ident.cert_path)
    names = {a.oid: a.value for a in new_cert.subject}
    assert names[NameOID.COMMON_NAME] == first.agent_id and names[NameOID.ORGANIZATION_NAME] == unit
    assert ident.key_path.read_bytes() != old_key_pem and not ident.next_key_path.exists()
    assert ident.key_path.stat().st_mode & 0o777 == 0o600
    # When it renewed (each certificate is issued 5 minutes before its not_valid_before): in the last third of
    # the old one's life (a second of slack for the certificate's whole-second times), and before it ran out.
    issued_old = old_cert.not_valid_before_utc + BACKDATE
    renewed_at = new_cert.not_valid_before_utc + BACKDATE
    life = old_cert.not_valid_after_utc - issued_old
    assert renewed_at - issued_old >= life * 2 / 3 - dt.timedelta(seconds=1)
    assert renewed_at <= old_cert.not_valid_after_utc
    assert "certificate renewed, valid until" in agent.log.read_text()
    record = [json.loads(line)["entry"] for line in (agent.state / "record.jsonl").read_text().splitlines()]
    with _db(collector) as conn:
        runs = conn.execute("SELECT run_id, received_at FROM runs WHERE agent_id = ?", (first.agent_id,)).fetchall()
        seqs = [r[0] for r in conn.execute("SELECT seq FROM record_entries WHERE agent_id = ? ORDER BY seq",
                                           (first.agent_id,))]
        serial = conn.execute("SELECT cert_serial FROM agents WHERE id = ?", (first.agent_id,)).fetchone()[0]
    # exactly once, and only after the renewal (nothing went out under the certificate about to expire)
    assert len(runs) == len({r[0] for r in runs}) == 3
    assert all(dt.datetime.fromisoformat(str(r[1])).replace(tzinfo=dt.UTC) >= renewed_at - dt.timedelta(seconds=1)
               for r in runs), (runs, renewed_at)
    assert seqs == list(range(1, len(record) + 1))
    assert serial == format(new_cert.serial_number, "x")  # the collector holds the new certificate

    # The old key is superseded: a request signed with it is refused; the new one is taken.
    host = host_identity()
    old_client = CollectorClient(collector.url, str(ident.ca_path), first.agent_id,
                                 ed25519.load_private_pem(old_key_pem), host.boot_id)
    with pytest.raises(CollectorError) as refused:
        old_client.notices()
    assert refused.value.status == 401 and refused.value.code == "bad-signature"
    CollectorClient(collector.url, str(ident.ca_path), first.agent_id, ident.key(), host.boot_id).notices()

    # A renewal cut off after the collector took the new key (agent killed before it saved the enrolment): the
    # pending key is adopted on the next try, then renewed again, so the agent is never locked out.
    cut = ed25519.generate()
    (ident.dir / "identity.key.next").write_bytes(ed25519.private_pem(cut))
    cutter = _worker(agent, collector, ident).client
    cutter.renew(make_csr(cut, host.hostname))
    cutter.close()
    worker = _worker(agent, collector, ident)
    with caplog.at_level(logging.INFO, logger="agent.daemon.push"):
        worker.maybe_renew()
    assert "renewal was cut off after the collector took the new key" in caplog.text
    assert not ident.next_key_path.exists()
    adopted = load_private_key_file(ident.key_path, "agent identity key")
    assert ed25519.private_pem(adopted) not in (ed25519.private_pem(cut), old_key_pem)  # renewed once more
    worker.client.notices()
    worker.client.close()

    # Re-enrolment with a new token keeps what waits in the spool; it arrives under the new identity.
    spool = Spool(agent.state / "spool.db", check=False)
    try:
        spool.put_many([SpoolItem(f"run:before-reenrol-{i}", "run", {**real_run, "run_id": f"before-reenrol-{i}"},
                                  Priority.KEEP) for i in range(5)])
    finally:
        spool.close()
    again = enrol(agent, collector, unit, "--ca", collector.ca, "--lang", "zh-CN")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"已注册到汇聚端 {collector.url}：代理编号 ")
    new_id = again.stdout.split("代理编号 ")[1].split("，")[0]
    assert not english_words(again.stdout, data_words([collector.url, unit, ident.dir, new_id]))
    assert spool_depth(agent) == 5
    second = ident.enrolment()
    assert second is not None and second.agent_id != first.agent_id and second.unit == unit
    agent.start()
    try:
        agent.wait_for(lambda f: sum(f.by("precaution_agent_spool_items", "priority").values()) == 0
                       and (f.get("precaution_agent_last_successful_push_timestamp_seconds") or 0) > 0)
    finally:
        agent.stop()
    with _db(collector) as conn:
        moved = sorted(r[0] for r in conn.execute("SELECT run_id FROM runs WHERE agent_id = ?", (second.agent_id,)))
    assert moved == [f"before-reenrol-{i}" for i in range(5)]

    # Revoked: the renewal is refused with a clear line, nothing of the identity changes, and the daemon says
    # what to do (in agent.toml's language).
    with collector.login() as admin:
        assert admin.post(f"/api/v1/agents/{second.agent_id}/revoke").status_code == 200
    copy = Identity(tmp_path / "identity-due")
    shutil.copytree(ident.dir, copy.dir)
    due = second.model_copy(update={"enrolled_at": "2000-01-01T00:00:00+00:00"})
    copy.enrolment_path.write_text(due.model_dump_json())
    key_before = copy.key_path.read_bytes()
    worker = _worker(agent, collector, copy)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="agent.daemon.push"), pytest.raises(CollectorError) as revoked:
        worker.maybe_renew()
    worker.client.close()
    assert revoked.value.code == "revoked" and revoked.value.permanent
    assert ("certificate renewal refused: collector answered HTTP 401: revoked: this agent's certificate was "
            "revoked") in caplog.text
    assert revoked.value.advice is not None and "吊销" in revoked.value.advice.get("zh-CN")
    assert copy.key_path.read_bytes() == key_before and not copy.next_key_path.exists()
    agent.config.write_text('lang = "zh-CN"\n' + agent.config.read_text())
    agent.start()
    try:
        agent.wait_for(lambda f: (f.get("precaution_agent_push_failures_total", reason="http_4xx") or 0) >= 1)
    finally:
        agent.stop()
    log = agent.log.read_text()
    assert "汇聚端已吊销本代理的证书：不再发送数据，结果保留在本地缓存队列中" in log
    assert "汇聚端：汇聚端拒绝请求（HTTP 401）：该代理的证书已被吊销" in log
