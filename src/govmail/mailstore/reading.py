"""Reading a folder's messages back: what IMAP, the webmail and the tests see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from govmail.store.database import Database
from govmail.store.schema import folder_messages, folders, messages


@dataclass(frozen=True)
class FolderMessage:
    uid: int
    modseq: int
    flags: int
    keywords: str | None
    internal_date: datetime
    size: int
    blob: str
    subject: str
    search_text: str


async def folder_contents(db: Database, mailbox_id: int, folder: str) -> list[FolderMessage]:
    """The messages of one folder in UID order (empty if the folder does not exist yet)."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(
                folder_messages.c.uid,
                folder_messages.c.modseq,
                folder_messages.c.flags,
                folder_messages.c.keywords,
                folder_messages.c.internal_date,
                folder_messages.c.size,
                messages.c.blob,
                messages.c.subject,
                messages.c.search_text,
            )
            .join(folders, folders.c.id == folder_messages.c.folder_id)
            .join(messages, messages.c.id == folder_messages.c.message_id)
            .where(folders.c.mailbox_id == mailbox_id, folders.c.name == folder)
            .order_by(folder_messages.c.uid)
        )
        return [FolderMessage(*r) for r in rows]
