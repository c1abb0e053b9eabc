"""FETCH and UID FETCH: message data from the stored analysis and, when a body is asked
for, from the blob, read off the event loop in batches and written as it comes."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from govmail.core.mime import header_end
from govmail.imap.proto.model import Fetch, FetchItem, Request
from govmail.imap.proto.render import (
    binary_literal8,
    binary_section,
    body_structure,
    envelope,
    partial,
    section_bytes,
)
from govmail.imap.proto.response import date_time, flag_list
from govmail.imap.selected import InvalidSequence, SelectedFolder
from govmail.imap.session import Reply, Session
from govmail.mailstore.flags import Flags
from govmail.mailstore.messages import FetchRow, FolderGone, envelopes, fetch_rows, mark_seen
from govmail.store.blobs import BlobStore

# Items answered from the blob; the others come from the database row.
_BODY_ITEMS = frozenset(
    {"BODY[]", "BINARY", "BINARY.SIZE", "RFC822", "RFC822.HEADER", "RFC822.TEXT"}
)
_SETS_SEEN = frozenset({"BODY[]", "BINARY", "RFC822", "RFC822.TEXT"})
_BATCH_BYTES = 4 * 1024 * 1024  # blobs read per trip to the worker thread
_BATCH_MESSAGES = 256
ENVELOPE_CACHE = 50_000  # rendered ENVELOPEs kept (message ids are never reused)


def _needs_structure(item: FetchItem) -> bool:
    if item.name in ("BODY", "BODYSTRUCTURE", "BINARY", "BINARY.SIZE"):
        return True
    return (
        item.name == "BODY[]"
        and item.section is not None
        and (bool(item.section.part) or item.section.text not in (None, "HEADER", "TEXT"))
    )


async def cmd_fetch(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, Fetch)
    args = request.args
    selected = session.selected
    assert selected is not None
    try:
        uids = selected.select_uids(args.sequence, by_uid=request.uid)
    except InvalidSequence:
        return Reply("BAD", "Invalid message sequence number")
    if args.changed_since is not None or any(i.name == "MODSEQ" for i in args.items):
        session.enabled.add("CONDSTORE")
    if not uids:
        return Reply("OK", "Fetch completed")
    items = args.items
    structure = any(_needs_structure(i) for i in items)
    wants_envelope = any(i.name == "ENVELOPE" for i in items)
    wants_date = any(i.name == "INTERNALDATE" for i in items)
    folder_id = selected.folder_id
    cache = session.server.envelopes

    def read(conn: Connection) -> tuple[list[FetchRow], dict[int, Any]]:
        rows = fetch_rows(conn, folder_id, uids, internal_date=wants_date, structure=structure)
        if not wants_envelope:
            return rows, {}
        # Rendered envelopes are cached by message: a giấy mời in 500 mailboxes, or a
        # client fetching its headers again, costs no JSON at all.
        return rows, envelopes(conn, {r.message_id for r in rows if r.message_id not in cache})

    rows, stored = await session.read(read)
    rendered: dict[int, bytes] = {}
    if wants_envelope:
        for row in rows:
            cached = cache.get(row.message_id)
            if cached is None and row.message_id not in stored:  # evicted meanwhile
                stored.update(
                    await session.read(lambda conn, i=row.message_id: envelopes(conn, [i]))  # type: ignore[misc]
                )
            if cached is None:
                cached = envelope(stored[row.message_id])
                _remember(cache, row.message_id, cached)
            rendered[row.message_id] = cached
    # Messages another session expunged are still numbered here until the next sync
    # point: answer the rest and say so (RFC 5530), as Dovecot does.
    done = Reply("OK", "Fetch completed", "EXPUNGEISSUED" if len(rows) < len(uids) else None)
    if args.changed_since is not None:
        rows = [r for r in rows if r.modseq > args.changed_since]
    sets_seen = not selected.readonly and any(i.name in _SETS_SEEN and not i.peek for i in items)
    flags_changed: set[int] = set()
    if sets_seen:
        unseen = [r.uid for r in rows if not r.bits & 1]
        if unseen:
            box = selected.mailbox_id
            try:
                result = await session.write_txn(
                    lambda conn: mark_seen(conn, box, folder_id, unseen)
                )
            except FolderGone:
                selected.dirty = True  # deleted meanwhile: the sync after says BYE
                return Reply("NO", "The selected mailbox was deleted", "NONEXISTENT")
            selected.note_flags(result.states)
            new = {s.uid: s for s in result.states}
            rows = [
                r if r.uid not in new else _with_flags(r, new[r.uid].flags, new[r.uid].modseq)
                for r in rows
            ]
            flags_changed = set(new)
            session.server.store.changes.publish([box])
    with_modseq = (
        session.condstore
        and (args.changed_since is not None or any(i.name == "MODSEQ" for i in items))
    ) or any(i.name == "MODSEQ" for i in items)
    needs_blob = any(i.name in _BODY_ITEMS for i in items)
    condstore = session.condstore
    if not needs_blob:
        out: list[bytes] = []
        for row in rows:
            response = _response(
                selected, request, row, None, flags_changed, with_modseq, rendered, condstore
            )
            out.append(response or b"")
            if len(out) >= 256:
                session.write(b"".join(out))
                out.clear()
                await session.drain()
        session.write(b"".join(out))
        return done
    blobs = session.server.blobs
    for batch in _batches(rows):
        raws = await asyncio.to_thread(_read_blobs, blobs, batch)
        out = []
        for row, raw in zip(batch, raws, strict=True):
            response = _response(
                selected, request, row, raw, flags_changed, with_modseq, rendered, condstore
            )
            if response is None:
                session.write_many(out)
                return Reply("NO", "Unknown content transfer encoding", "UNKNOWN-CTE")
            out.append(response)
        # One write per batch: a transport write is a system call, not worth one each.
        session.write_many(out)
        await session.drain()
    return done


def _read_blobs(blobs: BlobStore, rows: Sequence[FetchRow]) -> list[bytes]:
    return [blobs.get(row.blob) for row in rows]


def _batches(rows: Sequence[FetchRow]) -> list[list[FetchRow]]:
    out: list[list[FetchRow]] = []
    current: list[FetchRow] = []
    size = 0
    for row in rows:
        current.append(row)
        size += row.size
        if size >= _BATCH_BYTES or len(current) >= _BATCH_MESSAGES:
            out.append(current)
            current, size = [], 0
    if current:
        out.append(current)
    return out


def _with_flags(row: FetchRow, flags: Flags, modseq: int) -> FetchRow:
    return row._replace(bits=flags.bits, keywords=flags.keywords_text, modseq=modseq)


def _literal(data: bytes, binary: bool = False) -> bytes:
    return (b"~{%d}\r\n" if binary else b"{%d}\r\n") % len(data) + data


def _section_name(item: FetchItem, origin: bool = True) -> bytes:
    section = item.section
    spec = ""
    if section is not None:
        spec = ".".join(str(n) for n in section.part)
        if section.text:
            spec = f"{spec}.{section.text}" if spec else section.text
            if section.fields:
                spec += " (" + " ".join(section.fields) + ")"
    base = "BODY" if item.name == "BODY[]" else item.name
    name = f"{base}[{spec}]"
    if origin and item.partial is not None:
        name += f"<{item.partial[0]}>"
    return name.encode()


def _response(
    selected: SelectedFolder,
    request: Request,
    row: FetchRow,
    raw: bytes | None,
    flags_changed: set[int],
    with_modseq: bool,
    envelopes: dict[int, bytes],
    condstore: bool,
) -> bytes | None:
    """One ``* n FETCH (...)`` line with its literals; None for an unknown encoding."""
    seq = selected.seq(row.uid)
    if not seq:
        return b""
    parts: list[bytes] = []
    if request.uid:
        parts.append(b"UID %d" % row.uid)
    flags_sent = False
    assert isinstance(request.args, Fetch)
    for item in request.args.items:
        name = item.name
        if name == "UID":
            if not request.uid:
                parts.append(b"UID %d" % row.uid)
        elif name == "FLAGS":
            parts.append(b"FLAGS " + flag_list(row.flags.names()))
            flags_sent = True
        elif name == "INTERNALDATE":
            assert row.internal_date is not None
            parts.append(b"INTERNALDATE " + date_time(row.internal_date))
        elif name == "RFC822.SIZE":
            parts.append(b"RFC822.SIZE %d" % row.size)
        elif name == "MODSEQ":
            pass  # added once below
        elif name == "ENVELOPE":
            parts.append(b"ENVELOPE " + envelopes[row.message_id])
        elif name in ("BODY", "BODYSTRUCTURE"):
            parts.append(
                name.encode() + b" " + body_structure(row.structure, extensible=name != "BODY")
            )
        else:
            assert raw is not None
            data = _body_item(item, row, raw)
            if data is None:
                return None
            parts.append(data)
    if row.uid in flags_changed and not flags_sent:
        parts.append(b"FLAGS " + flag_list(row.flags.names()))
    # CONDSTORE: a FETCH that set \Seen reports the new modseq too (RFC 7162 §3.2).
    if with_modseq or (condstore and row.uid in flags_changed):
        parts.append(b"MODSEQ (%d)" % row.modseq)
    return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(parts))


def _remember(cache: OrderedDict[int, bytes], message_id: int, rendered: bytes) -> None:
    cache[message_id] = rendered
    if len(cache) > ENVELOPE_CACHE:
        cache.popitem(last=False)


def _body_item(item: FetchItem, row: FetchRow, raw: bytes) -> bytes | None:
    name = item.name
    if name == "RFC822":
        return b"RFC822 " + _literal(raw)
    if name == "RFC822.HEADER":
        return b"RFC822.HEADER " + _literal(raw[: header_end(raw)])
    if name == "RFC822.TEXT":
        return b"RFC822.TEXT " + _literal(raw[header_end(raw) :])
    section = item.section
    part = section.part if section is not None else ()
    if name in ("BINARY", "BINARY.SIZE"):
        data = binary_section(raw, row.structure, part)
        if data is None:
            return None
        if name == "BINARY.SIZE":
            return _section_name(item) + b" %d" % len(data)
        if item.partial is not None:
            data = partial(data, *item.partial)
        return _section_name(item) + b" " + _literal(data, binary_literal8(row.structure, part))
    # BODY[...]
    if section is None or (not section.part and section.text is None):
        data = raw
    elif not section.part and section.text == "HEADER":
        data = raw[: header_end(raw)]
    elif not section.part and section.text == "TEXT":
        data = raw[header_end(raw) :]
    else:
        data = section_bytes(raw, row.structure, section.part, section.text, section.fields)
    if item.partial is not None:
        data = partial(data, *item.partial)
    return _section_name(item) + b" " + _literal(data)
