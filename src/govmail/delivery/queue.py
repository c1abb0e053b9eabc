"""The outbound queue's rows: the workers claim due mail and record what became of it;
the operator lists, shows, retries and deletes (``govmail queue ...``)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.core.errors import Conflict, NotFound
from govmail.store import audit
from govmail.store.blobs import BlobStore
from govmail.store.database import Database
from govmail.store.schema import messages, outbound_queue

q = outbound_queue.c
# Literal, not a bound list: the planners can then use the partial index on pending rows.
PENDING = text("outbound_queue.status in ('queued', 'deferred')")


def utc(value: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; every stored one is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- the workers ------------------------------------------------------------------------


@dataclass
class Job:
    """Rows of one message from one sender to one destination domain: one SMTP
    transaction with a RCPT TO for each. ``token`` is the claim that holds their lease."""

    message_id: int
    blob: str
    sender: str
    domain: str
    created_at: datetime
    warned: bool
    token: str
    rows: dict[int, str] = field(default_factory=dict)  # row id → recipient
    attempts: dict[int, int] = field(default_factory=dict)  # row id → attempts so far
    recorded: bool = False  # its results were handed to be written


def _clock(conn: Connection) -> ColumnElement[datetime]:
    """The time leases are compared with. PostgreSQL's own clock, so nodes whose clocks
    disagree still agree on when a lease ran out; SQLite has one process, whose clock
    the caller passes as ``now``."""
    if conn.dialect.name == "postgresql":
        return func.now()
    return bindparam("now", type_=q.lease_until.type)


def _free(conn: Connection) -> ColumnElement[bool]:
    return or_(q.lease_until.is_(None), q.lease_until < _clock(conn))


def claim_due(
    conn: Connection,
    *,
    now: datetime,
    lease_s: float,
    limit: int,
    per_domain: int,
    skip_domains: Collection[str] = (),
    skip_rows: Collection[int] = (),
) -> list[Job]:
    """Take up to ``limit`` due rows, at most ``per_domain`` of each destination (so one
    slow domain cannot fill the claim) and none of ``skip_domains`` or ``skip_rows``
    (held already), leased to one new claim token for ``lease_s`` seconds; grouped into
    jobs. The caller's transaction must be short: it is committed before any SMTP."""
    due = and_(
        PENDING,
        q.next_attempt_at <= bindparam("now", type_=q.next_attempt_at.type),
        _free(conn),
    )
    if skip_domains:
        due = and_(due, q.domain.not_in(list(skip_domains)))
    if skip_rows:
        due = and_(due, q.id.not_in(list(skip_rows)))
    rank = func.row_number().over(partition_by=q.domain, order_by=(q.next_attempt_at, q.id))
    ranked = select(q.id, q.next_attempt_at, rank.label("n")).where(due).subquery()
    chosen = (
        select(ranked.c.id)
        .where(ranked.c.n <= per_domain)
        .order_by(ranked.c.next_attempt_at, ranked.c.id)
        .limit(limit)
    )
    query = (
        select(
            q.id,
            q.message_id,
            q.sender,
            q.recipient,
            q.domain,
            q.attempts,
            q.created_at,
            q.warned_at,
            messages.c.blob,
        )
        .join(messages, messages.c.id == q.message_id)
        .where(q.id.in_(chosen), due)
        .order_by(q.next_attempt_at, q.id)
    )
    if conn.dialect.name == "postgresql":
        # Another node's claim in progress is skipped, not waited for.
        query = query.with_for_update(skip_locked=True, of=outbound_queue)
    rows = conn.execute(query, {"now": now}).all()
    if not rows:
        return []
    token = str(uuid.uuid4())
    conn.execute(
        update(outbound_queue)
        .where(q.id.in_([r.id for r in rows]))
        .values(lease_until=_until(conn, now, lease_s), lease_token=token),
        {"now": now},
    )
    jobs: dict[tuple[int, str, str], Job] = {}
    for r in rows:
        key = (r.message_id, r.sender, r.domain)
        job = jobs.get(key)
        if job is None:
            job = jobs[key] = Job(
                r.message_id, r.blob, r.sender, r.domain, utc(r.created_at), False, token
            )
        job.warned = job.warned or r.warned_at is not None
        job.rows[r.id] = r.recipient
        job.attempts[r.id] = r.attempts
    return list(jobs.values())


def _until(conn: Connection, now: datetime, lease_s: float) -> ColumnElement[datetime]:
    if conn.dialect.name == "postgresql":
        return func.now() + timedelta(seconds=lease_s)
    return literal(now + timedelta(seconds=lease_s), q.lease_until.type)


def renew(conn: Connection, tokens: Collection[str], *, now: datetime, lease_s: float) -> set[int]:
    """Extend the leases of the pending rows these claims still hold; returns those rows
    (a row missing was taken back: its lease ran out and another claim has it)."""
    if not tokens:
        return set()
    renewed = conn.execute(
        update(outbound_queue)
        .where(q.lease_token.in_(list(tokens)), PENDING)
        .values(lease_until=_until(conn, now, lease_s))
        .returning(q.id),
        {"now": now},
    )
    return {r.id for r in renewed}


def next_due(conn: Connection) -> datetime | None:
    """When the earliest pending row is due or its lease runs out, whichever is later
    (None: nothing waits). May be in the past: rows a node is claiming right now."""
    later = case((q.lease_until > q.next_attempt_at, q.lease_until), else_=q.next_attempt_at)
    found = conn.execute(select(func.min(later)).where(PENDING)).scalar()
    if found is None:
        return None
    if isinstance(found, str):  # SQLite: an expression's value comes back as text
        found = datetime.fromisoformat(found)
    return utc(found)


@dataclass(frozen=True)
class Result:
    """What became of one row after an attempt; ``token`` is the claim that tried it."""

    row: int
    token: str
    status: str  # sent, deferred, bounced
    error: str | None = None
    relay: str | None = None
    next_attempt_at: datetime | None = None  # deferred
    warned: bool = False  # a delay warning went out with this attempt


_RECORD = (
    update(outbound_queue)
    .where(q.id == bindparam("r_id"), q.lease_token == bindparam("r_token"), PENDING)
    .values(
        status=bindparam("r_status"),
        attempts=q.attempts + 1,
        last_error=bindparam("r_error"),
        relay=bindparam("r_relay"),
        next_attempt_at=func.coalesce(
            bindparam("r_next", type_=q.next_attempt_at.type), q.next_attempt_at
        ),
        done_at=bindparam("r_done", type_=q.done_at.type),
        warned_at=func.coalesce(q.warned_at, bindparam("r_warned", type_=q.warned_at.type)),
        lease_until=None,
        lease_token=None,
    )
)


def held(conn: Connection, rows: dict[int, str]) -> set[int]:
    """Which of ``rows`` (row id → claim token) are pending and still held by that claim,
    locked until the transaction ends (PostgreSQL) so they stay so until written."""
    if not rows:
        return set()
    query = select(q.id, q.lease_token).where(q.id.in_(list(rows)), PENDING)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=outbound_queue)
    return {r.id for r in conn.execute(query) if r.lease_token == rows[r.id]}


def record(conn: Connection, results: Sequence[Result], *, now: datetime) -> set[int]:
    """Write the results of attempts and free the rows' leases. A result whose claim no
    longer holds its row (the lease ran out and another worker took it, or it was sent
    or deleted meanwhile) is ignored; returns the rows written."""
    mine = held(conn, {r.row: r.token for r in results})
    params = [
        {
            "r_id": r.row,
            "r_token": r.token,
            "r_status": r.status,
            "r_error": r.error,
            "r_relay": r.relay,
            "r_next": r.next_attempt_at,
            "r_done": now if r.status in ("sent", "bounced") else None,
            "r_warned": now if r.warned else None,
        }
        for r in results
        if r.row in mine
    ]
    if params:
        conn.execute(_RECORD, params)
    return mine


def warned_before(conn: Connection, message_id: int, sender: str, rows: Collection[int]) -> bool:
    """Whether the sender was told already that this message is late (for recipients
    at another domain): one delay notice per message, as Postfix sends."""
    query = select(q.id).where(
        q.message_id == message_id,
        q.sender == sender,
        q.warned_at.is_not(None),
        q.id.not_in(list(rows)),
    )
    return conn.execute(query.limit(1)).first() is not None


def release(conn: Connection, rows: dict[int, str] | None = None) -> None:
    """Free leases: of ``rows`` (row id → claim token: work handed back unattempted), or
    all of them (SQLite at start: one process works the queue, so a lease still set was
    its dead predecessor's)."""
    query = update(outbound_queue).values(lease_until=None, lease_token=None)
    if rows is None:
        conn.execute(query.where(q.lease_until.is_not(None)))
    elif rows:
        conn.execute(
            query.where(q.id == bindparam("r_id"), q.lease_token == bindparam("r_token")),
            [{"r_id": row, "r_token": token} for row, token in rows.items()],
        )


# --- the operator -----------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedMail:
    id: int
    created_at: datetime
    sender: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    size: int
    subject: str

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["created_at"] = utc(self.created_at).isoformat()
        found["next_attempt_at"] = utc(self.next_attempt_at).isoformat()
        return found


_LISTED = (
    q.id,
    q.created_at,
    q.sender,
    q.recipient,
    q.status,
    q.attempts,
    q.next_attempt_at,
    q.last_error,
    messages.c.size,
    messages.c.subject,
)


async def list_queue(
    db: Database, *, include_done: bool = False, limit: int = 1000
) -> list[QueuedMail]:
    """Oldest first: the mail not yet delivered (and with ``include_done``, the rest)."""
    query = (
        select(*_LISTED).join(messages, messages.c.id == q.message_id).order_by(q.id).limit(limit)
    )
    if not include_done:
        query = query.where(PENDING)
    async with db.read() as conn:
        return [QueuedMail(*row) for row in await conn.execute(query)]


@dataclass(frozen=True)
class QueuedMailDetail:
    """One row as ``govmail queue show`` prints it, with the message's main headers."""

    mail: QueuedMail
    domain: str
    relay: str | None
    warned_at: datetime | None
    done_at: datetime | None
    headers: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.mail.as_dict(),
            "domain": self.domain,
            "relay": self.relay,
            "warned_at": utc(self.warned_at).isoformat() if self.warned_at else None,
            "done_at": utc(self.done_at).isoformat() if self.done_at else None,
            "headers": self.headers,
        }


SHOWN_HEADERS = ("From", "To", "Cc", "Subject", "Date", "Message-ID")


async def show_queued(db: Database, blobs: BlobStore, row_id: int) -> QueuedMailDetail:
    """One row of the queue; raises NotFound if there is no such row."""
    query = (
        select(*_LISTED, q.domain, q.relay, q.warned_at, q.done_at, messages.c.blob)
        .join(messages, messages.c.id == q.message_id)
        .where(q.id == row_id)
    )
    async with db.read() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        raise _no_such_row(row_id)
    raw = blobs.get(row.blob)
    parsed = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    headers = {name: str(parsed[name]) for name in SHOWN_HEADERS if parsed[name] is not None}
    return QueuedMailDetail(
        QueuedMail(*row[:10]), row.domain, row.relay, row.warned_at, row.done_at, headers
    )


async def retry_queued(db: Database, rows: Sequence[int] | None, *, actor: str) -> list[int]:
    """Make pending rows (``rows``, or all with None) due now, as ``postqueue -f`` does,
    freeing leases that ran out (a worker that died holding them); returns the rows
    changed, written to the audit log as ``actor``'s. Raises NotFound naming a row that
    is not pending."""
    async with db.write() as conn:
        now = datetime.now(UTC)
        expired = and_(q.lease_until.is_not(None), q.lease_until < _clock_now(conn, now))
        query = update(outbound_queue).where(PENDING)
        if rows is not None:
            query = query.where(q.id.in_(rows))
        changed = await conn.execute(
            query.values(
                next_attempt_at=now,
                lease_until=case((expired, None), else_=q.lease_until),
                lease_token=case((expired, None), else_=q.lease_token),
            ).returning(q.id)
        )
        done = sorted(r.id for r in changed)
        missing = sorted(set(rows or ()) - set(done))
        if missing:
            raise _no_such_row(missing[0], pending=True)
        await audit.record(conn, actor, "queue.retry", "outbound_queue", rows=done)
    return done


async def delete_queued(db: Database, rows: Sequence[int], *, actor: str) -> list[int]:
    """Remove pending rows from the queue without telling the sender (``postsuper -d``),
    written to the audit log as ``actor``'s; all or none. Sent and bounced rows stay (they
    are the record of what left), and a row a worker is sending right now cannot be
    removed: raises NotFound or Conflict naming the first such row."""
    async with db.write() as conn:
        now = datetime.now(UTC)
        free = or_(q.lease_until.is_(None), q.lease_until < _clock_now(conn, now))
        removed = await conn.execute(
            delete(outbound_queue).where(q.id.in_(rows), PENDING, free).returning(q.id)
        )
        done = sorted(r.id for r in removed)
        left = sorted(set(rows) - set(done))
        if left:
            found = (await conn.execute(select(q.id, q.status).where(q.id == left[0]))).first()
            if found is None:
                raise _no_such_row(left[0])
            if found.status not in ("queued", "deferred"):
                done_vi = "đã gửi đi" if found.status == "sent" else "đã bị trả lại"
                raise Conflict(
                    f"Thư số {left[0]} {done_vi}, không còn chờ trong hàng đợi: chỉ xóa được"
                    " thư đang chờ gửi.",
                    f"Mail {left[0]} is {found.status}, no longer waiting: only pending mail"
                    " can be deleted.",
                    id=left[0],
                )
            raise Conflict(
                f"Thư số {left[0]} đang được gửi đi lúc này; hãy thử xóa lại sau ít phút.",
                f"Mail {left[0]} is being sent right now; try deleting it again in a few minutes.",
                id=left[0],
            )
        await audit.record(conn, actor, "queue.delete", "outbound_queue", rows=done)
    return done


def _clock_now(conn: AsyncConnection, now: datetime) -> ColumnElement[datetime]:
    """The lease clock (see ``_clock``) for the operator's commands."""
    if conn.dialect.name == "postgresql":
        return func.now()
    return literal(now, q.lease_until.type)


def _no_such_row(row_id: int, *, pending: bool = False) -> NotFound:
    if pending:
        return NotFound(
            f"Không có thư số {row_id} đang chờ gửi trong hàng đợi.",
            f"No pending mail {row_id} in the queue.",
            id=row_id,
        )
    return NotFound(
        f"Không có thư số {row_id} trong hàng đợi.", f"No mail {row_id} in the queue.", id=row_id
    )
