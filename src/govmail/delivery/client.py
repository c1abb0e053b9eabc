"""SMTP to other domains: where a domain's mail goes (smarthost, MX, MTA-STS), opening a
session to one server, and one mail transaction on it (aiosmtplib)."""

from __future__ import annotations

import random
import re
import ssl
from dataclasses import dataclass

import aiosmtplib

from govmail.config import Config
from govmail.delivery.mta_sts import MtaSts, verifying_context
from govmail.delivery.resolver import DnsTemporaryError, Resolver

_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


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
    """The whole transaction failed before any recipient was decided: each gets ``reply``."""

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
    """The servers that take ``domain``'s mail, in the order to try them. Raises Failure:
    permanent for a domain that does not exist or takes no mail (null MX), temporary
    when DNS does not answer or MTA-STS allows none of its MX hosts."""
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
    # No MX: the domain's own address is its implicit MX (RFC 5321 §5.1). Hosts of
    # equal preference are tried in random order, spreading the load (RFC 5321 §5.1).
    names = [domain] if mx is None else []
    if mx is not None:
        for preference in sorted({m.preference for m in mx}):
            same = [m.host for m in mx if m.preference == preference]
            random.shuffle(same)
            names += same
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
    if not hosts:
        raise Failure(Reply(451, f"4.4.4 No address found for the mail servers of {domain}"))
    return hosts


def _no_verify() -> ssl.SSLContext:
    # Opportunistic TLS, as MTAs do on the Internet: encryption against eavesdropping,
    # no certificate check (RFC 7435); MTA-STS is what asks for more.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Session:
    """An open SMTP session with one server; several transactions may follow."""

    def __init__(self, smtp: aiosmtplib.SMTP, host: Host) -> None:
        self.smtp = smtp
        self.host = host

    @classmethod
    async def open(cls, host: Host, cfg: Config) -> Session:
        """Connect, greet (EHLO with our hostname) and secure the session as ``host.tls``
        asks. Raises Failure (temporary) if this server cannot be used now."""
        settings = cfg.delivery
        verify = host.tls in ("verify", "implicit")
        context = verifying_context(settings.ca_file) if verify else _no_verify()
        smtp = aiosmtplib.SMTP(
            hostname=host.address,
            port=host.port,
            local_hostname=cfg.hostname,
            timeout=settings.timeout_s,
            use_tls=host.tls == "implicit",
            start_tls=False,
            tls_context=context,
        )
        try:
            await smtp.connect(timeout=settings.connect_timeout_s)
            await smtp.ehlo()
            if host.tls != "implicit" and smtp.supports_extension("starttls"):
                await smtp.starttls(tls_context=context, server_hostname=host.name)
                await smtp.ehlo()
            elif host.tls == "verify":
                smtp.close()
                raise Failure(Reply(451, f"4.7.4 {host.relay} does not offer STARTTLS", host.relay))
            if settings.smarthost and settings.smarthost_user:
                await smtp.login(settings.smarthost_user, settings.smarthost_password)
        except aiosmtplib.SMTPResponseException as exc:
            smtp.close()
            raise Failure(
                Reply(451, f"4.4.2 {host.relay} said: {exc.code} {exc.message}")
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            smtp.close()
            what = "TLS with" if isinstance(exc, ssl.SSLError) else "connect to"
            raise Failure(Reply(451, f"4.4.1 {what} {host.relay} failed: {exc}")) from None
        return cls(smtp, host)

    async def send(self, sender: str, recipients: list[str], data: bytes) -> dict[str, Reply]:
        """One mail transaction; the reply for each recipient. Raises Failure when MAIL
        is refused; connection trouble (aiosmtplib.SMTPException, OSError) is the
        caller's: the recipients not answered yet are then undecided."""
        relay = self.host.relay
        options: list[str] = []
        if self.smtp.supports_extension("size"):
            options.append(f"SIZE={len(data)}")
        if not data.isascii() and self.smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        encoding = "ascii"
        if not all(a.isascii() for a in (sender, *recipients)):
            if not self.smtp.supports_extension("smtputf8"):
                raise Failure(
                    Reply(553, f"5.6.7 {relay} does not accept non-ASCII addresses (SMTPUTF8)")
                )
            options.append("SMTPUTF8")
            encoding = "utf-8"
        try:
            await self.smtp.mail(sender, options=options, encoding=encoding)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset()
            raise Failure(Reply(exc.code, exc.message, relay)) from None
        replies: dict[str, Reply] = {}
        accepted: list[str] = []
        for recipient in recipients:
            try:
                await self.smtp.rcpt(recipient, encoding=encoding)
            except aiosmtplib.SMTPResponseException as exc:
                replies[recipient] = Reply(exc.code, exc.message, relay)
            else:
                accepted.append(recipient)
        if not accepted:
            await self._reset()
            return replies
        try:
            response = await self.smtp.data(data)
            final = Reply(response.code, response.message, relay)
        except aiosmtplib.SMTPResponseException as exc:
            final = Reply(exc.code, exc.message, relay)
        replies.update(dict.fromkeys(accepted, final))
        return replies

    async def _reset(self) -> None:
        try:
            await self.smtp.rset()
        except aiosmtplib.SMTPResponseException:
            self.smtp.close()

    async def reset(self) -> None:
        """RSET before the next transaction on this session (Postfix does the same)."""
        await self.smtp.rset()

    async def close(self) -> None:
        """QUIT politely; close regardless."""
        try:
            if self.smtp.is_connected:
                await self.smtp.quit(timeout=5)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            self.smtp.close()

    @property
    def usable(self) -> bool:
        return self.smtp.is_connected
