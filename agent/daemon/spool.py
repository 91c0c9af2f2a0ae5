"""The durable spool: every result, finding and record entry is committed here before any send.

SQLite in WAL mode with ``synchronous=FULL`` (a committed item survives kill -9 and power loss), JSON bodies
(never pickle), one row per item with its idempotency key (the collector's per-item key: finding id + run id,
record entry seq, ...). An item leaves the spool only when the collector acknowledged that very item.

Bounded by ``max_bytes`` with this policy, in order:

1. Info is summarised first: an item stored with ``shrinkable`` (a run report holding info findings) is
   rewritten by the shrink function of its kind (``Spool.shrinkers``), oldest first. For a run report that
   drops the info findings and marks their probes ``limited`` with a count, so the collector never takes the
   missing findings as resolved.
2. Then ``BULK`` items (standalone observations), then the oldest ``NORMAL`` items (runs with at most medium
   findings) are dropped, and the loss is itself spooled as a ``KEEP`` event, so the collector sees how much
   was dropped and why.
3. ``KEEP`` items (record entries, runs with critical/high findings, refusals, spool events) are never
   dropped: they are accepted past the bound (the pressure metric says so) until the disk itself is full.

A full disk (free space under ``min_free_bytes``, or SQLite reporting it full) stops low-priority data: those
puts raise :class:`SpoolRefused` with a clear message, while ``KEEP`` items may use a small reserve file that
the spool keeps on the same file system for exactly this moment. A spool file that fails its integrity check
at open is renamed aside (``spool.damaged-<time>.db``), whatever rows are still readable are salvaged into a
fresh spool, and a ``KEEP`` event reports it; the agent keeps working.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import errno
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RESERVE_BYTES = 1024 * 1024
SCHEMA_VERSION = 1


class Priority(enum.IntEnum):
    KEEP = 0  # record entries, runs with critical/high findings, refusals, spool events: never dropped
    NORMAL = 1  # runs with low/medium findings at most: dropped oldest-first only under pressure
    BULK = 2  # standalone observations: dropped first


class Pressure(enum.IntEnum):
    NONE = 0
    OVER_BOUND = 1  # summarising / dropping low-priority items
    DISK_FULL = 2  # refusing low-priority items


def priority_for(kind: str, severities: Sequence[str] = ()) -> Priority:
    """The policy in one place: what may be dropped (a run by the worst of its findings)."""
    if kind in ("record", "refusal", "spool_event", "acknowledgement", "task_result"):
        return Priority.KEEP
    if kind == "run":
        return Priority.KEEP if {"critical", "high"} & set(severities) else Priority.NORMAL
    if kind == "observation":
        return Priority.BULK
    return Priority.NORMAL


Shrinker = Callable[[dict[str, Any]], dict[str, Any]]


class SpoolRefused(Exception):
    """A low-priority item was not accepted (disk full, or the spool full of items that are never dropped)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SpoolItem:
    key: str  # idempotency key, unique in the spool and at the collector
    kind: str
    body: dict[str, Any]
    priority: Priority = Priority.NORMAL
    shrinkable: bool = False  # holds info that the shrinker of its kind can summarise under pressure
    created: float = field(default_factory=time.time)

    def encoded(self) -> str:
        return json.dumps(self.body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class PutResult:
    added: int = 0
    duplicates: int = 0
    refused: int = 0
    reason: str | None = None  # why items were refused: disk_full | spool_full
    message: str | None = None

    def merged(self, other: PutResult) -> PutResult:
        return PutResult(self.added + other.added, self.duplicates + other.duplicates, self.refused + other.refused,
                         self.reason or other.reason, self.message or other.message)


@dataclass(frozen=True, slots=True)
class QueuedItem:
    seq: int
    key: str
    kind: str
    priority: Priority
    created: float
    attempts: int
    body: dict[str, Any]
    text: str = ""  # the body's JSON exactly as spooled (what a batch carries, unchanged)


@dataclass(frozen=True, slots=True)
class SpoolStats:
    items: dict[Priority, int]
    bytes: int
    oldest_created: float | None
    rejected: int
    pressure: Pressure
    summarised_total: int
    dropped_total: int
    refused_total: int
    damaged_files: int

    @property
    def depth(self) -> int:
        return sum(self.items.values())


_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  key TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  priority INTEGER NOT NULL,
  shrinkable INTEGER NOT NULL DEFAULT 0,
  created REAL NOT NULL,
  size INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_priority ON items (priority, seq);
CREATE INDEX IF NOT EXISTS items_shrinkable ON items (shrinkable, seq);
CREATE TABLE IF NOT EXISTS rejected (
  key TEXT PRIMARY KEY, kind TEXT NOT NULL, created REAL NOT NULL, reason TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO counters (name, value) VALUES
  ('bytes', 0), ('summarised', 0), ('dropped', 0), ('refused', 0);
CREATE TRIGGER IF NOT EXISTS items_add AFTER INSERT ON items BEGIN
  UPDATE counters SET value = value + NEW.size WHERE name = 'bytes';
END;
CREATE TRIGGER IF NOT EXISTS items_del AFTER DELETE ON items BEGIN
  UPDATE counters SET value = value - OLD.size WHERE name = 'bytes';
END;
CREATE TRIGGER IF NOT EXISTS items_upd AFTER UPDATE OF size ON items BEGIN
  UPDATE counters SET value = value - OLD.size + NEW.size WHERE name = 'bytes';
END;
"""


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        text = str(exc).lower()
        return "full" in text or "disk i/o" in text
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class Spool:
    def __init__(self, path: Path, max_bytes: int = 64 * 1024**2, min_free_bytes: int = 16 * 1024**2,
                 clock: Callable[[], float] = time.time, shrinkers: Mapping[str, Shrinker] | None = None,
                 check: bool = True) -> None:
        self.path = path
        self.shrinkers = shrinkers or {}
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.clock = clock
        self._disk_full = False
        self.reserve = path.with_name(path.name + ".reserve")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Only the daemon checks (and may set aside) the file; a run's child opens what the daemon checked.
        self.db = self._open_checked() if check else self._open_unchecked()
        self._ensure_reserve()

    # -- opening, integrity ---------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        # Never open() the database file ourselves: closing any descriptor of it drops every POSIX lock this
        # process holds on it, including those of another connection (a push thread's), and the file corrupts.
        if self.path.is_symlink():
            raise OSError(errno.ELOOP, f"{self.path} is a symbolic link: refusing to use it as the spool")
        old_umask = os.umask(0o077)  # the database, its WAL and shared-memory files: 0600 whatever the umask
        try:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA user_version")  # creates the file now, under this umask
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=30000")
        # Keep the WAL small (checkpoint every 128 pages, truncate it back to 1 MiB): on a nearly full disk an
        # ever-growing WAL would be what eats the last free space.
        db.execute("PRAGMA wal_autocheckpoint=128")
        db.execute("PRAGMA journal_size_limit=1048576")
        # A 256 KiB page cache, not SQLite's 2 MiB default: the daemon holds two connections (its loop and the
        # push thread) for as long as it runs, and every batch read would leave a full cache behind in its idle
        # footprint (issue 11: <= 40 MB). Batches are read in order; the OS page cache keeps the file anyway.
        db.execute("PRAGMA cache_size=-256")
        return db

    def _open_checked(self) -> sqlite3.Connection:
        problem: str | None = None
        try:
            db = self._connect()
            row = db.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                problem = f"integrity check failed: {row[0] if row else 'no answer'}"
                db.close()
            else:
                db.executescript(_SCHEMA)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                return db
        except sqlite3.DatabaseError as exc:
            problem = str(exc)
        return self._set_aside(problem)

    def _open_unchecked(self) -> sqlite3.Connection:
        db = self._connect()
        db.executescript(_SCHEMA)
        return db

    def _set_aside(self, problem: str) -> sqlite3.Connection:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        aside = self.path.with_name(f"{self.path.stem}.damaged-{stamp}{self.path.suffix}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            side = Path(str(self.path) + suffix)
            with contextlib.suppress(FileNotFoundError):
                os.replace(side, Path(str(aside) + suffix))
        log.error("spool %s is damaged (%s): set aside as %s, continuing with a new spool", self.path, problem,
                  aside)
        db = self._connect()
        db.executescript(_SCHEMA)
        salvaged = self._salvage(aside, db)
        event = SpoolItem(f"spool-damaged:{stamp}", "spool_event",
                          {"event": "spool_damaged", "problem": problem, "set_aside": str(aside),
                           "salvaged_items": salvaged, "time": dt.datetime.now(dt.UTC).isoformat()},
                          Priority.KEEP)
        self._insert(db, event)
        return db

    @staticmethod
    def _salvage(aside: Path, db: sqlite3.Connection) -> int:
        """Copy what is still readable from a damaged spool (row by row: one bad page loses only its rows)."""
        count = 0
        try:
            old = sqlite3.connect(f"file:{aside}?mode=ro", uri=True)
            try:
                cursor = old.execute("SELECT key, kind, priority, shrinkable, created, size, body FROM items "
                                     "ORDER BY seq")
                while True:
                    try:
                        row = cursor.fetchone()
                    except sqlite3.DatabaseError:
                        break
                    if row is None:
                        break
                    try:
                        json.loads(row[6])
                    except (TypeError, ValueError):
                        continue
                    db.execute("INSERT OR IGNORE INTO items (key, kind, priority, shrinkable, created, size, "
                               "body) VALUES (?, ?, ?, ?, ?, ?, ?)", row)
                    count += 1
            finally:
                old.close()
        except sqlite3.DatabaseError as exc:
            log.warning("nothing salvaged from %s: %s", aside, exc)
        return count

    def damaged_files(self) -> list[Path]:
        return sorted(self.path.parent.glob(f"{self.path.stem}.damaged-*{self.path.suffix}"))

    # -- disk space -----------------------------------------------------------------------------------------
    def _free_bytes(self) -> int:
        st = os.statvfs(self.path.parent)
        return st.f_bavail * st.f_frsize

    def _ensure_reserve(self) -> None:
        """Keep RESERVE_BYTES allocated next to the spool: released only to store KEEP items on a full disk."""
        try:
            if self.reserve.exists() or self._free_bytes() < self.min_free_bytes + RESERVE_BYTES:
                return
            fd = os.open(self.reserve, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("cannot keep the spool reserve %s: %s", self.reserve, exc)
            with contextlib.suppress(OSError):
                self.reserve.unlink()

    def _release_reserve(self) -> bool:
        try:
            self.reserve.unlink()
        except FileNotFoundError:
            return False
        log.warning("disk full: released the spool reserve to store an item that is never dropped")
        return True

    def _check_disk(self) -> None:
        free = self._free_bytes()
        if free < self.min_free_bytes:
            if not self._disk_full:
                log.error("spool disk nearly full (%d bytes free, need %d): refusing low-priority data until "
                          "space is freed; record entries and critical/high findings are still kept",
                          free, self.min_free_bytes)
            self._disk_full = True
        else:
            if self._disk_full:
                log.warning("spool disk has space again (%d bytes free): accepting all data", free)
                self._disk_full = False
            if not self.reserve.exists():
                self._ensure_reserve()

    # -- writing --------------------------------------------------------------------------------------------
    @staticmethod
    def _insert(db: sqlite3.Connection, item: SpoolItem) -> bool:
        body = item.encoded()
        cur = db.execute(
            "INSERT OR IGNORE INTO items (key, kind, priority, shrinkable, created, size, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (item.key, item.kind, int(item.priority), int(item.shrinkable), item.created,
             len(body.encode()) + len(item.key), body))
        return cur.rowcount == 1

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def put(self, item: SpoolItem) -> bool:
        """Commit one item (True), or False when its key is already spooled; SpoolRefused per the policy."""
        result = self.put_many([item])
        if result.refused:
            raise SpoolRefused(result.reason or "refused", result.message or "not spooled")
        return result.added == 1

    def put_many(self, items: Sequence[SpoolItem]) -> PutResult:
        """Commit what the policy accepts in one transaction. KEEP items are never refused for size; low-priority
        items are refused (counted, logged, reported in the result) when the disk or the spool is full."""
        self._check_disk()
        if self._disk_full:
            keep = [i for i in items if i.priority == Priority.KEEP]
            if len(keep) < len(items):
                refused = self._refuse(len(items) - len(keep), "disk_full",
                                       f"disk full: {len(items) - len(keep)} low-priority item(s) not spooled "
                                       f"(free space under {self.min_free_bytes} bytes at {self.path.parent})")
                return self._put_keep_on_full_disk(keep).merged(refused)
            return self._put_keep_on_full_disk(keep)
        try:
            return self._put_bounded(items)
        except (sqlite3.DatabaseError, OSError) as exc:
            if not _is_full(exc):
                raise
            self._disk_full = True
            log.error("spool: the disk is full (%s)", exc)
            keep = [i for i in items if i.priority == Priority.KEEP]
            result = self._put_keep_on_full_disk(keep)
            if len(keep) < len(items):
                result = result.merged(self._refuse(len(items) - len(keep), "disk_full",
                                                    f"disk full: {len(items) - len(keep)} low-priority item(s) "
                                                    "not spooled"))
            return result

    def _put_keep_on_full_disk(self, keep: Sequence[SpoolItem]) -> PutResult:
        if not keep:
            return PutResult()
        try:
            return self._put_bounded(keep)
        except (sqlite3.DatabaseError, OSError) as exc:
            if not _is_full(exc) or not self._release_reserve():
                raise
            return self._put_bounded(keep)

    def _put_bounded(self, items: Sequence[SpoolItem]) -> PutResult:
        incoming = sum(len(i.encoded().encode()) + len(i.key) for i in items)
        with self._write() as db:
            total = self._counter(db, "bytes")
            if total + incoming > self.max_bytes:
                total = self._make_room(db, total + incoming - self.max_bytes)
            over = total + incoming > self.max_bytes
            added = duplicates = refused = 0
            for item in items:
                if over and item.priority != Priority.KEEP:
                    refused += 1
                elif self._insert(db, item):
                    added += 1
                else:
                    duplicates += 1
        result = PutResult(added, duplicates)
        if refused:
            result = result.merged(self._refuse(refused, "spool_full",
                                                f"spool full of items that are never dropped: {refused} "
                                                f"low-priority item(s) not spooled (max {self.max_bytes} bytes)"))
        return result

    def _refuse(self, count: int, reason: str, message: str) -> PutResult:
        with contextlib.suppress(sqlite3.DatabaseError, OSError), self._write() as db:
            db.execute("UPDATE counters SET value = value + ? WHERE name = 'refused'", (count,))
        log.warning("spool: %s", message)
        return PutResult(refused=count, reason=reason, message=message)

    @staticmethod
    def _counter(db: sqlite3.Connection, name: str) -> int:
        row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _make_room(self, db: sqlite3.Connection, need: int) -> int:
        """Summarise shrinkable items, then drop BULK, then the oldest NORMAL items, until ``need`` bytes are
        free. KEEP items are never dropped."""
        freed = 0
        for seq, kind, body, size in db.execute("SELECT seq, kind, body, size FROM items WHERE shrinkable = 1 "
                                                "ORDER BY seq").fetchall():
            if freed >= need:
                break
            shrink = self.shrinkers.get(kind)
            if shrink is None:
                continue
            small = json.dumps(shrink(json.loads(body)), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            new_size = size - len(body.encode()) + len(small.encode())
            db.execute("UPDATE items SET body = ?, size = ?, shrinkable = 0 WHERE seq = ?", (small, new_size, seq))
            db.execute("UPDATE counters SET value = value + 1 WHERE name = 'summarised'")
            freed += size - new_size
        summarised = freed
        if summarised:
            log.warning("spool over its bound: summarised info in spooled runs (%d bytes freed)", summarised)
        dropped = dropped_bytes = 0
        for prio in (Priority.BULK, Priority.NORMAL):
            if freed >= need:
                break
            for seq, size in db.execute("SELECT seq, size FROM items WHERE priority = ? ORDER BY seq",
                                        (int(prio),)).fetchall():
                if freed >= need:
                    break
                db.execute("DELETE FROM items WHERE seq = ?", (seq,))
                freed += size
                dropped += 1
                dropped_bytes += size
        if dropped:
            db.execute("UPDATE counters SET value = value + ? WHERE name = 'dropped'", (dropped,))
            now = self.clock()
            self._insert(db, SpoolItem(f"spool-dropped:{now:.6f}", "spool_event",
                                       {"event": "items_dropped", "items": dropped, "bytes": dropped_bytes,
                                        "reason": f"spool over {self.max_bytes} bytes",
                                        "time": dt.datetime.fromtimestamp(now, dt.UTC).isoformat()},
                                       Priority.KEEP, created=now))
            log.warning("spool over its bound: dropped the %d oldest low-priority item(s) (%d bytes); "
                        "the collector is told", dropped, dropped_bytes)
        return self._counter(db, "bytes")

    # -- reading, acknowledging -----------------------------------------------------------------------------
    def batch(self, max_items: int = 500, max_bytes: int = 4 * 1024**2) -> list[QueuedItem]:
        """The next items to send: KEEP first, then in spool order (record entries stay in seq order)."""
        out: list[QueuedItem] = []
        size = 0
        for seq, key, kind, prio, created, attempts, body, item_size in self.db.execute(
                "SELECT seq, key, kind, priority, created, attempts, body, size FROM items "
                "ORDER BY priority, seq LIMIT ?", (max_items,)):
            if out and size + item_size > max_bytes:
                break
            out.append(QueuedItem(seq, key, kind, Priority(prio), created, attempts, json.loads(body), body))
            size += item_size
        return out

    def mark_attempt(self, keys: Sequence[str]) -> None:
        with self._write() as db:
            db.executemany("UPDATE items SET attempts = attempts + 1 WHERE key = ?", [(k,) for k in keys])

    def ack(self, keys: Sequence[str]) -> int:
        """Delete acknowledged items (accepted or already present at the collector)."""
        with self._write() as db:
            cur = db.executemany("DELETE FROM items WHERE key = ?", [(k,) for k in keys])
            removed = cur.rowcount
        self._check_disk()
        return removed

    def reject(self, key: str, reason: str) -> None:
        """The collector refused this item for good (schema): kept aside, visible, never silently deleted."""
        with self._write() as db:
            row = db.execute("SELECT kind, created, body FROM items WHERE key = ?", (key,)).fetchone()
            if row is None:
                return
            db.execute("INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?, ?)", (key, row[0], row[1], reason, row[2]))
            db.execute("DELETE FROM items WHERE key = ?", (key,))
        log.error("collector rejected spool item %s: %s (kept in the spool's rejected table)", key, reason)

    def spooled_keys(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT key FROM items")}

    def get_meta(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, name: str, value: str) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def stats(self) -> SpoolStats:
        self._check_disk()
        items = {p: 0 for p in Priority}
        for prio, count in self.db.execute("SELECT priority, COUNT(*) FROM items GROUP BY priority"):
            items[Priority(prio)] = count
        oldest = self.db.execute("SELECT MIN(created) FROM items").fetchone()[0]
        rejected = self.db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]
        total = self._counter(self.db, "bytes")
        if self._disk_full:
            pressure = Pressure.DISK_FULL
        elif total > self.max_bytes * 0.9:
            pressure = Pressure.OVER_BOUND
        else:
            pressure = Pressure.NONE
        return SpoolStats(items, total, oldest, rejected, pressure, self._counter(self.db, "summarised"),
                          self._counter(self.db, "dropped"), self._counter(self.db, "refused"),
                          len(self.damaged_files()))

    def close(self) -> None:
        self.db.close()
