"""Commands on folders: NAMESPACE, SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE,
LIST/LSUB, STATUS, APPEND and the QUOTA commands."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sqlalchemy import Connection

from govmail.imap.namespace import SEPARATOR, SHARED, Namespace, Place, list_matches
from govmail.imap.proto.model import (
    Append,
    ListArgs,
    MailboxArg,
    Rename,
    Request,
    StatusArgs,
    Words,
)
from govmail.imap.proto.response import mailbox as wire_mailbox
from govmail.imap.proto.response import sequence_set
from govmail.imap.selected import SelectedFolder
from govmail.imap.session import Reply, Session, State
from govmail.mailstore.access import AccessEvent
from govmail.mailstore.flags import Flags
from govmail.mailstore.folders import (
    DEFAULT_FOLDERS,
    FolderEntry,
    FolderError,
    create_folder,
    delete_folder,
    ensure_default_folders,
    folder_entries,
    rename_folder,
    subscribe_folder,
)
from govmail.mailstore.messages import (
    FolderStatus,
    OverQuota,
    append_message,
    find_folder,
    first_unseen,
    folder_status,
    quota_usage,
    snapshot,
)

OK = Reply()
_USE_ATTRIBUTES = {"sent": "\\Sent", "drafts": "\\Drafts", "trash": "\\Trash", "junk": "\\Junk"}
_USE_ROLES = {v.upper(): k for k, v in _USE_ATTRIBUTES.items()} | {"\\ARCHIVE": "archive"}


def _namespace(session: Session) -> Namespace:
    assert session.namespace is not None
    return session.namespace


def _nonexistent(session: Session) -> Reply:
    return Reply(
        "NO", session.text("Không có thư mục này.", "Mailbox doesn't exist."), "NONEXISTENT"
    )


async def _ensure_defaults(session: Session, mailbox_id: int) -> None:
    await session.write_txn(lambda conn: ensure_default_folders(conn, [mailbox_id]))


async def cmd_namespace(session: Session, request: Request) -> Reply:
    session.write(b'* NAMESPACE (("" "/")) NIL (("' + SHARED.encode() + b'/" "/"))\r\n')
    return OK


async def cmd_select(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, MailboxArg)
    readonly = request.name == "EXAMINE"
    if session.selected is not None:
        session.unwatch_all()
        session.selected = None
        session.state = State.AUTHENTICATED
        session.write(b"* OK [CLOSED] Previous mailbox closed.\r\n")
    if request.args.condstore:
        session.enabled.add("CONDSTORE")
    place = _namespace(session).resolve(request.args.mailbox)
    if place is None:
        return _nonexistent(session)
    snap = await session.read(lambda conn: snapshot(conn, place.mailbox_id, place.folder))
    if snap is None and place.folder in DEFAULT_FOLDERS:
        await _ensure_defaults(session, place.mailbox_id)
        snap = await session.read(lambda conn: snapshot(conn, place.mailbox_id, place.folder))
    if snap is None:
        return _nonexistent(session)
    wire = _namespace(session).wire_name(place)
    selected = SelectedFolder(snap, place, wire, readonly=readonly)
    unseen = None
    if not session.rev2 and selected.uids:
        folder_id = snap.folder.id
        first = await session.read(lambda conn: first_unseen(conn, folder_id))
        unseen = selected.seq(first) if first is not None else None
    lines = [
        b"* %d EXISTS\r\n" % selected.exists,
        b"" if session.rev2 else b"* 0 RECENT\r\n",
        *selected.flags_responses(),
        b"* OK [UNSEEN %d] First unseen.\r\n" % unseen if unseen else b"",
        b"* OK [UIDVALIDITY %d] UIDs valid.\r\n" % selected.uidvalidity,
        b"* OK [UIDNEXT %d] Predicted next UID.\r\n" % selected.uidnext,
        b"* OK [HIGHESTMODSEQ %d] Highest.\r\n" % selected.modseq,
    ]
    session.write(b"".join(lines))
    session.selected = selected
    session.state = State.SELECTED
    session.watch(place.mailbox_id)
    _record(session, place, "examine" if readonly else "select")
    return Reply("OK", "Select completed", "READ-ONLY" if readonly else "READ-WRITE")


def _record(session: Session, place: Place, kind: str) -> None:
    """R19: each look at an INBOX; R22: every access to an agency mailbox."""
    assert session.account is not None
    own = session.account.mailbox_id
    if place.folder == "INBOX":
        session.server.access.record(
            AccessEvent(
                place.mailbox_id,
                kind,
                "imap",
                session.peer,
                folder="INBOX",
                actor_mailbox_id=own if place.mailbox_id != own else None,
            )
        )
    if place.shared is not None:
        session.audit_access(kind, agency=place.shared, folder=place.folder)


async def cmd_create(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, MailboxArg)
    name = request.args.mailbox.rstrip(SEPARATOR)
    place = _namespace(session).resolve(name)
    if place is None or (place.shared is None and name.startswith(SHARED + SEPARATOR)):
        return Reply("NO", "Cannot create this mailbox here", "CANNOT")
    roles = [_USE_ROLES.get(u.upper()) for u in request.args.special_use]
    if None in roles or len(roles) > 1:
        return Reply("NO", "Unsupported special-use attribute", "USEATTR")
    role = roles[0] if roles else None
    try:
        await session.write_txn(
            lambda conn: create_folder(conn, place.mailbox_id, place.folder, role)
        )
    except FolderError as exc:
        return session.refusal(exc, exc.code)
    if place.shared is not None:
        session.audit_access("create", agency=place.shared, folder=place.folder)
    return Reply("OK", "Create completed")


async def cmd_delete(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, MailboxArg)
    place = _namespace(session).resolve(request.args.mailbox)
    if place is None:
        return _nonexistent(session)
    selected = session.selected
    if selected is not None and selected.place == place:
        return Reply("NO", "Cannot delete the selected mailbox", "INUSE")
    try:
        await session.write_txn(lambda conn: delete_folder(conn, place.mailbox_id, place.folder))
    except FolderError as exc:
        return session.refusal(exc, exc.code)
    session.server.store.changes.publish([place.mailbox_id])
    if place.shared is not None:
        session.audit_access("delete", agency=place.shared, folder=place.folder)
    return Reply("OK", "Delete completed")


async def cmd_rename(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, Rename)
    ns = _namespace(session)
    old, new = ns.resolve(request.args.old), ns.resolve(request.args.new.rstrip(SEPARATOR))
    if old is None:
        return _nonexistent(session)
    if new is None or new.mailbox_id != old.mailbox_id:
        return Reply("NO", "Cannot move a folder between mailboxes", "CANNOT")
    try:
        await session.write_txn(
            lambda conn: rename_folder(conn, old.mailbox_id, old.folder, new.folder)
        )
    except FolderError as exc:
        return session.refusal(exc, exc.code)
    session.server.store.changes.publish([old.mailbox_id])
    return Reply("OK", "Rename completed")


async def cmd_subscribe(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, MailboxArg)
    place = _namespace(session).resolve(request.args.mailbox)
    if place is None:
        return _nonexistent(session)
    on = request.name == "SUBSCRIBE"
    found = await session.write_txn(
        lambda conn: subscribe_folder(conn, place.mailbox_id, place.folder, on)
    )
    if not found and on:
        return _nonexistent(session)
    return OK


@dataclass(frozen=True)
class _Listed:
    name: str
    attributes: list[str]
    subscribed: bool
    place: Place | None


async def _visible(session: Session) -> list[_Listed]:
    """Every name the user can see: their folders, then the shared containers and each
    delegated agency mailbox's folders."""
    ns = _namespace(session)
    boxes = [(ns.own, None), *((box, local) for local, box in ns.delegated.items())]

    def load(conn: Connection, create: bool) -> list[tuple[int, str | None, list[FolderEntry]]]:
        return [
            (box, local, folder_entries(conn, box, create_defaults=create)) for box, local in boxes
        ]

    loaded = await session.read(lambda conn: load(conn, False))
    if any(
        len({e.name for e in entries} & set(DEFAULT_FOLDERS)) < len(DEFAULT_FOLDERS)
        for _, _, entries in loaded
    ):
        loaded = await session.write_txn(lambda conn: load(conn, True))
    out: list[_Listed] = []
    for box, local, entries in loaded:
        names = {e.name for e in entries}
        if local is not None:
            prefix = f"{SHARED}{SEPARATOR}{local}{SEPARATOR}"
            if not any(x.name == SHARED for x in out):
                out.append(_Listed(SHARED, ["\\Noselect", "\\HasChildren"], False, None))
            out.append(_Listed(prefix[:-1], ["\\Noselect", "\\HasChildren"], False, None))
        else:
            prefix = ""
        for e in entries:
            children = any(n.startswith(e.name + SEPARATOR) for n in names)
            attributes = ["\\HasChildren" if children else "\\HasNoChildren"]
            if e.special_use in _USE_ATTRIBUTES:
                attributes.append(_USE_ATTRIBUTES[e.special_use])
            out.append(
                _Listed(prefix + e.name, attributes, e.subscribed, Place(box, e.name, local))
            )
    return out


async def cmd_list(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, ListArgs)
    args = request.args
    lsub = request.name == "LSUB"
    utf8 = session.receiver.utf8_accept
    if not lsub and args.patterns == ("",) and not args.extended:
        session.write(b'* LIST (\\Noselect) "/" ""\r\n')
        return Reply("OK", "List completed")
    subscribed_only = lsub or "SUBSCRIBED" in args.select
    special_only = "SPECIAL-USE" in args.select
    show_subscribed = "SUBSCRIBED" in args.returns or "SUBSCRIBED" in args.select
    out: list[bytes] = []
    status_for: list[tuple[str, Place]] = []
    for entry in await _visible(session):
        if not any(list_matches(args.reference, p, entry.name) for p in args.patterns):
            continue
        if subscribed_only and not entry.subscribed:
            continue
        if special_only and not any(a in _USE_ATTRIBUTES.values() for a in entry.attributes):
            continue
        attributes = list(entry.attributes)
        if lsub:
            attributes = [a for a in attributes if a == "\\Noselect"]
        elif show_subscribed and entry.subscribed:
            attributes.append("\\Subscribed")
        verb = b"LSUB" if lsub else b"LIST"
        out.append(
            b'* %s (%s) "/" %s\r\n'
            % (verb, " ".join(attributes).encode(), wire_mailbox(entry.name, utf8))
        )
        if args.status_items and entry.place is not None:
            status_for.append((entry.name, entry.place))
        if len(out) >= 64:
            session.write(b"".join(out))
            out.clear()
    session.write(b"".join(out))
    for name, place in status_for:
        status = await session.read(partial(_status_of, place=place))
        if status is not None:
            session.write(_status_line(name, status, args.status_items, utf8))
    return Reply("OK", "Lsub completed" if lsub else "List completed")


def _status_of(conn: Connection, place: Place) -> FolderStatus | None:
    return folder_status(conn, place.mailbox_id, place.folder)


def _status_line(name: str, status: FolderStatus, items: tuple[str, ...], utf8: bool) -> bytes:
    values = {
        "MESSAGES": status.messages,
        "UIDNEXT": status.uidnext,
        "UIDVALIDITY": status.uidvalidity,
        "UNSEEN": status.unseen,
        "RECENT": 0,
        "SIZE": status.size,
        "HIGHESTMODSEQ": status.highest_modseq,
        "DELETED": status.deleted,
    }
    body = " ".join(f"{item} {values[item]}" for item in items if item in values)
    return b"* STATUS %s (%s)\r\n" % (wire_mailbox(name, utf8), body.encode())


async def cmd_status(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, StatusArgs)
    place = _namespace(session).resolve(request.args.mailbox)
    if place is None:
        return _nonexistent(session)
    status = await session.read(lambda conn: folder_status(conn, place.mailbox_id, place.folder))
    if status is None and place.folder in DEFAULT_FOLDERS:
        await _ensure_defaults(session, place.mailbox_id)
        status = await session.read(
            lambda conn: folder_status(conn, place.mailbox_id, place.folder)
        )
    if status is None:
        return _nonexistent(session)
    session.write(
        _status_line(request.args.mailbox, status, request.args.items, session.receiver.utf8_accept)
    )
    _record(session, place, "status")
    return Reply("OK", "Status completed")


async def cmd_append(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, Append)
    place = _namespace(session).resolve(request.args.mailbox)
    if place is None:
        return _nonexistent(session)
    limit = session.server.cfg.smtp.max_message_bytes
    if any(len(m.message) > limit for m in request.args.messages):
        return Reply("NO", "Message too large", "TOOBIG")
    if any(not m.message for m in request.args.messages):
        return Reply("NO", "Empty message")
    store = session.server.store
    stored = [await store.store(m.message) for m in request.args.messages]
    flags = [Flags.parse(m.flags) for m in request.args.messages]
    dates = [m.internal_date for m in request.args.messages]

    def file_all(conn: Connection) -> tuple[int, list[int]] | None:
        folder = find_folder(conn, place.mailbox_id, place.folder)
        if folder is None:
            return None
        uids = []
        validity = folder.uidvalidity
        for message, flag, date in zip(stored, flags, dates, strict=True):
            validity, uid = append_message(conn, place.mailbox_id, folder.id, message, flag, date)
            uids.append(uid)
        return validity, uids

    try:
        result = await session.write_txn(file_all)
        if result is None and place.folder in DEFAULT_FOLDERS:
            await _ensure_defaults(session, place.mailbox_id)
            result = await session.write_txn(file_all)
    except OverQuota as exc:
        return session.refusal(exc, "OVERQUOTA")
    if result is None:
        return Reply(
            "NO", session.text("Không có thư mục này.", "Mailbox doesn't exist."), "TRYCREATE"
        )
    store.changes.publish([place.mailbox_id])
    if place.shared is not None:
        session.audit_access("append", agency=place.shared, folder=place.folder)
    validity, uids = result
    return Reply("OK", "Append completed", f"APPENDUID {validity} {sequence_set(uids).decode()}")


def _quota_root(place: Place) -> str:
    return "" if place.shared is None else f"{SHARED}{SEPARATOR}{place.shared}"


async def _quota_line(session: Session, root: str, mailbox_id: int) -> bytes:
    used, limit = await session.read(lambda conn: quota_usage(conn, mailbox_id))
    # RFC 9208: STORAGE in units of 1024 octets.
    return b"* QUOTA %s (STORAGE %d %d)\r\n" % (
        wire_mailbox(root, True) if root else b'""',
        (used + 1023) // 1024,
        limit // 1024,
    )


async def cmd_getquotaroot(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, MailboxArg)
    place = _namespace(session).resolve(request.args.mailbox)
    if place is None:
        return _nonexistent(session)
    root = _quota_root(place)
    session.write(
        b"* QUOTAROOT %s %s\r\n"
        % (
            wire_mailbox(request.args.mailbox, session.receiver.utf8_accept),
            wire_mailbox(root, True) if root else b'""',
        )
        + await _quota_line(session, root, place.mailbox_id)
    )
    return Reply("OK", "Getquotaroot completed")


async def cmd_getquota(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, Words)
    root = request.args.words[0] if request.args.words else ""
    ns = _namespace(session)
    if root == "":
        box = ns.own
    else:
        place = ns.resolve(root + SEPARATOR + "INBOX")
        if place is None or place.shared is None:
            return Reply("NO", "No such quota root", "NONEXISTENT")
        box = place.mailbox_id
    session.write(await _quota_line(session, root, box))
    return Reply("OK", "Getquota completed")
