"""finding targets and run coverage: a finding names the network target it is about, a run what it covered

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 00:30:00

Existing findings are backfilled: a finding first reported by a netscan run (or, when that run is no longer
kept, a finding of a network probe) gets the target its subject or wire host names; every other finding stays
host-level (NULL). Existing runs keep no coverage (NULL): like an older agent's runs, host-level only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agent.wire.coverage import NETSCAN_KIND, finding_target

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

ACTIVE = "state IN ('open', 'rectification_ordered', 'reported_rectified', 'retest_scheduled', 'reopened')"
NETWORK_PROBES = ("hosts", "ports", "services", "tls", "ssh_algos", "link")
CHUNK = 1000


def upgrade() -> None:
    op.add_column("findings", sa.Column("target", sa.String(length=255), nullable=True))
    op.add_column("runs", sa.Column("coverage", sa.JSON(), nullable=True))
    op.create_index("ix_findings_active_agent_probe_target", "findings", ["agent_id", "probe", "target", "last_seen"],
                    unique=False, sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))
    _backfill()


def _backfill() -> None:
    findings = sa.table("findings", sa.column("id", sa.BigInteger), sa.column("agent_id", sa.String),
                        sa.column("host", sa.String), sa.column("probe", sa.String), sa.column("subject", sa.Text),
                        sa.column("first_run", sa.String), sa.column("document", sa.JSON),
                        sa.column("target", sa.String))
    runs = sa.table("runs", sa.column("agent_id", sa.String), sa.column("run_id", sa.String),
                    sa.column("kind", sa.String))
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(findings.c.id, findings.c.host, findings.c.subject, findings.c.document["host"].as_string())
        .select_from(findings.outerjoin(runs, sa.and_(runs.c.agent_id == findings.c.agent_id,
                                                      runs.c.run_id == findings.c.first_run)))
        .where(sa.or_(runs.c.kind == NETSCAN_KIND,
                      sa.and_(runs.c.kind.is_(None), findings.c.probe.in_(NETWORK_PROBES))))).all()
    updates = []
    for pk, host, subject, wire_host in rows:
        target = finding_target(NETSCAN_KIND, host, wire_host or host, subject or "")
        if target is not None:
            updates.append({"pk": pk, "target": target})
    stmt = findings.update().where(findings.c.id == sa.bindparam("pk")).values(target=sa.bindparam("target"))
    for start in range(0, len(updates), CHUNK):
        conn.execute(stmt, updates[start:start + CHUNK])


def downgrade() -> None:
    op.drop_index("ix_findings_active_agent_probe_target", table_name="findings")
    op.drop_column("runs", "coverage")
    op.drop_column("findings", "target")
