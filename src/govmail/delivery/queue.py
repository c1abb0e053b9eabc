"""The outbound queue's rows: the workers claim due mail and record what became of it;
the operator lists, shows, retries and deletes (``govmail queue ...``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, or_, select, text, update

from govmail.core.errors import NotFound
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
    transaction with a RCPT TO for each."""

    message_id: int
    blob: str
    sender: str
    domain: str
    created_at: datetime
    warned: bool
    rows: dict[int, str] = field(default_factory=dict)  # row id → recipient
    attempts: dict[int, int] = field(default_factory=dict)  # row id → attempts so far


_DUE = (
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
    .where(
        PENDING,
        q.next_attempt_at <= bindparam("now"),
        or_(q.lease_until.is_(None), q.lease_until < bindparam("now")),
    )
    .order_by(q.next_attempt_at, q.id)
    .limit(bindparam("limit"))
)
# Another node's claim in progress is skipped, not waited for.
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True, of=outbound_queue)
_LEASE = (
    update(outbound_queue)
    .where(q.id.in_(bindparam("ids", expanding=True)))
    .values(lease_until=bindparam("until"))
)


def claim_due(conn: Connection, *, now: datetime, lease_s: float, limit: int) -> list[Job]:
    """Take up to ``limit`` due rows for this worker until ``now + lease_s`` (no other
    worker or node sends them meanwhile), grouped into jobs. The caller's transaction
    must be short: it is committed before any SMTP is spoken."""
    query = _DUE_LOCKED if conn.dialect.name == "postgresql" else _DUE
    rows = conn.execute(query, {"now": now, "limit": limit}).all()
    if not rows:
        return []
    conn.execute(_LEASE, {"ids": [r.id for r in rows], "until": now + timedelta(seconds=lease_s)})
    jobs: dict[tuple[int, str, str], Job] = {}
    for r in rows:
        key = (r.message_id, r.sender, r.domain)
        job = jobs.get(key)
        if job is None:
            job = jobs[key] = Job(
                r.message_id, r.blob, r.sender, r.domain, utc(r.created_at), False
            )
        job.warned = job.warned or r.warned_at is not None
        job.rows[r.id] = r.recipient
        job.attempts[r.id] = r.attempts
    return list(jobs.values())


def next_due(conn: Connection) -> datetime | None:
    """When the earliest pending row not taken by a worker is due (None: nothing waits)."""
    found = conn.execute(
        select(func.min(q.next_attempt_at)).where(PENDING, q.lease_until.is_(None))
    ).scalar()
    return None if found is None else utc(found)


@dataclass(frozen=True)
class Result:
    """What became of one row after an attempt."""

    row: int
    status: str  # sent, deferred, bounced
    error: str | None = None
    relay: str | None = None
    next_attempt_at: datetime | None = None  # deferred
    warned: bool = False  # a delay warning went out with this attempt


_RECORD = (
    update(outbound_queue)
    .where(q.id == bindparam("r_id"))
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
    )
)


def record(conn: Connection, results: Sequence[Result], *, now: datetime) -> None:
    """Write the results of one attempt and free the rows' leases."""
    conn.execute(
        _RECORD,
        [
            {
                "r_id": r.row,
                "r_status": r.status,
                "r_error": r.error,
                "r_relay": r.relay,
                "r_next": r.next_attempt_at,
                "r_done": now if r.status in ("sent", "bounced") else None,
                "r_warned": now if r.warned else None,
            }
            for r in results
        ],
    )


def release(conn: Connection, rows: Sequence[int] | None = None) -> None:
    """Free leases: of ``rows`` (work handed back at shutdown), or all of them (SQLite at
    start: one process works the queue, so a lease still set was its dead predecessor's)."""
    query = update(outbound_queue).values(lease_until=None)
    if rows is None:
        conn.execute(query.where(q.lease_until.is_not(None)))
    elif rows:
        conn.execute(query.where(q.id.in_(rows)))


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


async def retry_queued(db: Database, rows: Sequence[int] | None) -> list[int]:
    """Make pending rows (``rows``, or all with None) due now, as ``postqueue -f`` does;
    returns the rows changed. Raises NotFound naming a row that is not pending."""
    async with db.write() as conn:
        query = update(outbound_queue).where(PENDING)
        if rows is not None:
            query = query.where(q.id.in_(rows))
        changed = await conn.execute(
            query.values(next_attempt_at=datetime.now(UTC)).returning(q.id)
        )
        done = sorted(r.id for r in changed)
        missing = sorted(set(rows or ()) - set(done))
        if missing:
            raise _no_such_row(missing[0], pending=True)
    return done


async def delete_queued(db: Database, rows: Sequence[int]) -> list[int]:
    """Remove rows from the queue without telling the sender (``postsuper -d``); all or
    none: raises NotFound naming a row that does not exist."""
    async with db.write() as conn:
        removed = await conn.execute(delete(outbound_queue).where(q.id.in_(rows)).returning(q.id))
        done = sorted(r.id for r in removed)
        missing = sorted(set(rows) - set(done))
        if missing:
            raise _no_such_row(missing[0])
    return done


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
