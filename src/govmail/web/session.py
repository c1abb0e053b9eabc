"""How a web request becomes a signed-in visit: the session cookie, the gate dependencies
routes declare (``Depends(gate.page)`` for GET, ``Depends(gate.action)`` for POST with the
CSRF checks), and the exceptions that send a visitor to the login or to a step owed."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import Connection, select

from govmail.config import Config
from govmail.directory.accounts import Account, load_account
from govmail.directory.sessions import (
    PENDING_PASSWORD,
    PENDING_TOTP,
    SessionLimits,
    WebSession,
    find_session,
)
from govmail.mailstore.folders import readable_delegations
from govmail.store.database import Database
from govmail.store.schema import roles
from govmail.workflows.roles import Principal, load_principal

COOKIE = "govmail_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Visit:
    """A signed-in request: the session, the account that logged in, and the mailbox being
    viewed (``mailbox_id``: the account's own, or an agency mailbox it is delegated on)."""

    session: WebSession
    account: Account
    mailbox_id: int
    mailbox_address: str
    client: str
    # The roles the account holds (the nav shows the console only to those who may use it;
    # every console page checks again through the workflow principal).
    roles: frozenset[str] = frozenset()

    @property
    def csrf(self) -> str:
        return self.session.csrf_token

    @property
    def console(self) -> bool:
        return bool(self.roles & {"centre_admin", "director"})


class NotSignedIn(Exception):
    """No live session: the app answers with the login page (a redirect)."""


class StepOwed(Exception):
    """The login still owes a step (R7 password change, TOTP): go there first."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class Forbidden(Exception):
    """A state-changing request failed the CSRF or origin check."""


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def secure_request(request: Request) -> bool:
    """Whether the cookie gets Secure: always, except plain HTTP from a loopback client
    (development: `make run` on http://127.0.0.1). A proxy's X-Forwarded-Proto https
    counts as HTTPS; plain HTTP from elsewhere still gets Secure, so a deployment without
    TLS cannot keep a session (the login fails visibly rather than leaking cookies)."""
    if request.url.scheme == "https":
        return True
    if request.headers.get("x-forwarded-proto", "").lower() == "https":
        return True
    return not is_loopback(client_address(request))


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=secure_request(request),
        path="/",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="lax", secure=secure_request(request)
    )


def same_origin(request: Request) -> bool:
    """The request's Origin (or, without one, its Referer) names this very host. One of
    them must be present: every browser sends Origin on a POST."""
    source = request.headers.get("origin")
    if source is None or source == "null":
        source = request.headers.get("referer")
    if not source:
        return False
    parts = urlsplit(source)
    host = request.headers.get("host", "")
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


class Gate:
    """The dependencies that admit a request. ``page`` (GET) wants a finished login;
    ``action`` (POST) also wants the session's CSRF token (form field ``csrf`` or header
    X-CSRF-Token) and a same-origin Origin/Referer; ``owing`` admits a login that still
    owes a step, for the pages of those steps."""

    def __init__(self, db: Database, cfg_limits: SessionLimits, load: AccountLoader) -> None:
        self.db = db
        self.limits = cfg_limits
        self.load = load

    async def session(self, request: Request) -> WebSession | None:
        token = request.cookies.get(COOKIE, "")
        return await find_session(self.db, token, self.limits) if token else None

    async def page(self, request: Request) -> Visit:
        session = await self.session(request)
        if session is None:
            raise NotSignedIn()
        if session.pending == PENDING_PASSWORD:
            raise StepOwed("/password")
        if session.pending == PENDING_TOTP:
            raise StepOwed("/login/totp")
        return await self.load(session, client_address(request))

    async def action(self, request: Request) -> Visit:
        visit = await self.page(request)
        await check_csrf(request, visit.session)
        return visit

    async def owing(self, request: Request) -> Visit:
        """A session in any state (its CSRF token checked on POST)."""
        session = await self.session(request)
        if session is None:
            raise NotSignedIn()
        if request.method == "POST":
            await check_csrf(request, session)
        return await self.load(session, client_address(request))


async def check_csrf(request: Request, session: WebSession) -> None:
    if not same_origin(request):
        raise Forbidden()
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else ""
    if not hmac.compare_digest(given.encode(), session.csrf_token.encode()):
        raise Forbidden()


class AccountLoader:
    """Loads the account behind a session and the address of the mailbox it views."""

    def __init__(self, db: Database, cfg: Config) -> None:
        self.db = db
        self.cfg = cfg

    async def __call__(self, session: WebSession, client: str) -> Visit:
        cfg = self.cfg

        def work(conn: Connection) -> tuple[Account, str, frozenset[str]]:
            account = load_account(conn, cfg, session.mailbox_id)
            address = account.address
            if session.viewing != session.mailbox_id:
                for box, local in readable_delegations(conn, account.person_id):
                    if box == session.viewing:
                        address = f"{local}@{cfg.domain}"
            held = conn.scalars(
                select(roles.c.role).where(roles.c.mailbox_id == session.mailbox_id)
            ).all()
            return account, address, frozenset(held)

        account, address, held = await self.db.run(work, write=False, brief=True)
        return Visit(session, account, session.viewing, address, client, held)


async def principal_of(db: Database, visit: Visit) -> Principal:
    """The workflow principal of a signed-in visit: the account that logged in (never the
    agency mailbox it may be viewing), its roles, audited with its address and client IP."""
    async with db.read() as conn:
        return await load_principal(
            conn, visit.account.mailbox_id, actor=visit.account.address, source=visit.client
        )
