"""The mail store's use cases for the protocol edges: who an address reaches, storing a
message durably, and delivering it (locally, to Sent, to the outbound queue)."""

from __future__ import annotations

import asyncio

from govmail.config import Config
from govmail.core.mime import analyze_message
from govmail.mailstore.delivery import Delivery, GroupCommit, Outcome, StoredMessage
from govmail.mailstore.recipients import LocalRecipient, find_local_recipient
from govmail.store.blobs import BlobStore
from govmail.store.database import Database


class MailStore:
    """What SMTP (and later the webmail) calls to receive mail. One per process."""

    def __init__(self, db: Database, cfg: Config, blobs: BlobStore) -> None:
        self.db = db
        self.cfg = cfg
        self.blobs = blobs
        self.commits = GroupCommit(db)

    async def find_recipient(self, local_part: str) -> LocalRecipient | None:
        return await find_local_recipient(self.db, self.cfg, local_part)

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

    async def close(self) -> None:
        await self.commits.close()
