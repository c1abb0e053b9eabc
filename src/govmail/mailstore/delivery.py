"""Delivery into the store: one transaction makes a message visible in every folder it
reaches, updates quotas and queues remote recipients; concurrent deliveries share it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import partial

from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError

from govmail.core.errors import GovmailError
from govmail.core.mime import MessageSummary
from govmail.mailstore.changes import ChangeNotifier
from govmail.mailstore.folders import FolderCounters, lock_mailboxes
from govmail.store.audit import now
from govmail.store.database import Database
from govmail.store.schema import folder_messages, folders, mailboxes, messages, outbound_queue

log = logging.getLogger(__name__)

INBOX = "INBOX"
SENT = "Sent"
JUNK = "Junk"
# Dovecot's quota_grace: the message that crosses the quota may exceed it by this much,
# so a mailbox just under its quota still receives an ordinary message.
QUOTA_GRACE = 0.10
SEEN = 1  # the \Seen bit of folder_messages.flags: a Sent copy is read already


@dataclass(frozen=True)
class StoredMessage:
    """A message whose blob is durable: its key, size and what was computed from it."""

    blob: str
    size: int
    summary: MessageSummary


@dataclass(frozen=True)
class Record:
    """A row another layer commits together with a delivery (a policy decision, the
    document type of the message): inserted into ``table`` in the delivery's transaction.
    A ``message_id`` key set to None is filled with the delivered message's row id (and
    such a record is dropped if the message landed nowhere)."""

    table: Table
    values: Mapping[str, object]


@dataclass(frozen=True)
class Delivery:
    """Everything one accepted SMTP transaction (or webmail send) puts in the store."""

    message: StoredMessage
    sender: str
    inbox: Sequence[int] = ()  # local mailboxes receiving it in INBOX
    sent_copy: int | None = None  # the sending mailbox, which files a copy in Sent
    outbound: Sequence[str] = ()  # recipients at other domains
    submitted_by: int | None = None
    folder: str = INBOX  # where ``inbox`` mailboxes file it: INBOX, or Junk (DMARC)
    records: Sequence[Record] = ()


class Refused(Enum):
    """Why a local mailbox did not take a message."""

    QUOTA = "quota"  # full (R17)
    INACTIVE = "inactive"  # disabled or deleted


@dataclass
class Outcome:
    """What one delivery did: where it landed, where not and why, what was queued."""

    delivered: list[int] = field(default_factory=list)
    # Mailbox id → why it was not delivered there: the sender must be told.
    refused: dict[int, Refused] = field(default_factory=dict)
    queued: int = 0


def quota_allows(used: int, quota: int, size: int) -> bool:
    """Whether a message of ``size`` bytes still fits (with the grace above)."""
    return used < quota and used + size <= quota + int(quota * QUOTA_GRACE)


class GroupCommit:
    """Serialises deliveries into shared transactions: while one transaction commits,
    the deliveries that arrive queue up and go together in the next one, so a burst of
    N messages costs a few commits (and fsyncs), not N.

    ``deliver`` returns only after the transaction holding the delivery has committed.
    If a shared transaction fails, each of its deliveries is retried alone, so one bad
    delivery cannot fail the others.
    """

    def __init__(
        self, db: Database, *, max_batch: int = 200, changes: ChangeNotifier | None = None
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        self.changes = changes
        # Each entry: deliveries that commit together (a message and its bounce).
        self._pending: list[tuple[list[Delivery], asyncio.Future[list[Outcome]]]] = []
        self._worker: asyncio.Task[None] | None = None
        # Called after a commit that queued mail for other domains: wakes the
        # outbound queue's workers.
        self.on_queued: Callable[[], None] | None = None

    async def deliver(self, *deliveries: Delivery) -> list[Outcome]:
        """Commit ``deliveries`` together (all visible or none), sharing the transaction
        with whatever else is waiting; one outcome per delivery."""
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        self._pending.append((list(deliveries), future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def close(self) -> None:
        """Wait until what was handed over so far has committed (or failed)."""
        if self._worker is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def _drain(self) -> None:
        while self._pending:
            batch = self._take()
            try:
                outcomes = await self._commit([d for group, _ in batch for d in group])
            except (IntegrityError, DataError):
                # One delivery's rows were refused: give each its own transaction so
                # the others still commit.
                log.warning("shared delivery transaction refused; retrying one by one")
                for group, future in batch:
                    await self._alone(group, future)
                continue
            except Exception as exc:
                # The database itself failed (locked, gone): retrying one by one would
                # only wait longer. Every client is told to try again later.
                log.error("delivery transaction failed", exc_info=exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(DeliveryFailed())
                continue
            self._announce([d for group, _ in batch for d in group])
            for group, future in batch:
                mine, outcomes = outcomes[: len(group)], outcomes[len(group) :]
                if not future.done():
                    future.set_result(mine)

    def _announce(self, deliveries: list[Delivery]) -> None:
        """Wake the sessions (IMAP IDLE) of every mailbox these deliveries touched, and
        the outbound workers if mail was queued."""
        if self.on_queued is not None and any(d.outbound for d in deliveries):
            self.on_queued()
        if self.changes is not None:
            boxes = {box for d in deliveries for box in d.inbox}
            boxes.update(d.sent_copy for d in deliveries if d.sent_copy is not None)
            self.changes.publish(boxes)

    def _take(self) -> list[tuple[list[Delivery], asyncio.Future[list[Outcome]]]]:
        taken, count = 0, 0
        for group, _ in self._pending:
            if taken and count + len(group) > self.max_batch:
                break
            taken += 1
            count += len(group)
        batch = self._pending[:taken]
        del self._pending[:taken]
        return batch

    async def _alone(self, group: list[Delivery], future: asyncio.Future[list[Outcome]]) -> None:
        try:
            outcomes = await self._commit(group)
        except Exception as exc:
            log.error("delivery from <%s> failed", group[0].sender, exc_info=exc)
            if not future.done():
                future.set_exception(DeliveryFailed())
        else:
            self._announce(group)
            if not future.done():
                future.set_result(outcomes)

    async def _commit(self, deliveries: list[Delivery]) -> list[Outcome]:
        return await self.db.run(partial(deliver_batch, batch=deliveries), write=True)


class DeliveryFailed(GovmailError):
    """The store could not take the message; the SMTP client is told to retry later."""

    code = "delivery_failed"

    def __init__(self) -> None:
        super().__init__(
            "Tạm thời không lưu được thư, hãy gửi lại sau.",
            "The message could not be stored just now; send it again later.",
        )


def deliver_batch(conn: Connection, batch: Sequence[Delivery]) -> list[Outcome]:
    """Make every delivery of ``batch`` visible in one transaction (the caller's).

    A delivery that lands nowhere (every recipient full or inactive, nothing queued)
    leaves no row behind, and then no Sent copy is filed either: the send failed.
    """
    at = now()
    # Lock what the batch changes: the mailboxes (quota) with their folders (UIDs).
    boxes = {box for d in batch for box in d.inbox}
    boxes.update(d.sent_copy for d in batch if d.sent_copy is not None)
    states, targets = lock_mailboxes(conn, boxes, {INBOX, SENT, *(d.folder for d in batch)})
    quota = {box: [state.quota_bytes, state.used_bytes] for box, state in states.items()}
    active = {box for box, state in states.items() if state.status == "active"}
    uidnext_before = {f.id: f.uidnext for f in targets.values()}
    used_before = {box: q[1] for box, q in quota.items()}

    placed: list[tuple[str, dict[str, object]]] = []  # (blob, folder_messages row)
    queued: list[tuple[str, dict[str, object]]] = []  # (blob, outbound_queue row)
    outcomes: list[Outcome] = []
    for delivery in batch:
        outcome = Outcome()
        size = delivery.message.size
        for box in dict.fromkeys(delivery.inbox):
            if box not in active:
                outcome.refused[box] = Refused.INACTIVE
            elif not quota_allows(quota[box][1], quota[box][0], size):
                outcome.refused[box] = Refused.QUOTA
            else:
                target = targets[(box, delivery.folder)]
                placed.append((delivery.message.blob, _place(target, size, 0, at)))
                quota[box][1] += size
                outcome.delivered.append(box)
        sender = delivery.sent_copy
        sent = bool(outcome.delivered or delivery.outbound)
        # A sender over quota still sends; only the Sent copy is skipped.
        if sent and sender is not None and sender in active:
            limit, used = quota[sender]
            if quota_allows(used, limit, size):
                row = _place(targets[(sender, SENT)], size, SEEN, at)
                placed.append((delivery.message.blob, row))
                quota[sender][1] += size
        for recipient in delivery.outbound:
            queue_row: dict[str, object] = {
                "sender": delivery.sender,
                "recipient": recipient,
                "domain": recipient.rpartition("@")[2].lower(),
                "mailbox_id": delivery.submitted_by,
                "status": "queued",
                "attempts": 0,
                "next_attempt_at": at,
                "created_at": at,
            }
            queued.append((delivery.message.blob, queue_row))
        outcome.queued = len(delivery.outbound)
        outcomes.append(outcome)

    landed = {blob for blob, _ in placed} | {blob for blob, _ in queued}
    message_ids = message_rows(conn, [d.message for d in batch if d.message.blob in landed], at)
    if placed:
        conn.execute(
            _INSERT_FOLDER_MESSAGES,
            [{**row, "message_id": message_ids[blob]} for blob, row in placed],
        )
        changed = [f for f in targets.values() if f.uidnext != uidnext_before[f.id]]
        conn.execute(
            _UPDATE_FOLDER,
            [{"f_id": f.id, "f_uidnext": f.uidnext, "f_modseq": f.highest_modseq} for f in changed],
        )
        grown = [
            {"m_id": box, "m_delta": q[1] - used_before[box]}
            for box, q in quota.items()
            if q[1] != used_before[box]
        ]
        if grown:
            conn.execute(_GROW_MAILBOX, grown)
    if queued:
        conn.execute(
            _INSERT_QUEUE, [{**row, "message_id": message_ids[blob]} for blob, row in queued]
        )
    for delivery in batch:
        for record in delivery.records:
            values = dict(record.values)
            if "message_id" in values and values["message_id"] is None:
                if delivery.message.blob not in message_ids:
                    continue
                values["message_id"] = message_ids[delivery.message.blob]
            conn.execute(insert(record.table), values)
    return outcomes


def _place(folder: FolderCounters, size: int, flags: int, at: datetime) -> dict[str, object]:
    """The next UID and modseq of ``folder`` for a new message (counters advanced)."""
    folder.highest_modseq += 1
    row: dict[str, object] = {
        "folder_id": folder.id,
        "uid": folder.uidnext,
        "flags": flags,
        "modseq": folder.highest_modseq,
        "internal_date": at,
        "size": size,
    }
    folder.uidnext += 1
    return row


# Built once: SQLAlchemy then reuses their compiled form (a delivery runs these for
# every message; building and compiling them each time cost more than running them).
_FIND_MESSAGES = select(messages.c.blob, messages.c.id).where(
    messages.c.blob.in_(bindparam("blobs", expanding=True))
)
# Indexed by "is PostgreSQL": each dialect's INSERT ... ON CONFLICT DO NOTHING.
_INSERT_NEW_MESSAGE = tuple(
    dialect_insert(messages)
    .on_conflict_do_nothing(index_elements=["blob"])
    .returning(messages.c.blob, messages.c.id)
    for dialect_insert in (sqlite.insert, postgresql.insert)
)
_INSERT_FOLDER_MESSAGES = insert(folder_messages)
_UPDATE_FOLDER = (
    update(folders)
    .where(folders.c.id == bindparam("f_id"))
    .values(uidnext=bindparam("f_uidnext"), highest_modseq=bindparam("f_modseq"))
)
_GROW_MAILBOX = (
    update(mailboxes)
    .where(mailboxes.c.id == bindparam("m_id"))
    .values(used_bytes=mailboxes.c.used_bytes + bindparam("m_delta"))
)
_INSERT_QUEUE = insert(outbound_queue)


def message_rows(conn: Connection, stored: Sequence[StoredMessage], at: datetime) -> dict[str, int]:
    """The messages rows for these blobs, inserting the ones not seen before. Two
    transactions inserting the same new blob (two IMAP APPENDs of one message, two
    nodes) do not fail: the second waits for the first, skips its insert and reads the
    row."""
    distinct = {m.blob: m for m in stored}
    found = {r.blob: r.id for r in conn.execute(_FIND_MESSAGES, {"blobs": list(distinct)})}
    for key, m in distinct.items():
        if key in found:
            continue
        insert_new = _INSERT_NEW_MESSAGE[conn.dialect.name == "postgresql"]
        row = conn.execute(
            insert_new,
            {
                "blob": m.blob,
                "size": m.size,
                "subject": m.summary.subject,
                "from_display": m.summary.from_display,
                "message_id_header": m.summary.message_id,
                "sent_date": m.summary.date,
                "has_attachments": m.summary.has_attachments,
                "envelope": m.summary.envelope,
                "structure": m.summary.structure,
                "search_text": m.summary.search_text,
                "created_at": at,
            },
        ).first()
        if row is None:  # committed meanwhile by another transaction
            row = conn.execute(_FIND_MESSAGES, {"blobs": [key]}).one()
        found[row.blob] = row.id
    return found
