"""The metadata schema as SQLAlchemy Core tables; the same tables on SQLite and PostgreSQL.

Invariants the regulation needs are constraints here, so they hold under concurrent
writers and not only in Python:
- one name space of addresses per domain (mailbox addresses, aliases and reserved
  names share ``addresses``, unique on domain + local part);
- exactly one agency mailbox per agency, at most one active personal mailbox per person;
- every mailbox has exactly one primary address.
Migrations in ``store/migrations`` must produce exactly these tables.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Diacritics-folded text for directory search, compared byte by byte on both engines
# (SQLite's BINARY, PostgreSQL's "C"): index range scans for prefixes and index order
# for sorting then agree with Python's order.
SearchText = Text().with_variant(Text(collation="C"), "postgresql")

domains = Table(
    "domains",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(253), nullable=False, unique=True),
    # An alias domain receives mail for the local parts of the domain it points to.
    Column("alias_of", Integer, ForeignKey("domains.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

agencies = Table(
    "agencies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(300), nullable=False),
    # The agency's own short abbreviation (R4), e.g. "pvhtt"; not unique: every commune
    # may have a "pvhtt". The unique name is the agency mailbox's address.
    Column("abbr", String(64), nullable=False),
    Column("parent_id", Integer, ForeignKey("agencies.id"), nullable=True, index=True),
    # R10: a state agency outside the regulation's scope, approved separately.
    Column("external", Boolean, nullable=False, server_default=text("false")),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("search_text", SearchText, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("dissolved_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("status in ('active', 'dissolved')", name="status"),
)

people = Table(
    "people",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("full_name", String(200), nullable=False),
    # Kept apart so an operator can correct a compound surname (Tôn Thất, Âu Dương).
    Column("surname", String(100), nullable=False),
    Column("middle_name", String(100), nullable=False),
    Column("given_name", String(100), nullable=False),
    Column("agency_id", Integer, ForeignKey("agencies.id"), nullable=False, index=True),
    Column("position", String(200), nullable=False, server_default=""),
    Column("department", String(200), nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("search_text", SearchText, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("removed_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("status in ('active', 'removed')", name="status"),
)
# Directory search walks this index in order and stops after a page of matches
# (on PostgreSQL an index-only scan, hence the included id).
Index(
    "ix_people_directory",
    people.c.status,
    people.c.search_text,
    postgresql_include=["id"],
)
# PostgreSQL only: trigram index so a rare word ("ldphuong") is found without walking
# the whole directory; SQLite walks the (status, search_text) index instead.
Index(
    "ix_people_search_trgm",
    people.c.search_text,
    postgresql_using="gin",
    postgresql_ops={"search_text": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")

mailboxes = Table(
    "mailboxes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    # Plain indexes beside the partial unique ones below: queries bind the kind as a
    # parameter, and a planner cannot use a partial index for a parameter.
    Column("agency_id", Integer, ForeignKey("agencies.id"), nullable=True, index=True),
    Column("person_id", Integer, ForeignKey("people.id"), nullable=True, index=True),
    # active: receives and sends; disabled: kept but refuses mail (dissolved agency);
    # deleted: removed by Mẫu 03, its address stays taken so mail never reaches a newcomer.
    Column("status", String(16), nullable=False, server_default="active"),
    Column("quota_bytes", BigInteger, nullable=False),
    Column("used_bytes", BigInteger, nullable=False, server_default="0"),
    # NULL: no password issued yet (bulk import); the centre issues one (R7).
    Column("password_hash", String(200), nullable=True),
    Column("must_change_password", Boolean, nullable=False, server_default=text("true")),
    # The largest UIDVALIDITY given to one of its folders (migration 0003).
    Column("last_uidvalidity", BigInteger, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("kind in ('agency', 'personal')", name="kind"),
    CheckConstraint("status in ('active', 'disabled', 'deleted')", name="status"),
    CheckConstraint(
        "(kind = 'agency' and agency_id is not null and person_id is null)"
        " or (kind = 'personal' and person_id is not null and agency_id is null)",
        name="owner",
    ),
    CheckConstraint("quota_bytes >= 0 and used_bytes >= 0", name="quota"),
)
Index(
    "uq_mailboxes_agency",
    mailboxes.c.agency_id,
    unique=True,
    sqlite_where=text("kind = 'agency'"),
    postgresql_where=text("kind = 'agency'"),
)
Index(
    "uq_mailboxes_active_person",
    mailboxes.c.person_id,
    unique=True,
    sqlite_where=text("kind = 'personal' and status = 'active'"),
    postgresql_where=text("kind = 'personal' and status = 'active'"),
)

addresses = Table(
    "addresses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("domain_id", Integer, ForeignKey("domains.id"), nullable=False),
    Column("local_part", String(64), nullable=False),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=True, index=True),
    # primary: the mailbox's address; alias: an old or extra address that still delivers;
    # reserved: a name nobody may take (postmaster, abuse, ...).
    Column("kind", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("domain_id", "local_part"),
    CheckConstraint("kind in ('primary', 'alias', 'reserved')", name="kind"),
    CheckConstraint("(kind = 'reserved') = (mailbox_id is null)", name="owner"),
)
Index(
    "uq_addresses_primary",
    addresses.c.mailbox_id,
    unique=True,
    sqlite_where=text("kind = 'primary'"),
    postgresql_where=text("kind = 'primary'"),
)

# SQLite only: an FTS5 trigram index over people.search_text, kept in step by triggers
# (migration 0001). Directory search asks it which rows contain a rare word before
# walking ix_people_directory. Outside ``metadata``: it is no table of ours to create.
people_search = Table(
    "people_search",
    MetaData(),
    Column("rowid", Integer, primary_key=True),
    Column("search_text", Text),
)

# Append-only record of every administrative action (who, what, on what, when).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(320), nullable=False),
    Column("details", JSON, nullable=False),
    # Where the action came from: a client IP, "api:<token name>", "cli" (migration 0009).
    Column("source", String(200), nullable=False, server_default=""),
    Index("ix_audit_log_action", "action"),
    Index("ix_audit_log_target", "target"),
)

# --- Mail store (migration 0002) --------------------------------------------------------

# One row per distinct message content: the blob (SHA-256 of the bytes) and what was
# computed from it once at delivery. However many mailboxes receive a giấy mời, it is
# stored, parsed and indexed once.
messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("blob", String(64), nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("subject", Text, nullable=False, server_default=""),
    Column("from_display", Text, nullable=False, server_default=""),
    Column("message_id_header", Text, nullable=True),
    Column("sent_date", DateTime(timezone=True), nullable=True),
    Column("has_attachments", Boolean, nullable=False, server_default=text("false")),
    Column("envelope", JSON, nullable=False),
    Column("structure", JSON, nullable=False),
    # Diacritics-folded subject, addresses and text parts ("nguyen" finds "Nguyễn").
    Column("search_text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# A mailbox's folders (IMAP "mailboxes"): names use "/" as the hierarchy separator.
folders = Table(
    "folders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=False),
    Column("name", String(255), nullable=False),
    # RFC 6154 role without the backslash: sent, drafts, trash, junk (INBOX has none).
    Column("special_use", String(16), nullable=True),
    Column("uidvalidity", BigInteger, nullable=False),
    Column("uidnext", BigInteger, nullable=False, server_default="1"),
    Column("highest_modseq", BigInteger, nullable=False, server_default="1"),
    Column("subscribed", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("mailbox_id", "name"),
    CheckConstraint("uidnext >= 1 and highest_modseq >= 1", name="counters"),
)

# A message as it sits in one folder: its UID there, flags, keywords and modseq.
# System flags are bits (SEEN 1, ANSWERED 2, FLAGGED 4, DELETED 8, DRAFT 16: see
# mailstore.flags); keywords are a space-separated list, NULL when none.
folder_messages = Table(
    "folder_messages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("folder_id", Integer, ForeignKey("folders.id"), nullable=False),
    Column("uid", BigInteger, nullable=False),
    Column(
        "message_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("messages.id"),
        nullable=False,
        index=True,
    ),
    Column("flags", Integer, nullable=False, server_default="0"),
    Column("keywords", Text, nullable=True),
    Column("modseq", BigInteger, nullable=False),
    Column("internal_date", DateTime(timezone=True), nullable=False),
    # Copied from messages: quota and RFC822.SIZE without a join.
    Column("size", BigInteger, nullable=False),
    UniqueConstraint("folder_id", "uid"),
)
Index("ix_folder_messages_modseq", folder_messages.c.folder_id, folder_messages.c.modseq)

# R22: a person allowed to read and/or send as an agency mailbox. Minimal for now; the
# console (request workflow with the signed authorisation) comes later.
delegations = Table(
    "delegations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=False),
    Column("person_id", Integer, ForeignKey("people.id"), nullable=False, index=True),
    Column("can_send", Boolean, nullable=False, server_default=text("true")),
    Column("can_read", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    # The head's signed authorisation (R22), a blob (migration 0009).
    Column("document_blob", String(64), nullable=True),
    Column("document_name", String(200), nullable=True),
    UniqueConstraint("mailbox_id", "person_id"),
)

# Mail leaving for other domains: one row per recipient, the content is a message blob;
# worked by delivery.worker (migration 0004 added the lease and delivery columns).
outbound_queue = Table(
    "outbound_queue",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "message_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("messages.id"),
        nullable=False,
        index=True,
    ),
    Column("sender", String(320), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("domain", String(253), nullable=False),
    # Who submitted it (R23 rate limits, R19 reports); NULL for system mail.
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=True),
    Column("status", String(16), nullable=False, server_default="queued"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # A worker has taken the row until then (no other worker or node sends it); NULL: free.
    Column("lease_until", DateTime(timezone=True), nullable=True),
    # Which claim holds the lease (migration 0005): a worker's result counts only while
    # its claim still holds the row, so a late one cannot overwrite a new owner's.
    Column("lease_token", String(36), nullable=True),
    # When the sender was told the mail is late (once).
    Column("warned_at", DateTime(timezone=True), nullable=True),
    # The server that last answered (host[ip]:port), and when the row was sent or bounced.
    Column("relay", String(300), nullable=True),
    Column("done_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("status in ('queued', 'deferred', 'sent', 'bounced')", name="status"),
)
# Sent and bounced rows stay for the record; the workers look at pending ones only.
Index(
    "ix_outbound_queue_pending",
    outbound_queue.c.next_attempt_at,
    sqlite_where=text("status in ('queued', 'deferred')"),
    postgresql_where=text("status in ('queued', 'deferred')"),
)
# --- IMAP (migration 0003) ---------------------------------------------------------------
# A message removed from a folder leaves its UID and the modseq of its removal, so a
# session (or a CONDSTORE client) that knew the folder at an older modseq learns of it.
expunged_messages = Table(
    "expunged_messages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("folder_id", Integer, ForeignKey("folders.id"), nullable=False),
    Column("uid", BigInteger, nullable=False),
    Column("modseq", BigInteger, nullable=False),
)
Index("ix_expunged_messages_folder", expunged_messages.c.folder_id, expunged_messages.c.modseq)
# R19: who looked at which mailbox, when and from where (login, and each look at INBOX);
# the reports count checks per working day from these rows.
access_events = Table(
    "access_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=False),
    # The mailbox whose owner logged in, when it differs (a delegate reading an agency's).
    Column("actor_mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=True),
    Column("protocol", String(16), nullable=False),  # imap, web
    Column("kind", String(16), nullable=False),  # login, select, examine, status
    Column("folder", String(255), nullable=True),
    Column("client_address", String(64), nullable=True),
)
Index("ix_access_events_mailbox_at", access_events.c.mailbox_id, access_events.c.at)
Index("ix_access_events_at", access_events.c.at)
# PostgreSQL: a pg_trgm GIN index serves SEARCH's LIKE '%…%' on the folded text; SQLite
# has an FTS5 trigram table instead (migration 0003).
Index(
    "ix_messages_search_trgm",
    messages.c.search_text,
    postgresql_using="gin",
    postgresql_ops={"search_text": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")
# SQLite only: the FTS5 trigram index over messages.search_text.
messages_search = Table(
    "messages_search",
    MetaData(),
    Column("rowid", Integer, primary_key=True),
    Column("search_text", Text),
)
# --- sending policy (migration 0006) -----------------------------------------------------
# A message held because it carries a classification mark (R15): not delivered; the
# centre releases it (delivered then to whom it was for) or deletes it.
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("direction", String(16), nullable=False),  # submission, inbound
    Column("blob", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sender", String(320), nullable=False),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=True),  # who sent it
    Column("message_id_header", Text, nullable=True),
    Column("subject", Text, nullable=False, server_default=""),
    # {"local": {"<mailbox id>": "<address>"}, "remote": [addresses]}: where it was going.
    Column("recipients", JSON, nullable=False),
    Column("reason_vi", Text, nullable=False),
    Column("reason_en", Text, nullable=False),
    Column("status", String(16), nullable=False, server_default="held"),  # released, deleted
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
)
Index("ix_quarantine_status_at", quarantine.c.status, quarantine.c.at)
# Every decision a sending rule took on a message (R11–R18): what `govmail policy log`
# and the console list, and what the compliance reports count.
policy_decisions = Table(
    "policy_decisions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("direction", String(16), nullable=False),  # submission, inbound
    Column("rule", String(32), nullable=False),  # size, formats, classified, unicode, …
    # rejected, warned, converted, informed, quarantined
    Column("action", String(16), nullable=False),
    Column("sender", String(320), nullable=False),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=True, index=True),
    Column("message_id_header", Text, nullable=True),
    Column("subject", Text, nullable=False, server_default=""),
    Column("reason_vi", Text, nullable=False),
    Column("reason_en", Text, nullable=False),
    Column("quarantine_id", Integer, ForeignKey("quarantine.id"), nullable=True),
    Column("details", JSON, nullable=False),
)
# R14 and R16: what kind of document a delivered message carries and what its PDF
# signatures were found to be, for the webmail's badges and the reports.
documents = Table(
    "documents",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column(
        "message_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("messages.id"),
        nullable=False,
        index=True,
    ),
    Column("direction", String(16), nullable=False),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=True, index=True),
    Column("document_type", String(64), nullable=False),
    Column("document_number", String(100), nullable=True),
    Column("signal", String(16), nullable=False),  # number, subject, filename, text, none
    # [{"file", "status", "reason", "signer"}] for each PDF signature (R16)
    Column("signatures", JSON, nullable=False),
)
# --- webmail sessions (migration 0007) ---------------------------------------------------
# One row per signed-in browser: the cookie holds a random token, the row only its SHA-256,
# so a copy of the database cannot be replayed as a login. ``pending`` names the step the
# login still owes (R7 password change, TOTP code) before any mail is shown.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("pending", String(16), nullable=True),  # password, totp; NULL: signed in
    # The mailbox being viewed when not the owner's own: an agency mailbox the owner is
    # delegated on (R22); checked against the delegations on every request.
    Column("current_mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=True),
    Column("client_address", String(64), nullable=True),
    Column("user_agent", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("pending in ('password', 'totp')", name="pending"),
)
# Optional two-factor login: one TOTP secret per mailbox, used once confirmed.
totp_secrets = Table(
    "totp_secrets",
    metadata,
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), primary_key=True),
    Column("secret", String(64), nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=text("false")),
    # The last time step accepted: a code is good once (RFC 6238 §5.2).
    Column("last_step", BigInteger, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
# --- webmail settings and the vacation responder (migration 0008) -----------------------
# One row per mailbox that changed a setting; a mailbox without a row has the defaults
# (no signature, Vietnamese, no auto-reply). Vacation dates are calendar days in Vietnam.
mailbox_preferences = Table(
    "mailbox_preferences",
    metadata,
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), primary_key=True),
    Column("signature", Text, nullable=False, server_default=""),
    Column("language", String(2), nullable=False, server_default="vi"),
    Column("vacation_enabled", Boolean, nullable=False, server_default=text("false")),
    Column("vacation_start", Date, nullable=True),
    Column("vacation_end", Date, nullable=True),
    Column("vacation_subject", String(200), nullable=False, server_default=""),
    Column("vacation_text", Text, nullable=False, server_default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("language in ('vi', 'en')", name="language"),
)
# Who the vacation responder answered when: one reply per sender per 7 days (RFC 3834 §2).
vacation_replies = Table(
    "vacation_replies",
    metadata,
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), primary_key=True),
    Column("sender", String(320), primary_key=True),  # lower-cased envelope sender
    Column("replied_at", DateTime(timezone=True), nullable=False),
)

# --- the agency portal and the admin console (migration 0009) ----------------------------
# Who may do what beyond reading their own mail: the centre's administrators, the
# Director who approves R10 requests, and per agency its IT officers and its head.
# ``scope`` is the agency id for the per-agency roles and 0 for province-wide ones.
ROLE_NAMES = ("centre_admin", "director", "it_officer", "agency_head")
roles = Table(
    "roles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=False),
    Column("role", String(32), nullable=False),
    Column("agency_id", Integer, ForeignKey("agencies.id"), nullable=True, index=True),
    Column("scope", Integer, nullable=False),
    Column("granted_by", String(200), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(
        "role in ('centre_admin', 'director', 'it_officer', 'agency_head')", name="role"
    ),
    CheckConstraint(
        "(role in ('it_officer', 'agency_head')) = (agency_id is not null)", name="scope"
    ),
    UniqueConstraint("mailbox_id", "role", "scope"),
)
# An agency's request to the centre: Mẫu 01 (new), 02 (change), 03 (delete), a password
# reset (R7) or a delegation of the agency mailbox (R22). ``rows`` holds the form's table
# as submitted; ``payload`` its other fields; ``result`` what approval did. Only one open
# request may carry the same content (``fingerprint``): a form sent twice is refused.
REQUEST_FORMS = ("01", "02", "03", "reset", "delegation")
REQUEST_OPEN = "status in ('pending', 'awaiting_director')"
requests = Table(
    "requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("form", String(16), nullable=False),
    Column("agency_id", Integer, ForeignKey("agencies.id"), nullable=True, index=True),
    Column("status", String(24), nullable=False),
    Column("submitted_by", String(320), nullable=False),
    Column("submitter_mailbox_id", Integer, ForeignKey("mailboxes.id")),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("decision_date", Date, nullable=True),  # R21: when the decision took effect
    Column("late", Boolean, nullable=False, server_default=text("false")),
    Column("rows", JSON, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("document_blob", String(64), nullable=True),
    Column("document_name", String(200), nullable=True),
    Column("fingerprint", String(64), nullable=False),
    Column("endorsed_by", String(320), nullable=True),  # the Director (R10)
    Column("endorsed_at", DateTime(timezone=True), nullable=True),
    Column("decided_by", String(320), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("reason", Text, nullable=True),
    Column("result", JSON, nullable=True),
    CheckConstraint("form in ('01', '02', '03', 'reset', 'delegation')", name="form"),
    CheckConstraint(
        "status in ('pending', 'awaiting_director', 'approved', 'rejected', 'withdrawn')",
        name="status",
    ),
    Index("ix_requests_status_submitted_at", "status", "submitted_at"),
    Index(
        "uq_requests_open_fingerprint",
        "fingerprint",
        unique=True,
        sqlite_where=text(REQUEST_OPEN),
        postgresql_where=text(REQUEST_OPEN),
    ),
)
request_events = Table(
    "request_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", Integer, ForeignKey("requests.id"), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("status", String(24), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
)
# Incident reports (R20, R23): an agency or official reports, the centre works the ticket.
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("agency_id", Integer, ForeignKey("agencies.id"), nullable=True),
    Column("reported_by", String(320), nullable=False),
    Column("reporter_mailbox_id", Integer, ForeignKey("mailboxes.id")),
    Column("subject", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("resolution", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("status in ('open', 'in_progress', 'resolved')", name="status"),
)
# Bearer tokens for the JSON API: a token acts as the mailbox it was issued for, with
# that mailbox's roles; only the SHA-256 of the token is kept.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=False),
    Column("created_by", String(320), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)
