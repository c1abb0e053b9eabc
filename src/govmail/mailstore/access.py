"""Access events (R19: who looked at which mailbox, when, from where) and the audit of
delegated access (R22), written in batches off the protocol's path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, insert

from govmail.store.audit import now
from govmail.store.database import Database
from govmail.store.schema import access_events, audit_log

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccessEvent:
    mailbox_id: int  # the mailbox looked at
    kind: str  # login, select, examine, status
    protocol: str  # imap, web
    client_address: str | None
    folder: str | None = None
    actor_mailbox_id: int | None = None  # who did it, when not the mailbox's owner
    at: datetime | None = None


@dataclass(frozen=True)
class DelegatedAccess:
    """An audit entry: ``actor`` used agency mailbox ``target`` through a delegation."""

    actor: str
    target: str
    action: str
    details: dict[str, Any]


class AccessLog:
    """Collects events and writes whatever has gathered in one transaction, so a burst
    of logins costs a few commits. ``record`` returns at once; ``flush`` waits until
    everything recorded so far is written (tests, shutdown)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._events: list[AccessEvent] = []
        self._audits: list[DelegatedAccess] = []
        self._worker: asyncio.Task[None] | None = None

    def record(self, event: AccessEvent) -> None:
        if event.at is None:
            event = AccessEvent(**{**event.__dict__, "at": now()})
        self._events.append(event)
        self._wake()

    def audit(self, entry: DelegatedAccess) -> None:
        self._audits.append(entry)
        self._wake()

    def _wake(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())

    async def flush(self) -> None:
        while self._worker is not None and not self._worker.done():
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def _drain(self) -> None:
        while self._events or self._audits:
            events, self._events = self._events, []
            audits, self._audits = self._audits, []
            try:
                await self.db.run(partial(_write, events=events, audits=audits), write=True)
            except Exception:  # the database is down: the protocol goes on, the log says so
                log.exception("could not record %d access events", len(events) + len(audits))


def _write(conn: Connection, events: list[AccessEvent], audits: list[DelegatedAccess]) -> None:
    if events:
        conn.execute(
            insert(access_events),
            [
                {
                    "at": e.at,
                    "mailbox_id": e.mailbox_id,
                    "actor_mailbox_id": e.actor_mailbox_id,
                    "protocol": e.protocol,
                    "kind": e.kind,
                    "folder": e.folder,
                    "client_address": e.client_address,
                }
                for e in events
            ],
        )
    if audits:
        at = now()
        conn.execute(
            insert(audit_log),
            [
                {
                    "at": at,
                    "actor": a.actor,
                    "action": a.action,
                    "target": a.target,
                    "details": a.details,
                }
                for a in audits
            ],
        )
