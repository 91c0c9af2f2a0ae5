"""retention indexes: a run's ingest item keys found by (agent, run), for the purge of old runs

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 23:50:00
"""

from __future__ import annotations

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_finding_runs_agent_id_run_id", "finding_runs", ["agent_id", "run_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_finding_runs_agent_id_run_id", table_name="finding_runs")
