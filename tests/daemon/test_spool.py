from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.daemon.spool import Pressure, Priority, Spool, SpoolItem, SpoolRefused, priority_for
from tests.conftest import needs_root

ROOT = Path(__file__).resolve().parents[2]


def item(key: str, prio: Priority, size: int = 100, kind: str = "finding") -> SpoolItem:
    return SpoolItem(key, kind, {"key": key, "pad": "x" * size}, prio)


def run_item(key: str, infos: int, worst: str = "medium") -> SpoolItem:
    findings = [{"severity": "info", "pad": "i" * 200} for _ in range(infos)] + [{"severity": worst, "pad": "m"}]
    return SpoolItem(key, "run", {"findings": findings, "probes": [{"id": "p", "status": "ok"}]},
                     priority_for("run", [f["severity"] for f in findings]), shrinkable=infos > 0)


def drop_info(body: dict[str, Any]) -> dict[str, Any]:
    kept = [f for f in body["findings"] if f["severity"] != "info"]
    return {**body, "findings": kept, "summarised_info": len(body["findings"]) - len(kept)}


def test_priority_policy() -> None:
    assert priority_for("record") is Priority.KEEP
    assert priority_for("run", ["info", "critical"]) is Priority.KEEP
    assert priority_for("run", ["high"]) is Priority.KEEP
    assert priority_for("run", ["medium", "low", "info"]) is Priority.NORMAL
    assert priority_for("run", []) is Priority.NORMAL
    assert priority_for("observation") is Priority.BULK
    assert priority_for("refusal") is Priority.KEEP
    assert priority_for("acknowledgement") is Priority.KEEP


def test_put_is_idempotent_and_ack_deletes_only_acked(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", min_free_bytes=1)
    assert spool.put(item("a", Priority.NORMAL))
    assert not spool.put(item("a", Priority.NORMAL))  # same idempotency key: stored once
    spool.put(item("b", Priority.KEEP))
    spool.put(item("c", Priority.BULK))
    batch = spool.batch()
    assert [q.key for q in batch] == ["b", "a", "c"]  # KEEP first, then spool order
    assert batch[0].body == {"key": "b", "pad": "x" * 100}
    assert spool.ack(["a", "zz"]) == 1
    assert spool.spooled_keys() == {"b", "c"}
    assert spool.stats().depth == 2


def test_bodies_are_json_on_disk(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", min_free_bytes=1)
    spool.put(SpoolItem("k", "finding", {"title": "开放端口", "n": 1}, Priority.NORMAL))
    spool.close()
    raw = sqlite3.connect(tmp_path / "spool.db").execute("SELECT body FROM items").fetchone()[0]
    assert json.loads(raw) == {"title": "开放端口", "n": 1}


def test_a_batch_carries_each_body_as_spooled_and_the_page_cache_stays_small(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", min_free_bytes=1)
    spool.put(SpoolItem("k", "run", {"run_id": "r", "title": "开放端口"}, Priority.NORMAL))
    (queued,) = spool.batch()
    raw = spool.db.execute("SELECT body FROM items").fetchone()[0]
    assert queued.text == raw and json.loads(queued.text) == queued.body  # what push.build_batch splices in
    # the daemon's two connections live as long as it does: each keeps at most 256 KiB of pages (idle footprint)
    assert spool.db.execute("PRAGMA cache_size").fetchone()[0] == -256
    spool.close()


def test_files_are_private(tmp_path: Path) -> None:
    os.umask(0o022)
    Spool(tmp_path / "state" / "spool.db", min_free_bytes=1).put(item("a", Priority.NORMAL))
    assert (tmp_path / "state" / "spool.db").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700


def test_bound_summarises_info_first_then_drops_normal_never_keep(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=40_000, min_free_bytes=1, shrinkers={"run": drop_info})
    for i in range(5):
        spool.put(run_item(f"run{i}", infos=20))  # ~4 KB each, mostly info
    spool.put(run_item("critical-run", infos=10, worst="critical"))
    for i in range(10):
        spool.put(item(f"rec{i}", Priority.KEEP, 500, kind="record"))
    for i in range(5):
        spool.put(item(f"obs{i}", Priority.BULK, 300, kind="observation"))
    assert spool.stats().summarised_total == 0
    # More KEEP data pushes it over the bound: info is summarised first, nothing is dropped yet
    for i in range(10, 40):
        spool.put(item(f"rec{i}", Priority.KEEP, 500, kind="record"))
    stats = spool.stats()
    assert stats.summarised_total > 0 and stats.dropped_total == 0
    bodies = {q.key: q.body for q in spool.batch(1000)}
    shrunk = [k for k, b in bodies.items() if "summarised_info" in b]
    assert shrunk[0] == "run0"  # oldest first
    assert all(bodies[k]["summarised_info"] in (10, 20) for k in shrunk)
    assert all(f["severity"] != "info" for k in shrunk for f in bodies[k]["findings"])
    assert all(any(f["severity"] in ("medium", "critical") for f in bodies[k]["findings"]) for k in shrunk)
    # Far more KEEP data: observations, then medium runs are dropped oldest first and the drop is reported
    for i in range(40, 120):
        spool.put(item(f"rec{i}", Priority.KEEP, 500, kind="record"))
    keys = spool.spooled_keys()
    assert {f"rec{i}" for i in range(120)} <= keys
    assert "critical-run" in keys
    assert not any(k.startswith("obs") for k in keys)
    assert "run0" not in keys
    events = [q.body for q in spool.batch(1000) if q.kind == "spool_event"]
    assert events and all(e["event"] == "items_dropped" for e in events)
    stats = spool.stats()
    assert stats.dropped_total == sum(e["items"] for e in events) >= 6
    assert stats.bytes > 40_000  # KEEP accepted past the bound
    assert stats.pressure is Pressure.OVER_BOUND
    # with only KEEP items left, low-priority data is refused with a reason
    with pytest.raises(SpoolRefused) as refused:
        spool.put(item("late-medium", Priority.NORMAL, 500))
    assert refused.value.reason == "spool_full"
    assert "late-medium" not in spool.spooled_keys()
    assert spool.stats().refused_total == 1
    # byte accounting stays exact through updates and deletes
    total = spool.db.execute("SELECT SUM(size) FROM items").fetchone()[0]
    assert spool.stats().bytes == total


def test_damaged_spool_is_set_aside_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, min_free_bytes=1)
    for i in range(200):
        spool.put(item(f"k{i}", Priority.NORMAL, 300))
    spool.close()
    for side in ("-wal", "-shm"):
        Path(str(path) + side).unlink(missing_ok=True)
    data = bytearray(path.read_bytes())
    data[0:16] = b"garbage garbage!"  # the header: not a database any more
    path.write_bytes(bytes(data))
    reopened = Spool(path, min_free_bytes=1)
    aside = reopened.damaged_files()
    assert len(aside) == 1 and aside[0].read_bytes()[:16] == b"garbage garbage!"
    events = [q for q in reopened.batch(1000) if q.kind == "spool_event"]
    assert len(events) == 1 and events[0].body["event"] == "spool_damaged"
    assert events[0].priority is Priority.KEEP
    assert reopened.stats().damaged_files == 1
    assert reopened.put(item("after", Priority.NORMAL))  # keeps working


def test_damaged_page_salvages_readable_rows(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, min_free_bytes=1)
    for i in range(400):
        spool.put(item(f"k{i}", Priority.NORMAL, 1000))
    spool.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    spool.close()
    data = bytearray(path.read_bytes())
    page = 4096
    middle = (len(data) // page) // 2
    data[middle * page:(middle + 1) * page] = os.urandom(page)
    path.write_bytes(bytes(data))
    reopened = Spool(path, min_free_bytes=1)
    assert len(reopened.damaged_files()) == 1
    event = next(q for q in reopened.batch(1000) if q.kind == "spool_event")
    salvaged = event.body["salvaged_items"]
    assert 0 < salvaged < 400
    assert len(reopened.spooled_keys()) == salvaged + 1


def test_kill_9_at_random_points_loses_nothing_committed(tmp_path: Path) -> None:
    """A real writer process killed 25 times at random moments: every item it reported committed is there,
    every item it reported acknowledged is gone, and the file always opens clean."""
    path = tmp_path / "spool.db"
    rng = random.Random(1234)
    put: set[str] = set()
    acked: set[str] = set()
    acking: set[str] = set()
    start = 0
    for _ in range(25):
        log = tmp_path / f"writer-{start}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "tests.daemon.spool_writer", str(path), str(start)],
                                    cwd=ROOT, stdout=out)
        while proc.poll() is None and log.stat().st_size == 0:  # writing has begun
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for line in log.read_text().split("\n")[:-1]:  # the last piece is a line cut off by the kill
            verb, key = line.split()
            {"PUT": put, "ACKING": acking, "ACK": acked}[verb].add(key)
        start += 100_000
        spool = Spool(path, max_bytes=1024**3, min_free_bytes=1)
        assert spool.damaged_files() == []
        assert spool.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = spool.spooled_keys()
        assert (put - acking) <= keys, sorted((put - acking) - keys)[:5]
        assert not (acked & keys)
        spool.close()
    assert len(put) > 200 and acked


@needs_root()
def test_small_tmpfs_fills_up(tmp_path: Path) -> None:
    """On an 8 MiB tmpfs: low-priority data is refused with a clear reason once the disk is nearly full,
    KEEP items are still stored (using the reserve), and acknowledging frees space again."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        spool = Spool(mnt / "spool.db", max_bytes=1024**3, min_free_bytes=512 * 1024)
        assert spool.reserve.exists()
        filler = mnt / "other-data"
        with filler.open("wb") as fh:  # something else on the host fills the disk
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        refused = None
        n = 0
        for n in range(5000):
            try:
                spool.put(item(f"m{n}", Priority.NORMAL, 2000))
            except SpoolRefused as exc:
                refused = exc
                break
        assert refused is not None and refused.reason == "disk_full"
        assert "disk full" in str(refused)
        assert spool.stats().pressure is Pressure.DISK_FULL
        for i in range(20):  # never-dropped items still go in
            assert spool.put(item(f"keep{i}", Priority.KEEP, 2000))
        assert {f"keep{i}" for i in range(20)} <= spool.spooled_keys()
        assert not spool.reserve.exists()
        spool.close()
        reopened = Spool(mnt / "spool.db", max_bytes=1024**3, min_free_bytes=512 * 1024)
        assert reopened.damaged_files() == []
        assert {f"keep{i}" for i in range(20)} <= reopened.spooled_keys()
        filler.unlink()
        assert reopened.put(item("after", Priority.NORMAL))
        assert reopened.stats().pressure is Pressure.NONE
        assert reopened.reserve.exists()
        reopened.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_second_connection_in_one_process_never_corrupts(tmp_path: Path) -> None:
    """The daemon's main loop and its push thread each hold a connection while run processes write. (The bug
    this guards against, a descriptor of the file os.open()ed and closed dropping the other connection's locks,
    shows up reliably only in the full daemon: test_agent_collector's outage test failed with it 2 of 2.)"""
    import threading

    path = tmp_path / "spool.db"
    main = Spool(path, max_bytes=1024**3, min_free_bytes=1)
    log = tmp_path / "writer.log"
    with log.open("wb") as out:
        writers = [subprocess.Popen([sys.executable, "-m", "tests.daemon.spool_writer", str(path), str(n * 10**6)],
                                    cwd=ROOT, stdout=out) for n in (1, 2)]
    stop = threading.Event()

    def reopen() -> None:
        while not stop.is_set():
            other = Spool(path, max_bytes=1024**3, min_free_bytes=1, check=False)
            other.batch(20)
            other.close()

    thread = threading.Thread(target=reopen)
    thread.start()
    try:
        for i in range(300):
            main.put(item(f"main{i}", Priority.NORMAL, 2000))
            main.ack([q.key for q in main.batch(3) if q.key.startswith("k")])
    finally:
        stop.set()
        thread.join()
        for writer in writers:
            writer.kill()
            writer.wait()
    assert main.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    acked = {line.split()[1] for line in log.read_text().split("\n")[:-1] if line.startswith("ACKING ")}
    assert {f"main{i}" for i in range(300)} - acked <= main.spooled_keys()  # the writers acknowledge some
    main.close()
