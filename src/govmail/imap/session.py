"""One IMAP connection: bytes in through the pure receiver, one command at a time through
the command table, responses out; the selected folder kept in step with the store.

A session is an ``asyncio.Protocol`` with no task of its own while it waits: ten
thousand clients sitting in IDLE cost their buffers and this object, nothing more. A
task runs only while there are commands to answer or changes to push.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar, cast

from govmail.core.errors import GovmailError
from govmail.core.vietnamese import ascii_vietnamese
from govmail.directory.accounts import Account
from govmail.imap.namespace import SHARED, Namespace
from govmail.imap.proto.model import (
    Append,
    Arguments,
    BadRequest,
    Continue,
    CopyMove,
    Event,
    Line,
    MailboxArg,
    Rename,
    Request,
    StatusArgs,
)
from govmail.imap.proto.receiver import Receiver
from govmail.imap.selected import SelectedFolder
from govmail.mailstore.folders import readable_delegations
from govmail.mailstore.messages import changes_since

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from govmail.imap.server import ImapServer

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BAD = 20  # BAD answers after which the client is cut off (like SMTP's error limit)
# How stale a session's list of delegated agency mailboxes may get before a command
# checks it again; naming a shared folder always checks (a revocation is immediate).
DELEGATIONS_TTL_S = 30.0


class State(Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


@dataclass(frozen=True)
class Reply:
    """The tagged answer to a command."""

    status: str = "OK"  # OK, NO, BAD
    text: str = "Completed"
    code: str | None = None


# A command's function: the tagged reply, or None when it has answered (or will answer)
# by itself (IDLE, AUTHENTICATE waiting for the client, STARTTLS).
Handler = Callable[["Session", Request], Awaitable["Reply | None"]]


class Session(asyncio.Protocol):
    """The state of one client connection (RFC 9051 §3)."""

    def __init__(self, server: ImapServer, *, implicit_tls: bool) -> None:
        self.server = server
        limits = server.cfg.imap
        self.receiver = Receiver(
            max_line=limits.max_line_bytes,
            max_append_literal=server.cfg.smtp.max_message_bytes,
            max_pipelined=limits.max_pipelined,
        )
        self.transport: asyncio.Transport | None = None
        self.tls = implicit_tls
        self.peer = ""
        self.state = State.NOT_AUTHENTICATED
        self.account: Account | None = None
        self.namespace: Namespace | None = None
        self.selected: SelectedFolder | None = None
        self.enabled: set[str] = set()
        self.idle_tag: str | None = None
        self.authenticating: tuple[str, str] | None = None  # (tag, mechanism)
        self.last_active = time.monotonic()
        self._events: deque[Event] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._pusher: asyncio.Task[None] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._bad = 0
        self._closed = False
        self._reading_paused = False
        self._watching: set[int] = set()
        self._syncing = asyncio.Lock()
        self._delegations_checked = time.monotonic()
        self._farewell: bytes | None = None  # BYE to send once the current reply is out

    # --- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else ""
        refusal = self.server.admit(self)
        if refusal is not None:
            self.transport.write(b"* BYE " + refusal.encode() + b"\r\n")
            self.transport.close()
            self._closed = True
            return
        self.write(b"* OK [CAPABILITY " + self.server.capabilities(self) + b"] govmail ready.\r\n")

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self.last_active = time.monotonic()
        self._events.extend(self.receiver.feed(data))
        if len(self._events) > self.server.cfg.imap.max_pipelined and self.transport is not None:
            self.transport.pause_reading()
            self._reading_paused = True
        self._kick()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._writable.set()
        self.idle_tag = None
        for box in self._watching:
            self.server.store.changes.unsubscribe(box, self._on_change)
        self._watching.clear()
        self.server.leave(self)
        for task in (self._worker, self._pusher):
            if task is not None and not task.done():
                task.cancel()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # --- writing ----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self._closed:
            self.transport.write(data)

    def write_many(self, chunks: list[bytes]) -> None:
        if chunks and self.transport is not None and not self._closed:
            self.transport.writelines(chunks)

    async def drain(self) -> None:
        """Wait while the client is slow to read what was written (bounded buffers)."""
        if not self._writable.is_set():
            await self._writable.wait()
        if self._closed:
            raise ConnectionResetError()

    def refusal(self, error: GovmailError, code: str) -> Reply:
        """``NO [code]`` with a domain error's texts."""
        return Reply("NO", self.text(error.message_vi, error.message_en), code)

    def text(self, vi: str, en: str) -> str:
        """A human-readable response text: Vietnamese then English, ASCII unless the
        client accepts UTF-8."""
        both = f"{vi} / {en}"
        return both if self.utf8 else ascii_vietnamese(both)

    @property
    def in_shared_folder(self) -> bool:
        return self.selected is not None and self.selected.place.shared is not None

    @property
    def utf8(self) -> bool:
        return "UTF8=ACCEPT" in self.enabled or "IMAP4REV2" in self.enabled

    @property
    def rev2(self) -> bool:
        return "IMAP4REV2" in self.enabled

    @property
    def condstore(self) -> bool:
        return "CONDSTORE" in self.enabled

    @property
    def secure(self) -> bool:
        """TLS, or a loopback client (treated as secured, as Dovecot does)."""
        return self.tls or self.peer in ("127.0.0.1", "::1") or self.peer.startswith("127.")

    def close(self, farewell: bytes | None = None) -> None:
        if farewell:
            self.write(farewell)
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    # --- the command loop ---------------------------------------------------------------

    def _kick(self) -> None:
        if self._events and (self._worker is None or self._worker.done()):
            self._worker = asyncio.create_task(self._work())

    async def _work(self) -> None:
        try:
            while self._events and not self._closed:
                event = self._events.popleft()
                await self._handle(event)
                if not self._events:
                    self._events.extend(self.receiver.feed(b""))
                if self._reading_paused and len(self._events) < 10 and self.transport:
                    self._reading_paused = False
                    self.transport.resume_reading()
        except (ConnectionError, asyncio.CancelledError):
            self.close()
        except Exception:
            log.exception("IMAP session failed (%s)", self.peer)
            self.close(b"* BYE Internal error, closing connection.\r\n")

    async def _handle(self, event: Event) -> None:
        if isinstance(event, Request):
            await self._dispatch(event)
        elif isinstance(event, Continue):
            await self._continue(event)
        elif isinstance(event, Line):
            await self.server.commands.line(self, event.data)
        elif isinstance(event, BadRequest):
            await self._bad_request(event)

    async def _continue(self, event: Continue) -> None:
        # The receiver has checked the size (and allows big ones only after login).
        self.write(b"+ OK\r\n")

    async def _bad_request(self, event: BadRequest) -> None:
        if event.fatal:
            self.close(b"* BYE " + event.text.encode("ascii", "replace") + b"\r\n")
            return
        status = "NO" if event.code == "TOOBIG" else "BAD"
        await self.reply(event.tag or "*", Reply(status, event.text, event.code), counted=True)

    async def _dispatch(self, request: Request) -> None:
        command = self.server.commands.find(request.name)
        if command is None:
            await self.reply(request.tag, Reply("BAD", "Unknown command"), counted=True)
            return
        if self.state not in command.states:
            await self.reply(
                request.tag,
                Reply("BAD", f"{request.name} is not allowed in the {self.state.value} state"),
                counted=True,
            )
            return
        if self.namespace is not None:
            await self.refresh_delegations(force=_names_shared(request.args))
            if self._closed:
                return
        answer = await command.handler(self, request)
        selected = self.selected
        if (
            selected is not None
            and self.state is State.SELECTED
            and not self._closed
            and (command.syncs or selected.dirty)
        ):
            await self.sync(allow_expunge=not (command.uses_seqs and not request.uid))
        if answer is not None:
            await self.reply(request.tag, answer)
        if self.state is State.LOGOUT or self._farewell:
            self.close(self._farewell)

    def discard_pending(self) -> None:
        """Forget commands read but not yet run (sent in the clear before STARTTLS)."""
        self._events.clear()

    async def reply(self, tag: str, answer: Reply, *, counted: bool = False) -> None:
        code = f"[{answer.code}] " if answer.code else ""
        self.write(f"{tag} {answer.status} {code}{answer.text}\r\n".encode("utf-8", "replace"))
        if answer.status == "BAD" and counted:
            self._bad += 1
            if self._bad >= MAX_BAD:
                self.close(b"* BYE Too many invalid commands.\r\n")

    # --- the store and the selected folder ------------------------------------------------

    async def read(self, work: Callable[[Connection], T]) -> T:
        """A short read of the store (IMAP's reads are all indexed and per folder)."""
        return await self.server.db.run(work, write=False, brief=True)

    async def write_txn(self, work: Callable[[Connection], T]) -> T:
        return await self.server.db.run(work, write=True)

    def watch(self, mailbox_id: int) -> None:
        """Be told (``dirty``, or a push in IDLE) when this mailbox changes."""
        if mailbox_id not in self._watching:
            self._watching.add(mailbox_id)
            self.server.store.changes.subscribe(mailbox_id, self._on_change)

    def unwatch_all(self) -> None:
        for box in self._watching:
            self.server.store.changes.unsubscribe(box, self._on_change)
        self._watching.clear()

    def _on_change(self, mailbox_id: int) -> None:
        selected = self.selected
        if selected is None or selected.mailbox_id != mailbox_id:
            return
        selected.dirty = True
        selected.generation += 1
        if self.idle_tag is not None and (self._pusher is None or self._pusher.done()):
            self._pusher = asyncio.create_task(self._push())

    async def _push(self) -> None:
        try:
            # Coalesce a burst (a delivery to Sent and INBOX, a STORE on many messages);
            # go on while changes keep coming in during a sync.
            while (
                self.idle_tag is not None
                and not self._closed
                and self.selected is not None
                and self.selected.dirty
            ):
                await asyncio.sleep(0.02)
                await self.sync(allow_expunge=True, idle_only=True)
        except (ConnectionError, asyncio.CancelledError):
            self.close()
        except Exception:
            log.exception("IMAP IDLE push failed (%s)", self.peer)

    async def sync(self, *, allow_expunge: bool, idle_only: bool = False) -> None:
        """Tell the client what changed in the selected folder since it last heard.

        One sync at a time (an IDLE push may be reading when DONE arrives); a push
        (``idle_only``) that finds IDLE over writes nothing and leaves the folder dirty,
        so no EXPUNGE ever goes out between commands.
        """
        async with self._syncing:
            selected = self.selected
            if selected is None:
                return
            seen = selected.generation
            changes = await self.read(
                lambda conn: changes_since(conn, selected.folder_id, selected.modseq)
            )
            if self.selected is not selected or self._closed:
                return
            if idle_only and self.idle_tag is None:
                selected.dirty = True
                return
            if changes is None:
                # The folder was deleted under us: nothing more can be said about it.
                # The command under way still gets its answer first.
                self._farewell = b"* BYE The selected folder was deleted.\r\n"
                if idle_only:
                    self.close(self._farewell)
                return
            out = selected.apply(changes, allow_expunge=allow_expunge, condstore=self.condstore)
            if out is not None:
                # Still dirty if a change was announced while we were reading.
                selected.dirty = selected.generation != seen
            if out:
                self.write(b"".join(out))

    async def refresh_delegations(self, *, force: bool = False) -> None:
        """Re-read which agency mailboxes this person may use (R22): a delegation
        revoked while the session is open stops working. A session that has a revoked
        agency folder selected is ended."""
        namespace, account = self.namespace, self.account
        if namespace is None or account is None:
            return
        now = time.monotonic()
        if not force and now - self._delegations_checked < DELEGATIONS_TTL_S:
            return
        self._delegations_checked = now
        person = account.person_id
        rows = await self.read(lambda conn: readable_delegations(conn, person))
        current = {local: box for box, local in rows}
        if current == namespace.delegated:
            return
        namespace.delegated = current
        selected = self.selected
        if selected is None or selected.place.shared is None:
            return
        if current.get(selected.place.shared) != selected.mailbox_id:
            revoked = self.text(
                "Quyền dùng hộp thư cơ quan đã bị thu hồi.",
                "Access to the agency mailbox was revoked.",
            )
            self.close(b"* BYE " + revoked.encode() + b"\r\n")

    def audit_access(self, action: str, **details: Any) -> None:
        """Record an access to a delegated agency mailbox (R22)."""
        self.server.audit_delegated(self, action, details)


def _names_shared(args: Arguments) -> bool:
    """Whether a command names a folder in the shared namespace."""
    if isinstance(args, MailboxArg | StatusArgs | CopyMove | Append):
        names = [args.mailbox]
    elif isinstance(args, Rename):
        names = [args.old, args.new]
    else:
        return False
    return any(name == SHARED or name.startswith(SHARED + "/") for name in names)
