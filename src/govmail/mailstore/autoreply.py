"""The vacation auto-reply: whether a delivered message deserves one (RFC 3834, pure), and
the responder that answers after the delivery has committed, once per sender per 7 days."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP
from email.policy import default as default_policy
from email.utils import format_datetime, getaddresses
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select, update

from govmail.mailstore.delivery import Delivery, Outcome
from govmail.mailstore.preferences import Vacation, today_in_vietnam, vacationing
from govmail.mailstore.recipients import is_local_domain
from govmail.store.schema import mailbox_preferences, vacation_replies

if TYPE_CHECKING:
    from govmail.mailstore.service import Incoming, MailStore

log = logging.getLogger(__name__)

INTERVAL = timedelta(days=7)  # one reply per sender per week (RFC 3834 §2 suggests 7 days)
CACHE_S = 30.0  # how long the set of mailboxes on vacation is trusted (other nodes' saves)
MAX_HEADER_BYTES = 256 * 1024  # headers read from a message; the rest is never parsed
DEFAULT_SUBJECT = "Trả lời tự động: "
# Senders that are programs, not people (RFC 3834 §2: never answer them).
ROBOTS = frozenset(
    {"mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply"}
)
BULK = frozenset({"bulk", "list", "junk"})
LIST_HEADERS = frozenset({"list-id", "list-unsubscribe"})


def refusal(sender: str, headers: Sequence[tuple[str, str]], own: Collection[str]) -> str | None:
    """Why a message from envelope ``sender`` with ``headers`` must not get an automatic
    reply from the mailbox reached as any of ``own`` (lower-case addresses), or None when
    it may. The rules of RFC 3834 §2 plus the usual robot and list signs."""
    address = sender.strip().lower()
    if not address:
        return "null sender"
    local = address.rpartition("@")[0]
    if local in ROBOTS or local.startswith("owner-") or local.endswith("-request"):
        return "robot sender"
    if address in own:
        return "sent by the mailbox itself"
    recipients: list[str] = []
    for name, value in headers:
        key = name.strip().lower()
        if key == "auto-submitted":
            # The value may carry parameters or a comment: "auto-generated; owner=..."
            keyword = value.split(";", 1)[0].split("(", 1)[0].strip().lower()
            if keyword != "no":
                return "auto-submitted"
        elif key == "precedence" and value.strip().lower() in BULK:
            return "bulk or list precedence"
        elif key in LIST_HEADERS:
            return "mailing list"
        elif key in ("to", "cc"):
            recipients.append(str(value))
    named = {addr.strip().lower() for _, addr in getaddresses(recipients)}
    if not named & set(own):
        return "mailbox not in To or Cc"
    return None


def reply_message(
    *,
    mailbox_address: str,
    sender: str,
    original_subject: str,
    message_id: str,
    references: str,
    vacation: Vacation,
    hostname: str,
    at: datetime,
) -> bytes:
    """The auto-reply to ``sender`` (RFC 3834 §3): From the mailbox, threaded on the
    original, marked ``Auto-Submitted: auto-replied``."""
    subject = vacation.subject or DEFAULT_SUBJECT + " ".join(original_subject.split())[:200]
    message = EmailMessage(policy=SMTP)
    message["From"] = mailbox_address
    message["To"] = sender
    message["Subject"] = subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = f"<{uuid.uuid4().hex}@{hostname}>"
    message["Auto-Submitted"] = "auto-replied"
    if message_id:
        message["In-Reply-To"] = message_id
        message["References"] = " ".join([*references.split()[-10:], message_id])
    message.set_content(vacation.text + "\n", charset="utf-8")
    return message.as_bytes()


def _header_block(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES)
    return raw[: end + 4] if end >= 0 else raw[:MAX_HEADER_BYTES]


def _one_line(value: object) -> str:
    return " ".join(str(value or "").split())


class VacationResponder:
    """Answers mail delivered to mailboxes on vacation. ``after_delivery`` is called by the
    store once the delivery has committed; it never raises and never waits: the answer
    runs as a task, every error of which is logged."""

    def __init__(self, store: MailStore) -> None:
        self.store = store
        self._on_vacation: frozenset[int] = frozenset()
        self._loaded_at = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait (at most ``timeout`` s) for the replies being written: at shutdown."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    def forget(self) -> None:
        """A setting changed in this process: reload the mailboxes on vacation next time."""
        self._loaded_at = float("-inf")

    def after_delivery(self, incoming: Incoming, outcome: Outcome) -> None:
        """Schedule the auto-replies ``incoming`` earns (INBOX deliveries only)."""
        try:
            if incoming.junk or not incoming.sender or not outcome.delivered:
                return
            fresh = time.monotonic() - self._loaded_at < CACHE_S
            if fresh and self._on_vacation.isdisjoint(outcome.delivered):
                return  # the common case: a few set operations, no query
            task = asyncio.get_running_loop().create_task(
                self._answer(incoming, list(outcome.delivered))
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        except Exception:
            log.exception("vacation responder could not be scheduled")

    async def _answer(self, incoming: Incoming, boxes: list[int]) -> None:
        try:
            await self._reply(incoming, boxes)
        except Exception:
            log.exception("vacation responder failed for a message from <%s>", incoming.sender)

    async def _reply(self, incoming: Incoming, boxes: list[int]) -> None:
        store = self.store
        if time.monotonic() - self._loaded_at >= CACHE_S:
            enabled = await store.db.run(_enabled_mailboxes, write=False)
            self._on_vacation, self._loaded_at = frozenset(enabled), time.monotonic()
        boxes = [b for b in boxes if b in self._on_vacation]
        if not boxes:
            return
        headers = BytesHeaderParser(policy=default_policy).parsebytes(_header_block(incoming.raw))
        sender = incoming.sender.strip()
        items = [(k, str(v)) for k, v in headers.items()]
        today = today_in_vietnam()
        now = datetime.now(UTC)

        def claim(conn: Connection) -> list[tuple[int, Vacation]]:
            """The mailboxes that answer now, recorded as having answered ``sender``."""
            chosen = []
            for box, vacation in vacationing(conn, boxes).items():
                own = {incoming.local[box].lower()}
                if not vacation.active_on(today) or refusal(sender, items, own) is not None:
                    continue
                if _record_reply(conn, box, sender.lower(), now):
                    chosen.append((box, vacation))
            return chosen

        for box, vacation in await store.db.run(claim, write=True):
            raw = reply_message(
                mailbox_address=incoming.local[box],
                sender=sender,
                original_subject=_one_line(headers.get("subject")),
                message_id=_one_line(headers.get("message-id")),
                references=_one_line(headers.get("references")),
                vacation=vacation,
                hostname=store.cfg.hostname,
                at=now.astimezone(),
            )
            delivery = await self._delivery(sender, raw)
            if delivery is not None:
                await store.commits.deliver(delivery)
                log.info("vacation reply from %s to <%s>", incoming.local[box], sender)

    async def _delivery(self, to: str, raw: bytes) -> Delivery | None:
        """The reply as a delivery with the null sender (it cannot loop): a local
        recipient's INBOX, or the outbound queue."""
        store = self.store
        local, _, domain = to.rpartition("@")
        inbox: list[int] = []
        if is_local_domain(store.cfg, domain):
            box = await store.find_recipient(local)
            if box is None or box.status != "active":
                return None
            inbox.append(box.mailbox_id)
        stored = await store.store(b"Return-Path: <>\r\n" + raw)
        if inbox:
            return Delivery(message=stored, sender="", inbox=inbox)
        return Delivery(message=stored, sender="", outbound=[to])


def _enabled_mailboxes(conn: Connection) -> list[int]:
    c = mailbox_preferences.c
    return list(conn.scalars(select(c.mailbox_id).where(c.vacation_enabled.is_(True))))


def _record_reply(conn: Connection, box: int, sender: str, now: datetime) -> bool:
    """Note that ``box`` answers ``sender`` now; False if it did within ``INTERVAL``."""
    c = vacation_replies.c
    last = conn.scalar(select(c.replied_at).where(c.mailbox_id == box, c.sender == sender))
    if last is not None:
        if last.tzinfo is None:  # SQLite gives back naive UTC
            last = last.replace(tzinfo=UTC)
        if now - last < INTERVAL:
            return False
        conn.execute(
            update(vacation_replies)
            .where(c.mailbox_id == box, c.sender == sender)
            .values(replied_at=now)
        )
        return True
    conn.execute(vacation_replies.insert().values(mailbox_id=box, sender=sender, replied_at=now))
    return True
