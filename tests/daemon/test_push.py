"""Pure parts of the collector link: backoff, batch building, settling per-item acknowledgements."""

from __future__ import annotations

from pathlib import Path

from agent.daemon.push import BACKOFF_CAP, backoff, build_batch, settle
from agent.daemon.spool import Priority, Spool, SpoolItem
from agent.wire.collector_api import HostIdentity, IngestBatch, IngestCounts, IngestResult, ItemAck
from tests.collector.client import finding, run

HOST = HostIdentity(hostname="db01", machine_id="m" * 32, boot_id="b")


def test_backoff_full_jitter_capped_and_retry_after() -> None:
    assert backoff(1, rng=lambda: 1.0) == 2.0
    assert backoff(4, rng=lambda: 1.0) == 16.0
    assert backoff(40, rng=lambda: 1.0) == BACKOFF_CAP
    assert backoff(3, rng=lambda: 0.0) == 0.0
    assert backoff(3, rng=lambda: 0.0, retry_after=30.0) == 30.0


def _spool(tmp_path: Path) -> Spool:
    spool = Spool(tmp_path / "spool.db", min_free_bytes=1)
    spool.put(SpoolItem("run:r1", "run", run("r1", [finding("f1"), finding("f2", severity="info")]), Priority.KEEP))
    spool.put(SpoolItem("run:r2", "run", run("r2", [finding("f3")]), Priority.KEEP))
    for seq in (2, 1, 3):
        spool.put(SpoolItem(f"record:{seq}", "record", {"seq": seq, "line": f"line-{seq}"}, Priority.KEEP))
    spool.put(SpoolItem("spool-damaged:t", "spool_event", {"event": "spool_damaged", "set_aside": "/x",
                                                         "salvaged_items": 0, "time": "2026-12-01T00:00:00+00:00"},
                        Priority.KEEP))
    return spool


def test_batch_keeps_runs_whole_and_record_in_order(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    sent, owners = build_batch(spool.batch(), HOST)
    batch = IngestBatch.model_validate_json(sent.body)  # what the collector reads of the bytes the daemon sends
    assert batch.batch_id == sent.batch_id and batch.host == HOST
    assert batch.record_lines == ["line-1", "line-2", "line-3"]
    assert [r.run_id for r in batch.runs] == ["r1", "r2", "agent-spool-damaged-t"]
    assert [len(r.findings) for r in batch.runs] == [2, 1, 1]
    assert batch.runs[2].findings[0].rule_id == "PC-AGENT-001" and batch.runs[2].probes[0].status == "limited"
    assert owners[("run", "r1")] == "run:r1" and owners[("record", "2")] == "record:2"


def _result(items: list[ItemAck]) -> IngestResult:
    return IngestResult(batch_id="b", replayed_batch=False, counts=IngestCounts(accepted=0, duplicate=0, rejected=0),
                        items=items, record_head=0)


def test_settle_deletes_only_what_the_collector_holds(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    _, owners = build_batch(spool.batch(), HOST)
    spool.set_meta("record_offset", "999")
    counts = settle(spool, _result([
        ItemAck(kind="run", key="r1", status="accepted"), ItemAck(kind="finding", key="f1@r1", status="accepted"),
        ItemAck(kind="finding", key="f2@r1", status="duplicate"),
        ItemAck(kind="run", key="r2", status="accepted"),
        ItemAck(kind="finding", key="f3@r2", status="rejected", reason="schema: bad"),
        ItemAck(kind="record", key="1", status="duplicate"), ItemAck(kind="record", key="2", status="accepted"),
        ItemAck(kind="record", key="3", status="rejected", reason="gap: the collector holds entries up to 1"),
    ]), owners, tmp_path)
    assert counts == {"accepted": 4, "duplicate": 2, "rejected": 2}
    left = spool.spooled_keys()
    assert "run:r1" not in left and "record:1" not in left and "record:2" not in left
    assert "record:3" in left  # a gap: kept, and the record is offered again from the start
    assert spool.get_meta("record_offset") == "0"
    assert "run:r2" not in left  # rejected for good: set aside, visible, not resent forever
    assert spool.db.execute("SELECT reason FROM rejected WHERE key = 'run:r2'").fetchone()[0].startswith("finding")
    assert "spool-damaged:t" in left  # not acknowledged: stays
    assert spool.stats().rejected == 1
