"""A mailbox's folders: the five every mailbox has (with RFC 6154 roles) and their counters.

These functions take a synchronous Connection: they run inside ``Database.run``
transactions (one hop to SQLite's worker thread), or through ``AsyncConnection.run_sync``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from govmail.store.audit import now
from govmail.store.schema import folders, mailboxes

# Name → SPECIAL-USE role. English names, as Thunderbird, Outlook and phones expect them
# on the wire; the webmail shows Vietnamese labels for the roles.
DEFAULT_FOLDERS: dict[str, str | None] = {
    "INBOX": None,
    "Sent": "sent",
    "Drafts": "drafts",
    "Trash": "trash",
    "Junk": "junk",
}


@dataclass
class FolderCounters:
    """A folder's counters as delivery changes them (locked for the transaction)."""

    id: int
    mailbox_id: int
    name: str
    uidnext: int
    highest_modseq: int


@dataclass
class MailboxState:
    """A mailbox's status and quota counters, locked for the transaction."""

    id: int
    status: str
    quota_bytes: int
    used_bytes: int


def new_uidvalidity() -> int:
    """Seconds since the epoch, as Dovecot does: a folder deleted and created again
    gets a larger value, so clients drop their cached UIDs (fits 32 bits until 2106)."""
    return int(time.time())


def ensure_default_folders(conn: Connection, mailbox_ids: Iterable[int]) -> None:
    """Create whichever of the default folders the mailboxes lack (a mailbox gets them on
    first use, whichever path created it: CLI, import or console)."""
    wanted = sorted(set(mailbox_ids))
    if not wanted:
        return
    have = {
        (row.mailbox_id, row.name)
        for row in conn.execute(
            select(folders.c.mailbox_id, folders.c.name).where(
                folders.c.mailbox_id.in_(wanted), folders.c.name.in_(list(DEFAULT_FOLDERS))
            )
        )
    }
    created = now()
    validity = new_uidvalidity()
    rows = [
        {
            "mailbox_id": box,
            "name": name,
            "special_use": role,
            "uidvalidity": validity,
            "uidnext": 1,
            "highest_modseq": 1,
            "subscribed": True,
            "created_at": created,
        }
        for box in wanted
        for name, role in DEFAULT_FOLDERS.items()
        if (box, name) not in have
    ]
    if rows:
        # Under the mailbox lock nobody else creates these, but a mailbox locked by no
        # one (list_folders) may race with a delivery: the first insert wins.
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            dialect_insert(folders).on_conflict_do_nothing(index_elements=["mailbox_id", "name"]),
            rows,
        )


_LOCK_MAILBOXES = (
    select(mailboxes.c.id, mailboxes.c.status, mailboxes.c.quota_bytes, mailboxes.c.used_bytes)
    .where(mailboxes.c.id.in_(bindparam("boxes", expanding=True)))
    .order_by(mailboxes.c.id)
    .with_for_update()
)
_LOCK_FOLDERS = (
    select(
        folders.c.id,
        folders.c.mailbox_id,
        folders.c.name,
        folders.c.uidnext,
        folders.c.highest_modseq,
    )
    .where(
        folders.c.mailbox_id.in_(bindparam("boxes", expanding=True)),
        folders.c.name.in_(bindparam("names", expanding=True)),
    )
    .order_by(folders.c.id)
    .with_for_update()
)


def lock_mailboxes(
    conn: Connection, mailbox_ids: Iterable[int], names: Iterable[str]
) -> tuple[dict[int, MailboxState], dict[tuple[int, str], FolderCounters]]:
    """The mailboxes and their named folders, locked until the transaction ends
    (PostgreSQL ``FOR UPDATE``: mailboxes first, each kind in id order, so concurrent
    writers never deadlock; SQLite's write transaction is exclusive already). Creates
    missing default folders. Ids with no mailbox are left out.

    Whoever changes a folder's counters holds this lock on its mailbox first.
    """
    boxes = sorted(set(mailbox_ids))
    if not boxes:
        return {}, {}
    states = {r.id: MailboxState(*r) for r in conn.execute(_LOCK_MAILBOXES, {"boxes": boxes})}
    params = {"boxes": sorted(states), "names": sorted(set(names))}
    if not states:
        return states, {}
    rows = conn.execute(_LOCK_FOLDERS, params).all()
    if len(rows) < len(states) * len(params["names"]):
        ensure_default_folders(conn, states)
        rows = conn.execute(_LOCK_FOLDERS, params).all()
    counters = {(r.mailbox_id, r.name): FolderCounters(*r) for r in rows}
    return states, counters


def list_folders(conn: Connection, mailbox_id: int) -> list[dict[str, object]]:
    """Every folder of a mailbox with its counters, default folders first (creates the
    default ones if missing, so run it in a write transaction)."""
    ensure_default_folders(conn, [mailbox_id])
    rows = conn.execute(
        select(
            folders.c.id,
            folders.c.name,
            folders.c.special_use,
            folders.c.uidvalidity,
            folders.c.uidnext,
            folders.c.highest_modseq,
        ).where(folders.c.mailbox_id == mailbox_id)
    )
    order = list(DEFAULT_FOLDERS)

    def rank(folder: dict[str, object]) -> tuple[int, str]:
        name = str(folder["name"])
        return (order.index(name) if name in order else len(order), name)

    return sorted((dict(r._mapping) for r in rows), key=rank)
