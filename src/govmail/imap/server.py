"""The IMAP service of ``govmail serve``: listeners, connection limits, capabilities and
what every session shares (store, authenticator, access log, rendered-envelope cache)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections import Counter, OrderedDict
from functools import partial

from govmail import __version__
from govmail.config import Config
from govmail.directory.accounts import Authenticator
from govmail.imap.commands import COMMANDS, CommandTable
from govmail.imap.session import Session, State
from govmail.mailstore.access import AccessLog, DelegatedAccess
from govmail.mailstore.service import MailStore
from govmail.store.database import Database

# Extensions, in the order Dovecot lists them.
_AUTHENTICATED_CAPABILITIES = (
    b"IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT CHILDREN"
    b" LIST-EXTENDED LIST-STATUS SPECIAL-USE CREATE-SPECIAL-USE UIDPLUS MOVE ESEARCH"
    b" CONDSTORE QUOTA QUOTA=RES-STORAGE BINARY MULTIAPPEND STATUS=SIZE UTF8=ACCEPT"
)


class ImapServer:
    """Everything the sessions of one process share."""

    def __init__(
        self,
        cfg: Config,
        store: MailStore,
        auth: Authenticator,
        access: AccessLog,
        tls: ssl.SSLContext | None,
        commands: CommandTable = COMMANDS,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self.db: Database = store.db
        self.blobs = store.blobs
        self.auth = auth
        self.access = access
        self.tls = tls
        self.commands = commands
        self.sessions: set[Session] = set()
        self._per_ip: Counter[str] = Counter()
        self._per_user: Counter[int] = Counter()
        self.envelopes: OrderedDict[int, bytes] = OrderedDict()
        self._reaper: asyncio.Task[None] | None = None
        self._checks: set[asyncio.Task[None]] = set()
        self.version = __version__

    # --- connections ---------------------------------------------------------------------

    def admit(self, session: Session) -> str | None:
        """Count a new connection; the BYE text if it is one too many from its address."""
        if self._per_ip[session.peer] >= self.cfg.imap.max_connections_per_ip:
            return "Too many connections from your address."
        self._per_ip[session.peer] += 1
        self.sessions.add(session)
        return None

    def logged_in(self, session: Session, mailbox_id: int) -> bool:
        """Count a login; False if the user has too many connections already."""
        if self._per_user[mailbox_id] >= self.cfg.imap.max_connections_per_user:
            return False
        self._per_user[mailbox_id] += 1
        return True

    def leave(self, session: Session) -> None:
        if session in self.sessions:
            self.sessions.discard(session)
            self._per_ip[session.peer] -= 1
            if self._per_ip[session.peer] <= 0:
                del self._per_ip[session.peer]
            if session.account is not None and session.state is not State.NOT_AUTHENTICATED:
                box = session.account.mailbox_id
                self._per_user[box] -= 1
                if self._per_user[box] <= 0:
                    del self._per_user[box]

    def capabilities(self, session: Session) -> bytes:
        if session.state is not State.NOT_AUTHENTICATED:
            return _AUTHENTICATED_CAPABILITIES + b" APPENDLIMIT=%d" % (
                self.cfg.smtp.max_message_bytes
            )
        words = b"IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE"
        if self.tls is not None and not session.tls:
            words += b" STARTTLS"
        return words + (b" AUTH=PLAIN" if session.secure else b" LOGINDISABLED")

    def audit_delegated(self, session: Session, action: str, details: dict[str, object]) -> None:
        if session.account is None:
            return
        target = details.get("agency", "")
        self.access.audit(
            DelegatedAccess(
                actor=session.account.address,
                target=f"{target}@{self.cfg.domain}",
                action=f"imap.{action}",
                details={**details, "client": session.peer},
            )
        )

    # --- lifetime ------------------------------------------------------------------------

    def start_reaper(self) -> None:
        self._reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        """Log out sessions idle past the limit (RFC 9051 §5.4: 30 minutes); IDLE
        counts as activity only while the client refreshes it."""
        limit = self.cfg.imap.idle_timeout_s
        while True:
            await asyncio.sleep(min(60.0, limit / 4))
            horizon = time.monotonic() - limit
            for session in list(self.sessions):
                if session.last_active < horizon:
                    session.close(b"* BYE Autologout; idle for too long.\r\n")
                elif session.idle_tag is not None and session.in_shared_folder:
                    # Sitting in IDLE sends no commands: check its delegation here.
                    self._checks.add(asyncio.create_task(session.refresh_delegations()))
            self._checks = {task for task in self._checks if not task.done()}

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for session in list(self.sessions):
            session.close(b"* BYE Server shutting down.\r\n")
        await self.access.flush()


async def start_imap(server: ImapServer, sockets: dict[str, socket.socket]) -> list[asyncio.Server]:
    """One asyncio server per IMAP socket given ('imap': STARTTLS, 'imaps': TLS)."""
    loop = asyncio.get_running_loop()
    servers = []
    for name, sock in sockets.items():
        implicit = name == "imaps"
        servers.append(
            await loop.create_server(
                partial(Session, server, implicit_tls=implicit),
                sock=sock,
                ssl=server.tls if implicit else None,
                ssl_handshake_timeout=10.0 if implicit else None,
                start_serving=True,
            )
        )
    server.start_reaper()
    return servers
