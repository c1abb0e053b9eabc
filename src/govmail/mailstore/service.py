"""The mail store's use cases for the protocol edges: who an address reaches, storing a
message durably, and delivering it (locally, to Sent, to the outbound queue)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import Connection, bindparam, select

from govmail.config import Config
from govmail.core.dsn import FailedRecipient, build_dsn
from govmail.core.mime import analyze_message
from govmail.mailstore.delivery import (
    Delivery,
    GroupCommit,
    Outcome,
    StoredMessage,
    quota_allows,
)
from govmail.mailstore.recipients import LocalRecipient, find_local_recipient, is_local_domain
from govmail.store.blobs import BlobStore
from govmail.store.database import Database
from govmail.store.schema import mailboxes

_QUOTAS = select(
    mailboxes.c.id, mailboxes.c.status, mailboxes.c.quota_bytes, mailboxes.c.used_bytes
).where(mailboxes.c.id.in_(bindparam("boxes", expanding=True)))


class MailStore:
    """What SMTP (and later the webmail) calls to receive mail. One per process."""

    def __init__(self, db: Database, cfg: Config, blobs: BlobStore) -> None:
        self.db = db
        self.cfg = cfg
        self.blobs = blobs
        self.commits = GroupCommit(db)

    async def find_recipient(self, local_part: str) -> LocalRecipient | None:
        return await find_local_recipient(self.db, self.cfg, local_part)

    async def refusals(self, mailbox_ids: list[int], size: int) -> dict[int, str]:
        """Which of these mailboxes would refuse a message of ``size`` bytes now ("quota"
        or "inactive"): checked before the message is written, so mail nobody can take
        leaves no blob behind. Delivery checks again under its lock."""

        def check(conn: Connection) -> dict[int, str]:
            found = {}
            for row in conn.execute(_QUOTAS, {"boxes": mailbox_ids}):
                if row.status != "active":
                    found[row.id] = "inactive"
                elif not quota_allows(row.used_bytes, row.quota_bytes, size):
                    found[row.id] = "quota"
            return found

        return await self.db.run(check, write=False)

    async def store(self, raw: bytes) -> StoredMessage:
        """Analyse ``raw`` once and write its blob durably (fsynced) before returning."""
        return await asyncio.to_thread(self._store, raw)

    def _store(self, raw: bytes) -> StoredMessage:
        summary = analyze_message(raw)
        key = self.blobs.put(raw)
        return StoredMessage(blob=key, size=len(raw), summary=summary)

    async def deliver(self, delivery: Delivery) -> Outcome:
        """Make the message visible everywhere it goes; returns after the commit."""
        return await self.commits.deliver(delivery)

    async def bounce(self, sender: str, failed: list[FailedRecipient], original: bytes) -> None:
        """Tell ``sender`` (never the null sender) that ``failed`` did not get ``original``:
        a DSN into a local sender's INBOX, or into the outbound queue for a remote one."""
        if not sender:
            return
        report = build_dsn(
            reporting_host=self.cfg.hostname,
            sender=sender,
            failed=failed,
            original=original,
            at=datetime.now().astimezone(),
        )
        stored = await self.store(b"Return-Path: <>\r\n" + report)
        local, _, domain = sender.rpartition("@")
        if is_local_domain(self.cfg, domain):
            found = await self.find_recipient(local)
            if found is not None and found.status == "active":
                await self.deliver(Delivery(message=stored, sender="", inbox=[found.mailbox_id]))
            return
        await self.deliver(Delivery(message=stored, sender="", outbound=[sender]))

    async def close(self) -> None:
        await self.commits.close()
