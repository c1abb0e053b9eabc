"""IMAP: expunge tombstones (CONDSTORE/sync), access events (R19), message search index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    # The largest UIDVALIDITY a mailbox has handed out: a folder deleted and created
    # again in the same second must still get a larger one.
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(
            sa.Column("last_uidvalidity", sa.BigInteger, nullable=False, server_default="0")
        )
    op.create_table(
        "expunged_messages",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("folder_id", sa.Integer, sa.ForeignKey("folders.id"), nullable=False),
        sa.Column("uid", sa.BigInteger, nullable=False),
        sa.Column("modseq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_expunged_messages_folder", "expunged_messages", ["folder_id", "modseq"])
    op.create_table(
        "access_events",
        sa.Column("id", BIGID, primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=False),
        sa.Column("actor_mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=True),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("folder", sa.String(255), nullable=True),
        sa.Column("client_address", sa.String(64), nullable=True),
    )
    op.create_index("ix_access_events_mailbox_at", "access_events", ["mailbox_id", "at"])
    op.create_index("ix_access_events_at", "access_events", ["at"])
    if op.get_bind().dialect.name == "sqlite":
        _create_sqlite_search_index()
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_messages_search_trgm ON messages USING gin (search_text gin_trgm_ops)"
        )


def _create_sqlite_search_index() -> None:
    """FTS5 trigram index over messages.search_text, kept by triggers (messages rows are
    never updated: their content is immutable)."""
    op.execute(
        "CREATE VIRTUAL TABLE messages_search USING fts5(search_text, content='messages',"
        " content_rowid='id', tokenize='trigram', detail='none')"
    )
    op.execute(
        "CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN"
        " INSERT INTO messages_search(rowid, search_text) VALUES (new.id, new.search_text); END"
    )
    op.execute(
        "CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN"
        " INSERT INTO messages_search(messages_search, rowid, search_text)"
        " VALUES ('delete', old.id, old.search_text); END"
    )
    op.execute("INSERT INTO messages_search(messages_search) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE messages_search")
    else:
        op.execute("DROP INDEX ix_messages_search_trgm")
    op.drop_table("access_events")
    op.drop_table("expunged_messages")
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("last_uidvalidity")
