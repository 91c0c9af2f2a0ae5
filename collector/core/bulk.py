"""Multi-row ``INSERT ... VALUES (...), (...) ON CONFLICT ... [RETURNING]`` for the ingest hot path.

The statement is built with SQLAlchemy (so it compiles for SQLite and PostgreSQL alike) and compiled once per
dialect; a batch then runs as one statement per chunk of rows on the driver's cursor. What this saves is
SQLAlchemy's per-row, per-parameter work (statement construction, cache keys, a bind processor call per value),
which cost several times the database's own work for a batch of findings.

Rows must be driver-ready: plain strings, numbers and booleans as they are, and every other value converted once
with :meth:`BulkInsert.bind` (the column type's own bind processor, so a datetime is stored exactly as an ORM
insert stores it). A JSON column takes the JSON text.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

# Bound parameters per statement: SQLite's limit (32766 since 3.32, 999 before) and PostgreSQL's (65535).
SQLITE_MAX_PARAMS = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999
POSTGRESQL_MAX_PARAMS = 65_535
MAX_ROWS = 1000  # rows per statement, whatever the limit allows (keeps one statement's text small)

Build = Callable[[postgresql.Insert | sqlite.Insert], Any]


@dataclass(frozen=True, slots=True)
class BulkInsert:
    head: str  # INSERT INTO t (a, b)  VALUES
    row: str  # (?, ?)
    tail: str  # ON CONFLICT ... RETURNING ...
    columns: tuple[str, ...]
    chunk: int  # rows per statement
    dialect: Dialect
    table: Table
    texts: dict[int, str] = field(default_factory=dict)

    def bind(self, column: str, value: Any) -> Any:
        """``value`` as the driver takes it for ``column`` (the column type's bind processing)."""
        processor = self.table.c[column].type._cached_bind_processor(self.dialect)
        return value if processor is None or value is None else processor(value)

    def value(self, column: str, raw: Any) -> Any:
        """A RETURNING value of ``column`` as the ORM reads it (the column type's result processing)."""
        processor = self.table.c[column].type._cached_result_processor(self.dialect, None)
        return raw if processor is None else processor(raw)

    def sql(self, rows: int) -> str:
        """The statement text for ``rows`` rows (kept per row count: a batch mostly repeats one size)."""
        text = self.texts.get(rows)
        if text is None:
            if self.dialect.name == "postgresql":
                # PostgreSQL's own $n placeholders: psycopg's RawCursor sends the text as it is, where the %s
                # form is parsed again in Python on every call once a statement is too long for its cache
                numbers = iter(range(1, rows * len(self.columns) + 1))
                groups = [re.sub(r"%s", lambda _m: f"${next(numbers)}", self.row) for _ in range(rows)]
            else:
                groups = [self.row] * rows
            text = f"{self.head} VALUES {', '.join(groups)} {self.tail}"
            self.texts[rows] = text
        return text

    def execute(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Run the statement over ``rows``; the RETURNING rows (empty without RETURNING)."""
        out: list[Any] = []
        for start in range(0, len(rows), self.chunk):
            part = rows[start:start + self.chunk]
            sql, params = self.sql(len(part)), tuple(value for r in part for value in r)
            with _raw_cursor(conn):
                result = conn.exec_driver_sql(sql, params)  # errors wrapped and disconnects handled as usual
                if result.returns_rows:
                    out.extend(result.fetchall())
        return out


@contextlib.contextmanager
def _raw_cursor(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, the next cursors of this connection take $n placeholders (psycopg RawCursor)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    from psycopg import RawCursor

    driver = conn.connection.driver_connection
    saved = driver.cursor_factory  # type: ignore[union-attr]
    driver.cursor_factory = RawCursor  # type: ignore[union-attr]
    try:
        yield
    finally:
        driver.cursor_factory = saved  # type: ignore[union-attr]


_CACHE: dict[tuple[str, str], BulkInsert] = {}


def bulk_insert(conn: Connection, name: str, model: type[Any], columns: Sequence[str], build: Build) -> BulkInsert:
    """The statement ``name``: INSERT of ``columns`` into ``model``'s table finished by ``build`` (its ON CONFLICT and
    RETURNING clauses), compiled once for this connection's dialect. Clauses after VALUES must not bind values
    (use ``excluded.<column>``): each row repeats only the VALUES group."""
    dialect = conn.dialect
    key = (dialect.name, name)
    stmt = _CACHE.get(key)
    if stmt is None:
        table = cast(Table, model.__table__)
        maker = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        insert = build(maker(model).values({c: bindparam(c) for c in columns}))
        if dialect.name == "postgresql":
            # positional %s (psycopg takes it too) so that the VALUES group can be repeated as it is
            compile_dialect: Dialect = postgresql.psycopg.dialect(paramstyle="format")  # type: ignore[no-untyped-call]
            limit = POSTGRESQL_MAX_PARAMS
        else:
            compile_dialect = dialect
            limit = SQLITE_MAX_PARAMS
        compiled = insert.compile(dialect=compile_dialect)
        if list(compiled.positiontup or ()) != list(columns):
            raise ValueError(f"{name}: only the VALUES group may bind parameters ({compiled.positiontup})")
        head, sep, rest = compiled.string.partition(" VALUES (")
        group, close, tail = rest.partition(") ")
        if not sep or not close:
            raise ValueError(f"{name}: unexpected statement shape: {compiled.string}")
        chunk = max(1, min(MAX_ROWS, limit // len(columns)))
        stmt = BulkInsert(head, f"({group})", tail, tuple(columns), chunk, dialect, table)
        _CACHE[key] = stmt
    return stmt
