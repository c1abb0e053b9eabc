"""Commands on the selected folder's messages: IDLE, CHECK, CLOSE, UNSELECT, EXPUNGE,
SEARCH, STORE, COPY and MOVE (FETCH has its own module)."""

from __future__ import annotations

import contextlib

from govmail.imap.proto.model import CopyMove, Request, Search, SequenceSet, Store
from govmail.imap.proto.response import flag_list, sequence_set
from govmail.imap.selected import InvalidSequence, SelectedFolder
from govmail.imap.session import Reply, Session, State
from govmail.mailstore.flags import Flags
from govmail.mailstore.folders import DEFAULT_FOLDERS, ensure_default_folders
from govmail.mailstore.messages import (
    FolderGone,
    OverQuota,
    copy_messages,
    expunge,
    find_folder,
    store_flags,
)
from govmail.mailstore.search import search_folder

OK = Reply()
BAD_SEQUENCE = Reply("BAD", "Invalid message sequence number")
_CHARSETS = ("US-ASCII", "UTF-8")


def _selected(session: Session) -> SelectedFolder:
    assert session.selected is not None
    return session.selected


def _gone(session: Session) -> Reply:
    selected = _selected(session)
    selected.dirty = True  # the sync after the command says BYE
    return Reply(
        "NO",
        session.text("Thư mục đã bị xóa.", "The selected mailbox was deleted."),
        "NONEXISTENT",
    )


def _read_only(session: Session) -> Reply:
    return Reply(
        "NO",
        session.text("Thư mục đang mở ở chế độ chỉ đọc.", "Mailbox is read-only."),
        "READ-ONLY",
    )


async def cmd_idle(session: Session, request: Request) -> Reply | None:
    """Wait for DONE; meanwhile changes to the selected folder are pushed as they commit
    (the session's change listener starts a push)."""
    session.idle_tag = request.tag
    session.receiver.line_mode = True
    session.write(b"+ idling\r\n")
    return None


async def idle_done(session: Session, data: bytes) -> None:
    tag = session.idle_tag
    assert tag is not None
    session.idle_tag = None
    session.receiver.line_mode = False
    if data.strip().upper() != b"DONE":
        await session.reply(tag, Reply("BAD", "Expected DONE"), counted=True)
        return
    if session.selected is not None and session.selected.dirty:
        await session.sync(allow_expunge=True)
    await session.reply(tag, Reply("OK", "Idle completed"))


async def cmd_check(session: Session, request: Request) -> Reply:
    return OK


async def cmd_close(session: Session, request: Request) -> Reply:
    selected = _selected(session)
    if not selected.readonly:
        # CLOSE expunges silently (RFC 9051 §6.4.1); a folder deleted meanwhile has
        # nothing left to expunge.
        with contextlib.suppress(FolderGone):
            await _expunge(session, selected, None)
    _deselect(session)
    return Reply("OK", "Close completed")


async def cmd_unselect(session: Session, request: Request) -> Reply:
    _deselect(session)
    return Reply("OK", "Unselect completed")


def _deselect(session: Session) -> None:
    session.unwatch_all()
    session.selected = None
    session.state = State.AUTHENTICATED


async def _expunge(session: Session, selected: SelectedFolder, uids: list[int] | None) -> list[int]:
    box, folder = selected.mailbox_id, selected.folder_id
    removed = await session.write_txn(lambda conn: expunge(conn, box, folder, uids))
    if removed:
        session.server.store.changes.publish([box])
    return removed


async def cmd_expunge(session: Session, request: Request) -> Reply:
    selected = _selected(session)
    if selected.readonly:
        return _read_only(session)
    uids = None
    if request.uid:
        assert isinstance(request.args, SequenceSet)
        uids = selected.select_uids(request.args, by_uid=True)
        if not uids:
            return Reply("OK", "Expunge completed")
    try:
        removed = await _expunge(session, selected, uids)
    except FolderGone:
        return _gone(session)
    session.write(b"".join(selected.remove(removed)))
    return Reply("OK", "Expunge completed")


async def cmd_search(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, Search)
    args = request.args
    if args.charset is not None and args.charset not in _CHARSETS:
        return Reply("NO", "Unsupported charset", "BADCHARSET (US-ASCII UTF-8)")
    selected = _selected(session)
    uids = list(selected.uids)
    server = session.server
    try:
        result = await search_folder(server.db, server.blobs, selected.folder_id, uids, args.key)
    except InvalidSequence:
        return BAD_SEQUENCE
    numbers = result.uids if request.uid else [selected.seq(u) for u in result.uids]
    numbers = [n for n in numbers if n]
    modseq = b" (MODSEQ %d)" % result.highest_modseq if result.highest_modseq else b""
    if args.result_options is None and not session.rev2:  # IMAP4rev2 answers ESEARCH only
        session.write(
            b"* SEARCH"
            + b"".join(b" %d" % n for n in numbers)
            + (modseq if numbers else b"")
            + b"\r\n"
        )
        return Reply("OK", "Search completed")
    session.write(_esearch(request, args.result_options or (), numbers, result.highest_modseq))
    return Reply("OK", "Search completed")


def _esearch(
    request: Request, options: tuple[str, ...], numbers: list[int], modseq: int | None
) -> bytes:
    """An ESEARCH response (RFC 4731): MIN, MAX, COUNT, ALL as asked (RETURN () = ALL)."""
    wanted = options or ("ALL",)
    parts = [b'* ESEARCH (TAG "%s")' % request.tag.encode()]
    if request.uid:
        parts.append(b"UID")
    if numbers:
        if "MIN" in wanted:
            parts.append(b"MIN %d" % numbers[0])
        if "MAX" in wanted:
            parts.append(b"MAX %d" % numbers[-1])
        if "ALL" in wanted:
            parts.append(b"ALL " + sequence_set(numbers))
    if "COUNT" in wanted:
        parts.append(b"COUNT %d" % len(numbers))
    if modseq and numbers:
        parts.append(b"MODSEQ %d" % modseq)
    return b" ".join(parts) + b"\r\n"


async def cmd_store(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, Store)
    args = request.args
    selected = _selected(session)
    if selected.readonly:
        return _read_only(session)
    try:
        uids = selected.select_uids(args.sequence, by_uid=request.uid)
    except InvalidSequence:
        return BAD_SEQUENCE
    if args.unchanged_since is not None:
        session.enabled.add("CONDSTORE")
    if not uids:
        return Reply("OK", "Store completed")
    change = Flags.parse(args.flags)
    box, folder = selected.mailbox_id, selected.folder_id
    try:
        result = await session.write_txn(
            lambda conn: store_flags(
                conn, box, folder, uids, args.mode, change, args.unchanged_since
            )
        )
    except FolderGone:
        return _gone(session)
    selected.note_flags(result.states)
    session.write(b"".join(selected.learn(result.states)))
    if any(s.modseq == result.highest_modseq for s in result.states):
        session.server.store.changes.publish([box])
    condstore = session.condstore
    out = []
    for state in result.states:
        if args.silent and not condstore:
            continue
        n = selected.seq(state.uid)
        if not n:
            continue
        items = []
        if request.uid:
            items.append(b"UID %d" % state.uid)
        if not args.silent:
            items.append(b"FLAGS " + flag_list(state.flags.names()))
        if condstore:
            items.append(b"MODSEQ (%d)" % state.modseq)
        out.append(b"* %d FETCH (%s)\r\n" % (n, b" ".join(items)))
    session.write(b"".join(out))
    if result.modified:
        numbers = result.modified if request.uid else [selected.seq(u) for u in result.modified]
        return Reply("OK", "Conditional store failed", "MODIFIED " + sequence_set(numbers).decode())
    return Reply("OK", "Store completed")


async def _copy(session: Session, request: Request, *, move: bool) -> Reply:
    assert isinstance(request.args, CopyMove)
    selected = _selected(session)
    if move and selected.readonly:
        return _read_only(session)
    assert session.namespace is not None
    place = session.namespace.resolve(request.args.mailbox)
    if place is None:
        return Reply("NO", "Mailbox doesn't exist", "TRYCREATE")
    try:
        uids = selected.select_uids(request.args.sequence, by_uid=request.uid)
    except InvalidSequence:
        return BAD_SEQUENCE
    dest = await session.read(lambda conn: find_folder(conn, place.mailbox_id, place.folder))
    if dest is None and place.folder in DEFAULT_FOLDERS:
        await session.write_txn(lambda conn: ensure_default_folders(conn, [place.mailbox_id]))
        dest = await session.read(lambda conn: find_folder(conn, place.mailbox_id, place.folder))
    if dest is None:
        return Reply(
            "NO", session.text("Không có thư mục này.", "Mailbox doesn't exist."), "TRYCREATE"
        )
    if not uids:
        return Reply("OK", "No messages")
    box, folder, dest_box, dest_id = (
        selected.mailbox_id,
        selected.folder_id,
        dest.mailbox_id,
        dest.id,
    )
    try:
        copied = await session.write_txn(
            lambda conn: copy_messages(conn, box, folder, uids, dest_box, dest_id, move=move)
        )
    except OverQuota as exc:
        return session.refusal(exc, "OVERQUOTA")
    except FolderGone:
        return Reply("NO", "Mailbox was deleted", "TRYCREATE")
    session.server.store.changes.publish({box, dest_box})
    if place.shared is not None:
        session.audit_access("move" if move else "copy", agency=place.shared, folder=place.folder)
    code = None
    if copied.source_uids:
        source = sequence_set(copied.source_uids).decode()
        targets = sequence_set(copied.dest_uids).decode()
        code = f"COPYUID {copied.uidvalidity} {source} {targets}"
    if not move:
        return Reply("OK", "Copy completed", code)
    if code:
        session.write(b"* OK [" + code.encode() + b"] Moved UIDs.\r\n")
    session.write(b"".join(selected.remove(copied.source_uids)))
    return Reply("OK", "Move completed")


async def cmd_copy(session: Session, request: Request) -> Reply:
    return await _copy(session, request, move=False)


async def cmd_move(session: Session, request: Request) -> Reply:
    return await _copy(session, request, move=True)
