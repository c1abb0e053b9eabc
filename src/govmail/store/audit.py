"""The append-only audit log: every administrative action is written in its own transaction,
and the centre searches and exports it."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import Select, and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from govmail.core.errors import InvalidInput
from govmail.store.database import Database
from govmail.store.schema import audit_log

EXPORT_PAGE = 1000
MAX_LIMIT = 100_000
EXPORT_FORMATS = ("csv", "jsonl")
CSV_HEADER = ("at", "actor", "action", "target", "source", "details")
# CSV formula injection (CWE-1236), as in directory/export.py: a spreadsheet runs a cell
# starting with = + - @ (or hidden behind a tab or CR) as a formula, and actors, targets
# and details come from users; an apostrophe makes the spreadsheet show it as text.
_CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def now() -> datetime:
    return datetime.now(UTC)


async def record(
    conn: AsyncConnection,
    actor: str,
    action: str,
    target: str,
    *,
    source: str = "",
    **details: Any,
) -> None:
    """Add one entry inside the caller's transaction, so it exists iff the action happened.
    ``source`` says where the action came from (a client IP, ``cli``, ``api:<token>``);
    ``details`` holds what changed, with ``before``/``after`` where something was replaced."""
    await conn.execute(
        insert(audit_log).values(
            at=now(), actor=actor, action=action, target=target, details=details, source=source
        )
    )


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log; ``at`` is timezone-aware UTC on both engines."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    source: str
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": self.details,
            "source": self.source,
        }


_c = audit_log.c
_ENTRY = select(_c.id, _c.at, _c.actor, _c.action, _c.target, _c.source, _c.details)


def _entry(row: Any) -> AuditEntry:
    at: datetime = row.at
    # SQLite hands back the naive UTC time it stored; PostgreSQL an aware one.
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return AuditEntry(row.id, at, row.actor, row.action, row.target, row.source, row.details)


def _utc(value: datetime) -> datetime:
    # SQLite compares the stored UTC text, so a bound time must be UTC too (a naive
    # one is taken as UTC, as stored).
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(
    db: Database,
    *,
    since: datetime | None,
    until: datetime | None,
    actor: str | None,
    action: str | None,
    target: str | None,
    text: str | None,
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a search: ``since`` inclusive, ``until`` exclusive, ``actor``
    exact, ``action`` a prefix, ``target`` and ``text`` case-insensitive substrings."""
    where: list[ColumnElement[bool]] = []
    if since is not None:
        where.append(_c.at >= _utc(since))
    if until is not None:
        where.append(_c.at < _utc(until))
    if actor:
        where.append(_c.actor == actor)
    if action:
        if db.is_sqlite:
            # A range on ix_audit_log_action (BINARY): SQLite's LIKE never uses it.
            upper = action[:-1] + chr(ord(action[-1]) + 1)
            where.append(and_(_c.action >= action, _c.action < upper))
        else:
            # LIKE 'x%' is an index range under the C collation, and right under any
            # other (where a >=/< range is not: punctuation sorts differently there).
            where.append(_c.action.like(_like_escape(action) + "%", escape="\\"))
    if target:
        where.append(_c.target.ilike(f"%{_like_escape(target)}%", escape="\\"))
    if text:
        pattern = f"%{_like_escape(text)}%"
        where.append(
            or_(
                _c.actor.ilike(pattern, escape="\\"),
                _c.target.ilike(pattern, escape="\\"),
                _c.action.ilike(pattern, escape="\\"),
            )
        )
    return where


async def list_audit(
    db: Database,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    text: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEntry]:
    """One page of the audit log, newest first. ``action`` is a prefix ("person." finds
    person.add, person.move, …); ``target`` and ``text`` (over actor, target and action)
    are case-insensitive substrings; ``until`` is exclusive. The query walks
    ix_audit_log_at from the newest end and stops after the page, so a filter that most
    rows pass costs a page's worth of rows, not the whole log."""
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise InvalidInput(
            f"Số mục mỗi trang phải từ 1 đến {MAX_LIMIT}, vị trí bắt đầu không âm.",
            f"The page size must be between 1 and {MAX_LIMIT}, the offset not negative.",
        )
    where = _filters(
        db, since=since, until=until, actor=actor, action=action, target=target, text=text
    )
    query = _ENTRY.where(*where).order_by(_c.at.desc(), _c.id.desc()).limit(limit).offset(offset)
    async with db.read() as conn:
        return [_entry(row) for row in await conn.execute(query)]


async def export_audit(
    db: Database,
    out: TextIO,
    *,
    fmt: str,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    text: str | None = None,
) -> int:
    """Write every matching entry to ``out``, oldest first (as a log reads), and return
    how many. ``csv``: a header row, then one row per entry with ``details`` as JSON and
    formula-like cells prefixed with an apostrophe (``out`` opened with newline="");
    ``jsonl``: one JSON object per line, as ``AuditEntry.as_dict``.

    Entries are read in pages of EXPORT_PAGE, each in its own short read transaction,
    continuing after the last (at, id) written: memory stays flat for any size of log,
    and a slow reader of ``out`` never holds a transaction open."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(
            f"Định dạng không hỗ trợ: {fmt} (chọn csv hoặc jsonl).",
            f"Unsupported format: {fmt} (choose csv or jsonl).",
        )
    where = _filters(
        db, since=since, until=until, actor=actor, action=action, target=target, text=text
    )
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_HEADER)
    written = 0
    after: tuple[datetime, int] | None = None
    while True:
        page = await _export_page(db, where, after)
        for row in page:
            entry = _entry(row)
            if writer is not None:
                writer.writerow(_csv_row(entry))
            else:
                out.write(json.dumps(entry.as_dict(), ensure_ascii=False, default=str) + "\n")
        written += len(page)
        if len(page) < EXPORT_PAGE:
            return written
        # The stored value, not the normalised one: SQLite compares its own text.
        after = (page[-1].at, page[-1].id)


async def _export_page(
    db: Database, where: list[ColumnElement[bool]], after: tuple[datetime, int] | None
) -> list[Any]:
    query: Select[Any] = _ENTRY.where(*where)
    if after is not None:
        at, last_id = after
        query = query.where(or_(_c.at > at, and_(_c.at == at, _c.id > last_id)))
    query = query.order_by(_c.at, _c.id).limit(EXPORT_PAGE)
    async with db.read() as conn:
        return list(await conn.execute(query))


def _csv_row(entry: AuditEntry) -> list[str]:
    details = json.dumps(entry.details, ensure_ascii=False, default=str)
    values = (entry.at.isoformat(), entry.actor, entry.action, entry.target, entry.source, details)
    return [_csv_text(value) for value in values]


def _csv_text(value: str) -> str:
    return "'" + value if value.startswith(_CSV_FORMULA_STARTS) else value
