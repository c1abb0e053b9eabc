"""Outbound queue workers: leases, delay warnings, where and when mail left.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
PENDING = "status in ('queued', 'deferred')"


def upgrade() -> None:
    with op.batch_alter_table("outbound_queue") as batch:
        batch.add_column(sa.Column("lease_until", TS, nullable=True))
        batch.add_column(sa.Column("warned_at", TS, nullable=True))
        batch.add_column(sa.Column("relay", sa.String(300), nullable=True))
        batch.add_column(sa.Column("done_at", TS, nullable=True))
    # Sent and bounced rows stay for the record (R19/R20); the workers' query only ever
    # looks at pending ones, so index only those.
    op.drop_index("ix_outbound_queue_due", "outbound_queue")
    op.create_index(
        "ix_outbound_queue_pending",
        "outbound_queue",
        ["next_attempt_at"],
        sqlite_where=sa.text(PENDING),
        postgresql_where=sa.text(PENDING),
    )


def downgrade() -> None:
    op.drop_index("ix_outbound_queue_pending", "outbound_queue")
    op.create_index("ix_outbound_queue_due", "outbound_queue", ["status", "next_attempt_at"])
    with op.batch_alter_table("outbound_queue") as batch:
        for column in ("done_at", "relay", "warned_at", "lease_until"):
            batch.drop_column(column)
