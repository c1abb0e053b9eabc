"""Writing mail in the webmail: the message built from the compose form, the form prepared
for a reply, a forward or a draft being resumed, and drafts filed in the Drafts folder."""

from __future__ import annotations

import html
import mimetypes
import re
import unicodedata
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, parseaddr

import nh3
from sqlalchemy import Connection, select

from govmail.core.errors import GovmailError
from govmail.core.mime import decode_words
from govmail.mailstore.delivery import StoredMessage
from govmail.mailstore.flags import DELETED, DRAFT, SEEN, Flags
from govmail.mailstore.folders import ensure_default_folders
from govmail.mailstore.listing import Body, MessageDetail
from govmail.mailstore.messages import append_message, expunge, store_flags
from govmail.store.schema import folders

MAX_FIELD = 20_000  # characters of one address field
MAX_SUBJECT = 998  # RFC 5322's line limit
MAX_REFERENCES = 50  # message ids kept in References (the oldest and the newest)
# A msg-id as clients write it: no nested quantifier, bounded.
_MSG_ID = re.compile(r"<[^<>\s]{1,250}>")
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|tl|tr|aw|sv|fw|fwd|chuyển tiếp)\s*:\s*)+", re.I)


class ComposeError(GovmailError):
    """The form cannot be turned into a message (a bad address, a missing recipient)."""

    code = "compose"


@dataclass(frozen=True)
class Upload:
    """One attached file: its name as the user chose it and its bytes."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Draft:
    """What the compose form holds (also a resumed draft, a reply or a forward)."""

    to: str = ""
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    in_reply_to: str = ""
    references: str = ""
    attachments: tuple[Upload, ...] = field(default=(), repr=False)


# --- addresses --------------------------------------------------------------------------------


def parse_recipients(text: str) -> list[str]:
    """The addresses of one field ("Tên <a@b>, c@d; e@f"), lower-cased, in order, without
    repeats. Raises ComposeError naming the first entry that is not an address."""
    if len(text) > MAX_FIELD:
        raise ComposeError("Danh sách người nhận quá dài.", "Recipient list too long.")
    found: list[str] = []
    entries = [e.strip() for e in text.replace(";", ",").replace("\n", ",").split(",")]
    for entry in entries:
        if not entry:
            continue
        pairs = getaddresses([entry])
        address = pairs[0][1] if len(pairs) == 1 else ""
        local, at, domain = address.rpartition("@")
        if not (at and local and "." in domain) or any(c in address for c in ' <>,;"()'):
            raise ComposeError(
                f"“{entry[:80]}” không phải là địa chỉ thư hợp lệ (dạng ten@ten-mien).",
                f"“{entry[:80]}” is not a valid e-mail address.",
            )
        address = address.lower()
        if address not in found:
            found.append(address)
    return found


def _header_text(value: str, limit: int) -> str:
    """A single-line header value: NFC, no control characters, bounded."""
    flat = " ".join(value.replace("\r", " ").replace("\n", " ").split())
    return unicodedata.normalize("NFC", flat)[:limit]


def message_ids(text: str) -> list[str]:
    """The msg-ids in a References / In-Reply-To value (anything else dropped)."""
    return _MSG_ID.findall(text[:20_000])


def _address_header(text: str) -> list[Address]:
    out = []
    for name, address in getaddresses([text.replace(";", ",")]):
        local, _, domain = address.rpartition("@")
        if local and domain:
            out.append(Address(_header_text(name, 200), local, domain))
    return out


# --- building the message ---------------------------------------------------------------------


def build_message(
    draft: Draft, *, sender: str, hostname: str, at: datetime, keep_bcc: bool = False
) -> bytes:
    """The RFC 5322 message (UTF-8, CRLF) for ``draft`` from ``sender``: Date, a new
    Message-ID, threading headers, the text body and the attachments. Bcc appears only
    with ``keep_bcc`` (a draft): the sent message never shows it."""
    message = EmailMessage(policy=SMTP)
    local, _, domain = sender.rpartition("@")
    message["From"] = Address(addr_spec=f"{local}@{domain}")
    for header, value in (("To", draft.to), ("Cc", draft.cc)) + (
        (("Bcc", draft.bcc),) if keep_bcc else ()
    ):
        addresses = _address_header(value)
        if addresses:
            message[header] = addresses
    message["Subject"] = _header_text(draft.subject, MAX_SUBJECT)
    message["Date"] = format_datetime(at)
    message["Message-ID"] = f"<{uuid.uuid4().hex}@{hostname}>"
    replied = message_ids(draft.in_reply_to)[:1]
    if replied:
        message["In-Reply-To"] = replied[0]
    references = message_ids(draft.references)
    if references:
        kept = references[:1] + references[1:][-(MAX_REFERENCES - 1) :]
        message["References"] = " ".join(kept)
    message["MIME-Version"] = "1.0"
    body = unicodedata.normalize("NFC", draft.body.replace("\r\n", "\n"))
    message.set_content(body, charset="utf-8")
    for upload in draft.attachments:
        name = clean_filename(upload.filename)
        guessed = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
        maintype, _, subtype = guessed.partition("/")
        if maintype == "text":  # sent as bytes: its charset is the author's, not ours
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(upload.data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()


def clean_filename(name: str) -> str:
    """A file name as a browser sent it, without any folder part or control character."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(c for c in base if c.isprintable() and c not in '"')
    return unicodedata.normalize("NFC", kept).strip()[:200] or "tep-dinh-kem"


def web_trace(*, client_ip: str, hostname: str, login: str, at: datetime) -> bytes:
    """The Received field of a message sent from the webmail (RFC 5321 §4.4)."""
    literal = f"IPv6:{client_ip}" if ":" in client_ip else client_ip
    safe_login = "".join(c for c in login if c.isprintable() and c not in "()\r\n")[:320]
    return (
        f"Received: from webmail (unknown [{literal}])\r\n"
        f"\tby {hostname} (govmail) with HTTPS (authenticated as {safe_login});\r\n"
        f"\t{format_datetime(at)}\r\n"
    ).encode("utf-8", "surrogateescape")


# --- replies, forwards, resumed drafts (pure) -------------------------------------------------


def body_text(body: Body) -> str:
    """The readable text of a message body: its plain text, or its HTML without tags."""
    if body.text is not None:
        return body.text
    if body.html is None:
        return ""
    bare = nh3.clean(
        re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>|</li>", "\n", body.html),
        tags=set(),
        clean_content_tags={"script", "style", "title", "head"},
    )
    lines = (" ".join(line.split()) for line in html.unescape(bare).splitlines())
    return "\n".join(lines).strip()


def _unique(entries: list[str], seen: set[str]) -> list[str]:
    """``entries`` whose address is not in ``seen`` yet (``seen`` grows)."""
    out = []
    for entry in entries:
        key = parseaddr(entry)[1].lower()
        if key and key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def _prefixed(prefix: str, subject: str) -> str:
    return f"{prefix} {_REPLY_PREFIX.sub('', subject).strip()}".strip()


def _header(message: MessageDetail, name: str) -> list[str]:
    return message.addresses(name)


def reply_draft(
    original: MessageDetail,
    text: str,
    header_ids: tuple[str, str, str],
    *,
    own: frozenset[str],
    everyone: bool,
) -> Draft:
    """The form for a reply to ``original`` (its body ``text``; ``header_ids`` its
    Message-ID, In-Reply-To and References): to its Reply-To or From, with ``everyone``
    also its To and Cc except ``own`` addresses; "Re: " subject, quoted text, threading."""
    message_id, _in_reply_to, references = header_ids
    to = _header(original, "reply_to") or _header(original, "from")
    cc: list[str] = []
    if everyone:
        cc = _header(original, "to") + _header(original, "cc")

    seen = set(own)
    kept_to = _unique(to, seen)
    kept_cc = _unique(cc, seen)
    if not kept_to and to:  # replying to one's own message: to its recipients
        kept_to = _unique(_header(original, "to"), set(own)) or to
    sender = ", ".join(_header(original, "from")) or "người gửi"
    when = format_datetime(original.sent_date or original.internal_date)
    quoted = "\n".join(f"> {line}" if line else ">" for line in text.splitlines())
    chain = message_ids(references) + message_ids(message_id)
    return Draft(
        to=", ".join(kept_to),
        cc=", ".join(kept_cc),
        subject=_prefixed("Re:", original.subject),
        body=f"\n\nVào {when}, {sender} đã viết:\n{quoted}\n",
        in_reply_to=" ".join(message_ids(message_id)[:1]),
        references=" ".join(chain),
    )


def forward_draft(original: MessageDetail, text: str) -> Draft:
    """The form for forwarding ``original``: "Fwd: " subject and its text below a header
    block (its attachments are kept by the caller)."""
    lines = [
        "",
        "",
        "---------- Thư chuyển tiếp / Forwarded message ----------",
        f"Từ: {', '.join(_header(original, 'from'))}",
        f"Ngày: {format_datetime(original.sent_date or original.internal_date)}",
        f"Tiêu đề: {original.subject}",
        f"Đến: {', '.join(_header(original, 'to'))}",
    ]
    if _header(original, "cc"):
        lines.append(f"Đồng gửi: {', '.join(_header(original, 'cc'))}")
    return Draft(subject=_prefixed("Fwd:", original.subject), body="\n".join([*lines, "", text]))


def resumed_draft(original: MessageDetail, text: str, headers: dict[str, str]) -> Draft:
    """The form holding a draft saved earlier (``headers``: its raw To, Cc, Bcc,
    In-Reply-To and References)."""
    return Draft(
        to=", ".join(_header(original, "to")),
        cc=", ".join(_header(original, "cc")),
        bcc=decode_words(headers.get("bcc", "")),
        subject=original.subject,
        body=text,
        in_reply_to=headers.get("in-reply-to", ""),
        references=headers.get("references", ""),
    )


def threading_headers(raw: bytes) -> dict[str, str]:
    """Message-ID, In-Reply-To, References and Bcc of a stored message (lower-case
    names), read from its header block only."""
    end = raw.find(b"\r\n\r\n")
    block = raw[: end if end >= 0 else min(len(raw), 65_536)][:65_536]
    text = block.decode("utf-8", "replace").replace("\r\n\t", " ").replace("\r\n ", " ")
    wanted = {"message-id", "in-reply-to", "references", "bcc"}
    found: dict[str, str] = {}
    for line in text.split("\r\n"):
        name, colon, value = line.partition(":")
        key = name.strip().lower()
        if colon and key in wanted and key not in found:
            found[key] = value.strip()
    return found


def with_attachments(draft: Draft, uploads: list[Upload]) -> Draft:
    return replace(draft, attachments=(*draft.attachments, *uploads))


# --- drafts (one transaction each) ------------------------------------------------------------


def drafts_folder(conn: Connection, mailbox_id: int) -> int | None:
    """The id of the mailbox's Drafts folder (its SPECIAL-USE, else the default name)."""
    found = conn.execute(
        select(folders.c.id)
        .where(folders.c.mailbox_id == mailbox_id, folders.c.special_use == "drafts")
        .limit(1)
    ).scalar()
    if found is None:
        found = conn.execute(
            select(folders.c.id).where(
                folders.c.mailbox_id == mailbox_id, folders.c.name == "Drafts"
            )
        ).scalar()
    return None if found is None else int(found)


def file_draft(
    conn: Connection, mailbox_id: int, stored: StoredMessage, replaces: int | None
) -> int | None:
    """File ``stored`` (durable already) in Drafts with \\Draft \\Seen, removing the draft
    ``replaces`` (its UID) for good; the new UID, or None without a Drafts folder.
    Raises OverQuota when the mailbox is full."""
    folder = drafts_folder(conn, mailbox_id)
    if folder is None:  # a mailbox never opened over IMAP: its default folders now
        ensure_default_folders(conn, [mailbox_id])
        folder = drafts_folder(conn, mailbox_id)
    if folder is None:
        return None
    if replaces is not None:
        discard_draft(conn, mailbox_id, replaces, folder)
    return append_message(conn, mailbox_id, folder, stored, Flags(DRAFT | SEEN), None)[1]


def discard_draft(conn: Connection, mailbox_id: int, uid: int, folder: int | None = None) -> None:
    """Remove the draft with ``uid`` from Drafts for good (once sent or saved anew)."""
    folder = folder if folder is not None else drafts_folder(conn, mailbox_id)
    if folder is None:
        return
    store_flags(conn, mailbox_id, folder, [uid], "+", Flags(DELETED))
    expunge(conn, mailbox_id, folder, [uid])
