"""What the webmail reads of a mailbox: folders with unread counts, a sorted page of a
folder, search across folders, one message's headers, body and attachments, and the
actions on messages (flag, move, delete, empty Trash) through the services IMAP uses.

Every function takes the mailbox being viewed and looks folders up within it: an id
from a URL that belongs to another mailbox is simply not found.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

from sqlalchemy import Connection, bindparam, case, func, select

from govmail.core.mime import decode_transfer, decode_words
from govmail.mailstore.flags import DELETED, FLAGGED, SEEN, Flags
from govmail.mailstore.folders import DEFAULT_FOLDERS
from govmail.mailstore.messages import (
    copy_messages,
    expunge,
    find_folder,
    quota_usage,
    store_flags,
)
from govmail.mailstore.search import search_folder
from govmail.store.blobs import BlobStore
from govmail.store.database import Database
from govmail.store.schema import documents, folder_messages, folders, messages

PER_PAGE = 50
MAX_PER_PAGE = 200
SORT_KEYS = ("date", "from", "subject", "size")
MAX_SEARCH_WORDS = 8
MAX_SEARCH_RESULTS = 200
# HTML bodies are shown up to this many decoded bytes (sanitising is linear, but a
# 20 MB page would still cost a second and help nobody).
MAX_BODY_BYTES = 2 * 1024 * 1024


# --- folders --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderSummary:
    id: int
    name: str
    special_use: str | None  # sent, drafts, trash, junk; None for INBOX and the user's own
    total: int
    unseen: int

    @property
    def role(self) -> str | None:
        """INBOX's role is "inbox"; the others' their SPECIAL-USE."""
        return "inbox" if self.name == "INBOX" else self.special_use


_FOLDERS = select(folders.c.id, folders.c.name, folders.c.special_use).where(
    folders.c.mailbox_id == bindparam("box")
)
_COUNTS = (
    select(
        folder_messages.c.folder_id,
        func.count(),
        func.coalesce(func.sum(case((folder_messages.c.flags.op("&")(SEEN) == 0, 1), else_=0)), 0),
    )
    .join(folders, folders.c.id == folder_messages.c.folder_id)
    .where(folders.c.mailbox_id == bindparam("box"))
    .group_by(folder_messages.c.folder_id)
)


def folder_summaries(conn: Connection, mailbox_id: int) -> list[FolderSummary]:
    """Every folder of the mailbox with its message and unread counts: INBOX, Sent,
    Drafts, Trash, Junk, then the others by name."""
    counts = {r[0]: (int(r[1]), int(r[2])) for r in conn.execute(_COUNTS, {"box": mailbox_id})}
    order = list(DEFAULT_FOLDERS)
    found = [
        FolderSummary(r.id, r.name, r.special_use, *counts.get(r.id, (0, 0)))
        for r in conn.execute(_FOLDERS, {"box": mailbox_id})
    ]
    return sorted(found, key=lambda f: (order.index(f.name) if f.name in order else 99, f.name))


def folder_by_role(summaries: Sequence[FolderSummary], role: str) -> FolderSummary | None:
    return next((f for f in summaries if f.role == role), None)


# --- a page of a folder ---------------------------------------------------------------------


@dataclass(frozen=True)
class MessageRow:
    """One line of a message list."""

    folder_id: int
    uid: int
    flags: int
    internal_date: datetime
    size: int
    subject: str
    from_display: str
    has_attachments: bool

    @property
    def seen(self) -> bool:
        return bool(self.flags & SEEN)

    @property
    def flagged(self) -> bool:
        return bool(self.flags & FLAGGED)


@dataclass(frozen=True)
class Page:
    folder: FolderSummary
    rows: list[MessageRow]
    total: int
    page: int  # 1-based
    per_page: int
    sort: str
    descending: bool

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


_ROW_COLUMNS = (
    folder_messages.c.folder_id,
    folder_messages.c.uid,
    folder_messages.c.flags,
    folder_messages.c.internal_date,
    folder_messages.c.size,
    messages.c.subject,
    messages.c.from_display,
    messages.c.has_attachments,
)
_SORT_COLUMN = {
    "date": folder_messages.c.internal_date,
    "from": messages.c.from_display,
    "subject": messages.c.subject,
    "size": folder_messages.c.size,
}


def _utc(moment: datetime) -> datetime:
    # SQLite gives back naive values; the store writes UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _row(r: Any) -> MessageRow:
    return MessageRow(
        r.folder_id,
        r.uid,
        r.flags,
        _utc(r.internal_date),
        r.size,
        r.subject,
        r.from_display,
        bool(r.has_attachments),
    )


def find_summary(conn: Connection, mailbox_id: int, folder_id: int) -> FolderSummary | None:
    """One folder of the mailbox with its counts; None if the id is not one of its folders."""
    folder = conn.execute(
        select(folders.c.id, folders.c.name, folders.c.special_use).where(
            folders.c.id == folder_id, folders.c.mailbox_id == mailbox_id
        )
    ).first()
    if folder is None:
        return None
    total, unseen = conn.execute(
        select(
            func.count(),
            func.coalesce(
                func.sum(case((folder_messages.c.flags.op("&")(SEEN) == 0, 1), else_=0)), 0
            ),
        ).where(folder_messages.c.folder_id == folder_id)
    ).one()
    return FolderSummary(folder.id, folder.name, folder.special_use, int(total), int(unseen))


def message_page(
    conn: Connection,
    mailbox_id: int,
    folder_id: int,
    *,
    sort: str = "date",
    descending: bool = True,
    page: int = 1,
    per_page: int = PER_PAGE,
    summary: FolderSummary | None = None,
) -> Page | None:
    """One page of a folder, sorted by ``sort`` (one of SORT_KEYS; UID breaks ties),
    ``page`` clamped to the pages there are. None if the folder is not the mailbox's.
    Reads only the page's rows (ORDER BY … LIMIT/OFFSET over the folder's index).
    ``summary``: the folder's counts when the caller has just read them (folder_summaries
    of this mailbox), to spare counting the folder again."""
    if summary is None or summary.id != folder_id:
        summary = find_summary(conn, mailbox_id, folder_id)
    if summary is None:
        return None
    sort = sort if sort in _SORT_COLUMN else "date"
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    pages = max(1, -(-summary.total // per_page))
    page = min(max(page, 1), pages)
    column = _SORT_COLUMN[sort]
    order = (
        (column.desc(), folder_messages.c.uid.desc())
        if descending
        else (
            column.asc(),
            folder_messages.c.uid.asc(),
        )
    )
    query = select(*_ROW_COLUMNS).where(folder_messages.c.folder_id == folder_id)
    if sort in ("date", "size"):
        # Sort and cut in folder_messages alone; join only the page's rows.
        inner = (
            select(folder_messages.c.id)
            .where(folder_messages.c.folder_id == folder_id)
            .order_by(*order)
            .limit(per_page)
            .offset((page - 1) * per_page)
            .scalar_subquery()
        )
        query = select(*_ROW_COLUMNS).where(folder_messages.c.id.in_(inner))
    query = query.join(messages, messages.c.id == folder_messages.c.message_id).order_by(*order)
    if sort not in ("date", "size"):
        query = query.limit(per_page).offset((page - 1) * per_page)
    rows = [_row(r) for r in conn.execute(query)]
    return Page(summary, rows, summary.total, page, per_page, sort, descending)


# --- search ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Key:
    """A search criterion as mailstore.search takes it (TEXT word, AND of keys)."""

    name: str
    value: Any


@dataclass(frozen=True)
class Found:
    folder: FolderSummary
    row: MessageRow


def search_words(query: str) -> list[str]:
    return [w for w in query.split() if w][:MAX_SEARCH_WORDS]


async def search_mailbox(
    db: Database, blobs: BlobStore, mailbox_id: int, query: str, *, limit: int = MAX_SEARCH_RESULTS
) -> list[Found]:
    """Messages of every folder of the mailbox whose subject, addresses, text or
    attachment names contain all words of ``query``, diacritics-insensitive ("bao cao
    tuan" finds "Báo cáo tuần"); newest first, at most ``limit``."""
    words = search_words(query)
    if not words:
        return []
    key = _Key("AND", tuple(_Key("TEXT", w) for w in words))

    def read_uids(conn: Connection) -> tuple[list[FolderSummary], dict[int, list[int]]]:
        summaries = folder_summaries(conn, mailbox_id)
        uids: dict[int, list[int]] = {f.id: [] for f in summaries}
        for folder_id, uid in conn.execute(
            select(folder_messages.c.folder_id, folder_messages.c.uid)
            .where(folder_messages.c.folder_id.in_(list(uids)))
            .order_by(folder_messages.c.folder_id, folder_messages.c.uid)
        ):
            uids[folder_id].append(uid)
        return summaries, uids

    summaries, uids = await db.run(read_uids, write=False)
    hits: dict[int, list[int]] = {}
    for folder in summaries:
        if uids[folder.id]:
            found = await search_folder(db, blobs, folder.id, uids[folder.id], key)
            if found.uids:
                hits[folder.id] = found.uids

    def read_rows(conn: Connection) -> list[MessageRow]:
        rows: list[MessageRow] = []
        for folder_id, found_uids in hits.items():
            for start in range(0, len(found_uids), 500):
                rows.extend(
                    _row(r)
                    for r in conn.execute(
                        select(*_ROW_COLUMNS)
                        .join(messages, messages.c.id == folder_messages.c.message_id)
                        .where(
                            folder_messages.c.folder_id == folder_id,
                            folder_messages.c.uid.in_(found_uids[start : start + 500]),
                        )
                    )
                )
        return rows

    rows = await db.run(read_rows, write=False) if hits else []
    rows.sort(key=lambda r: (r.internal_date, r.uid), reverse=True)
    by_id = {f.id: f for f in summaries}
    return [Found(by_id[r.folder_id], r) for r in rows[:limit]]


# --- one message ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentLabel:
    """R14/R16 as recorded at delivery: the document type and each PDF signature's result."""

    document_type: str
    document_number: str | None
    signatures: list[dict[str, Any]]  # {"file", "status", "reason", "signer"}


@dataclass(frozen=True)
class MessageDetail:
    folder: FolderSummary
    uid: int
    flags: int
    internal_date: datetime
    size: int
    message_id: int
    blob: str
    subject: str
    envelope: list[Any]
    structure: dict[str, Any]
    sent_date: datetime | None
    document: DocumentLabel | None

    @property
    def flagged(self) -> bool:
        return bool(self.flags & FLAGGED)

    def addresses(self, field_name: str) -> list[str]:
        """An address field as readers see it: ``Name <mailbox@host>`` each."""
        index = {"from": 2, "sender": 3, "reply_to": 4, "to": 5, "cc": 6, "bcc": 7}[field_name]
        return display_addresses(self.envelope[index])


def display_addresses(addresses: list[list[str | None]] | None) -> list[str]:
    out = []
    for name, _adl, mailbox, host in addresses or ():
        if host is None:
            continue  # a group's start or end
        address = f"{mailbox}@{host}"
        if name:
            out.append(unicodedata.normalize("NFC", f"{decode_words(name)} <{address}>"))
        else:
            out.append(address)
    return out


def message_detail(
    conn: Connection, mailbox_id: int, folder_id: int, uid: int
) -> MessageDetail | None:
    """A message of one of the mailbox's folders; None if there is none such."""
    summary = find_summary(conn, mailbox_id, folder_id)
    if summary is None:
        return None
    row = conn.execute(
        select(
            folder_messages.c.uid,
            folder_messages.c.flags,
            folder_messages.c.internal_date,
            folder_messages.c.size,
            messages.c.id,
            messages.c.blob,
            messages.c.subject,
            messages.c.envelope,
            messages.c.structure,
            messages.c.sent_date,
        )
        .join(messages, messages.c.id == folder_messages.c.message_id)
        .where(folder_messages.c.folder_id == folder_id, folder_messages.c.uid == uid)
    ).first()
    if row is None:
        return None
    label = conn.execute(
        select(documents.c.document_type, documents.c.document_number, documents.c.signatures)
        .where(documents.c.message_id == row.id)
        .order_by(documents.c.id.desc())
        .limit(1)
    ).first()
    return MessageDetail(
        folder=summary,
        uid=row.uid,
        flags=row.flags,
        internal_date=_utc(row.internal_date),
        size=row.size,
        message_id=row.id,
        blob=row.blob,
        subject=row.subject,
        envelope=row.envelope,
        structure=row.structure,
        sent_date=_utc(row.sent_date) if row.sent_date is not None else None,
        document=DocumentLabel(label[0], label[1], list(label[2] or []))
        if label is not None
        else None,
    )


# --- a message's parts (pure: bytes and the stored structure in, text out) ------------------


@dataclass(frozen=True)
class Attachment:
    path: str  # IMAP part number: "2", "1.3"
    filename: str
    content_type: str
    size: int  # decoded bytes, estimated from the encoded size


@dataclass(frozen=True)
class Body:
    html: str | None  # the HTML text to sanitise, when the message has an HTML body
    text: str | None  # the plain text, when it has no HTML body
    truncated: bool
    attachments: list[Attachment] = field(default_factory=list)


def _param(params: list[list[str]] | None, name: str) -> str | None:
    return next((v for k, v in params or () if k.lower() == name), None)


def _rfc2231(value: str) -> str:
    pieces = value.split("'", 2)  # charset'language'percent-encoded
    charset, encoded = (pieces[0], pieces[2]) if len(pieces) == 3 else ("utf-8", value)
    return _decode_text(unquote_to_bytes(encoded), charset or "utf-8")


def part_filename(node: dict[str, Any]) -> str:
    """The part's file name (RFC 2231 or RFC 2047 encoded), "" if it has none."""
    disposition = node["disposition"][1] if node.get("disposition") else []
    for params, name in ((disposition, "filename"), (node.get("params"), "name")):
        if (value := _param(params, name + "*")) is not None:
            return _rfc2231(value)
        if (value := _param(params, name)) is not None:
            return decode_words(value)
    return ""


def _decode_text(data: bytes, charset: str) -> str:
    try:
        codec = codecs.lookup(charset.strip().lower() or "utf-8").name
    except LookupError:
        codec = "utf-8"
    if codec == "ascii":
        codec = "utf-8"  # mislabelled 8-bit mail is far more often UTF-8
    return unicodedata.normalize("NFC", data.decode(codec, "replace"))


def _leaves(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(part number, node) of every part that is not a multipart, in order."""
    if "parts" in node:
        for number, child in enumerate(node["parts"], 1):
            yield from _leaves(child, f"{path}.{number}" if path else str(number))
    else:
        yield path or "1", node


def _is_attachment(node: dict[str, Any]) -> bool:
    disposition = node["disposition"][0] if node.get("disposition") else ""
    if disposition == "attachment" or node["type"] == "message":
        return True
    return not (node["type"] == "text" and node["subtype"] in ("plain", "html"))


def _body_part(node: dict[str, Any]) -> dict[str, Any] | None:
    """The text the reader sees: HTML when an alternative offers it, else the first
    inline text part."""
    if "parts" in node:
        parts = node["parts"]
        if node["subtype"] == "alternative":
            found = [p for child in parts if (p := _body_part(child)) is not None]
            html = [p for p in found if p["subtype"] == "html"]
            chosen = html or found
            return chosen[0] if chosen else None
        for child in parts:
            found_part = _body_part(child)
            if found_part is not None:
                return found_part
        return None
    return None if _is_attachment(node) else node


def message_body(raw: bytes, structure: dict[str, Any]) -> Body:
    """The body to show and the attachments to list, from the stored structure."""
    body = _body_part(structure)
    html: str | None = None
    text: str | None = None
    truncated = False
    if body is not None:
        start, end = body["body_offset"], body["end_offset"]
        limit = MAX_BODY_BYTES * 2  # encoded bytes, base64 is 4/3 of the decoded
        truncated = end - start > limit
        data = decode_transfer(raw[start : min(end, start + limit)], body["encoding"])
        decoded = _decode_text(data[:MAX_BODY_BYTES], _param(body["params"], "charset") or "")
        if body["subtype"] == "html":
            html = decoded
        else:
            text = decoded
    attachments = [
        Attachment(
            path, part_filename(node) or _default_name(node, path), _mime(node), _decoded_size(node)
        )
        for path, node in _leaves(structure, "")
        if node is not body and (_is_attachment(node) or part_filename(node))
    ]
    return Body(html, text, truncated, attachments)


def _mime(node: dict[str, Any]) -> str:
    return f"{node['type']}/{node['subtype']}"


def _default_name(node: dict[str, Any], path: str) -> str:
    if node["type"] == "message":
        return f"thu-dinh-kem-{path}.eml"
    return f"phan-{path}.{node['subtype'] if node['subtype'].isalnum() else 'bin'}"


def _decoded_size(node: dict[str, Any]) -> int:
    size = int(node["end_offset"] - node["body_offset"])
    return size * 3 // 4 if node["encoding"] == "base64" else size


def attachment_part(
    raw: bytes, structure: dict[str, Any], path: str
) -> tuple[Attachment, bytes] | None:
    """The attachment with part number ``path`` and its decoded bytes; None if none."""
    for number, node in _leaves(structure, ""):
        if number == path:
            data = decode_transfer(raw[node["body_offset"] : node["end_offset"]], node["encoding"])
            name = part_filename(node) or _default_name(node, path)
            return Attachment(path, name, _mime(node), len(data)), data
    return None


# --- actions (each one transaction, through the services IMAP uses) -------------------------


def set_flag(
    conn: Connection, mailbox_id: int, folder_id: int, uids: Sequence[int], flag: int, on: bool
) -> bool:
    """Add or remove \\Seen or \\Flagged; False if the folder is not the mailbox's."""
    if find_summary_id(conn, mailbox_id, folder_id) is None:
        return False
    store_flags(conn, mailbox_id, folder_id, uids, "+" if on else "-", Flags(flag))
    return True


def find_summary_id(conn: Connection, mailbox_id: int, folder_id: int) -> int | None:
    return conn.execute(
        select(folders.c.id).where(folders.c.id == folder_id, folders.c.mailbox_id == mailbox_id)
    ).scalar()


def move(
    conn: Connection, mailbox_id: int, folder_id: int, uids: Sequence[int], dest_folder_id: int
) -> bool:
    """Move messages to another folder of the same mailbox; False if either folder is not
    the mailbox's."""
    if (
        find_summary_id(conn, mailbox_id, folder_id) is None
        or find_summary_id(conn, mailbox_id, dest_folder_id) is None
    ):
        return False
    if folder_id != dest_folder_id:
        copy_messages(conn, mailbox_id, folder_id, uids, mailbox_id, dest_folder_id, move=True)
    return True


def _role_folder(conn: Connection, mailbox_id: int, role: str) -> int | None:
    name = {"trash": "Trash", "junk": "Junk"}[role]
    row = conn.execute(
        select(folders.c.id).where(
            folders.c.mailbox_id == mailbox_id,
            folders.c.special_use == role,
        )
    ).scalar()
    if row is not None:
        return int(row)
    found = find_folder(conn, mailbox_id, name)
    return found.id if found is not None else None


def delete_messages(conn: Connection, mailbox_id: int, folder_id: int, uids: Sequence[int]) -> bool:
    """Delete: into Trash, or for good when already in Trash (expunged, quota freed)."""
    trash = _role_folder(conn, mailbox_id, "trash")
    if find_summary_id(conn, mailbox_id, folder_id) is None:
        return False
    if trash is None or trash == folder_id:
        store_flags(conn, mailbox_id, folder_id, uids, "+", Flags(DELETED))
        expunge(conn, mailbox_id, folder_id, uids)
        return True
    return move(conn, mailbox_id, folder_id, uids, trash)


def mark_spam(conn: Connection, mailbox_id: int, folder_id: int, uids: Sequence[int]) -> bool:
    """Move messages to Junk."""
    junk = _role_folder(conn, mailbox_id, "junk")
    if junk is None:
        return False
    return move(conn, mailbox_id, folder_id, uids, junk)


def empty_folder(conn: Connection, mailbox_id: int, folder_id: int) -> int:
    """Remove every message of the folder for good (Trash, Junk); returns how many."""
    uids = list(
        conn.execute(
            select(folder_messages.c.uid).where(folder_messages.c.folder_id == folder_id)
        ).scalars()
    )
    if not uids:
        return 0
    store_flags(conn, mailbox_id, folder_id, uids, "+", Flags(DELETED))
    return len(expunge(conn, mailbox_id, folder_id, uids))


def usage(conn: Connection, mailbox_id: int) -> tuple[int, int]:
    """(used bytes, quota bytes) for the quota bar (R17)."""
    return quota_usage(conn, mailbox_id)
