"""dashboard indexes: partial indexes over active findings matching each dashboard query

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

ACTIVE = "state IN ('open', 'rectification_ordered', 'reported_rectified', 'retest_scheduled', 'reopened')"
AWAITING_RETEST = "state IN ('reported_rectified', 'retest_scheduled')"
INDEXES = (
    ("ix_findings_active_unit_severity_seen", ["unit", "severity", "last_seen", "id", "state"], ACTIVE),
    ("ix_findings_active_agent_seen", ["agent_id", "last_seen", "id"], ACTIVE),
    ("ix_findings_active_unit_deadline", ["unit", "deadline", "state"], ACTIVE),
    ("ix_findings_retest_unit_due", ["unit", "retest_due"], AWAITING_RETEST),
)


def upgrade() -> None:
    for name, columns, where in INDEXES:
        op.create_index(name, "findings", columns, unique=False, sqlite_where=sa.text(where),
                        postgresql_where=sa.text(where))


def downgrade() -> None:
    for name, _columns, _where in INDEXES:
        op.drop_index(name, table_name="findings")
