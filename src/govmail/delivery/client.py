"""SMTP to other domains: where a domain's mail goes (smarthost, MX, MTA-STS), opening a
session to one server, and mail transactions on it (aiosmtplib), as Postfix's smtp(8)
does with the servers found on the Internet."""

from __future__ import annotations

import base64
import email
import functools
import io
import logging
import quopri
import random
import re
import ssl
import warnings
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.policy import compat32

import aiosmtplib

from govmail.config import Config
from govmail.delivery.mta_sts import MtaSts, verifying_context
from govmail.delivery.resolver import DnsTemporaryError, MxHost, Resolver

log = logging.getLogger(__name__)

_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")

# Postfix's defaults: default_destination_recipient_limit, smtp_mx_address_limit,
# smtp_mx_session_limit; smtp_data_done_timeout (RFC 5321 §4.5.3.2.6: 10 minutes).
MAX_RECIPIENTS = 50
MX_ADDRESS_LIMIT = 5
MX_SESSION_LIMIT = 2
FINAL_REPLY_TIMEOUT_S = 600.0

_CONNECTION_TROUBLE = (aiosmtplib.SMTPException, OSError, TimeoutError)


@dataclass(frozen=True)
class Reply:
    """An SMTP reply to one recipient: the remote server's (``relay`` names it) or our
    own verdict on a failure before any server answered (``relay`` empty)."""

    code: int
    text: str
    relay: str = ""

    @property
    def permanent(self) -> bool:
        return self.code >= 500

    @property
    def status(self) -> str:
        """The RFC 3463 code: the reply's own, else one from its class."""
        found = _STATUS.match(self.text)
        if found:
            return found.group(0)
        return f"{self.code // 100}.0.0"

    def __str__(self) -> str:
        return f"{self.code} {' '.join(self.text.split())}"


class Failure(Exception):
    """The whole transaction failed before any recipient was decided: each gets ``reply``.
    ``greeted``: the server had answered (the try counts as a session, Postfix's
    smtp_mx_session_limit)."""

    def __init__(self, reply: Reply, *, greeted: bool = False) -> None:
        super().__init__(str(reply))
        self.reply = reply
        self.greeted = greeted


class _TlsRefused(Exception):
    """STARTTLS was refused or its handshake failed on an opportunistic session."""


class _MailRefused(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


@dataclass(frozen=True)
class Host:
    """One server to try: ``name`` for TLS (SNI, certificate) and logs, ``address`` to
    connect to."""

    name: str
    address: str
    port: int
    tls: str  # opportunistic, verify (STARTTLS required, certificate checked), implicit

    @property
    def relay(self) -> str:
        return f"{self.name}[{self.address}]:{self.port}"


async def route(domain: str, cfg: Config, resolver: Resolver, sts: MtaSts | None) -> list[Host]:
    """The servers that take ``domain``'s mail, in the order to try them (at most
    MX_ADDRESS_LIMIT). Raises Failure: permanent for a domain that does not exist, takes
    no mail (null MX) or whose MX is this server, temporary when DNS does not answer or
    MTA-STS allows none of its MX hosts."""
    settings = cfg.delivery
    if settings.smarthost:
        name, _, port = settings.smarthost.rpartition(":")
        name = name.strip("[]")
        tls = {"starttls": "verify", "tls": "implicit"}.get(settings.smarthost_tls, "opportunistic")
        return [Host(name, name, int(port), tls)]
    try:
        mx = await resolver.mx(domain)
    except LookupError:
        raise Failure(Reply(550, f"5.1.2 Domain {domain} does not exist (DNS)")) from None
    except DnsTemporaryError as exc:
        raise Failure(Reply(451, f"4.4.3 DNS lookup of {domain} failed: {exc}")) from None
    # dnspython writes the root name as "@" without its final dot.
    if mx is not None and any(m.host in ("", "@", ".") for m in mx):
        raise Failure(Reply(556, f"5.1.10 Domain {domain} accepts no mail (null MX)"))
    names = _mx_names(domain, mx, cfg.hostname)
    tls = "opportunistic"
    if sts is not None and settings.mta_sts:
        policy = await sts.policy(domain)
        if policy is not None and policy.enforced:
            names = [n for n in names if policy.allows(n)]
            tls = "verify"
            if not names:
                raise Failure(Reply(451, f"4.7.5 MTA-STS policy of {domain} allows no MX host"))
    hosts: list[Host] = []
    for name in names:
        try:
            addresses = await resolver.addresses(name)
        except DnsTemporaryError:
            continue
        hosts += [Host(name, address, settings.port, tls) for address in addresses]
        if len(hosts) >= MX_ADDRESS_LIMIT:
            return hosts[:MX_ADDRESS_LIMIT]
    if not hosts:
        raise Failure(Reply(451, f"4.4.4 No address found for the mail servers of {domain}"))
    return hosts


def _mx_names(domain: str, mx: list[MxHost] | None, myself: str) -> list[str]:
    """The MX host names to try by preference, hosts of equal preference in random order
    (RFC 5321 §5.1); the domain itself when it has no MX (its implicit MX). When this
    server is one of the MX hosts, only the better ones are tried, and mail for which
    none is better would come back here: it bounces (5.4.6), as in Postfix."""
    myself = myself.lower().rstrip(".")
    if mx is None:
        mx = [MxHost(0, domain.lower())]
    own = [m.preference for m in mx if m.host == myself]
    if own:
        mx = [m for m in mx if m.preference < min(own)]
        if not mx:
            raise Failure(Reply(554, f"5.4.6 mail for {domain} loops back to myself"))
    names: list[str] = []
    for preference in sorted({m.preference for m in mx}):
        same = [m.host for m in mx if m.preference == preference]
        random.shuffle(same)
        names += same
    return names


@functools.cache
def opportunistic_context() -> ssl.SSLContext:
    """TLS as MTAs use it on the Internet when nothing asks for more (RFC 7435, Postfix's
    security level ``may``): no certificate check, and old protocol versions and ciphers
    still allowed, since any encryption beats the plaintext that would replace it. Built
    once: a context costs milliseconds of CPU."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        # Deprecated for the web; an MTA still meets such servers (Postfix allows TLSv1).
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


async def connect(hosts: list[Host], cfg: Config) -> Session:
    """A session with the first of ``hosts`` that takes one; servers that answered but
    could not be used count against MX_SESSION_LIMIT (unreachable ones do not), as in
    Postfix. Raises the last Failure when none can be used."""
    failure = Failure(Reply(451, "4.4.4 No server to try"))
    sessions = 0
    for host in hosts:
        try:
            return await Session.open(host, cfg)
        except Failure as exc:
            log.info("outbound: %s", exc)
            failure = exc
            sessions += exc.greeted
            if sessions >= MX_SESSION_LIMIT:
                break
    raise failure


class Session:
    """An open SMTP session with one server; several transactions may follow."""

    def __init__(
        self, smtp: aiosmtplib.SMTP, host: Host, final_timeout_s: float = FINAL_REPLY_TIMEOUT_S
    ) -> None:
        self.smtp = smtp
        self.host = host
        self.final_timeout_s = final_timeout_s  # for the reply to the final "."
        self.lost = ""  # why the connection was lost during send(), if it was

    @classmethod
    async def open(cls, host: Host, cfg: Config) -> Session:
        """Connect, greet (EHLO with our hostname, HELO if EHLO is refused) and secure the
        session as ``host.tls`` asks. An opportunistic session whose STARTTLS is refused or
        fails is opened again in plaintext, as Postfix does. Raises Failure (temporary)
        if this server cannot be used now."""
        try:
            return await cls._open(host, cfg, starttls=True)
        except _TlsRefused as exc:
            log.info("outbound: STARTTLS with %s failed (%s): again without TLS", host.relay, exc)
            return await cls._open(host, cfg, starttls=False)

    @classmethod
    async def _open(cls, host: Host, cfg: Config, *, starttls: bool) -> Session:
        settings = cfg.delivery
        verify = host.tls in ("verify", "implicit")
        context = verifying_context(settings.ca_file) if verify else opportunistic_context()
        smtp = aiosmtplib.SMTP(
            hostname=host.address,
            port=host.port,
            local_hostname=cfg.hostname,
            timeout=settings.timeout_s,
            use_tls=host.tls == "implicit",
            start_tls=False,
            tls_context=context,
        )
        greeted = False
        try:
            await smtp.connect(timeout=settings.connect_timeout_s)
            greeted = True
            await _greet(smtp)
            secured = host.tls == "implicit"
            if not secured and starttls and smtp.supports_extension("starttls"):
                try:
                    await smtp.starttls(tls_context=context, server_hostname=host.name)
                except (aiosmtplib.SMTPResponseException, *_CONNECTION_TROUBLE) as exc:
                    if host.tls != "opportunistic":
                        raise
                    smtp.close()
                    raise _TlsRefused(str(exc)) from None
                await _greet(smtp)
                secured = True
            if not secured and host.tls == "verify":
                raise Failure(Reply(451, f"4.7.4 {host.relay} does not offer STARTTLS", host.relay))
            if settings.smarthost and settings.smarthost_user:
                if not secured:
                    raise Failure(
                        Reply(451, f"4.7.0 {host.relay}: no TLS, so the password is not sent")
                    )
                await smtp.login(settings.smarthost_user, settings.smarthost_password)
        except Failure as exc:
            smtp.close()
            exc.greeted = greeted
            raise
        except aiosmtplib.SMTPResponseException as exc:
            smtp.close()
            reply = Reply(451, f"4.4.2 {host.relay} said: {exc.code} {exc.message}")
            raise Failure(reply, greeted=greeted) from None
        except _CONNECTION_TROUBLE as exc:
            smtp.close()
            what = "TLS with" if isinstance(exc, ssl.SSLError) else "connect to"
            reply = Reply(451, f"4.4.1 {what} {host.relay} failed: {exc}")
            raise Failure(reply, greeted=greeted) from None
        return cls(smtp, host, max(FINAL_REPLY_TIMEOUT_S, settings.timeout_s))

    @property
    def eight_bit_ok(self) -> bool:
        """Whether the server takes 8-bit message data (8BITMIME, RFC 6152)."""
        return self.smtp.supports_extension("8bitmime")

    async def send(
        self,
        sender: str,
        recipients: list[str],
        data: bytes,
        *,
        max_recipients: int = MAX_RECIPIENTS,
    ) -> dict[str, Reply]:
        """Deliver ``data`` to ``recipients`` in as many transactions as needed (at most
        ``max_recipients`` each; those a server defers with 452 after taking others go in
        the next one, RFC 5321 §4.5.3.1.10); the reply for each recipient decided.

        If the connection is lost, the recipients not decided yet have no reply (the
        caller tries them again later) and ``lost`` says why; replies already decided are
        kept. 8-bit ``data`` to a server without 8BITMIME is refused (5.6.3: the caller
        converts it with downgrade_8bit first); a non-ASCII address to a server without
        SMTPUTF8 fails alone (5.6.7), a non-ASCII sender fails all."""
        relay = self.host.relay
        self.lost = ""
        if not data.isascii() and not self.eight_bit_ok:
            refused = Reply(554, f"5.6.3 {relay} does not accept 8-bit data (no 8BITMIME)")
            return dict.fromkeys(recipients, refused)
        utf8_ok = self.smtp.supports_extension("smtputf8")
        no_utf8 = Reply(553, f"5.6.7 {relay} does not accept non-ASCII addresses (SMTPUTF8)")
        if not (sender.isascii() or utf8_ok):
            return dict.fromkeys(recipients, no_utf8)
        replies: dict[str, Reply] = {}
        pending: list[str] = []
        for recipient in dict.fromkeys(recipients):
            if recipient.isascii() or utf8_ok:
                pending.append(recipient)
            else:
                replies[recipient] = no_utf8
        try:
            while pending:
                try:
                    await self._transaction(sender, pending[:max_recipients], data, replies)
                except _MailRefused as refused:  # so would it be for the others
                    replies.update(dict.fromkeys(pending, refused.reply))
                    break
                pending = [r for r in pending if r not in replies]
        except _CONNECTION_TROUBLE as exc:
            self.lost = f"{type(exc).__name__}: {exc}"
            log.info("outbound: connection to %s lost: %s", relay, self.lost)
            self.smtp.close()
        return replies

    async def _transaction(
        self, sender: str, batch: list[str], data: bytes, replies: dict[str, Reply]
    ) -> None:
        """One transaction, adding to ``replies`` as recipients are decided, so that a
        lost connection loses none (a 452 after some were accepted leaves the rest
        undecided). Raises _MailRefused."""
        relay = self.host.relay
        options: list[str] = []
        if self.smtp.supports_extension("size"):
            options.append(f"SIZE={len(data)}")
        if not data.isascii():
            options.append("BODY=8BITMIME")
        encoding = "ascii"
        if not all(a.isascii() for a in (sender, *batch)):
            options.append("SMTPUTF8")
            encoding = "utf-8"
        try:
            await self.smtp.mail(sender, options=options, encoding=encoding)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset()
            raise _MailRefused(Reply(exc.code, exc.message, relay)) from None
        accepted: list[str] = []
        for recipient in batch:
            try:
                await self.smtp.rcpt(recipient, encoding=encoding)
            except aiosmtplib.SMTPResponseException as exc:
                if exc.code == 452 and accepted:
                    break  # too many recipients: the rest in the next transaction
                replies[recipient] = Reply(exc.code, exc.message, relay)
            else:
                accepted.append(recipient)
        if not accepted:
            await self._reset()
            return
        try:
            response = await self.smtp.data(data, timeout=self.final_timeout_s)
            final = Reply(response.code, response.message, relay)
        except aiosmtplib.SMTPResponseException as exc:
            final = Reply(exc.code, exc.message, relay)
        replies.update(dict.fromkeys(accepted, final))

    async def _reset(self) -> None:
        """RSET after a failed transaction; trouble with it closes the session but
        changes no reply already had."""
        try:
            await self.smtp.rset()
        except _CONNECTION_TROUBLE:
            self.smtp.close()

    async def reset(self) -> None:
        """RSET before the next transaction on this session (Postfix does the same)."""
        await self.smtp.rset()

    async def close(self) -> None:
        """QUIT politely; close regardless."""
        try:
            if self.smtp.is_connected:
                await self.smtp.quit(timeout=5)
        except _CONNECTION_TROUBLE:
            pass
        finally:
            self.smtp.close()

    @property
    def usable(self) -> bool:
        return self.smtp.is_connected


async def _greet(smtp: aiosmtplib.SMTP) -> None:
    """EHLO; HELO when a server refuses EHLO with 5xx (an old one: no extensions)."""
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError as exc:
        if exc.code < 500 or not smtp.is_connected:
            raise
        await smtp.helo()


def downgrade_8bit(raw: bytes) -> bytes | None:
    """``raw`` made 7-bit for a server without 8BITMIME (RFC 6152 §3): its 8-bit text
    parts in quoted-printable, other 8-bit parts in base64, the rest unchanged (lines end
    in CRLF). ``raw`` itself if it is ASCII already; None when it cannot be done: 8-bit
    header fields (those need SMTPUTF8) or 8-bit text the encodings cannot carry."""
    if raw.isascii():
        return raw
    message = email.message_from_bytes(raw, policy=compat32)
    for part in message.walk():
        encoding = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
        if part.is_multipart():
            # Containers may not be encoded (RFC 2045 §6.4); their parts are.
            if encoding in ("8bit", "binary"):
                part.replace_header("Content-Transfer-Encoding", "7bit")
            continue
        if encoding in ("base64", "quoted-printable"):
            continue
        body = part.get_payload(decode=True)
        if not isinstance(body, bytes) or body.isascii():
            continue
        if part.get_content_maintype() == "text":
            encoded = quopri.encodestring(body.replace(b"\r\n", b"\n"))
            encoding = "quoted-printable"
        else:
            encoded = base64.encodebytes(body)
            encoding = "base64"
        del part["Content-Transfer-Encoding"]
        part["Content-Transfer-Encoding"] = encoding
        part.set_payload(encoded.decode("ascii"))
    out = io.BytesIO()
    policy = compat32.clone(linesep="\r\n", max_line_length=None)
    BytesGenerator(out, mangle_from_=False, policy=policy).flatten(message)
    result = out.getvalue()
    return result if result.isascii() else None
