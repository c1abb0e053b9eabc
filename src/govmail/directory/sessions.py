"""Webmail sign-in state in the database: sessions (token hashes, idle and absolute expiry,
logout everywhere), the password change a login may owe (R7) and optional TOTP two-factor."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from sqlalchemy import Connection, bindparam, delete, insert, select, update

from govmail.core.errors import InvalidInput
from govmail.directory.passwords import MIN_LENGTH, hash_password, verify_password
from govmail.mailstore.folders import ensure_default_folders, readable_delegations
from govmail.store import audit
from govmail.store.database import Database
from govmail.store.schema import audit_log, mailboxes, totp_secrets, web_sessions

PENDING_PASSWORD = "password"  # R7: the password must be changed before anything else
PENDING_TOTP = "totp"  # the second factor is still to be given
TOKEN_BYTES = 32
MAX_PASSWORD = 1024  # argon2 of a megabyte "password" is a denial of service, not a login
# last_seen_at is written at most this often: a page view is a read, not a write.
_TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionLimits:
    """How long a session lives: ``idle_s`` without a request, ``lifetime_s`` in all."""

    idle_s: float = 3600.0
    lifetime_s: float = 12 * 3600.0


@dataclass(frozen=True)
class WebSession:
    """A live session. ``mailbox_id`` is who signed in; ``viewing`` the mailbox shown
    (the own one, or an agency mailbox the owner may read, R22)."""

    id: int
    mailbox_id: int
    csrf_token: str
    pending: str | None
    viewing: int
    created_at: datetime


@dataclass(frozen=True)
class NewSession:
    token: str  # for the cookie only; the database keeps its hash
    session: WebSession


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    # SQLite gives back naive values; the store writes UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def open_session(
    db: Database,
    mailbox_id: int,
    *,
    pending: str | None,
    client_address: str,
    user_agent: str,
    limits: SessionLimits,
) -> NewSession:
    """A new session for a mailbox whose password was just checked; its default
    folders are made now, so the first page is a read."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    csrf = secrets.token_urlsafe(TOKEN_BYTES)
    at = _now()

    def work(conn: Connection) -> int:
        ensure_default_folders(conn, [mailbox_id])
        return int(
            conn.execute(
                insert(web_sessions)
                .values(
                    token_hash=token_hash(token),
                    mailbox_id=mailbox_id,
                    csrf_token=csrf,
                    pending=pending,
                    client_address=client_address[:64],
                    user_agent=user_agent[:200],
                    created_at=at,
                    last_seen_at=at,
                    expires_at=at + timedelta(seconds=limits.lifetime_s),
                )
                .returning(web_sessions.c.id)
            ).scalar_one()
        )

    session_id = await db.run(work, write=True)
    return NewSession(token, WebSession(session_id, mailbox_id, csrf, pending, mailbox_id, at))


_FIND = (
    select(
        web_sessions.c.id,
        web_sessions.c.mailbox_id,
        web_sessions.c.csrf_token,
        web_sessions.c.pending,
        web_sessions.c.current_mailbox_id,
        web_sessions.c.created_at,
        web_sessions.c.last_seen_at,
        web_sessions.c.expires_at,
        mailboxes.c.person_id,
    )
    .join(mailboxes, mailboxes.c.id == web_sessions.c.mailbox_id)
    .where(web_sessions.c.token_hash == bindparam("hash"), mailboxes.c.status == "active")
)


async def find_session(db: Database, token: str, limits: SessionLimits) -> WebSession | None:
    """The live session of a cookie's token; None if unknown, expired (idle or absolute)
    or its mailbox is no longer active. Expired rows are deleted when met."""
    if not token or len(token) > 128:
        return None
    digest = token_hash(token)
    row = await db.run(
        lambda conn: conn.execute(_FIND, {"hash": digest}).first(), write=False, brief=True
    )
    if row is None:
        return None
    at = _now()
    idle_until = _utc(row.last_seen_at) + timedelta(seconds=limits.idle_s)
    if at >= _utc(row.expires_at) or at >= idle_until:
        await db.run(
            lambda conn: conn.execute(delete(web_sessions).where(web_sessions.c.id == row.id)),
            write=True,
        )
        return None
    viewing = row.mailbox_id
    if row.current_mailbox_id is not None and row.current_mailbox_id != row.mailbox_id:
        # A delegation revoked since the switch sends the reader back to their own box.
        readable = await db.run(
            lambda conn: readable_delegations(conn, row.person_id), write=False, brief=True
        )
        if any(box == row.current_mailbox_id for box, _ in readable):
            viewing = row.current_mailbox_id
    if at - _utc(row.last_seen_at) >= _TOUCH_EVERY:
        await db.run(
            lambda conn: conn.execute(
                update(web_sessions).where(web_sessions.c.id == row.id).values(last_seen_at=at)
            ),
            write=True,
        )
    return WebSession(
        row.id, row.mailbox_id, row.csrf_token, row.pending, viewing, _utc(row.created_at)
    )


async def close_session(db: Database, token: str) -> None:
    """Log out one browser."""
    digest = token_hash(token)
    await db.run(
        lambda conn: conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == digest)),
        write=True,
    )


async def close_all_sessions(db: Database, mailbox_id: int, *, keep: int | None = None) -> int:
    """Log the mailbox out everywhere (but session ``keep``); returns how many ended."""

    def work(conn: Connection) -> int:
        query = delete(web_sessions).where(web_sessions.c.mailbox_id == mailbox_id)
        if keep is not None:
            query = query.where(web_sessions.c.id != keep)
        return int(conn.execute(query).rowcount or 0)

    return await db.run(work, write=True)


async def set_pending(db: Database, session_id: int, pending: str | None) -> None:
    await db.run(
        lambda conn: conn.execute(
            update(web_sessions).where(web_sessions.c.id == session_id).values(pending=pending)
        ),
        write=True,
    )


async def switch_mailbox(
    db: Database, session: WebSession, person_id: int | None, mailbox_id: int
) -> bool:
    """View ``mailbox_id`` from now on: the own mailbox, or an agency mailbox the owner
    may read (R22). False (nothing changed) for any other mailbox."""

    def work(conn: Connection) -> bool:
        if mailbox_id != session.mailbox_id and not any(
            box == mailbox_id for box, _ in readable_delegations(conn, person_id)
        ):
            return False
        ensure_default_folders(conn, [mailbox_id])
        conn.execute(
            update(web_sessions)
            .where(web_sessions.c.id == session.id)
            .values(current_mailbox_id=None if mailbox_id == session.mailbox_id else mailbox_id)
        )
        return True

    return await db.run(work, write=True)


# --- password change (R7) ------------------------------------------------------------------


async def change_password(
    db: Database,
    mailbox_id: int,
    new: str,
    *,
    current: str | None,
    actor: str,
    keep_session: int | None = None,
) -> None:
    """Set a mailbox's password chosen by its owner and clear must_change_password.

    ``current`` is checked when given (a voluntary change); a login that owes the change
    has just proved it. The new password needs MIN_LENGTH characters and must differ from
    the old one. Every other session of the mailbox ends (a thief's included).
    Raises InvalidInput with the reason."""
    if len(new) > MAX_PASSWORD:
        raise InvalidInput("Mật khẩu quá dài.", "The password is too long.")
    if len(new) < MIN_LENGTH:
        raise InvalidInput(
            f"Mật khẩu mới phải có ít nhất {MIN_LENGTH} ký tự.",
            f"The new password needs at least {MIN_LENGTH} characters.",
        )
    old_hash = await db.run(
        lambda conn: conn.execute(
            select(mailboxes.c.password_hash).where(mailboxes.c.id == mailbox_id)
        ).scalar_one(),
        write=False,
    )
    if current is not None and not await asyncio.to_thread(
        verify_password, old_hash, current[:MAX_PASSWORD]
    ):
        raise InvalidInput("Mật khẩu hiện tại không đúng.", "The current password is wrong.")
    if await asyncio.to_thread(verify_password, old_hash, new):
        raise InvalidInput(
            "Mật khẩu mới phải khác mật khẩu cũ.", "The new password must differ from the old one."
        )
    new_hash = await asyncio.to_thread(hash_password, new)

    def work(conn: Connection) -> None:
        conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == mailbox_id)
            .values(password_hash=new_hash, must_change_password=False)
        )
        query = delete(web_sessions).where(web_sessions.c.mailbox_id == mailbox_id)
        if keep_session is not None:
            query = query.where(web_sessions.c.id != keep_session)
            conn.execute(
                update(web_sessions)
                .where(
                    web_sessions.c.id == keep_session, web_sessions.c.pending == PENDING_PASSWORD
                )
                .values(pending=None)
            )
        conn.execute(query)
        _audit(conn, actor, "mailbox.change_password", actor)

    await db.run(work, write=True)


def _audit(conn: Connection, actor: str, action: str, target: str, **details: Any) -> None:
    conn.execute(
        insert(audit_log).values(
            at=audit.now(), actor=actor, action=action, target=target, details=details
        )
    )


async def owes_password_change(db: Database, mailbox_id: int) -> bool:
    """Whether the mailbox's password must be changed before it is used (R7)."""
    flag = await db.run(
        lambda conn: conn.execute(
            select(mailboxes.c.must_change_password).where(mailboxes.c.id == mailbox_id)
        ).scalar(),
        write=False,
        brief=True,
    )
    return bool(flag)


# --- TOTP two-factor -----------------------------------------------------------------------

TOTP_ISSUER = "govmail"


@dataclass(frozen=True)
class TotpState:
    enabled: bool
    secret: str | None  # shown while being set up; None once enabled or when absent


async def totp_state(db: Database, mailbox_id: int) -> TotpState:
    row = await db.run(
        lambda conn: conn.execute(
            select(totp_secrets.c.secret, totp_secrets.c.enabled).where(
                totp_secrets.c.mailbox_id == mailbox_id
            )
        ).first(),
        write=False,
        brief=True,
    )
    if row is None:
        return TotpState(False, None)
    return TotpState(bool(row.enabled), None if row.enabled else str(row.secret))


async def begin_totp(db: Database, mailbox_id: int) -> str:
    """A new secret for the mailbox, not used at login until confirmed; returns it."""
    secret = pyotp.random_base32()

    def work(conn: Connection) -> None:
        conn.execute(delete(totp_secrets).where(totp_secrets.c.mailbox_id == mailbox_id))
        conn.execute(
            insert(totp_secrets).values(
                mailbox_id=mailbox_id, secret=secret, enabled=False, created_at=audit.now()
            )
        )

    await db.run(work, write=True)
    return secret


def provisioning_uri(secret: str, address: str) -> str:
    """The otpauth:// URI authenticator apps take (typed or pasted)."""
    return pyotp.TOTP(secret).provisioning_uri(name=address, issuer_name=TOTP_ISSUER)


async def check_totp(db: Database, mailbox_id: int, code: str, *, enabling: bool = False) -> bool:
    """Whether ``code`` is the current code of the mailbox's secret (one step of clock
    drift either way). A code is accepted once. With ``enabling`` the pending secret is
    checked and, if right, switched on."""
    code = "".join(code.split())
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return False
    at = _now()

    def work(conn: Connection) -> bool:
        row = conn.execute(
            select(totp_secrets.c.secret, totp_secrets.c.enabled, totp_secrets.c.last_step).where(
                totp_secrets.c.mailbox_id == mailbox_id
            )
        ).first()
        if row is None or bool(row.enabled) == enabling:
            return False
        totp = pyotp.TOTP(row.secret)
        step = int(at.timestamp()) // totp.interval
        for candidate in (step, step - 1, step + 1):
            if candidate > row.last_step and secrets.compare_digest(
                totp.generate_otp(candidate), code
            ):
                # Conditional: of two requests racing with one code, one wins (replay).
                used = conn.execute(
                    update(totp_secrets)
                    .where(
                        totp_secrets.c.mailbox_id == mailbox_id,
                        totp_secrets.c.last_step < candidate,
                    )
                    .values(last_step=candidate, enabled=True)
                ).rowcount
                return bool(used == 1)
        return False

    return await db.run(work, write=True)


async def totp_enabled(db: Database, mailbox_id: int) -> bool:
    return (await totp_state(db, mailbox_id)).enabled


async def disable_totp(db: Database, mailbox_id: int) -> None:
    await db.run(
        lambda conn: conn.execute(
            delete(totp_secrets).where(totp_secrets.c.mailbox_id == mailbox_id)
        ),
        write=True,
    )
