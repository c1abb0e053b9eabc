"""A folder's messages as mail clients work on them: snapshot and changes, reading, flags,
copy, move, expunge and append (IMAP now, the webmail later).

Each function is one transaction. Whoever changes a folder locks its mailbox row and then
the folder row (``lock_mailboxes``' rule), takes one new modseq for the change, and leaves
a tombstone for each message it removes, so every other session learns exactly what
changed since the modseq it knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    null,
    select,
    update,
)

from govmail.core.errors import GovmailError
from govmail.mailstore.delivery import StoredMessage, message_rows, quota_allows
from govmail.mailstore.flags import DELETED, SEEN, Flags
from govmail.store.audit import now
from govmail.store.schema import (
    expunged_messages,
    folder_messages,
    folders,
    mailboxes,
    messages,
)

# Above this many UIDs a query reads the UID range and filters in Python: an IN list of
# ten thousand parameters costs more than the rows it saves (and hits driver limits).
_IN_LIMIT = 500


class FolderGone(GovmailError):
    code = "folder_gone"

    def __init__(self) -> None:
        super().__init__("Thư mục không còn tồn tại.", "The folder no longer exists.")


class OverQuota(GovmailError):
    code = "over_quota"

    def __init__(self) -> None:
        super().__init__(
            "Hộp thư đã đầy (vượt dung lượng cho phép).", "Mailbox is full (quota exceeded)."
        )


@dataclass(frozen=True)
class MessageState:
    """One message of a folder as a session tracks it."""

    uid: int
    flags: Flags
    modseq: int


@dataclass(frozen=True)
class FolderInfo:
    id: int
    mailbox_id: int
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highest_modseq: int


@dataclass(frozen=True)
class Snapshot:
    """A folder and its messages' UIDs in order, as of ``folder.highest_modseq``."""

    folder: FolderInfo
    uids: list[int]
    keywords: list[str]  # every keyword in use in the folder (for FLAGS)


@dataclass(frozen=True)
class Changes:
    """What changed in a folder after a modseq: messages added or whose flags changed
    (with their new state) and UIDs removed, up to ``highest_modseq``."""

    highest_modseq: int
    uidnext: int
    changed: list[MessageState]
    expunged: list[int]


class FetchRow(NamedTuple):
    """What FETCH may need of one message: a plain tuple, as FETCH 1:* makes thousands.
    ``internal_date`` and ``structure`` are None unless asked for."""

    uid: int
    bits: int
    keywords: str | None
    modseq: int
    size: int
    message_id: int
    blob: str | None  # None unless asked for
    internal_date: datetime | None
    structure: Any

    @property
    def flags(self) -> Flags:
        return Flags.from_row(self.bits, self.keywords)


@dataclass(frozen=True)
class Copied:
    """COPY/MOVE result: the destination's UIDVALIDITY and the UIDs, source order."""

    uidvalidity: int
    source_uids: list[int]
    dest_uids: list[int]


_FOLDER_COLUMNS = (
    folders.c.id,
    folders.c.mailbox_id,
    folders.c.name,
    folders.c.special_use,
    folders.c.uidvalidity,
    folders.c.uidnext,
    folders.c.highest_modseq,
)
_FOLDER_BY_NAME = select(*_FOLDER_COLUMNS).where(
    folders.c.mailbox_id == bindparam("box"), folders.c.name == bindparam("name")
)
_FOLDER_BY_ID = select(*_FOLDER_COLUMNS).where(folders.c.id == bindparam("folder"))
_STATES = (
    select(
        folder_messages.c.uid,
        folder_messages.c.flags,
        folder_messages.c.keywords,
        folder_messages.c.modseq,
    )
    .where(folder_messages.c.folder_id == bindparam("folder"))
    .order_by(folder_messages.c.uid)
)
# SELECT reads only UIDs (and the distinct keyword sets): a 10,000-message folder is
# selected without building an object per message.
_UIDS = (
    select(folder_messages.c.uid)
    .where(folder_messages.c.folder_id == bindparam("folder"))
    .order_by(folder_messages.c.uid)
)
_KEYWORDS = (
    select(folder_messages.c.keywords)
    .where(
        folder_messages.c.folder_id == bindparam("folder"),
        folder_messages.c.keywords.is_not(None),
    )
    .distinct()
)
_CHANGED = _STATES.where(
    folder_messages.c.modseq > bindparam("since"), folder_messages.c.modseq <= bindparam("upto")
)
_EXPUNGED = select(expunged_messages.c.uid).where(
    expunged_messages.c.folder_id == bindparam("folder"),
    expunged_messages.c.modseq > bindparam("since"),
    expunged_messages.c.modseq <= bindparam("upto"),
)


def find_folder(conn: Connection, mailbox_id: int, name: str) -> FolderInfo | None:
    row = conn.execute(_FOLDER_BY_NAME, {"box": mailbox_id, "name": name}).first()
    return FolderInfo(*row) if row is not None else None


def snapshot(conn: Connection, mailbox_id: int, name: str) -> Snapshot | None:
    """The folder ``name`` of a mailbox with every message's UID, flags and modseq."""
    folder = find_folder(conn, mailbox_id, name)
    if folder is None:
        return None
    uids = list(conn.execute(_UIDS, {"folder": folder.id}).scalars())
    keywords: dict[str, str] = {}
    for (words,) in conn.execute(_KEYWORDS, {"folder": folder.id}):
        for keyword in words.split():
            keywords.setdefault(keyword.lower(), keyword)
    return Snapshot(folder, uids, list(keywords.values()))


def changes_since(conn: Connection, folder_id: int, modseq: int) -> Changes | None:
    """What changed in the folder after ``modseq`` (None if the folder is gone). Reads the
    folder's counter first and nothing newer than it, so under READ COMMITTED a change
    that commits meanwhile is seen whole on the next call, never in part."""
    folder = conn.execute(_FOLDER_BY_ID, {"folder": folder_id}).first()
    if folder is None:
        return None
    if folder.highest_modseq <= modseq:
        return Changes(folder.highest_modseq, folder.uidnext, [], [])
    window = {"folder": folder_id, "since": modseq, "upto": folder.highest_modseq}
    changed = [
        MessageState(r.uid, Flags.from_row(r.flags, r.keywords), r.modseq)
        for r in conn.execute(_CHANGED, window)
    ]
    expunged = sorted(r.uid for r in conn.execute(_EXPUNGED, window))
    return Changes(folder.highest_modseq, folder.uidnext, changed, expunged)


def _where_uids(uids: Sequence[int]) -> tuple[Any, set[int] | None]:
    """A WHERE clause selecting these UIDs, and the set to filter by in Python when the
    clause is only the UID range (long lists)."""
    if len(uids) <= _IN_LIMIT:
        return folder_messages.c.uid.in_(list(uids)), None
    return folder_messages.c.uid.between(min(uids), max(uids)), set(uids)


def fetch_rows(
    conn: Connection,
    folder_id: int,
    uids: Sequence[int],
    *,
    blob: bool = False,
    internal_date: bool = False,
    structure: bool = False,
) -> list[FetchRow]:
    """The rows FETCH needs for these UIDs, in UID order (missing ones left out: another
    session expunged them), with the blob key, the internal date and the stored body
    structure only if asked (the join, date parsing and JSON are most of a row's cost)."""
    if not uids:
        return []
    ranged = len(uids) > _IN_LIMIT
    query = _fetch_query(blob or structure, internal_date, structure, ranged)
    params: dict[str, Any] = {"folder": folder_id}
    if ranged:
        params.update(low=min(uids), high=max(uids))
    else:
        params["uids"] = list(uids)
    result = conn.execute(query, params)
    if internal_date or structure:
        rows: Sequence[Any] = result.all()
    else:
        # Only integers and strings, which need no conversion: the driver's rows as they
        # are, without a result object per row (a third of FETCH 1:*'s cost).
        rows = result.cursor.fetchall()
        result.close()
    if ranged:
        keep = set(uids)
        return [FetchRow(*r) for r in rows if r[0] in keep]
    return [FetchRow(*r) for r in rows]


@lru_cache(maxsize=16)
def _fetch_query(join: bool, internal_date: bool, structure: bool, ranged: bool) -> Any:
    """FETCH's query for one combination of needs, built once (SQLAlchemy then reuses
    its compiled form instead of building and hashing a new statement per command)."""
    fm = folder_messages.c
    query = select(
        fm.uid,
        fm.flags,
        fm.keywords,
        fm.modseq,
        fm.size,
        fm.message_id,
        messages.c.blob if join else null(),
        fm.internal_date if internal_date else null(),
        messages.c.structure if structure else null(),
    ).where(fm.folder_id == bindparam("folder"))
    if join:
        query = query.join(messages, messages.c.id == fm.message_id)
    if ranged:
        query = query.where(fm.uid.between(bindparam("low"), bindparam("high")))
    else:
        query = query.where(fm.uid.in_(bindparam("uids", expanding=True)))
    return query.order_by(fm.uid)


def envelopes(conn: Connection, message_ids: Iterable[int]) -> dict[int, Any]:
    """The stored envelope of each of these messages, by id."""
    wanted = sorted(set(message_ids))
    out: dict[int, Any] = {}
    for start in range(0, len(wanted), _IN_LIMIT):
        chunk = wanted[start : start + _IN_LIMIT]
        query = select(messages.c.id, messages.c.envelope).where(messages.c.id.in_(chunk))
        out.update((r.id, r.envelope) for r in conn.execute(query))
    return out


def _lock(conn: Connection, mailbox_id: int, folder_ids: Iterable[int]) -> dict[int, Any]:
    """Lock the mailbox row, then these folders (id order); returns the folder rows and
    raises FolderGone if one of them no longer exists."""
    conn.execute(
        select(mailboxes.c.id).where(mailboxes.c.id == mailbox_id).with_for_update()
    ).first()
    wanted = sorted(set(folder_ids))
    rows = conn.execute(
        select(*_FOLDER_COLUMNS)
        .where(folders.c.id.in_(wanted), folders.c.mailbox_id == mailbox_id)
        .order_by(folders.c.id)
        .with_for_update()
    ).all()
    found = {r.id: r for r in rows}
    if len(found) != len(wanted):
        raise FolderGone()
    return found


def _bump(conn: Connection, folder_id: int, modseq: int, uidnext: int | None = None) -> None:
    values: dict[str, int] = {"highest_modseq": modseq}
    if uidnext is not None:
        values["uidnext"] = uidnext
    conn.execute(update(folders).where(folders.c.id == folder_id).values(**values))


def _used(conn: Connection, mailbox_id: int, delta: int) -> None:
    if delta:
        # Never below zero: a counter that drifted must not make the mailbox look huge.
        bounded = (func.max if conn.dialect.name == "sqlite" else func.greatest)(
            mailboxes.c.used_bytes + delta, 0
        )
        conn.execute(
            update(mailboxes).where(mailboxes.c.id == mailbox_id).values(used_bytes=bounded)
        )


@dataclass(frozen=True)
class StoreResult:
    """STORE: the new state of every message named (changed or not), the highest
    modseq now, and the UIDs refused by UNCHANGEDSINCE (CONDSTORE's MODIFIED)."""

    states: list[MessageState]
    modified: list[int]
    highest_modseq: int


def store_flags(
    conn: Connection,
    mailbox_id: int,
    folder_id: int,
    uids: Sequence[int],
    mode: str,
    change: Flags,
    unchanged_since: int | None = None,
) -> StoreResult:
    """Add (``+``), remove (``-``) or replace (``""``) flags on these messages. Messages
    whose flags change get one new modseq; those changed after ``unchanged_since`` are
    left alone and reported as modified."""
    folder = _lock(conn, mailbox_id, [folder_id])[folder_id]
    modseq = folder.highest_modseq + 1
    where, keep = _where_uids(uids)
    rows = conn.execute(
        select(
            folder_messages.c.id,
            folder_messages.c.uid,
            folder_messages.c.flags,
            folder_messages.c.keywords,
            folder_messages.c.modseq,
        )
        .where(folder_messages.c.folder_id == folder_id, where)
        .order_by(folder_messages.c.uid)
    ).all()
    states: list[MessageState] = []
    modified: list[int] = []
    updates: list[dict[str, Any]] = []
    for r in rows:
        if keep is not None and r.uid not in keep:
            continue
        if unchanged_since is not None and r.modseq > unchanged_since:
            modified.append(r.uid)
            continue
        before = Flags.from_row(r.flags, r.keywords)
        after = before.apply(mode, change)
        if after == before:
            states.append(MessageState(r.uid, before, r.modseq))
            continue
        updates.append(
            {"row": r.id, "bits": after.bits, "words": after.keywords_text, "seq": modseq}
        )
        states.append(MessageState(r.uid, after, modseq))
    if updates:
        conn.execute(_UPDATE_FLAGS, updates)
        _bump(conn, folder_id, modseq)
    return StoreResult(states, modified, modseq if updates else folder.highest_modseq)


_UPDATE_FLAGS = (
    update(folder_messages)
    .where(folder_messages.c.id == bindparam("row"))
    .values(flags=bindparam("bits"), keywords=bindparam("words"), modseq=bindparam("seq"))
)


def mark_seen(
    conn: Connection, mailbox_id: int, folder_id: int, uids: Sequence[int]
) -> StoreResult:
    """FETCH of a body without PEEK sets \\Seen."""
    return store_flags(conn, mailbox_id, folder_id, uids, "+", Flags(SEEN))


def expunge(
    conn: Connection, mailbox_id: int, folder_id: int, uids: Sequence[int] | None = None
) -> list[int]:
    """Remove the messages flagged \\Deleted (only those among ``uids`` if given); returns
    their UIDs. Frees their quota and leaves tombstones."""
    folder = _lock(conn, mailbox_id, [folder_id])[folder_id]
    query = select(folder_messages.c.id, folder_messages.c.uid, folder_messages.c.size).where(
        folder_messages.c.folder_id == folder_id,
        folder_messages.c.flags.op("&")(DELETED) != 0,
    )
    keep: set[int] | None = None
    if uids is not None:
        where, keep = _where_uids(uids)
        query = query.where(where)
    rows = [r for r in conn.execute(query) if keep is None or r.uid in keep]
    if not rows:
        return []
    return _remove(conn, mailbox_id, folder.id, folder.highest_modseq + 1, rows)


def _remove(
    conn: Connection, mailbox_id: int, folder_id: int, modseq: int, rows: Sequence[Any]
) -> list[int]:
    ids = [r.id for r in rows]
    for start in range(0, len(ids), _IN_LIMIT):
        conn.execute(
            delete(folder_messages).where(folder_messages.c.id.in_(ids[start : start + _IN_LIMIT]))
        )
    conn.execute(
        insert(expunged_messages),
        [{"folder_id": folder_id, "uid": r.uid, "modseq": modseq} for r in rows],
    )
    _bump(conn, folder_id, modseq)
    _used(conn, mailbox_id, -sum(r.size for r in rows))
    return sorted(r.uid for r in rows)


def copy_messages(
    conn: Connection,
    mailbox_id: int,
    folder_id: int,
    uids: Sequence[int],
    dest_mailbox_id: int,
    dest_folder_id: int,
    *,
    move: bool = False,
) -> Copied:
    """Copy (or move) these messages into another folder, possibly of another mailbox
    the user may write to (a delegated agency mailbox). Keeps flags and internal dates;
    raises OverQuota (nothing copied) if the destination mailbox cannot take them."""
    if dest_mailbox_id != mailbox_id:
        # Both mailboxes locked in id order, as lock_mailboxes does.
        first, second = sorted((mailbox_id, dest_mailbox_id))
        _lock(conn, first, [folder_id if first == mailbox_id else dest_folder_id])
        _lock(conn, second, [folder_id if second == mailbox_id else dest_folder_id])
        source = conn.execute(_FOLDER_BY_ID, {"folder": folder_id}).one()
        dest = conn.execute(_FOLDER_BY_ID, {"folder": dest_folder_id}).one()
    else:
        locked = _lock(conn, mailbox_id, [folder_id, dest_folder_id])
        source, dest = locked[folder_id], locked[dest_folder_id]
    where, keep = _where_uids(uids)
    rows = [
        r
        for r in conn.execute(
            select(
                folder_messages.c.id,
                folder_messages.c.uid,
                folder_messages.c.message_id,
                folder_messages.c.flags,
                folder_messages.c.keywords,
                folder_messages.c.internal_date,
                folder_messages.c.size,
            )
            .where(folder_messages.c.folder_id == folder_id, where)
            .order_by(folder_messages.c.uid)
        )
        if keep is None or r.uid in keep
    ]
    if not rows:
        return Copied(dest.uidvalidity, [], [])
    if folder_id == dest_folder_id and move:
        return Copied(dest.uidvalidity, [], [])
    size = sum(r.size for r in rows)
    grows = not (move and dest_mailbox_id == mailbox_id)
    if grows:
        _require_room(conn, dest_mailbox_id, size)
    modseq = dest.highest_modseq + 1
    uid = dest.uidnext
    new_rows = []
    for r in rows:
        new_rows.append(
            {
                "folder_id": dest_folder_id,
                "uid": uid,
                "message_id": r.message_id,
                "flags": r.flags,
                "keywords": r.keywords,
                "modseq": modseq,
                "internal_date": r.internal_date,
                "size": r.size,
            }
        )
        uid += 1
    conn.execute(insert(folder_messages), new_rows)
    _bump(conn, dest_folder_id, modseq, uid)
    if grows:
        _used(conn, dest_mailbox_id, size)
    if move:
        source_modseq = (modseq if source.id == dest.id else source.highest_modseq) + 1
        if dest_mailbox_id == mailbox_id:
            # Quota unchanged: the bytes only change folder.
            _remove(conn, mailbox_id, folder_id, source_modseq, rows)
            _used(conn, mailbox_id, size)
        else:
            _remove(conn, mailbox_id, folder_id, source_modseq, rows)
    return Copied(dest.uidvalidity, [r.uid for r in rows], [row["uid"] for row in new_rows])


def append_message(
    conn: Connection,
    mailbox_id: int,
    folder_id: int,
    stored: StoredMessage,
    flags: Flags,
    internal_date: datetime | None,
) -> tuple[int, int]:
    """File a message (its blob already durable) in a folder; returns (UIDVALIDITY, UID).
    Raises OverQuota if the mailbox cannot take it."""
    folder = _lock(conn, mailbox_id, [folder_id])[folder_id]
    _require_room(conn, mailbox_id, stored.size)
    at = now()
    message_id = message_rows(conn, [stored], at)[stored.blob]
    modseq = folder.highest_modseq + 1
    conn.execute(
        insert(folder_messages).values(
            folder_id=folder_id,
            uid=folder.uidnext,
            message_id=message_id,
            flags=flags.bits,
            keywords=flags.keywords_text,
            modseq=modseq,
            # UTC: SQLite keeps no offset, so a +0700 date would come back 7 hours off.
            internal_date=(internal_date or at).astimezone(UTC),
            size=stored.size,
        )
    )
    _bump(conn, folder_id, modseq, folder.uidnext + 1)
    _used(conn, mailbox_id, stored.size)
    return folder.uidvalidity, folder.uidnext


@dataclass(frozen=True)
class FolderStatus:
    messages: int
    unseen: int
    deleted: int
    size: int
    uidnext: int
    uidvalidity: int
    highest_modseq: int


def folder_status(conn: Connection, mailbox_id: int, name: str) -> FolderStatus | None:
    """STATUS of one folder (None if it does not exist), from one aggregate query."""
    folder = find_folder(conn, mailbox_id, name)
    if folder is None:
        return None
    row = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(folder_messages.c.size), 0),
            func.coalesce(
                func.sum(case((folder_messages.c.flags.op("&")(SEEN) == 0, 1), else_=0)), 0
            ),
            func.coalesce(
                func.sum(case((folder_messages.c.flags.op("&")(DELETED) != 0, 1), else_=0)), 0
            ),
        ).where(folder_messages.c.folder_id == folder.id)
    ).one()
    return FolderStatus(
        messages=row[0],
        unseen=row[2],
        deleted=row[3],
        size=row[1],
        uidnext=folder.uidnext,
        uidvalidity=folder.uidvalidity,
        highest_modseq=folder.highest_modseq,
    )


def first_unseen(conn: Connection, folder_id: int) -> int | None:
    """The lowest UID without \\Seen (SELECT's UNSEEN)."""
    return conn.execute(
        select(func.min(folder_messages.c.uid)).where(
            and_(
                folder_messages.c.folder_id == folder_id,
                folder_messages.c.flags.op("&")(SEEN) == 0,
            )
        )
    ).scalar()


def _require_room(conn: Connection, mailbox_id: int, size: int) -> None:
    """Raise OverQuota unless the mailbox can take ``size`` more bytes (the rule
    delivery applies, grace included; R17)."""
    used, quota = quota_usage(conn, mailbox_id)
    if not quota_allows(used, quota, size):
        raise OverQuota()


def quota_usage(conn: Connection, mailbox_id: int) -> tuple[int, int]:
    """(used bytes, quota bytes) of a mailbox (R17)."""
    row = conn.execute(
        select(mailboxes.c.used_bytes, mailboxes.c.quota_bytes).where(mailboxes.c.id == mailbox_id)
    ).one()
    return int(row.used_bytes), int(row.quota_bytes)
