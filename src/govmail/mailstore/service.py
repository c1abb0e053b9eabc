"""The mail store's use cases for the protocol edges: who an address reaches, and
receiving a message — checking it, storing it durably, delivering it (locally, to Sent,
to the outbound queue) and bouncing what could not be delivered."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Connection, bindparam, select

from govmail.config import Config
from govmail.core.dsn import FailedRecipient, build_dsn
from govmail.core.mime import analyze_message
from govmail.directory.accounts import Account
from govmail.mailstore.autoreply import VacationResponder
from govmail.mailstore.changes import ChangeNotifier
from govmail.mailstore.delivery import (
    INBOX,
    JUNK,
    Delivery,
    GroupCommit,
    Outcome,
    Record,
    Refused,
    StoredMessage,
    quota_allows,
)
from govmail.mailstore.ratelimit import SendingLimits
from govmail.mailstore.recipients import LocalRecipient, find_local_recipient, is_local_domain
from govmail.mailstore.submission import Refusal, check_from, missing_headers
from govmail.store.blobs import BlobStore
from govmail.store.database import Database
from govmail.store.schema import mailboxes

log = logging.getLogger(__name__)

_QUOTAS = select(
    mailboxes.c.id, mailboxes.c.status, mailboxes.c.quota_bytes, mailboxes.c.used_bytes
).where(mailboxes.c.id.in_(bindparam("boxes", expanding=True)))


@dataclass(frozen=True)
class Incoming:
    """A message as a protocol edge received it, recipients already checked."""

    raw: bytes  # the message, CRLF line endings
    sender: str  # envelope sender; "" is the null sender
    local: dict[int, str]  # mailbox id → the address it was reached by
    # What the edge already knows of those mailboxes (SMTP: from RCPT, moments ago):
    # spares a query before storing; delivery checks again under its lock anyway.
    seen: dict[int, LocalRecipient] = field(default_factory=dict)
    remote: list[str] = field(default_factory=list)
    account: Account | None = None  # the logged-in sender (submission, webmail)
    trace: bytes = b""  # the Received field the edge wrote
    at: datetime = field(default_factory=lambda: datetime.now().astimezone())
    # Local recipients get it in Junk, not INBOX (a DMARC policy asking for quarantine).
    junk: bool = False
    # Rows committed with the delivery (the sending policy's decisions and labels).
    records: tuple[Record, ...] = ()
    # The mailbox whose Sent folder files the copy, when not the account's own: an
    # agency mailbox the webmail sends from (R22: the agency's sent mail stays with it).
    sent_mailbox: int | None = None
    # Deliveries committed in the same transaction (the policy's notice to the sender,
    # its alert to the centre): all visible with the message, or none.
    companions: tuple[Delivery, ...] = ()


@dataclass(frozen=True)
class Receipt:
    """Accepted (``refusal`` None: the message is durable and visible), or refused."""

    refusal: Refusal | None = None
    outcome: Outcome | None = None
    bounced: tuple[str, ...] = ()  # local recipients the sender gets a bounce about


class MailStore:
    """What SMTP (and later the webmail) calls to receive mail. One per process."""

    def __init__(self, db: Database, cfg: Config, blobs: BlobStore) -> None:
        self.db = db
        self.cfg = cfg
        self.blobs = blobs
        self.changes = ChangeNotifier()
        self.commits = GroupCommit(db, changes=self.changes)
        # One per process: submission (587) and submissions (465) count together (R23).
        self.rates = SendingLimits(cfg.rate)
        # Vacation auto-replies, sent after the delivery they answer has committed.
        self.vacations = VacationResponder(self)
        self._receiving = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def find_recipient(self, local_part: str) -> LocalRecipient | None:
        return await find_local_recipient(self.db, self.cfg, local_part)

    async def receive(self, incoming: Incoming) -> Receipt:
        """Receive one message: the use case behind SMTP's DATA (and the webmail's Send).

        An official's message is checked (From: ownership, R22) and completed (Date,
        Message-ID). Recipients that cannot take it now (full, disabled) are left out
        and the sender gets a bounce committed together with the delivery; if nobody
        can take it, it is refused before anything is written.
        """
        self._receiving += 1
        self._idle.clear()
        try:
            return await self._receive(incoming)
        finally:
            self._receiving -= 1
            if not self._receiving:
                self._idle.set()

    def prepare(self, incoming: Incoming) -> Incoming | Refusal:
        """An official's message checked (From: ownership, R22) and completed (Date,
        Message-ID) as RFC 6409 allows; other mail as it is. Preparing twice changes
        nothing more."""
        account = incoming.account
        if account is None:
            return incoming
        refusal = check_from(incoming.raw, account)
        if refusal is not None:
            return refusal
        added = missing_headers(
            incoming.raw, sender=incoming.sender, hostname=self.cfg.hostname, at=incoming.at
        )
        return replace(incoming, raw=added + incoming.raw) if added else incoming

    def stamped(self, incoming: Incoming, raw: bytes | None = None) -> bytes:
        """The message as stored: Return-Path and the edge's trace above ``raw``."""
        data = f"Return-Path: <{incoming.sender}>\r\n".encode("utf-8", "surrogateescape")
        return data + incoming.trace + (incoming.raw if raw is None else raw)

    async def _receive(self, incoming: Incoming) -> Receipt:
        prepared = self.prepare(incoming)
        if isinstance(prepared, Refusal):
            return Receipt(prepared)
        incoming = prepared
        raw = incoming.raw
        account = incoming.account
        data = self.stamped(incoming)

        refused = await self._refusals(list(incoming.local), len(data), incoming.seen)
        if refused and len(refused) == len(incoming.local) and not incoming.remote:
            return Receipt(_nobody_takes_it(refused))
        stored = await self.store(data)
        delivery = Delivery(
            message=stored,
            sender=incoming.sender,
            inbox=[box for box in incoming.local if box not in refused],
            sent_copy=_sent_mailbox(incoming),
            outbound=incoming.remote,
            submitted_by=account.mailbox_id if account is not None else None,
            folder=JUNK if incoming.junk else INBOX,
            records=incoming.records,
        )
        failed = [_failed_recipient(incoming.local[box], why) for box, why in refused.items()]
        bounce = await self.bounce(incoming.sender, failed, raw) if failed else None
        outcomes = await self.commits.deliver(
            delivery, *([bounce] if bounce else []), *incoming.companions
        )
        outcome = outcomes[0]
        # Vacation auto-replies: scheduled, never awaited, never raising (autoreply.py).
        self.vacations.after_delivery(incoming, outcome)
        if outcome.refused and not outcome.delivered and not outcome.queued and not failed:
            return Receipt(_nobody_takes_it(outcome.refused), outcome)
        if outcome.refused:
            # Filled up between the check and the commit: bounce after the fact.
            late = [_failed_recipient(incoming.local[b], why) for b, why in outcome.refused.items()]
            late_bounce = await self.bounce(incoming.sender, late, raw)
            if late_bounce is not None:
                await self.commits.deliver(late_bounce)
            failed += late
        return Receipt(None, outcome, tuple(f.address for f in failed))

    async def _refusals(
        self, mailbox_ids: list[int], size: int, seen: dict[int, LocalRecipient]
    ) -> dict[int, Refused]:
        """Which of these mailboxes would refuse a message of ``size`` bytes now: checked
        before the message is written, so mail nobody can take leaves no blob behind.
        Delivery checks again under its lock."""
        if not mailbox_ids:
            return {}
        if all(box in seen for box in mailbox_ids):
            return {
                box: Refused.INACTIVE if r.status != "active" else Refused.QUOTA
                for box in mailbox_ids
                if (r := seen[box]).status != "active"
                or not quota_allows(r.used_bytes, r.quota_bytes, size)
            }

        def check(conn: Connection) -> dict[int, Refused]:
            found = {}
            for row in conn.execute(_QUOTAS, {"boxes": mailbox_ids}):
                if row.status != "active":
                    found[row.id] = Refused.INACTIVE
                elif not quota_allows(row.used_bytes, row.quota_bytes, size):
                    found[row.id] = Refused.QUOTA
            return found

        return await self.db.run(check, write=False)

    async def store(self, raw: bytes) -> StoredMessage:
        """Analyse ``raw`` once and write its blob durably (fsynced) before returning."""
        return await asyncio.to_thread(self._store, raw)

    def _store(self, raw: bytes) -> StoredMessage:
        summary = analyze_message(raw)
        key = self.blobs.put(raw)
        return StoredMessage(blob=key, size=len(raw), summary=summary)

    async def bounce(
        self,
        sender: str,
        failed: list[FailedRecipient],
        original: bytes,
        *,
        delayed_until: datetime | None = None,
        arrived: datetime | None = None,
        last_attempt: datetime | None = None,
    ) -> Delivery | None:
        """A stored DSN telling ``sender`` that ``failed`` did not get ``original`` (or,
        with ``delayed_until``, that it is late and retried until then), as a delivery
        to commit: into a local sender's INBOX, or the outbound queue for a remote one.
        None for the null sender (no bounce of a bounce) or a local sender whose mailbox
        is gone. ``arrived`` and ``last_attempt``: see ``build_dsn``."""
        if not sender:
            log.warning("bounce for %s dropped: the sender is the null sender", failed[0].address)
            return None
        report = build_dsn(
            reporting_host=self.cfg.hostname,
            sender=sender,
            failed=failed,
            original=original,
            at=datetime.now().astimezone(),
            delayed_until=delayed_until,
            arrived=arrived,
            last_attempt=last_attempt,
        )
        local, _, domain = sender.rpartition("@")
        box: LocalRecipient | None = None
        if is_local_domain(self.cfg, domain):
            box = await self.find_recipient(local)
            if box is None or box.status != "active":
                log.warning("bounce to <%s> dropped: no such active mailbox", sender)
                return None
        stored = await self.store(b"Return-Path: <>\r\n" + report)
        if box is not None:
            return Delivery(message=stored, sender="", inbox=[box.mailbox_id])
        return Delivery(message=stored, sender="", outbound=[sender])

    async def close(self, timeout: float = 15.0) -> None:
        """Let messages being received finish (their clients then get their 250 and do
        not send them again), for at most ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.warning("shutting down with %d messages still being received", self._receiving)
        await self.vacations.settle()
        await self.commits.close()


def _sent_mailbox(incoming: Incoming) -> int | None:
    """Where the Sent copy goes: the account's own mailbox, or an agency mailbox it is
    delegated on (anything else is ignored)."""
    account = incoming.account
    if account is None:
        return None
    chosen = incoming.sent_mailbox
    return chosen if chosen is not None and chosen in account.delegated else account.mailbox_id


def _failed_recipient(address: str, why: Refused) -> FailedRecipient:
    if why is Refused.QUOTA:
        return FailedRecipient(
            address, "5.2.2", "smtp; 552 5.2.2 Mailbox full", "Hộp thư đã đầy", "Mailbox full"
        )
    return FailedRecipient(
        address,
        "5.2.1",
        "smtp; 550 5.2.1 Mailbox disabled",
        "Hộp thư đã ngừng hoạt động",
        "Mailbox disabled",
    )


def _nobody_takes_it(refused: dict[int, Refused]) -> Refusal:
    if Refused.QUOTA in refused.values():
        return Refusal("552 5.2.2", "Hộp thư người nhận đã đầy", "Mailbox full")
    return Refusal("550 5.2.1", "Hộp thư người nhận đã ngừng hoạt động", "Mailbox disabled")
