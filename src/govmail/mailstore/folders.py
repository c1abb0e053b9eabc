"""A mailbox's folders: the five every mailbox has (with RFC 6154 roles) and their counters."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.store.audit import now
from govmail.store.schema import folders

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
    """A folder's row as delivery needs it (locked for the transaction on PostgreSQL)."""

    id: int
    mailbox_id: int
    name: str
    uidnext: int
    highest_modseq: int


def new_uidvalidity() -> int:
    """Seconds since the epoch, as Dovecot does: a folder deleted and created again
    gets a larger value, so clients drop their cached UIDs (fits 32 bits until 2106)."""
    return int(time.time())


async def ensure_default_folders(conn: AsyncConnection, mailbox_ids: Iterable[int]) -> None:
    """Create whichever of the default folders the mailboxes lack (a mailbox gets them on
    first use, whichever path created it: CLI, import or console)."""
    wanted = sorted(set(mailbox_ids))
    if not wanted:
        return
    have = {
        (row.mailbox_id, row.name)
        for row in await conn.execute(
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
        await conn.execute(insert(folders), rows)


async def lock_folders(
    conn: AsyncConnection, mailbox_ids: Iterable[int], names: Iterable[str]
) -> dict[tuple[int, str], FolderCounters]:
    """The named folders of the mailboxes, locked until the transaction ends (PostgreSQL
    ``FOR UPDATE`` in id order, so concurrent writers never deadlock; SQLite's write
    transaction is exclusive already). Creates missing default folders first."""
    boxes = sorted(set(mailbox_ids))
    wanted = sorted(set(names))
    query = (
        select(
            folders.c.id,
            folders.c.mailbox_id,
            folders.c.name,
            folders.c.uidnext,
            folders.c.highest_modseq,
        )
        .where(folders.c.mailbox_id.in_(boxes), folders.c.name.in_(wanted))
        .order_by(folders.c.id)
        .with_for_update()
    )
    found = {(r.mailbox_id, r.name): FolderCounters(*r) for r in await conn.execute(query)}
    if len(found) < len(boxes) * len(wanted):
        await ensure_default_folders(conn, boxes)
        found = {(r.mailbox_id, r.name): FolderCounters(*r) for r in await conn.execute(query)}
    return found


async def list_folders(conn: AsyncConnection, mailbox_id: int) -> list[dict[str, object]]:
    """Every folder of a mailbox with its counters, default folders first."""
    await ensure_default_folders(conn, [mailbox_id])
    rows = await conn.execute(
        select(
            folders.c.id,
            folders.c.name,
            folders.c.special_use,
            folders.c.uidvalidity,
            folders.c.uidnext,
            folders.c.highest_modseq,
        )
        .where(folders.c.mailbox_id == mailbox_id)
        .order_by(folders.c.name)
    )
    order = list(DEFAULT_FOLDERS)
    return sorted(
        (dict(r._mapping) for r in rows),
        key=lambda f: (
            order.index(str(f["name"])) if f["name"] in order else len(order),
            f["name"],
        ),
    )
