"""Directory: domains, agencies, people, mailboxes, addresses, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
SEARCH_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "domains",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("alias_of", sa.Integer, sa.ForeignKey("domains.id"), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "agencies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("abbr", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("agencies.id"), nullable=True),
        sa.Column("external", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("search_text", SEARCH_TEXT, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("dissolved_at", TS, nullable=True),
        sa.CheckConstraint("status in ('active', 'dissolved')", name="status"),
    )
    op.create_index("ix_agencies_parent_id", "agencies", ["parent_id"])
    op.create_table(
        "people",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("full_name", sa.String(200), nullable=False),
        sa.Column("surname", sa.String(100), nullable=False),
        sa.Column("middle_name", sa.String(100), nullable=False),
        sa.Column("given_name", sa.String(100), nullable=False),
        sa.Column("agency_id", sa.Integer, sa.ForeignKey("agencies.id"), nullable=False),
        sa.Column("position", sa.String(200), nullable=False, server_default=""),
        sa.Column("department", sa.String(200), nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("search_text", SEARCH_TEXT, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("removed_at", TS, nullable=True),
        sa.CheckConstraint("status in ('active', 'removed')", name="status"),
    )
    op.create_index("ix_people_agency_id", "people", ["agency_id"])
    op.create_index(
        "ix_people_directory", "people", ["status", "search_text"], postgresql_include=["id"]
    )
    if op.get_bind().dialect.name == "sqlite":
        _create_sqlite_search_index()
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_people_search_trgm",
            "people",
            ["search_text"],
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        )
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("agency_id", sa.Integer, sa.ForeignKey("agencies.id"), nullable=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id"), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("quota_bytes", sa.BigInteger, nullable=False),
        sa.Column("used_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column(
            "must_change_password", sa.Boolean, nullable=False, server_default=sa.text("true")
        ),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("disabled_at", TS, nullable=True),
        sa.CheckConstraint("kind in ('agency', 'personal')", name="kind"),
        sa.CheckConstraint("status in ('active', 'disabled', 'deleted')", name="status"),
        sa.CheckConstraint(
            "(kind = 'agency' and agency_id is not null and person_id is null)"
            " or (kind = 'personal' and person_id is not null and agency_id is null)",
            name="owner",
        ),
        sa.CheckConstraint("quota_bytes >= 0 and used_bytes >= 0", name="quota"),
    )
    op.create_index("ix_mailboxes_agency_id", "mailboxes", ["agency_id"])
    op.create_index("ix_mailboxes_person_id", "mailboxes", ["person_id"])
    op.create_index(
        "uq_mailboxes_agency",
        "mailboxes",
        ["agency_id"],
        unique=True,
        sqlite_where=sa.text("kind = 'agency'"),
        postgresql_where=sa.text("kind = 'agency'"),
    )
    op.create_index(
        "uq_mailboxes_active_person",
        "mailboxes",
        ["person_id"],
        unique=True,
        sqlite_where=sa.text("kind = 'personal' and status = 'active'"),
        postgresql_where=sa.text("kind = 'personal' and status = 'active'"),
    )
    op.create_table(
        "addresses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id"), nullable=False),
        sa.Column("local_part", sa.String(64), nullable=False),
        sa.Column("mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("domain_id", "local_part"),
        sa.CheckConstraint("kind in ('primary', 'alias', 'reserved')", name="kind"),
        sa.CheckConstraint("(kind = 'reserved') = (mailbox_id is null)", name="owner"),
    )
    op.create_index("ix_addresses_mailbox_id", "addresses", ["mailbox_id"])
    op.create_index(
        "uq_addresses_primary",
        "addresses",
        ["mailbox_id"],
        unique=True,
        sqlite_where=sa.text("kind = 'primary'"),
        postgresql_where=sa.text("kind = 'primary'"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(320), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def _create_sqlite_search_index() -> None:
    """FTS5 trigram index over people.search_text (SQLite 3.34+), kept by triggers."""
    op.execute(
        "CREATE VIRTUAL TABLE people_search USING fts5(search_text, content='people',"
        " content_rowid='id', tokenize='trigram', detail='none')"
    )
    op.execute(
        "CREATE TRIGGER people_search_insert AFTER INSERT ON people BEGIN"
        " INSERT INTO people_search(rowid, search_text) VALUES (new.id, new.search_text); END"
    )
    op.execute(
        "CREATE TRIGGER people_search_delete AFTER DELETE ON people BEGIN"
        " INSERT INTO people_search(people_search, rowid, search_text)"
        " VALUES ('delete', old.id, old.search_text); END"
    )
    op.execute(
        "CREATE TRIGGER people_search_update AFTER UPDATE OF search_text ON people BEGIN"
        " INSERT INTO people_search(people_search, rowid, search_text)"
        " VALUES ('delete', old.id, old.search_text);"
        " INSERT INTO people_search(rowid, search_text) VALUES (new.id, new.search_text); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE people_search")
    for table in ("audit_log", "addresses", "mailboxes", "people", "agencies", "domains"):
        op.drop_table(table)
