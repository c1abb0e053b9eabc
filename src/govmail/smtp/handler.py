"""What each SMTP command means for govmail: aiosmtpd calls these hooks; they check,
call the mail store and directory services, and reply."""

from __future__ import annotations

import asyncio
import binascii
import logging
from base64 import b64decode
from datetime import datetime
from ipaddress import ip_address, ip_network
from typing import Any

from aiosmtpd.smtp import MISSING, AuthResult, Session

from govmail.config import MB, Config
from govmail.delivery.inbound import SenderChecks, Verdict
from govmail.directory.accounts import Account, Authenticator, AuthStatus
from govmail.mailstore.delivery import DeliveryFailed, quota_allows
from govmail.mailstore.ratelimit import count_recipient, duration
from govmail.mailstore.recipients import is_local_domain
from govmail.mailstore.service import Incoming, MailStore
from govmail.policy.service import SendingPolicy
from govmail.smtp.headers import new_queue_id, protocol_name, received_header
from govmail.smtp.protocol import GovEnvelope, GovSMTP
from govmail.smtp.replies import reply

log = logging.getLogger(__name__)

MX = "mx"
SUBMISSION = "submission"
# Longest address kept (the queue's columns); RFC 5321 §4.5.3.1 allows a 256-octet path.
MAX_ADDRESS = 320


class MailHandler:
    """aiosmtpd hooks for one kind of listener: ``mx`` takes mail for our domains from
    anyone; ``submission`` takes mail from logged-in officials to anyone."""

    def __init__(
        self,
        role: str,
        cfg: Config,
        store: MailStore,
        auth: Authenticator,
        sending: SendingPolicy | None = None,
    ) -> None:
        self.role = role
        self.cfg = cfg
        self.store = store
        self.auth = auth
        # The sending rules (R11–R18) in front of the store; None: no rules (tests of
        # the protocol alone).
        self.sending = sending
        self._trusted_networks = [ip_network(n, strict=False) for n in cfg.smtp.trusted_relays]
        self.checks = SenderChecks(cfg) if role == MX else None

    async def handle_exception(self, error: Exception) -> str:
        """Anything unplanned (a database that went away, a bug) is a temporary failure:
        the client keeps the message and tries again; details go to the log only."""
        log.error("SMTP session error", exc_info=error)
        return reply(
            "451 4.3.0",
            "Lỗi tạm thời của máy chủ, hãy thử lại sau",
            "Temporary server error, try again later",
        )

    # --- session ----------------------------------------------------------------------

    async def handle_EHLO(
        self,
        server: GovSMTP,
        session: Session,
        envelope: GovEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        keywords = [r[4:] for r in responses[1:] if not r[4:].startswith(("AUTH", "HELP"))]
        keywords += ["PIPELINING", "ENHANCEDSTATUSCODES", f"SIZE {self.cfg.smtp.max_message_bytes}"]
        if self.role == SUBMISSION and server.is_secured and not session.authenticated:
            keywords.append("AUTH PLAIN LOGIN")
        lines = [responses[0]] + [f"250-{k}" for k in keywords]
        lines[-1] = "250 " + lines[-1][4:]
        return lines

    async def handle_AUTH(
        self, server: GovSMTP, session: Session, envelope: GovEnvelope, args: list[str]
    ) -> Any:
        if self.role != SUBMISSION:
            return "503 5.5.1 Error: authentication not enabled"
        if not server.is_secured:
            return reply(
                "538 5.7.11",
                "Phải dùng mã hóa (STARTTLS) trước khi đăng nhập",
                "Encryption required for requested authentication mechanism",
            )
        return MISSING

    async def auth_PLAIN(self, server: GovSMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            response = await server.challenge_auth("")
            if response is MISSING:
                return AuthResult(success=False, handled=True)
            data = bytes(response)
        else:
            try:
                data = b64decode(args[1], validate=True)
            except binascii.Error:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        parts = data.split(b"\0")
        if len(parts) != 3:
            await server.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        authzid, login, password = (p.decode("utf-8", "replace") for p in parts)
        if authzid and authzid.lower() != login.lower():
            return await self._failed(server, 0.0)  # no proxy authorisation
        return await self._login(server, login, password)

    async def auth_LOGIN(self, server: GovSMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await server.challenge_auth("Username:")
            if login is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                login = b64decode(args[1], validate=True)
            except binascii.Error:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        password = await server.challenge_auth("Password:")
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        return await self._login(
            server,
            bytes(login).decode("utf-8", "replace"),
            bytes(password).decode("utf-8", "replace"),
        )

    async def _login(self, server: GovSMTP, login: str, password: str) -> AuthResult:
        result = await self.auth.login(login, password, server.client_ip)
        if result.status is AuthStatus.OK:
            return AuthResult(success=True, auth_data=result.account)
        if result.status is AuthStatus.THROTTLED:
            return AuthResult(
                success=False,
                handled=False,
                message=reply(
                    "454 4.7.0",
                    "Đăng nhập sai quá nhiều lần, hãy thử lại sau",
                    "Too many failed logins, try again later",
                ),
            )
        if result.status is AuthStatus.MUST_CHANGE:
            return AuthResult(
                success=False,
                handled=False,
                message=reply(
                    "535 5.7.8",
                    "Mật khẩu phải được đổi trước khi dùng (đăng nhập webmail để đổi)",
                    "The password must be changed first (log in to the webmail)",
                ),
            )
        return await self._failed(server, result.delay)

    async def _failed(self, server: GovSMTP, delay: float) -> AuthResult:
        # Growing delays slow a guesser down; the connection itself stays usable.
        if delay:
            await asyncio.sleep(delay)
        return AuthResult(
            success=False,
            handled=False,
            message=reply(
                "535 5.7.8", "Sai tên đăng nhập hoặc mật khẩu", "Authentication credentials invalid"
            ),
        )

    # --- envelope ---------------------------------------------------------------------

    async def handle_MAIL(
        self,
        server: GovSMTP,
        session: Session,
        envelope: GovEnvelope,
        address: str,
        options: list[str],
    ) -> Any:
        utf8 = "SMTPUTF8" in options
        envelope.declared_size = 0  # a refused MAIL must not leave its SIZE behind
        refused = _address_refused(address, utf8=utf8)
        if refused:
            return refused
        for option in options:
            name, _, value = option.partition("=")
            if name == "SIZE" and value.isdigit():
                envelope.declared_size = int(value)
        if envelope.declared_size > self.cfg.smtp.max_message_bytes:
            return self._too_big(utf8)
        if self.role == MX and address not in ("", "<>"):
            domain = address.rpartition("@")[2]
            if is_local_domain(self.cfg, domain) and not self._trusted(server.client_ip):
                # Nobody outside may speak for the province: its officials send through
                # submission with a login. (SPF/DKIM/DMARC will judge the rest.)
                return reply(
                    "550 5.7.1",
                    f"Địa chỉ <{address}> của tỉnh chỉ được gửi qua cổng 587/465 có đăng nhập",
                    f"<{address}>: sender address in our domain requires authentication"
                    " (use submission, port 587)",
                    utf8=utf8,
                )
        if self.role == SUBMISSION:
            account = _account(session)
            if account is None:
                return reply(
                    "530 5.7.0",
                    "Phải đăng nhập trước khi gửi thư",
                    "Authentication required",
                    utf8=utf8,
                )
            if address.lower() not in account.senders:
                return reply(
                    "553 5.7.1",
                    f"Tài khoản {account.address} không được gửi thư với địa chỉ <{address}>",
                    f"Sender address <{address}> not owned by {account.address}",
                    utf8=utf8,
                )
        return MISSING

    async def handle_RCPT(
        self,
        server: GovSMTP,
        session: Session,
        envelope: GovEnvelope,
        address: str,
        options: list[str],
    ) -> Any:
        utf8 = envelope.smtp_utf8
        refused = _address_refused(address, utf8=utf8)
        if refused:
            return refused
        if len(envelope.rcpt_tos) >= self.cfg.smtp.max_recipients:
            return reply("452 4.5.3", "Quá nhiều người nhận", "Too many recipients", utf8=utf8)
        if address.lower() == "postmaster":  # the one address valid without a domain
            address = f"postmaster@{self.cfg.domain}"
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain:
            return reply(
                "501 5.1.3",
                "Địa chỉ người nhận sai cú pháp (phải có dạng ten@ten-mien)",
                "Bad recipient address syntax",
                utf8=utf8,
            )
        if not is_local_domain(self.cfg, domain):
            if self.role != SUBMISSION:
                return reply("554 5.7.1", "Không chuyển tiếp thư", "Relay access denied", utf8=utf8)
            if domain.startswith("[") or "." not in domain:
                return reply(
                    "550 5.1.2",
                    "Tên miền người nhận không hợp lệ",
                    "Bad destination domain",
                    utf8=utf8,
                )
            limited = await self._over_limit(server, session, address, utf8)
            if limited:
                return limited
            envelope.remote.append(address)
            return MISSING
        found = await self.store.find_recipient(local)
        if found is None:
            return reply(
                "550 5.1.1",
                f"Hộp thư <{address}> không tồn tại",
                f"<{address}>: Recipient address rejected: User unknown",
                utf8=utf8,
            )
        if found.status != "active":
            return reply(
                "550 5.2.1",
                f"Hộp thư <{address}> đã ngừng hoạt động",
                f"<{address}>: Mailbox disabled",
                utf8=utf8,
            )
        if not quota_allows(found.used_bytes, found.quota_bytes, envelope.declared_size):
            return reply(
                "452 4.2.2",
                f"Hộp thư <{address}> đã đầy",
                f"<{address}>: Mailbox full",
                utf8=utf8,
            )
        if self.role == SUBMISSION:
            limited = await self._over_limit(server, session, address, utf8)
            if limited:
                return limited
        envelope.local.setdefault(found.mailbox_id, address)
        envelope.seen[found.mailbox_id] = found
        return MISSING

    # --- message ----------------------------------------------------------------------

    async def handle_DATA(self, server: GovSMTP, session: Session, envelope: GovEnvelope) -> str:
        utf8 = envelope.smtp_utf8
        account = _account(session)
        at = datetime.now().astimezone()
        queue_id = new_queue_id()
        tls = server.tls_object
        recipients = list(envelope.local.values()) + envelope.remote
        trace = received_header(
            helo=session.host_name or "unknown",
            client_ip=server.client_ip,
            hostname=self.cfg.hostname,
            protocol=protocol_name(
                extended=bool(session.extended_smtp),
                tls=tls is not None,
                authenticated=account is not None,
                utf8=utf8,
            ),
            queue_id=queue_id,
            tls=_tls_details(tls),
            login=account.address if account else None,
            recipient=recipients[0] if len(recipients) == 1 else None,
            at=at,
        )
        raw = bytes(envelope.content or b"")  # type: ignore[arg-type]
        sender = "" if envelope.mail_from in (None, "<>") else str(envelope.mail_from)
        verdict = Verdict(raw)
        if self.checks is not None:  # the MX: mail from the Internet
            verdict = await self.checks.check(
                raw,
                client_ip=server.client_ip,
                helo=session.host_name or "",
                mail_from=sender,
                trusted=self._trusted(server.client_ip),
            )
            if verdict.refusal is not None:
                log.info("message from <%s> refused: %s", sender, verdict.refusal.en)
                refusal = verdict.refusal
                return reply(refusal.code, refusal.vi, refusal.en, utf8=utf8)
        incoming = Incoming(
            raw=verdict.raw,
            sender=sender,
            local=envelope.local,
            seen=envelope.seen,
            remote=envelope.remote,
            account=account,
            trace=verdict.header + trace,  # Authentication-Results above our Received
            at=at,
            junk=verdict.junk,
        )
        try:
            if self.sending is None:
                receipt = await self.store.receive(incoming)
            else:
                receipt, _ = await self.sending.receive(
                    incoming, direction=self._direction(server, sender), client_ip=server.client_ip
                )
        except (DeliveryFailed, OSError) as exc:
            log.error("cannot store message %s from <%s>", queue_id, incoming.sender, exc_info=exc)
            return reply(
                "451 4.3.0",
                "Lỗi tạm thời khi lưu thư, hãy gửi lại sau",
                "Temporary failure storing the message, try again later",
                utf8=utf8,
            )
        if receipt.refusal is not None:
            return reply(receipt.refusal.code, receipt.refusal.vi, receipt.refusal.en, utf8=utf8)
        if receipt.bounced:
            # Accepted for the others (a 5xx would make the client resend to all); the
            # sender's bounce names these, as with Postfix + Dovecot LMTP.
            log.warning("message %s: bounced for %s", queue_id, list(receipt.bounced))
        return f"250 2.0.0 Ok: queued as {queue_id}"

    def _direction(self, server: GovSMTP, sender: str) -> str:
        """Which sending rules apply: an official's ("submission") for submission and
        for the province's own mail handed over by a trusted relay (a scanner sending
        scans as an official), the Internet's ("inbound") otherwise."""
        if self.role == SUBMISSION:
            return "submission"
        own = is_local_domain(self.cfg, sender.rpartition("@")[2]) if sender else False
        return "submission" if own and self._trusted(server.client_ip) else "inbound"

    async def _over_limit(
        self, server: GovSMTP, session: Session, address: str, utf8: bool
    ) -> str | None:
        """Count an accepted recipient against the sender's limits (R23); the 451 reply
        when the account is over them."""
        account = _account(session)
        if account is None:
            return None
        over = await count_recipient(self.store, account, address, server.client_ip)
        if over is None:
            return None
        window_vi, window_en = duration(over.window_s)
        wait_vi, wait_en = duration(over.retry_after_s)
        scope_vi, scope_en = ("ngoài tỉnh ", "external ") if over.external else ("", "")
        return reply(
            "451 4.7.1",
            f"Tài khoản đã gửi tới {over.limit} người nhận {scope_vi}trong {window_vi},"
            f" hãy thử lại sau {wait_vi}",
            f"Sending limit of {over.limit} {scope_en}recipients per {window_en} reached,"
            f" try again in {wait_en}",
            utf8=utf8,
        )

    def _trusted(self, client_ip: str) -> bool:
        try:
            address = ip_address(client_ip)
        except ValueError:
            return False
        return any(address in network for network in self._trusted_networks)

    def _too_big(self, utf8: bool) -> str:
        limit = self.cfg.smtp.max_message_bytes // MB
        return reply(
            "552 5.3.4",
            f"Thư vượt quá kích thước cho phép ({limit} MB)",
            f"Message size exceeds fixed maximum message size ({limit} MB)",
            utf8=utf8,
        )


def _address_refused(address: str, *, utf8: bool) -> str | None:
    """A reply refusing an address that is not UTF-8, holds control characters (a bare
    CR would start a header of the sender's making in Return-Path), is longer than any
    real address, or is not ASCII in a transaction without SMTPUTF8 (RFC 6531 §3.4);
    None if the address may go on."""
    try:
        encoded = address.encode("utf-8")
    except UnicodeEncodeError:
        return reply("553 5.1.7", "Địa chỉ chứa byte không hợp lệ", "Invalid bytes in address")
    if any(c < 0x20 or c == 0x7F for c in encoded):
        return reply("501 5.1.7", "Địa chỉ chứa ký tự điều khiển", "Control character in address")
    if len(encoded) > MAX_ADDRESS or len(address.rpartition("@")[2]) > 255:
        return reply("501 5.1.3", "Địa chỉ quá dài", "Address too long")
    if not utf8 and not address.isascii():
        return reply(
            "553 5.6.7",
            "Địa chỉ có ký tự ngoài ASCII cần SMTPUTF8",
            "Non-ASCII address requires SMTPUTF8",
        )
    return None


def _account(session: Session) -> Account | None:
    data = session.auth_data
    return data if session.authenticated and isinstance(data, Account) else None


def _tls_details(tls: Any) -> tuple[str, str, int] | None:
    if tls is None:
        return None
    cipher = tls.cipher()
    if not cipher:
        return None
    name, version, bits = cipher
    return str(version), str(name), int(bits)
