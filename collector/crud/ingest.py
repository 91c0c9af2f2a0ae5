"""Lossless, idempotent ingest of one batch: record entries (chain checked against the head held per agent),
runs, findings (first/last seen, resolved by a complete later run), notice acknowledgements.

Every item has a stable key and is inserted ``ON CONFLICT DO NOTHING ... RETURNING``: what comes back was
accepted, the rest were duplicates. A re-sent batch therefore changes nothing and gets the same answer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, case, select, update
from sqlalchemy.orm import Session

from agent.wire.chain import link_of, parse_line
from agent.wire.collector_api import IngestBatch, IngestCounts, IngestResult, ItemAck, RunReport
from agent.wire.coverage import HOST_ONLY, covers_network, finding_target, network_probes
from agent.wire.findings import Finding as WireFinding
from agent.wire.record import parse_entry
from agent.wire.signatures import ed25519_valid, fingerprint, public_key_from_b64
from collector.core.bulk import bulk_insert
from collector.core.clock import parse_iso
from collector.crud.identity import _alert, _insert
from collector.models import Agent, Batch, Finding, FindingAudit, FindingRun, IssuedNotice, NoticeAck, RecordEntry, Run
from collector.models.findings import active_filter
from collector.models.tasks import Task

RECORD_RULE = "PC-COLLECTOR-RECORD"
FINDING_RUN_COLUMNS = ("agent_id", "finding_id", "run_id", "seen_at")
FINDING_COLUMNS = ("agent_id", "unit", "host", "finding_id", "rule_id", "probe", "subject", "severity", "title_en",
                   "title_zh", "document", "first_seen", "last_seen", "first_run", "last_run", "state", "updated_at",
                   "target")
RESOLVABLE = ("open", "rectification_ordered", "reopened")
AWAITING_RETEST = ("reported_rectified", "retest_scheduled")
CLOSED = ("resolved", "fix_verified")
SYSTEM_ACTOR = "collector"


@dataclass
class _Acks:
    items: list[ItemAck] = field(default_factory=list)

    def add(self, kind: str, key: str, status: str, reason: str | None = None) -> None:
        self.items.append(ItemAck(kind=kind, key=key, status=status, reason=reason))  # type: ignore[arg-type]

    def counts(self) -> IngestCounts:
        tally = {"accepted": 0, "duplicate": 0, "rejected": 0}
        for item in self.items:
            tally[item.status] += 1
        return IngestCounts(**tally)


def ingest(session: Session, agent: Agent, batch: IngestBatch, now: dt.datetime) -> IngestResult:
    acks = _Acks()
    _record_lines(session, agent, batch.record_lines, acks, now)
    for run in batch.runs:
        _run(session, agent, run, acks, now)
    _acknowledgements(session, agent, batch, acks, now)
    counts = acks.counts()
    # The batch row last, with its counts: one statement, and a re-sent batch finds it (its items were all
    # duplicates by then, so nothing above changed anything either).
    fresh_batch = session.execute(
        _insert(session, Batch).values(agent_id=agent.id, batch_id=batch.batch_id, received_at=now,
                                       accepted=counts.accepted, duplicate=counts.duplicate,
                                       rejected=counts.rejected).on_conflict_do_nothing()
        .returning(Batch.batch_id)).first() is not None
    return IngestResult(batch_id=batch.batch_id, replayed_batch=not fresh_batch, counts=counts, items=acks.items,
                        record_head=agent.record_seq)


# -- the record chain -------------------------------------------------------------------------------------


def _record_finding(session: Session, agent: Agent, kind: str, detail: str, now: dt.datetime) -> None:
    """A wiped, truncated or forked agent record is a critical finding for that host (and an alert)."""
    _alert(session, agent.id, kind, detail, now)
    title = {"record-wiped": ("the agent's inspection record was wiped and restarted",
                              "代理的检查记录被清除后重新开始"),
             "record-forked": ("the agent's inspection record was truncated or forked", "代理的检查记录被截断或分叉"),
             "record-tampered": ("an inspection record entry failed verification", "检查记录条目未通过验证")}[kind]
    doc = {"detail": detail, "agent_id": agent.id, "collector_head_seq": agent.record_seq}
    stmt = _insert(session, Finding).values(
        agent_id=agent.id, unit=agent.unit, host=agent.hostname, finding_id=f"collector:{kind}:{agent.id}",
        rule_id=RECORD_RULE, probe="collector.record", subject=f"record of agent {agent.id}", severity="critical",
        title_en=title[0], title_zh=title[1], document=doc, first_seen=now, last_seen=now, first_run="-",
        last_run="-", state="open", updated_at=now)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[Finding.agent_id, Finding.finding_id],
        set_={"last_seen": now, "document": doc, "state": "open", "updated_at": now}))


def _record_lines(session: Session, agent: Agent, lines: list[str], acks: _Acks, now: dt.datetime) -> None:
    if not lines:
        return
    try:
        key = public_key_from_b64(agent.record_key)
    except ValueError:
        for _ in lines:
            acks.add("record", "?", "rejected", "the enrolled record key is unusable")
        return
    key_fp = fingerprint(key)
    for line in lines:
        try:
            body_raw, hash_hex, sig = parse_line(line.encode("utf-8"))
            body = json.loads(body_raw)
            seq = int(body["seq"])
        except (ValueError, KeyError, TypeError, UnicodeEncodeError):
            acks.add("record", "?", "rejected", "not a record line")
            continue
        item = str(seq)
        if hashlib.sha256(body_raw).hexdigest() != hash_hex:
            acks.add("record", item, "rejected", "bad hash (entry changed after it was written)")
            continue
        if seq <= agent.record_seq:
            stored = session.get(RecordEntry, (agent.id, seq))
            if stored is not None and stored.hash == hash_hex:
                acks.add("record", item, "duplicate")
                continue
            kind = "record-wiped" if seq == 1 else "record-forked"
            if agent.record_broken is None:
                agent.record_broken = (f"entry {seq} differs from the one held (head {agent.record_seq}): "
                                       + ("the record restarted from scratch" if seq == 1 else "truncated or forked"))
                _record_finding(session, agent, kind, agent.record_broken, now)
            acks.add("record", item, "rejected", kind)
            continue
        if seq > agent.record_seq + 1:
            acks.add("record", item, "rejected", f"gap: the collector holds entries up to {agent.record_seq}")
            continue
        problem = None
        if body.get("prev") != agent.record_link:
            problem = "record-forked", f"entry {seq} does not continue the chain held (prev mismatch)"
        elif body.get("key") != key_fp or not ed25519_valid(key, sig, hash_hex.encode("ascii")):
            problem = "record-tampered", f"entry {seq}: signature does not verify with the enrolled record key"
        if problem is not None:
            if agent.record_broken is None:
                agent.record_broken = problem[1]
                _record_finding(session, agent, problem[0], problem[1], now)
            acks.add("record", item, "rejected", problem[0])
            continue
        try:
            entry = parse_entry(body)
        except ValidationError as exc:
            acks.add("record", item, "rejected", f"schema: {exc.errors()[0]['msg']}"[:300])
            continue
        session.add(RecordEntry(agent_id=agent.id, seq=seq, hash=hash_hex, kind=entry.kind, time=entry.time,
                                line=line, received_at=now))
        agent.record_seq, agent.record_link = seq, link_of(hash_hex, sig)
        acks.add("record", item, "accepted")
    session.flush()


# -- runs and findings --------------------------------------------------------------------------------------


def _audit(session: Session, finding_pk: int, frm: str, to: str, note: str, now: dt.datetime,
           actor: str = SYSTEM_ACTOR) -> None:
    session.add(FindingAudit(finding=finding_pk, actor=actor, at=now, from_state=frm, to_state=to, note=note))


def _run(session: Session, agent: Agent, run: RunReport, acks: _Acks, now: dt.datetime) -> None:
    try:
        started, finished = parse_iso(run.started), parse_iso(run.finished)
    except ValueError as exc:
        acks.add("run", run.run_id, "rejected", str(exc))
        for f in run.findings:
            acks.add("finding", f"{f.id}@{run.run_id}", "rejected", "its run was rejected")
        return
    ok = [p.id for p in run.probes if p.status == "ok"]
    failed = [p.id for p in run.probes if p.status != "ok"]
    new_run = session.execute(_insert(session, Run).values(
        agent_id=agent.id, run_id=run.run_id, kind=run.kind, host=run.host, started=started, finished=finished,
        task_id=run.task_id, notice_id=run.notice_id, login_failed=run.login_failed, probes_ok=ok,
        probes_failed=failed, findings=len(run.findings), received_at=now,
        coverage=run.coverage.model_dump(mode="json") if run.coverage is not None else None)
        .on_conflict_do_nothing().returning(Run.id)).first() is not None
    acks.add("run", run.run_id, "accepted" if new_run else "duplicate")
    findings = {f.id: f for f in run.findings}
    accepted: set[str] = set()
    if findings:
        conn = session.connection()
        stmt = bulk_insert(conn, "finding_runs", FindingRun, FINDING_RUN_COLUMNS,
                           lambda ins: ins.on_conflict_do_nothing().returning(FindingRun.finding_id))
        seen_at = stmt.bind("seen_at", now)
        accepted = {r[0] for r in stmt.execute(conn, [(agent.id, fid, run.run_id, seen_at) for fid in findings])}
    for fid in findings:
        acks.add("finding", f"{fid}@{run.run_id}", "accepted" if fid in accepted else "duplicate")
    if accepted:
        _upsert_findings(session, agent, run, [findings[f] for f in findings if f in accepted], finished, now)
    if new_run:
        _resolve_absent(session, agent, run, ok, set(findings), finished, now)
        if run.task_id:
            session.execute(update(Task).where(Task.id == run.task_id, Task.agent_id == agent.id,
                                               Task.state.in_(("queued", "leased")))
                            .values(state="done", completed_at=now, run_id=run.run_id))


def _finding_upsert(ins: Any) -> Any:
    """First/last seen per host: an older run does not move last_seen (or the document) back."""
    newer = ins.excluded.last_seen > Finding.last_seen
    return ins.on_conflict_do_update(index_elements=[Finding.agent_id, Finding.finding_id], set_={
        "last_seen": case((newer, ins.excluded.last_seen), else_=Finding.last_seen),
        "last_run": case((newer, ins.excluded.last_run), else_=Finding.last_run),
        "document": case((newer, ins.excluded.document), else_=Finding.document),
        "severity": case((newer, ins.excluded.severity), else_=Finding.severity),
        "first_seen": case((ins.excluded.first_seen < Finding.first_seen, ins.excluded.first_seen),
                           else_=Finding.first_seen),
        "updated_at": ins.excluded.updated_at,
    }).returning(Finding.id, Finding.state, Finding.resolved_at, Finding.reported_at)


def _document(f: WireFinding) -> str:
    """The wire Finding as JSON text (what ``to_json`` gives, serialised by pydantic-core in one call)."""
    omit = {name for name in f.OMIT_WHEN_NONE if getattr(f, name) is None}
    return f.model_dump_json(by_alias=True, exclude=omit or None)


def _upsert_findings(session: Session, agent: Agent, run: RunReport, found: list[WireFinding], finished: dt.datetime,
                     now: dt.datetime) -> None:
    conn = session.connection()
    stmt = bulk_insert(conn, "findings", Finding, FINDING_COLUMNS, _finding_upsert)
    seen, updated = stmt.bind("first_seen", finished), stmt.bind("updated_at", now)
    rows = stmt.execute(conn, [(agent.id, agent.unit, run.host, f.id, f.rule_id, f.probe, f.subject, f.severity,
                                f.title.en, f.title.zh, _document(f), seen, seen, run.run_id, run.run_id, "open",
                                updated, finding_target(run.kind, run.host, f.host, f.subject)) for f in found])
    # Seen again after it was closed (or after a rectification was reported): reopened, audited. The upsert
    # returns each row's state as it stands, so no second look at the rows is needed.
    again: list[tuple[int, str]] = []
    for pk, state, resolved_at, reported_at in rows:
        if state in CLOSED:
            closed_at = stmt.value("resolved_at", resolved_at)
            if closed_at is not None and closed_at < finished:
                again.append((pk, state))
        elif state in AWAITING_RETEST and not run.login_failed:
            reported = stmt.value("reported_at", reported_at)
            if reported is not None and reported < finished:
                again.append((pk, state))
    for pk, state in again:
        note = (f"seen again by run {run.run_id}" if state in CLOSED
                else f"re-test run {run.run_id} found it again after the rectification report")
        _audit(session, pk, state, "reopened", note, now)
    if again:
        session.execute(update(Finding).where(Finding.id.in_([pk for pk, _ in again]))
                        .values(state="reopened", resolved_run=None, resolved_at=None, updated_at=now))


def _resolve_absent(session: Session, agent: Agent, run: RunReport, probes_ok: list[str], present: set[str],
                    finished: dt.datetime, now: dt.datetime) -> None:
    """Findings this run covered and did not report any more: resolved, or fix verified when a rectification
    was reported before the run. Covered: the same agent; a host-level finding of this run's host and of a
    probe with status ok (when the run covered its host; a run without coverage covers only that); a network
    finding whose probe and target lie inside the run's network coverage (agent.wire.coverage). A run with a
    login failure verifies and resolves nothing."""
    if run.login_failed:
        return
    coverage = run.coverage or HOST_ONLY
    # a probe that did not run completely speaks for none of its findings, whatever the coverage says
    net_probes = network_probes(coverage) - {p.id for p in run.probes if p.status != "ok"}
    scopes = []
    if coverage.host and probes_ok:
        scopes.append(and_(Finding.host == run.host, Finding.target.is_(None), Finding.probe.in_(probes_ok)))
    if net_probes:
        scopes.append(and_(Finding.target.is_not(None), Finding.probe.in_(sorted(net_probes))))
    # one query per scope: the host-level one runs on ix_findings_active_agent_probe_target (agent, probe, no
    # target, last seen), the network one on ix_findings_active_agent_seen (agent, last seen)
    rows = [row for scope in scopes for row in session.execute(
        select(Finding.id, Finding.finding_id, Finding.state, Finding.probe, Finding.reported_at, Finding.target,
               Finding.subject)
        .where(Finding.agent_id == agent.id, active_filter(), scope, Finding.last_seen < finished)).all()]
    for pk, fid, state, probe, reported, target, subject in rows:
        if fid in present:
            continue
        if target is not None and not covers_network(coverage, probe, target, subject):
            continue
        verified = state in AWAITING_RETEST and reported is not None and reported <= finished
        if state in AWAITING_RETEST and not verified:
            continue
        to = "fix_verified" if verified else "resolved"
        where = run.host if target is None else f"{target} (from {run.host})"
        _audit(session, pk, state, to, f"absent from complete run {run.run_id} of its probe on {where}", now)
        session.execute(update(Finding).where(Finding.id == pk).values(
            state=to, resolved_run=run.run_id, resolved_at=finished, updated_at=now))


def _acknowledgements(session: Session, agent: Agent, batch: IngestBatch, acks: _Acks, now: dt.datetime) -> None:
    for ack in batch.acknowledgements:
        notice = session.get(IssuedNotice, ack.notice_id)
        if notice is None or notice.unit != agent.unit:
            acks.add("acknowledgement", ack.notice_id, "rejected", "no such notice for this unit")
            continue
        if ack.digest != notice.digest:
            acks.add("acknowledgement", ack.notice_id, "rejected", "digest does not match the notice issued")
            continue
        try:
            at = parse_iso(ack.acknowledged_at)
        except ValueError as exc:
            acks.add("acknowledgement", ack.notice_id, "rejected", str(exc))
            continue
        stored = session.execute(_insert(session, NoticeAck).values(
            notice_id=notice.id, agent_id=agent.id, digest=ack.digest, acknowledged_at=at, received_at=now,
            actor=ack.actor[:200]).on_conflict_do_nothing().returning(NoticeAck.notice_id)).first()
        acks.add("acknowledgement", ack.notice_id, "accepted" if stored else "duplicate")

