"""Alembic environment: the connection comes from collector.core.migrate (config.attributes)."""

from __future__ import annotations

from typing import Any

from alembic import context

from collector.models import Base

config = context.config
connection = config.attributes["connection"]
progress: Any = config.attributes.get("progress")


def _applied(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
    if progress is not None:
        progress(step)


context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  on_version_apply=_applied, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
