"""Engines and sessions, the same code on SQLite and PostgreSQL.

SQLite: WAL, foreign keys and a busy timeout on every connection; writes begin with ``BEGIN IMMEDIATE`` (the
write lock is taken up front, so two writers queue on the busy timeout instead of failing at commit), reads
with a plain deferred ``BEGIN``. The database file is checked on
every checkout: a file that was moved away, deleted or replaced (a disk unmounted, a restore done under the
running collector) is never silently replaced by a new empty one (connections open it ``mode=rw`` once it
exists) and never served from a stale descriptor: the connection is dropped and the request gets a database
error (503) until the file is back. PostgreSQL (psycopg 3): READ COMMITTED, pre-ping so a restarted server is
picked up again by itself.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 15_000


class _SqliteFile:
    """Opens the database file, ``mode=rw`` once it exists, and says which file a connection has open."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.exists = Path(path).exists()

    def identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def connect(self) -> sqlite3.Connection:
        mode = "rw" if self.exists else "rwc"  # created once (init, tests), never again behind the operator
        conn = sqlite3.connect(f"file:{quote(self.path)}?mode={mode}", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                               check_same_thread=False)
        self.exists = True
        return conn


def _sqlite_engine(url: str, *, write: bool) -> Engine:
    database = make_url(url).database or ""
    file = _SqliteFile(database)
    engine = create_engine(url, creator=file.connect, pool_size=1 if write else 8,
                           max_overflow=0 if write else 8, pool_timeout=60)

    @event.listens_for(engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if file.identity() != record.info.get("file"):  # moved away, deleted or replaced
            raise DisconnectionError(f"the database file {database} is not the one this connection opened")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        record.info["file"] = file.identity()
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


@dataclass
class Database:
    url: str
    write_engine: Engine
    read_engine: Engine

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on any exception."""
        with self._writer() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session:
            yield session

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()

    def __post_init__(self) -> None:
        self._writer = sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False)


def open_database(url: str, pool_size: int = 10) -> Database:
    if url.startswith("sqlite"):
        return Database(url, _sqlite_engine(url, write=True), _sqlite_engine(url, write=False))
    engine = create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size,
                           pool_timeout=30, connect_args={"connect_timeout": 5})
    return Database(url, engine, engine)
