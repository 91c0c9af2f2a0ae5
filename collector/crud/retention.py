"""Retention: old runs, their per-item ingest keys and old batch acknowledgements are purged in bounded chunks.

Kept for good: findings, their audit trail, record entries (the agents' tamper-evident record), notices, tasks.
A run that a finding (first seen, last seen, resolved by) or a task still names is kept whatever its age, so
every run id the API shows resolves to its run. Observations are not sent to the collector (they stay on the
agent, see docs/collector.md "Retention"), so there is nothing of theirs to purge here.

Each chunk is its own short write transaction (on SQLite the one writer is held for one chunk, not the whole
purge); a purge that stops half-way (database gone, process killed) leaves whole chunks done and resumes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import delete, exists, or_, select, tuple_
from sqlalchemy.orm import Session

from collector.models import Batch, Finding, FindingRun, Run, Task

DEFAULT_CHUNK = 1000


@dataclass(slots=True)
class PurgeCounts:
    runs: int = 0
    item_keys: int = 0  # finding_runs rows of the purged runs
    batches: int = 0


def _runs_chunk(session: Session, cutoff: dt.datetime, chunk: int) -> tuple[int, int]:
    referenced_by_finding = exists().where(
        Finding.agent_id == Run.agent_id,
        or_(Finding.first_run == Run.run_id, Finding.last_run == Run.run_id, Finding.resolved_run == Run.run_id))
    referenced_by_task = exists().where(Task.agent_id == Run.agent_id, Task.run_id == Run.run_id)
    rows = session.execute(select(Run.id, Run.agent_id, Run.run_id)
                           .where(Run.finished < cutoff, ~referenced_by_finding, ~referenced_by_task)
                           .order_by(Run.finished).limit(chunk)).all()
    if not rows:
        return 0, 0
    keys = [(agent_id, run_id) for _pk, agent_id, run_id in rows]
    items = session.connection().execute(
        delete(FindingRun).where(tuple_(FindingRun.agent_id, FindingRun.run_id).in_(keys))).rowcount
    session.execute(delete(Run).where(Run.id.in_([pk for pk, _a, _r in rows])))
    return len(rows), int(items or 0)


def _batches_chunk(session: Session, cutoff: dt.datetime, chunk: int) -> int:
    keys = session.execute(select(Batch.agent_id, Batch.batch_id).where(Batch.received_at < cutoff)
                           .order_by(Batch.received_at).limit(chunk)).all()
    if not keys:
        return 0
    session.execute(delete(Batch).where(tuple_(Batch.agent_id, Batch.batch_id).in_([tuple(k) for k in keys])))
    return len(keys)


def purge(write: Callable[[], AbstractContextManager[Session]], *, now: dt.datetime, runs_days: int,
          chunk: int = DEFAULT_CHUNK, progress: Callable[[PurgeCounts], None] = lambda _c: None) -> PurgeCounts:
    """Purge what is older than ``runs_days`` before ``now``. ``write`` opens one write transaction (a
    context manager yielding a Session: ``Database.write``); ``progress`` is called after every chunk."""
    cutoff = now - dt.timedelta(days=runs_days)
    counts = PurgeCounts()
    while True:
        with write() as session:
            runs, items = _runs_chunk(session, cutoff, chunk)
        counts.runs += runs
        counts.item_keys += items
        if runs:
            progress(counts)
        if runs < chunk:
            break
    while True:
        with write() as session:
            batches = _batches_chunk(session, cutoff, chunk)
        counts.batches += batches
        if batches:
            progress(counts)
        if batches < chunk:
            break
    return counts

