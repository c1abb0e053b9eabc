"""FETCH and UID FETCH: message data from the stored analysis and, when a body is asked
for, from the blob, read off the event loop in batches and written as it comes."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
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
_BATCH_BYTES = 1024 * 1024  # blobs read per batch (and per write to the client)
_BATCH_MESSAGES = 128
_INLINE_BYTES = 1024 * 1024  # a batch of small messages is read without a worker thread
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
    needs_blob = any(i.name in _BODY_ITEMS for i in items)
    folder_id = selected.folder_id
    cache = session.server.envelopes

    def read(conn: Connection) -> tuple[list[FetchRow], dict[int, Any]]:
        rows = fetch_rows(
            conn, folder_id, uids, blob=needs_blob, internal_date=wants_date, structure=structure
        )
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
    plan = _Plan(request, items, flags_changed, with_modseq or session.condstore, rendered)
    plan.with_modseq = with_modseq
    seqs = _numbering(selected, rows)
    if not needs_blob:
        out: list[bytes] = []
        for row in rows:
            out.append(plan.render(seqs(row.uid), row, None) or b"")
            if len(out) >= 256:
                session.write_many(out)
                out = []
                await session.drain()
        session.write_many(out)
        return done
    blobs = session.server.blobs
    for batch in _batches(rows):
        if sum(row.size for row in batch) <= _INLINE_BYTES:
            # Small messages are read here: a worker thread would take the GIL back after
            # every file, each time waiting for this loop (measured: 18,000 → 23,000
            # messages/s). A batch blocks the loop for at most ~128 reads.
            raws = _read_blobs(blobs, batch)
            await asyncio.sleep(0)  # let the other sessions in between batches
        else:
            raws = await asyncio.to_thread(_read_blobs, blobs, batch)
        out = []
        for row, raw in zip(batch, raws, strict=True):
            response = plan.render(seqs(row.uid), row, raw)
            if response is None:
                session.write_many(out)
                return Reply("NO", "Unknown content transfer encoding", "UNKNOWN-CTE")
            out.append(response)
        # One write per batch: a transport write is a system call, not worth one each.
        session.write_many(out)
        await session.drain()
    return done


def _numbering(selected: SelectedFolder, rows: Sequence[FetchRow]) -> Callable[[int], int]:
    """Message number by UID: a table when many rows are answered, else a search."""
    if len(rows) < 64:
        return selected.seq
    table = {uid: n for n, uid in enumerate(selected.uids, start=1)}
    return lambda uid: table.get(uid, 0)


def _read_blobs(blobs: BlobStore, rows: Sequence[FetchRow]) -> list[bytes]:
    return [blobs.get(row.blob or "") for row in rows]


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


Renderer = Callable[[FetchRow, bytes | None], bytes | None]


class _Plan:
    """How to answer one FETCH command for each message: a renderer per data item,
    chosen once, with the names of body sections encoded once."""

    def __init__(
        self,
        request: Request,
        items: Sequence[FetchItem],
        flags_changed: set[int],
        condstore: bool,
        envelopes: dict[int, bytes],
    ) -> None:
        self.flags_changed = flags_changed
        self.condstore = condstore
        self.with_modseq = False
        self.envelopes = envelopes
        self._flags: dict[tuple[int, str | None], bytes] = {}
        self.renderers: list[Renderer] = []
        if request.uid:
            self.renderers.append(_uid)
        self.sends_flags = any(item.name == "FLAGS" for item in items)
        for item in items:
            renderer = self._renderer(item, request.uid)
            if renderer is not None:
                self.renderers.append(renderer)

    def _renderer(self, item: FetchItem, uid_command: bool) -> Renderer | None:
        name = item.name
        if name == "UID":
            return None if uid_command else _uid
        if name == "FLAGS":
            return self._flag_item
        if name == "INTERNALDATE":
            return _internal_date
        if name == "RFC822.SIZE":
            return _size
        if name == "MODSEQ":
            return None  # added once, at the end
        if name == "ENVELOPE":
            return self._envelope
        if name in ("BODY", "BODYSTRUCTURE"):
            prefix = name.encode() + b" "
            extensible = name == "BODYSTRUCTURE"
            return lambda row, raw: prefix + body_structure(row.structure, extensible=extensible)
        label = _section_name(item) + b" "
        size_label = _section_name(item, origin=False) + b" "
        return lambda row, raw: _body_item(item, row, raw or b"", label, size_label)

    def _flag_item(self, row: FetchRow, raw: bytes | None) -> bytes:
        key = (row.bits, row.keywords)
        rendered = self._flags.get(key)
        if rendered is None:
            rendered = self._flags[key] = b"FLAGS " + flag_list(row.flags.names())
        return rendered

    def _envelope(self, row: FetchRow, raw: bytes | None) -> bytes:
        return b"ENVELOPE " + self.envelopes[row.message_id]

    def render(self, seq: int, row: FetchRow, raw: bytes | None) -> bytes | None:
        """One ``* n FETCH (...)`` line with its literals; b"" for a message no longer
        in the view, None for an unknown transfer encoding (BINARY)."""
        if not seq:
            return b""
        parts = []
        for renderer in self.renderers:
            part = renderer(row, raw)
            if part is None:
                return None
            parts.append(part)
        if row.uid in self.flags_changed:
            if not self.sends_flags:
                parts.append(self._flag_item(row, raw))
            # CONDSTORE: a FETCH that set \Seen reports the new modseq (RFC 7162 §3.2).
            if self.condstore and not self.with_modseq:
                parts.append(b"MODSEQ (%d)" % row.modseq)
        if self.with_modseq:
            parts.append(b"MODSEQ (%d)" % row.modseq)
        return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(parts))


def _uid(row: FetchRow, raw: bytes | None) -> bytes:
    return b"UID %d" % row.uid


def _size(row: FetchRow, raw: bytes | None) -> bytes:
    return b"RFC822.SIZE %d" % row.size


def _internal_date(row: FetchRow, raw: bytes | None) -> bytes:
    if row.internal_date is None:  # read only when asked for; asked for here
        raise ValueError("INTERNALDATE was not read")
    return b"INTERNALDATE " + date_time(row.internal_date)


def _remember(cache: OrderedDict[int, bytes], message_id: int, rendered: bytes) -> None:
    cache[message_id] = rendered
    if len(cache) > ENVELOPE_CACHE:
        cache.popitem(last=False)


def _body_item(
    item: FetchItem, row: FetchRow, raw: bytes, label: bytes, size_label: bytes
) -> bytes | None:
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
            return size_label + b"%d" % len(data)
        if item.partial is not None:
            data = partial(data, *item.partial)
        return label + _literal(data, binary_literal8(row.structure, part))
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
    return label + b"{%d}\r\n" % len(data) + data
