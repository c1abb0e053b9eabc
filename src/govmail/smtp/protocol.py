"""aiosmtpd's SMTP protocol, tightened where a public MX and submission server need it:
DATA that ends only at <CR><LF>.<CR><LF>, connection limits per client address,
enhanced status codes on every reply, implicit TLS counted as secured."""

from __future__ import annotations

import asyncio
import re
import ssl
from asyncio import sslproto
from collections import Counter, defaultdict
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, _AuthMechAttr, login_always_fail

from govmail.config import MB, SmtpLimits
from govmail.directory.accounts import client_key
from govmail.mailstore.recipients import LocalRecipient
from govmail.smtp.replies import reply, with_enhanced_code

_BARE_LF = re.compile(rb"(?<!\r)\n")
_AUTH_PARAMETER = re.compile(r"\s+AUTH=\S*", re.IGNORECASE)
# <dot-atom@domain> followed by parameters: what the stdlib parser would return as is.
_SIMPLE_PATH = re.compile(
    r"\s*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)>"
    r"\s*(.*)\Z",
    re.DOTALL,
)
# A command line is refused past 512 octets (RFC 5321 plus extensions); this only bounds
# how much of one line is buffered before that refusal.
_READ_LIMIT = 64 * 1024
_HANDSHAKE_TIMEOUT = 10.0  # seconds a client may take to finish the TLS handshake
# The commands aiosmtpd implements (its smtp_* methods), plus none of ours.
_SMTP_VERBS = tuple(sorted(name[5:] for name in dir(SMTP) if name.startswith("smtp_")))


class GovEnvelope(Envelope):
    """aiosmtpd's envelope plus what RCPT decided, so DATA needs no second lookup."""

    def __init__(self) -> None:
        super().__init__()
        self.local: dict[int, str] = {}  # mailbox id → the address it was reached by
        self.seen: dict[int, LocalRecipient] = {}  # each one's state at RCPT time
        self.remote: list[str] = []
        self.declared_size = 0


@dataclass(frozen=True)
class HandlerTables:
    """aiosmtpd's AUTH mechanism and hook tables for one handler, built once per
    listener (aiosmtpd builds them for every connection)."""

    auth_methods: dict[str, _AuthMechAttr]
    hooks: dict[str, Any]

    @classmethod
    def of(cls, handler: Any) -> HandlerTables:
        auth = {
            getattr(method, "__auth_mechanism_name__", name[5:].replace("__", "-")): _AuthMechAttr(
                method, False
            )
            for name in dir(handler)
            if name.startswith("auth_") and callable(method := getattr(handler, name))
        }
        hooks = {
            name[7:]: getattr(handler, name) for name in dir(handler) if name.startswith("handle_")
        }
        return cls(auth, hooks)


class GovSMTP(SMTP):
    """One SMTP connection. ``connections`` counts open connections per client address
    across every SMTP listener of the process."""

    line_length_limit = _READ_LIMIT

    def __init__(
        self,
        handler: Any,
        *,
        tables: HandlerTables,
        limits: SmtpLimits,
        connections: Counter[str],
        hostname: str,
        tls_context: ssl.SSLContext | None,
        implicit_tls: bool = False,
    ) -> None:
        # aiosmtpd's own __init__ rebuilds its command and hook tables with
        # inspect.getmembers for every connection (1.4 ms, a third of the CPU a small
        # message costs). This sets the same attributes, with the tables built once per
        # listener; tests/unit/test_smtp_protocol.py checks they match aiosmtpd's.
        loop = asyncio.get_running_loop()
        self.__ident__ = "ESMTP govmail"
        self.loop = loop
        asyncio.StreamReaderProtocol.__init__(
            self,
            asyncio.StreamReader(loop=loop, limit=_READ_LIMIT),
            client_connected_cb=self._cb_client_connected,
            loop=loop,
        )
        self.event_handler = handler
        self.data_size_limit = None  # SIZE is advertised and enforced here (552 5.3.4)
        self.enable_SMTPUTF8 = True
        self._decode_data = False
        # Per connection: aiosmtpd's class-level dict is shared by every connection.
        self.command_size_limits = defaultdict(lambda: SMTP.command_size_limit)
        self.hostname = hostname
        self.tls_context = None if implicit_tls else tls_context
        self._implicit_context = tls_context if implicit_tls else None
        self._handshaking: asyncio.BaseTransport | None = None
        self.require_starttls = False
        self._timeout_duration = limits.timeout_s
        self._timeout_handle = None
        self._tls_handshake_okay = True
        self._tls_protocol = None
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        self._auth_require_tls = False  # decided per connection: TLS or loopback (handler)
        self._proxy_timeout = None
        self._authenticator = None
        self._auth_callback = login_always_fail
        self._auth_required = False
        self._auth_methods = tables.auth_methods
        self._handle_hooks = tables.hooks
        self._ehlo_hook_ver = "new" if "EHLO" in tables.hooks else None
        self._smtp_methods = {name: getattr(self, f"smtp_{name}") for name in _SMTP_VERBS}
        self._enforce_call_limit = False

        self.limits = limits
        self.connections = connections
        self.implicit_tls = implicit_tls
        self.client_ip = ""
        self._client_key = ""
        self._counted = False
        self._refused = False
        self._bare_replies = False
        self._errors = 0

    # --- connection -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._handshaking is not None:
            # Implicit TLS is up: serve over the TLS transport, close the TCP one at the end.
            raw, self._handshaking = self._handshaking, None
            super().connection_made(transport)
            self._original_transport = raw
            return
        if self.transport is None:  # not the STARTTLS re-entry
            peer = transport.get_extra_info("peername")
            self.client_ip = str(peer[0]) if peer else ""
            self._client_key = client_key(self.client_ip)
            if self.connections[self._client_key] >= self.limits.max_connections_per_ip:
                self._refused = True
                line = reply(
                    "421 4.7.0",
                    "Quá nhiều kết nối từ địa chỉ này, hãy thử lại sau",
                    "Too many connections from your address, try again later",
                )
                transport.write(line.encode() + b"\r\n")  # type: ignore[attr-defined]
                transport.close()
                return
            self.connections[self._client_key] += 1
            self._counted = True
            if self.implicit_tls:
                self._start_implicit_tls(transport)
                return
        super().connection_made(transport)

    def _start_implicit_tls(self, transport: asyncio.BaseTransport) -> None:
        """Port 465: the TLS handshake runs under this connection's count and a short
        timeout, so a client cannot hold unlimited half-open handshakes (asyncio's own
        TLS server would call us only after the handshake)."""
        if self._implicit_context is None:
            transport.close()
            return
        waiter: asyncio.Future[None] = self.loop.create_future()
        tls = sslproto.SSLProtocol(
            self.loop,
            self,
            self._implicit_context,
            waiter,
            server_side=True,
            ssl_handshake_timeout=max(1, int(min(_HANDSHAKE_TIMEOUT, self.limits.timeout_s))),
        )
        self._handshaking = transport
        transport.set_protocol(tls)
        tls.connection_made(transport)

        def finished(done: asyncio.Future[None]) -> None:
            if done.cancelled() or done.exception() is not None:
                # The TLS layer never called us: release the count ourselves.
                self._handshaking = None
                self._uncount()
                transport.close()

        waiter.add_done_callback(finished)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused or self.session is None:  # refused, or TLS never came up
            self._uncount()
            return
        self._uncount()
        super().connection_lost(error)

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            self.connections[self._client_key] -= 1
            if self.connections[self._client_key] <= 0:
                del self.connections[self._client_key]

    @property
    def is_loopback(self) -> bool:
        try:
            return ip_address(self.client_ip.split("%")[0]).is_loopback
        except ValueError:
            return False

    @property
    def tls_object(self) -> ssl.SSLObject | None:
        if self.transport is None:
            return None
        found = self.transport.get_extra_info("ssl_object")
        return found if isinstance(found, ssl.SSLObject | ssl.SSLSocket) else None  # type: ignore[return-value]

    @property
    def is_secured(self) -> bool:
        """TLS (STARTTLS or implicit), or a loopback client, as Dovecot treats it."""
        return self.tls_object is not None or self.is_loopback

    # --- replies ----------------------------------------------------------------------

    def _create_envelope(self) -> GovEnvelope:
        return GovEnvelope()

    async def push(self, status: Any) -> None:
        if not isinstance(status, str) or self._bare_replies:
            await super().push(status)
            return
        await super().push(with_enhanced_code(status))
        if status[:1] in ("4", "5") and not status.startswith("421"):
            self._errors += 1
            if self._errors >= self.limits.max_errors and self.transport is not None:
                await super().push(
                    reply("421 4.7.0", "Quá nhiều lỗi, đóng kết nối", "Too many errors, closing")
                )
                self.transport.close()

    async def smtp_EHLO(self, hostname: str) -> None:
        self._bare_replies = True  # EHLO keywords carry no status codes
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._bare_replies = False

    async def smtp_HELO(self, hostname: str) -> None:
        self._bare_replies = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._bare_replies = False

    async def smtp_MAIL(self, arg: str | None) -> None:
        # RFC 4954 §5: a server that offers AUTH must accept MAIL's AUTH= parameter
        # (aiosmtpd answers 555 to it). Who the client says it relays for is not used.
        if arg:
            arg = _AUTH_PARAMETER.sub("", arg)
        await super().smtp_MAIL(arg)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd parses every MAIL and RCPT path with the stdlib's RFC 5322 header
        # parser (8% of the CPU of a small message); the plain <local@domain> form,
        # nearly all traffic, needs no such parser. Anything else still goes to it.
        found = _SIMPLE_PATH.match(arg)
        if found:
            return found.group(1), found.group(2)
        return super()._getaddr(arg)

    # --- DATA ---------------------------------------------------------------------------

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        if envelope is None or not envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content = await self._read_data()
        if content is None:
            await self.push(
                reply(
                    "552 5.3.4",
                    f"Thư vượt quá kích thước cho phép ({self.limits.max_message_bytes // MB} MB)",
                    f"Message exceeds the size limit ({self.limits.max_message_bytes // MB} MB)",
                    utf8=envelope.smtp_utf8,
                )
            )
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        envelope.content = envelope.original_content = content
        try:
            status = await self._call_handler_hook("DATA")
        finally:
            # Even if the hook failed, the next MAIL starts a new transaction.
            self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(status)

    async def _read_data(self) -> bytes | None:
        """The message up to <CR><LF>.<CR><LF>, dot-unstuffed, bare LF made CRLF; None
        if it exceeded the size limit (the rest is read and dropped, so the session
        stays in step). Nothing else ends DATA: not <LF>.<LF>, not <LF>.<CR><LF>, not
        a bare CR, so no second message can be smuggled inside the first."""
        reader = self._reader
        limit = self.limits.max_message_bytes
        data = bytearray()
        size = 0
        tail = b"\r\n"  # the line break before the first line of data
        while True:
            try:
                piece = await reader.readuntil(b".\r\n")
                found = True
            except asyncio.LimitOverrunError as exc:
                piece = await reader.read(exc.consumed)
                found = False
            except asyncio.IncompleteReadError:
                # The client went away mid-message: nothing is stored.
                raise ConnectionResetError from None
            self._reset_timeout()
            size += len(piece)
            if size <= limit + 3:
                data += piece
            if found and (tail + piece)[-5:-3] == b"\r\n":
                break
            tail = (tail + piece)[-2:]
        if size > limit + 3:
            return None
        del data[-3:]
        content = bytes(data)
        # Bare LF ends a line like CRLF (Postfix's "normalize"), for unstuffing too: a
        # stored message never holds a line "." that a later relay could mistake.
        if content.count(b"\n") != content.count(b"\r\n"):
            content = _BARE_LF.sub(b"\r\n", content)
        if content.startswith(b"."):
            content = content[1:]
        return content.replace(b"\r\n.", b"\r\n")
