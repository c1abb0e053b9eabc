"""Connection-level commands: CAPABILITY, NOOP, LOGOUT, ID, ENABLE, STARTTLS, LOGIN and
AUTHENTICATE."""

from __future__ import annotations

import asyncio
import base64
import binascii

from govmail.directory.accounts import AuthStatus
from govmail.imap.namespace import Namespace
from govmail.imap.proto.model import Authenticate, Login, Request, Words
from govmail.imap.proto.response import quoted_or_literal
from govmail.imap.session import Reply, Session, State
from govmail.mailstore.access import AccessEvent
from govmail.mailstore.folders import readable_delegations

BAD_LINE = Reply("BAD", "Unexpected line")
OK = Reply()
# What ENABLE accepts (RFC 5161); QRESYNC is not offered.
_ENABLEABLE = ("CONDSTORE", "UTF8=ACCEPT", "IMAP4REV2")


async def cmd_capability(session: Session, request: Request) -> Reply:
    session.write(b"* CAPABILITY " + session.server.capabilities(session) + b"\r\n")
    return OK


async def cmd_noop(session: Session, request: Request) -> Reply:
    return OK


async def cmd_logout(session: Session, request: Request) -> Reply:
    session.write(b"* BYE Logging out.\r\n")
    session.state = State.LOGOUT  # the session closes once the reply is written
    return Reply("OK", "Logged out")


async def cmd_id(session: Session, request: Request) -> Reply:
    fields = (
        b'"name" "govmail" "version" '
        + quoted_or_literal(session.server.version)
        + b' "vendor" "Khanh Hoa provincial IT centre"'
    )
    session.write(b"* ID (" + fields + b")\r\n")
    return OK


async def cmd_enable(session: Session, request: Request) -> Reply:
    assert isinstance(request.args, Words)
    enabled = [w for w in request.args.words if w in _ENABLEABLE and w not in session.enabled]
    session.enabled.update(enabled)
    if "UTF8=ACCEPT" in enabled or "IMAP4REV2" in enabled:
        session.receiver.utf8_accept = True
    session.write(b"* ENABLED" + b"".join(b" " + w.encode() for w in enabled) + b"\r\n")
    return OK


async def cmd_starttls(session: Session, request: Request) -> Reply | None:
    server = session.server
    if server.tls is None or session.tls:
        return Reply("BAD", "TLS is not available here" if server.tls is None else "TLS is on")
    transport = session.transport
    assert transport is not None
    # Stop reading before answering: the client's TLS handshake follows our OK at once,
    # and must reach the TLS layer, not the IMAP parser.
    transport.pause_reading()
    session.write(request.tag.encode() + b" OK Begin TLS negotiation now.\r\n")
    # Anything pipelined after STARTTLS was sent in the clear: drop it (CVE-2011-0411).
    session.receiver = type(session.receiver)(
        max_line=server.cfg.imap.max_line_bytes,
        max_append_literal=server.cfg.smtp.max_message_bytes,
        max_pipelined=server.cfg.imap.max_pipelined,
    )
    session.discard_pending()
    loop = asyncio.get_running_loop()
    try:
        new_transport = await loop.start_tls(
            transport, session, server.tls, server_side=True, ssl_handshake_timeout=30
        )
    except (OSError, TimeoutError, ConnectionError):
        session.close()
        return None
    if new_transport is None:
        session.close()
        return None
    session.transport = new_transport
    session.tls = True
    return None


async def cmd_login(session: Session, request: Request) -> Reply | None:
    assert isinstance(request.args, Login)
    return await _login(session, request.args.username, request.args.password)


async def cmd_authenticate(session: Session, request: Request) -> Reply | None:
    assert isinstance(request.args, Authenticate)
    if request.args.mechanism != "PLAIN":
        return Reply("NO", "Unsupported authentication mechanism")
    if not session.secure:
        return Reply("NO", _PRIVACY, "PRIVACYREQUIRED")
    if request.args.initial_response is not None:
        return await _plain(session, request.args.initial_response)
    session.authenticating = (request.tag, "PLAIN")
    session.receiver.line_mode = True
    session.write(b"+ \r\n")
    return None


async def authenticate_response(session: Session, data: bytes) -> None:
    assert session.authenticating is not None
    tag, _ = session.authenticating
    session.authenticating = None
    session.receiver.line_mode = False
    if data.strip() == b"*":
        await session.reply(tag, Reply("BAD", "Authentication cancelled"))
        return
    try:
        decoded = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        await session.reply(tag, Reply("BAD", "Invalid base64"))
        return
    answer = await _plain(session, decoded)
    if answer is not None:
        await session.reply(tag, answer)


async def _plain(session: Session, message: bytes) -> Reply | None:
    """SASL PLAIN (RFC 4616): authzid NUL authcid NUL password; an authzid other than
    the login itself is refused (no master users)."""
    parts = message.split(b"\x00")
    if len(parts) != 3:
        return Reply("BAD", "Invalid PLAIN response")
    try:
        authzid, login, password = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        return Reply("BAD", "Invalid PLAIN response")
    if authzid and authzid.lower() != login.lower():
        return Reply("NO", "Authorization identity not allowed", "AUTHORIZATIONFAILED")
    return await _login(session, login, password)


_PRIVACY = "Plaintext authentication disallowed on non-secure connections; use STARTTLS."


async def _login(session: Session, login: str, password: str) -> Reply | None:
    if not session.secure:
        return Reply("NO", _PRIVACY, "PRIVACYREQUIRED")
    server = session.server
    result = await server.auth.login(login, password, session.peer)
    status = result.status
    if status is AuthStatus.INVALID:
        await asyncio.sleep(result.delay)
        return Reply(
            "NO",
            session.text("Sai tên đăng nhập hoặc mật khẩu.", "Invalid login or password."),
            "AUTHENTICATIONFAILED",
        )
    if status is AuthStatus.THROTTLED:
        return Reply(
            "NO",
            session.text(
                "Đăng nhập sai quá nhiều lần, hãy thử lại sau.",
                "Too many failed logins; try again later.",
            ),
            "AUTHENTICATIONFAILED",
        )
    if status is AuthStatus.DISABLED:
        return Reply(
            "NO",
            session.text("Hộp thư đã ngừng hoạt động.", "This mailbox is disabled."),
            "AUTHENTICATIONFAILED",
        )
    if status is AuthStatus.MUST_CHANGE:
        return Reply(
            "NO",
            session.text(
                "Bạn phải đổi mật khẩu trước khi dùng chương trình thư: hãy đăng nhập"
                " webmail, đổi mật khẩu rồi đăng nhập lại bằng mật khẩu mới.",
                "You must change your password first: log in to the webmail, change it,"
                " then log in here with the new one.",
            ),
            "ALERT",
        )
    account = result.account
    assert account is not None
    if not server.logged_in(session, account.mailbox_id):
        session.close(b"* BYE Too many connections for this user.\r\n")
        return None
    delegated = await session.read(lambda conn: readable_delegations(conn, account.person_id))
    session.account = account
    session.namespace = Namespace(account.mailbox_id, {local: box for box, local in delegated})
    session.state = State.AUTHENTICATED
    session.receiver.appends_allowed = True
    server.access.record(AccessEvent(account.mailbox_id, "login", "imap", session.peer))
    return Reply("OK", "Logged in", "CAPABILITY " + server.capabilities(session).decode())
