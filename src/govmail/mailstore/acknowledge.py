"""R22: an agency mailbox acknowledges receipt ("Xác nhận đã tiếp nhận"): the standard
Vietnamese reply from the agency address, submitted like any official's message, and the
$Acknowledged keyword on the original that makes a second click do nothing more."""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from enum import Enum

from sqlalchemy import Connection, select

from govmail.core.errors import GovmailError
from govmail.core.mime import header_end
from govmail.directory.accounts import Account
from govmail.mailstore.flags import ANSWERED, Flags
from govmail.mailstore.folders import lock_mailboxes
from govmail.mailstore.listing import MessageDetail, find_summary_id
from govmail.mailstore.messages import store_flags
from govmail.mailstore.ratelimit import Overrun, count_recipient, duration
from govmail.mailstore.recipients import is_local_domain
from govmail.mailstore.service import Incoming, MailStore, Receipt
from govmail.store.schema import agencies, folder_messages, mailboxes

ACKNOWLEDGED = "$Acknowledged"  # IMAP keyword; clients show it as a tag
VIETNAM = timezone(timedelta(hours=7), "ICT")
MAX_SUBJECT = 300  # characters of the original subject quoted back
MAX_REFERENCES = 20  # message ids kept in References (RFC 5322 §3.6.4 allows trimming)
MAX_HEADER = 64 * 1024  # bytes of the original's header read for References

# The submission service (policy/service.py's SendingPolicy.receive, or MailStore.receive
# when no policy runs), bound by the edge to "submission" and the client's address.
Submit = Callable[[Incoming], Awaitable[Receipt]]


class AcknowledgeError(GovmailError):
    """The acknowledgement cannot be sent; ``status`` is the HTTP status the web shows."""

    code = "acknowledge_failed"

    def __init__(self, message_vi: str, message_en: str, *, status: int = 400) -> None:
        super().__init__(message_vi, message_en)
        self.status = status


class Outcome(Enum):
    SENT = "sent"
    ALREADY = "already"  # acknowledged before: nothing sent


@dataclass(frozen=True)
class Original:
    """What the acknowledgement answers: the sender to reply to and the thread headers."""

    reply_to: str  # addr-spec
    subject: str
    sent: datetime
    message_id: str | None
    references: tuple[str, ...]


# --- pure parts ---------------------------------------------------------------------------


def _clean(text: str, limit: int) -> str:
    """One line of ``text`` for a header or a sentence: control characters become spaces."""
    flat = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return " ".join(unicodedata.normalize("NFC", flat).split())[:limit]


def _first_address(entries: list[list[str | None]] | None) -> str | None:
    for _name, _adl, mailbox, host in entries or ():
        if mailbox and host:
            return f"{mailbox}@{host}"
    return None


def _message_ids(value: str) -> list[str]:
    """The ``<id>`` tokens of a References/Message-ID value (no regex over user text)."""
    found = []
    for piece in value.replace(">", "> ").split():
        if piece.startswith("<") and piece.endswith(">") and len(piece) <= 250:
            found.append(piece)
    return found


def original_of(detail: MessageDetail, raw: bytes) -> Original | None:
    """The acknowledgement's facts from a stored message (Reply-To, else From); None
    when it names nobody to answer (a bounce, a broken header)."""
    envelope = detail.envelope
    reply_to = _first_address(envelope[4]) or _first_address(envelope[2])
    if reply_to is None or any(c.isspace() or c in '<>",' for c in reply_to):
        return None
    message_id = envelope[9] if isinstance(envelope[9], str) else None
    head = raw[: min(header_end(raw), MAX_HEADER)]
    header = BytesHeaderParser().parsebytes(head, headersonly=True)
    chain = _message_ids(str(header.get("References", "") or ""))
    own = _message_ids(message_id or "")
    if own and own[0] not in chain:
        chain.append(own[0])
    return Original(
        reply_to=reply_to,
        subject=_clean(detail.subject or "", MAX_SUBJECT),
        sent=detail.sent_date or detail.internal_date,
        message_id=own[0] if own else None,
        references=tuple(chain[-MAX_REFERENCES:]),
    )


def acknowledgement_text(agency_name: str, original: Original) -> str:
    """The standard Vietnamese text (an English line below for senders abroad). It says
    "văn bản/thư" and "quý cơ quan/ông/bà" as a printed form does: what the message is and
    who sent it are the reader's to judge, not the classifier's."""
    day = f"{original.sent.astimezone(VIETNAM):%d/%m/%Y}"
    subject = original.subject or "(không có tiêu đề)"
    return (
        f"{agency_name} đã tiếp nhận văn bản/thư của quý cơ quan/ông/bà gửi ngày {day},"
        f" tiêu đề “{subject}”.\n\nTrân trọng.\n{agency_name}\n\n--\n"
        f"Acknowledgement of receipt: {agency_name} has received your message of {day},"
        f" subject “{subject}”.\n"
    )


def acknowledgement_subject(original: Original) -> str:
    return f"Đã tiếp nhận: {original.subject or '(không có tiêu đề)'}"


def build_acknowledgement(
    *, agency_name: str, agency_address: str, original: Original, hostname: str, at: datetime
) -> bytes:
    """The acknowledgement as submitted: From the agency, To the original's sender,
    In-Reply-To/References for the thread, Date and Message-ID of its own (CRLF)."""
    message = EmailMessage(policy=SMTP)
    local, _, domain = agency_address.partition("@")
    message["From"] = Address(display_name=agency_name, username=local, domain=domain)
    message["To"] = original.reply_to
    message["Subject"] = acknowledgement_subject(original)
    message["Date"] = format_datetime(at)
    message["Message-ID"] = make_msgid(domain=hostname)
    if original.message_id:
        message["In-Reply-To"] = original.message_id
    if original.references:
        message["References"] = " ".join(original.references)
    message.set_content(acknowledgement_text(agency_name, original), cte="quoted-printable")
    return message.as_bytes()


# --- the store ----------------------------------------------------------------------------


def agency_of(conn: Connection, mailbox_id: int) -> str | None:
    """The directory name of the agency whose agency mailbox this is; None otherwise."""
    return conn.execute(
        select(agencies.c.name)
        .join(mailboxes, mailboxes.c.agency_id == agencies.c.id)
        .where(mailboxes.c.id == mailbox_id, mailboxes.c.kind == "agency")
    ).scalar()


def _keywords(conn: Connection, folder_id: int, uid: int) -> set[str] | None:
    row = conn.execute(
        select(folder_messages.c.keywords).where(
            folder_messages.c.folder_id == folder_id, folder_messages.c.uid == uid
        )
    ).first()
    if row is None:
        return None
    return {k.lower() for k in (row.keywords or "").split()}


def is_acknowledged(conn: Connection, mailbox_id: int, folder_id: int, uid: int) -> bool | None:
    """Whether the message carries $Acknowledged; None if the mailbox has no such message."""
    if find_summary_id(conn, mailbox_id, folder_id) is None:
        return None
    words = _keywords(conn, folder_id, uid)
    return None if words is None else ACKNOWLEDGED.lower() in words


def claim(conn: Connection, mailbox_id: int, folder_id: int, uid: int) -> bool | None:
    """Set $Acknowledged unless it is set already: True if this call set it (the caller
    sends), False if it was set, None if there is no such message. The mailbox lock
    makes two clicks at once send one acknowledgement."""
    if find_summary_id(conn, mailbox_id, folder_id) is None:
        return None
    lock_mailboxes(conn, [mailbox_id], ())
    words = _keywords(conn, folder_id, uid)
    if words is None:
        return None
    if ACKNOWLEDGED.lower() in words:
        return False
    store_flags(conn, mailbox_id, folder_id, [uid], "+", Flags(0, (ACKNOWLEDGED,)))
    return True


def settle(conn: Connection, mailbox_id: int, folder_id: int, uid: int, *, sent: bool) -> None:
    """After sending: \\Answered on the original (sent), or the claim withdrawn (not)."""
    if sent:
        store_flags(conn, mailbox_id, folder_id, [uid], "+", Flags(ANSWERED))
    else:
        store_flags(conn, mailbox_id, folder_id, [uid], "-", Flags(0, (ACKNOWLEDGED,)))


# --- the use case -------------------------------------------------------------------------


def _overrun_text(over: Overrun) -> tuple[str, str]:
    window_vi, window_en = duration(over.window_s)
    wait_vi, wait_en = duration(over.retry_after_s)
    return (
        f"Tài khoản đã gửi tới {over.limit} người nhận trong {window_vi},"
        f" hãy thử lại sau {wait_vi}.",
        f"Sending limit of {over.limit} recipients per {window_en} reached,"
        f" try again in {wait_en}.",
    )


async def _recipient(store: MailStore, address: str) -> Incoming:
    """An Incoming skeleton addressed to ``address`` as SMTP's RCPT would accept it."""
    local, _, domain = address.rpartition("@")
    if not is_local_domain(store.cfg, domain):
        return Incoming(raw=b"", sender="", local={}, remote=[address])
    found = await store.find_recipient(local)
    if found is None or found.status != "active":
        raise AcknowledgeError(
            f"Hộp thư người gửi <{address}> không còn hoạt động.",
            f"The sender's mailbox <{address}> is not active.",
            status=409,
        )
    return Incoming(
        raw=b"", sender="", local={found.mailbox_id: address}, seen={found.mailbox_id: found}
    )


async def acknowledge(
    store: MailStore,
    submit: Submit,
    *,
    account: Account,
    agency_mailbox_id: int,
    detail: MessageDetail,
    raw: bytes,
    client_ip: str,
    agency_address: str,
) -> Outcome:
    """Send the acknowledgement of ``detail`` (a message of the agency mailbox) once.

    ``account`` is the logged-in person (delegated on the agency: the caller has checked
    the visit). Raises AcknowledgeError (Vietnamese and English text, HTTP status) when
    the message names no sender, the sender's mailbox is gone, the sending limit is
    reached or the submission is refused; the claim is then withdrawn so it can be
    tried again."""
    db = store.db
    box, folder_id, uid = agency_mailbox_id, detail.folder.id, detail.uid
    agency_name = await db.run(lambda c: agency_of(c, box), write=False, brief=True)
    if agency_name is None:
        raise AcknowledgeError(
            "Chỉ hộp thư cơ quan mới xác nhận đã tiếp nhận.",
            "Only an agency mailbox acknowledges receipt.",
            status=404,
        )
    original = original_of(detail, raw)
    if original is None:
        raise AcknowledgeError(
            "Thư không ghi địa chỉ người gửi để trả lời.",
            "The message names no sender to answer.",
        )
    claimed = await db.run(lambda c: claim(c, box, folder_id, uid), write=True)
    if claimed is None:
        raise AcknowledgeError("Không tìm thấy thư này.", "No such message.", status=404)
    if not claimed:
        return Outcome.ALREADY
    sent = False
    try:
        incoming = await _recipient(store, original.reply_to)
        over = await count_recipient(store, account, original.reply_to, client_ip)
        if over is not None:
            raise AcknowledgeError(*_overrun_text(over), status=429)
        at = datetime.now().astimezone()
        raw_reply = build_acknowledgement(
            agency_name=agency_name,
            agency_address=agency_address,
            original=original,
            hostname=store.cfg.hostname,
            at=at,
        )
        receipt = await submit(
            replace(
                incoming,
                raw=raw_reply,
                sender=agency_address,
                account=account,
                # R22: the agency keeps what it sent; notices and limits stay the person's.
                sent_mailbox=box,
                at=at,
            )
        )
        if receipt.refusal is not None:
            raise AcknowledgeError(receipt.refusal.vi, receipt.refusal.en, status=422)
        sent = True
    finally:
        await db.run(lambda c: settle(c, box, folder_id, uid, sent=sent), write=True)
        store.changes.publish([box])
    return Outcome.SENT
