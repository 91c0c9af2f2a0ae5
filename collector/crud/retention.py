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
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from collector.models import Batch, Finding, FindingRun, Run, Task

DEFAULT_CHUNK = 1000


@dataclass(slots=True)
class PurgeCounts:
    runs: int = 0
    item_keys: int = 0  # finding_runs rows of the purged runs
    batches: int = 0


def _runs_chunk(session: Session, cutoff: dt.datetime, chunk: int, after: int) -> tuple[int, int, int, int]:
    """One chunk of old runs past ``after`` (keyset on the row id, so runs kept stay behind the cursor):
    (runs deleted, item keys deleted, rows looked at, last row id)."""
    rows = session.execute(select(Run.id, Run.agent_id, Run.run_id).where(Run.finished < cutoff, Run.id > after)
                           .order_by(Run.id).limit(chunk)).all()
    if not rows:
        return 0, 0, 0, after
    named: set[tuple[str, str]] = set()
    candidates = _by_agent((agent_id, run_id) for _pk, agent_id, run_id in rows)
    for agent_id, run_ids in candidates.items():
        # one IN query per column and agent for the whole chunk, not a correlated check per run
        for column, owner in ((Finding.first_run, Finding.agent_id), (Finding.last_run, Finding.agent_id),
                              (Finding.resolved_run, Finding.agent_id), (Task.run_id, Task.agent_id)):
            named.update((agent_id, str(r)) for r in session.scalars(
                select(column).where(owner == agent_id, column.in_(run_ids)).distinct()))
    doomed = [(pk, agent_id, run_id) for pk, agent_id, run_id in rows if (agent_id, run_id) not in named]
    items = 0
    for agent_id, run_ids in _by_agent((agent_id, run_id) for _pk, agent_id, run_id in doomed).items():
        # agent = ? AND run_id IN (...): one range of the (agent_id, run_id) index; a row-value IN list of a
        # thousand pairs is planned as a thousand ORs on PostgreSQL
        items += int(session.connection().execute(
            delete(FindingRun).where(FindingRun.agent_id == agent_id, FindingRun.run_id.in_(run_ids))).rowcount or 0)
    if doomed:
        session.execute(delete(Run).where(Run.id.in_([pk for pk, _a, _r in doomed])))
    return len(doomed), items, len(rows), int(rows[-1][0])


def _batches_chunk(session: Session, cutoff: dt.datetime, chunk: int) -> int:
    keys = session.execute(select(Batch.agent_id, Batch.batch_id).where(Batch.received_at < cutoff)
                           .order_by(Batch.received_at).limit(chunk)).all()
    for agent_id, batch_ids in _by_agent((a, b) for a, b in keys).items():
        session.execute(delete(Batch).where(Batch.agent_id == agent_id, Batch.batch_id.in_(batch_ids)))
    return len(keys)


def _by_agent(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for agent_id, key in pairs:
        grouped[agent_id].append(key)
    return grouped


def purge(write: Callable[[], AbstractContextManager[Session]], *, now: dt.datetime, runs_days: int,
          chunk: int = DEFAULT_CHUNK, progress: Callable[[PurgeCounts], None] = lambda _c: None) -> PurgeCounts:
    """Purge what is older than ``runs_days`` before ``now``. ``write`` opens one write transaction (a
    context manager yielding a Session: ``Database.write``); ``progress`` is called after every chunk."""
    cutoff = now - dt.timedelta(days=runs_days)
    counts = PurgeCounts()
    after = 0
    while True:
        with write() as session:
            runs, items, looked_at, after = _runs_chunk(session, cutoff, chunk, after)
        counts.runs += runs
        counts.item_keys += items
        if runs:
            progress(counts)
        if looked_at < chunk:
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

