"""A mailbox's folders: the five every mailbox has (with RFC 6154 roles) and their counters.

These functions take a synchronous Connection: they run inside ``Database.run``
transactions (one hop to SQLite's worker thread), or through ``AsyncConnection.run_sync``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from govmail.core.errors import GovmailError
from govmail.store.audit import now
from govmail.store.schema import (
    addresses,
    delegations,
    expunged_messages,
    folder_messages,
    folders,
    mailboxes,
)

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


def new_uidvalidity(conn: Connection, mailbox_id: int) -> int:
    """A UIDVALIDITY for a new folder of this mailbox: seconds since the epoch, as
    Dovecot does, but always above any value the mailbox gave before, so a folder
    deleted and created again, even in the same second, makes clients drop their cached
    UIDs (RFC 9051 §2.3.1.1). Fits 32 bits until 2106."""
    last = conn.execute(
        select(mailboxes.c.last_uidvalidity).where(mailboxes.c.id == mailbox_id).with_for_update()
    ).scalar_one()
    value = max(int(time.time()), int(last) + 1)
    conn.execute(
        update(mailboxes).where(mailboxes.c.id == mailbox_id).values(last_uidvalidity=value)
    )
    return value


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
    missing = sorted({box for box in wanted for name in DEFAULT_FOLDERS if (box, name) not in have})
    validity = {box: new_uidvalidity(conn, box) for box in missing}
    rows = [
        {
            "mailbox_id": box,
            "name": name,
            "special_use": role,
            "uidvalidity": validity[box],
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


# --- Folder management (IMAP CREATE/DELETE/RENAME/SUBSCRIBE, the webmail) -------------------

MAX_FOLDER_NAME = 255
MAX_FOLDERS = 1000  # per mailbox: a client cannot fill the table


class FolderError(GovmailError):
    """A folder operation refused; ``code`` names the IMAP response code to use."""

    def __init__(self, code: str, vi: str, en: str) -> None:
        super().__init__(vi, en)
        self.code = code


def _folder_rows(conn: Connection, mailbox_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(folders.c.id, folders.c.name, folders.c.special_use, folders.c.subscribed).where(
                folders.c.mailbox_id == mailbox_id
            )
        ).all()
    )


def _check_name(name: str) -> None:
    """A name a new folder may have: not INBOX, no empty level, no control character,
    at most 255 characters."""
    if (
        not name
        or len(name) > MAX_FOLDER_NAME
        or name.upper() == "INBOX"
        or any(not part for part in name.split("/"))
        or any(ord(c) < 0x20 or c == "\x7f" for c in name)
    ):
        raise FolderError("CANNOT", "Tên thư mục không hợp lệ.", f"Invalid folder name: {name!r}.")


def _lock_mailbox(conn: Connection, mailbox_id: int) -> None:
    conn.execute(select(mailboxes.c.id).where(mailboxes.c.id == mailbox_id).with_for_update())


def create_folder(
    conn: Connection, mailbox_id: int, name: str, special_use: str | None = None
) -> None:
    """Create a folder (and any missing parents, as RFC 9051 §6.3.4 asks)."""
    _check_name(name)
    _lock_mailbox(conn, mailbox_id)
    rows = _folder_rows(conn, mailbox_id)
    have = {r.name for r in rows}
    if name in have:
        raise FolderError("ALREADYEXISTS", "Thư mục đã tồn tại.", "The folder already exists.")
    if len(have) >= MAX_FOLDERS:
        raise FolderError("LIMIT", "Quá nhiều thư mục.", "Too many folders.")
    if special_use is not None and any(r.special_use == special_use for r in rows):
        raise FolderError(
            "USEATTR", "Đã có thư mục dùng cho vai trò này.", "A folder already has this role."
        )
    parts = name.split("/")
    wanted = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    created = now()
    validity = new_uidvalidity(conn, mailbox_id)
    conn.execute(
        insert(folders),
        [
            {
                "mailbox_id": mailbox_id,
                "name": path,
                "special_use": special_use if path == name else None,
                "uidvalidity": validity,
                "uidnext": 1,
                "highest_modseq": 1,
                "subscribed": True,
                "created_at": created,
            }
            for path in wanted
            if path not in have
        ],
    )


def delete_folder(conn: Connection, mailbox_id: int, name: str) -> None:
    """Delete a folder with its messages (freeing their quota). INBOX cannot be deleted,
    nor a folder with sub-folders (Dovecot's rule: delete those first)."""
    if name == "INBOX":
        raise FolderError("CANNOT", "Không thể xóa INBOX.", "INBOX cannot be deleted.")
    _lock_mailbox(conn, mailbox_id)
    rows = _folder_rows(conn, mailbox_id)
    target = next((r for r in rows if r.name == name), None)
    if target is None:
        raise FolderError("NONEXISTENT", "Không có thư mục này.", "No such folder.")
    if any(r.name.startswith(name + "/") for r in rows):
        raise FolderError(
            "INUSE",
            "Thư mục còn thư mục con, hãy xóa chúng trước.",
            "The folder has sub-folders; delete them first.",
        )
    size = conn.execute(
        select(func.coalesce(func.sum(folder_messages.c.size), 0)).where(
            folder_messages.c.folder_id == target.id
        )
    ).scalar_one()
    conn.execute(delete(folder_messages).where(folder_messages.c.folder_id == target.id))
    conn.execute(delete(expunged_messages).where(expunged_messages.c.folder_id == target.id))
    conn.execute(delete(folders).where(folders.c.id == target.id))
    if size:
        conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == mailbox_id)
            .values(used_bytes=mailboxes.c.used_bytes - size)
        )


def rename_folder(conn: Connection, mailbox_id: int, old: str, new: str) -> None:
    """Rename a folder and its sub-folders. Renaming INBOX moves its messages into a new
    folder and leaves INBOX empty (RFC 9051 §6.3.6)."""
    _check_name(new)
    _lock_mailbox(conn, mailbox_id)
    rows = _folder_rows(conn, mailbox_id)
    names = {r.name: r for r in rows}
    if old not in names:
        raise FolderError("NONEXISTENT", "Không có thư mục này.", "No such folder.")
    if new in names:
        raise FolderError("ALREADYEXISTS", "Thư mục đã tồn tại.", "The folder already exists.")
    if any(
        len(new + row.name[len(old) :]) > MAX_FOLDER_NAME
        for row in rows
        if row.name == old or row.name.startswith(old + "/")
    ):
        raise FolderError("CANNOT", "Tên thư mục quá dài.", "The folder name is too long.")
    if new.startswith(old + "/"):
        raise FolderError(
            "CANNOT", "Không thể chuyển thư mục vào chính nó.", "Cannot move a folder into itself."
        )
    if old == "INBOX":
        create_folder(conn, mailbox_id, new)
        target = conn.execute(
            select(folders.c.id, folders.c.uidnext).where(
                folders.c.mailbox_id == mailbox_id, folders.c.name == new
            )
        ).one()
        inbox = names["INBOX"]
        _move_all(conn, inbox.id, target.id)
        return
    for row in rows:
        if row.name == old or row.name.startswith(old + "/"):
            conn.execute(
                update(folders)
                .where(folders.c.id == row.id)
                .values(name=new + row.name[len(old) :])
            )
    parent = new.rpartition("/")[0]
    if parent and parent not in names:
        create_folder(conn, mailbox_id, parent)


def _move_all(conn: Connection, source_id: int, target_id: int) -> None:
    """Every message of ``source_id`` into the new, empty ``target_id`` (INBOX rename)."""
    source = conn.execute(
        select(folders.c.highest_modseq).where(folders.c.id == source_id)
    ).scalar_one()
    rows = conn.execute(
        select(folder_messages.c.id, folder_messages.c.uid)
        .where(folder_messages.c.folder_id == source_id)
        .order_by(folder_messages.c.uid)
    ).all()
    if not rows:
        return
    for number, row in enumerate(rows, start=1):
        conn.execute(
            update(folder_messages)
            .where(folder_messages.c.id == row.id)
            .values(folder_id=target_id, uid=number, modseq=2)
        )
    conn.execute(
        update(folders)
        .where(folders.c.id == target_id)
        .values(uidnext=len(rows) + 1, highest_modseq=2)
    )
    conn.execute(
        insert(expunged_messages),
        [{"folder_id": source_id, "uid": r.uid, "modseq": source + 1} for r in rows],
    )
    conn.execute(update(folders).where(folders.c.id == source_id).values(highest_modseq=source + 1))


def subscribe_folder(conn: Connection, mailbox_id: int, name: str, subscribed: bool) -> bool:
    """Set a folder's subscription; False if there is no such folder."""
    result = conn.execute(
        update(folders)
        .where(folders.c.mailbox_id == mailbox_id, folders.c.name == name)
        .values(subscribed=subscribed)
    )
    return bool(result.rowcount)


@dataclass(frozen=True)
class FolderEntry:
    name: str
    special_use: str | None
    subscribed: bool


def folder_entries(
    conn: Connection, mailbox_id: int, *, create_defaults: bool = False
) -> list[FolderEntry]:
    """Every folder of a mailbox, default ones first then by name; with
    ``create_defaults`` (in a write transaction) the missing default folders are made."""
    rows = _folder_rows(conn, mailbox_id)
    have = {r.name for r in rows}
    if create_defaults and len(have & set(DEFAULT_FOLDERS)) < len(DEFAULT_FOLDERS):
        ensure_default_folders(conn, [mailbox_id])
        rows = _folder_rows(conn, mailbox_id)
    order = list(DEFAULT_FOLDERS)
    entries = [FolderEntry(r.name, r.special_use, bool(r.subscribed)) for r in rows]
    return sorted(
        entries, key=lambda e: (order.index(e.name) if e.name in order else len(order), e.name)
    )


def readable_delegations(conn: Connection, person_id: int | None) -> list[tuple[int, str]]:
    """(mailbox id, primary local part) of each active agency mailbox this person may
    read (R22), by local part."""
    if person_id is None:
        return []
    rows = conn.execute(
        select(delegations.c.mailbox_id, addresses.c.local_part)
        .join(mailboxes, mailboxes.c.id == delegations.c.mailbox_id)
        .join(
            addresses,
            and_(addresses.c.mailbox_id == mailboxes.c.id, addresses.c.kind == "primary"),
        )
        .where(
            delegations.c.person_id == person_id,
            delegations.c.can_read.is_(True),
            delegations.c.revoked_at.is_(None),
            mailboxes.c.status == "active",
        )
        .order_by(addresses.c.local_part)
    ).all()
    return [(r.mailbox_id, r.local_part) for r in rows]
