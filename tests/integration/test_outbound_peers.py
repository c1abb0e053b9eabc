"""govmail's SMTP client against real peers that behave as servers on the Internet do:
Debian's Postfix configured without 8BITMIME, SMTPUTF8 or STARTTLS or with a recipient
limit, small aiosmtpd servers for what no real server can be configured into (a 454 to
STARTTLS, a broken TLS handshake, a refused EHLO, a disconnect after MAIL or after the
final "."), the loopback DNS server for routing and an HTTPS server for MTA-STS."""

from __future__ import annotations

import asyncio
import email
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as ServerSession

from govmail.config import Config, DeliverySettings, DnsSettings
from govmail.delivery.client import (
    MX_ADDRESS_LIMIT,
    Failure,
    Host,
    Session,
    connect,
    downgrade_8bit,
    route,
)
from govmail.delivery.mta_sts import MtaSts
from govmail.delivery.resolver import Resolver
from govmail.ops.tls import write_self_signed
from tests.integration.dnsserver import Zone, dns_server
from tests.integration.postfix import free_port, private_postfix

SENDER = "nvan@khanhhoa.gov.vn"
TEXT = "Kính gửi Văn phòng: giấy mời họp ngày 5/12 tại Nha Trang.\r\n"


def letter(to: str, text: str = TEXT) -> bytes:
    """A message as Thunderbird writes Vietnamese text: 8bit, UTF-8."""
    return (
        f"From: <{SENDER}>\r\nTo: <{to}>\r\nSubject: =?utf-8?q?Gi=E1=BA=A5y_m=E1=BB=9Di?=\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{text}"
    ).encode()


def config(tmp_path: Path, **delivery: Any) -> Config:
    return Config(data_dir=tmp_path, delivery=DeliverySettings(**delivery))


def plain(port: int) -> Host:
    return Host("localhost", "127.0.0.1", port, "opportunistic")


def body_text(raw: bytes) -> str:
    message = email.message_from_bytes(raw, policy=email_policy.default)
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


# --- 8BITMIME (RFC 6152) ---------------------------------------------------------------


def test_downgrade_keeps_the_text_and_the_ascii_header_fields_byte_for_byte() -> None:
    raw = (
        b"Subject: =?utf-8?q?Gi=E1=BA=A5y_m=E1=BB=9Di?=\r\n\tcontinued\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + TEXT.encode()
        + b"--b1\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: binary\r\n\r\n\x00\xff\xfe\r\n--b1--\r\n"
    )
    down = downgrade_8bit(raw)
    assert down is not None and down.isascii()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert down.startswith(head + b"\r\n\r\n")
    assert b"\n" not in down.replace(b"\r\n", b"")
    parts = list(email.message_from_bytes(down, policy=email_policy.default).iter_parts())
    assert parts[0]["Content-Transfer-Encoding"] == "quoted-printable"
    assert parts[0].get_content() == TEXT.rstrip()  # the last CRLF is the delimiter's
    assert parts[1].get_content() == b"\x00\xff\xfe"


def test_downgrade_is_impossible_with_8bit_header_fields_and_idle_on_ascii() -> None:
    assert downgrade_8bit("Subject: Giấy mời\r\n\r\nhọp\r\n".encode()) is None
    ascii_only = b"Subject: x\r\n\r\nhello\r\n"
    assert downgrade_8bit(ascii_only) == ascii_only


async def test_8bit_mail_to_a_server_without_8bitmime_is_downgraded_not_sent_raw(
    tmp_path: Path,
) -> None:
    with private_postfix(settings={"smtpd_discard_ehlo_keywords": "8bitmime"}) as postfix:
        session = await Session.open(plain(postfix.port), config(tmp_path))
        try:
            assert not session.eight_bit_ok
            data = letter("bob@postfix.test")
            replies = await session.send(SENDER, ["bob@postfix.test"], data)
            assert replies["bob@postfix.test"].code == 554
            assert replies["bob@postfix.test"].status == "5.6.3"
            down = downgrade_8bit(data)
            assert down is not None
            await session.reset()
            replies = await session.send(SENDER, ["bob@postfix.test"], down)
            assert replies["bob@postfix.test"].code == 250
        finally:
            await session.close()
        (received,) = postfix.wait_delivered("bob", 1)
        assert received.split(b"\n\n", 1)[1].isascii()
        assert body_text(received).rstrip() == TEXT.rstrip()


# --- recipients: limits, 452, SMTPUTF8 ---------------------------------------------------


async def test_more_recipients_than_a_transaction_takes_all_arrive(tmp_path: Path) -> None:
    users = [f"u{i}" for i in range(7)]
    settings = {"smtpd_recipient_limit": "2"}  # Postfix then answers 452 4.5.3
    with private_postfix(users=users, settings=settings) as postfix:
        session = await Session.open(plain(postfix.port), config(tmp_path))
        recipients = [f"{u}@postfix.test" for u in users] + ["nobody@postfix.test"]
        try:
            replies = await session.send(
                SENDER, recipients, letter(recipients[0]), max_recipients=5
            )
        finally:
            await session.close()
        assert {r: replies[r].code for r in recipients} == {
            **{r: 250 for r in recipients[:-1]},
            "nobody@postfix.test": 550,  # refused alone, the others still go
        }
        for user in users:
            assert len(postfix.wait_delivered(user, 1)) == 1
        # 7 accepted at two per transaction (452 for the third): four on one session.
        assert postfix.log().count("nrcpt=2 ") == 3 and postfix.log().count("nrcpt=1 ") == 1


async def test_a_non_ascii_recipient_fails_alone_without_smtputf8(tmp_path: Path) -> None:
    with private_postfix(settings={"smtputf8_enable": "no"}) as postfix:
        session = await Session.open(plain(postfix.port), config(tmp_path))
        try:
            replies = await session.send(
                SENDER, ["bob@postfix.test", "nguyễn@postfix.test"], letter("bob@postfix.test")
            )
            assert replies["nguyễn@postfix.test"].code == 553
            assert replies["nguyễn@postfix.test"].status == "5.6.7"
            assert replies["bob@postfix.test"].code == 250
            everyone = await session.send("an@khánhhòa.vn", ["bob@postfix.test"], b"x\r\n")
            assert everyone["bob@postfix.test"].status == "5.6.7"  # a non-ASCII sender
        finally:
            await session.close()
        assert len(postfix.wait_delivered("bob", 1)) == 1


# --- TLS ----------------------------------------------------------------------------------


async def test_opportunistic_starttls_with_postfix(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_self_signed(cert, key, ["mta.postfix.test"])
    settings = {
        "smtpd_tls_security_level": "may",
        "smtpd_tls_cert_file": str(cert),
        "smtpd_tls_key_file": str(key),
    }
    with private_postfix(settings=settings) as postfix:
        session = await Session.open(plain(postfix.port), config(tmp_path))
        try:
            assert session.smtp.get_transport_info("sslcontext") is not None
            replies = await session.send(SENDER, ["bob@postfix.test"], letter("bob@postfix.test"))
            assert replies["bob@postfix.test"].code == 250
        finally:
            await session.close()
        (received,) = postfix.wait_delivered("bob", 1)
        assert b"with ESMTPS" in received


async def test_no_password_in_plaintext_to_a_smarthost_without_starttls(tmp_path: Path) -> None:
    with private_postfix() as postfix:
        cfg = config(
            tmp_path,
            smarthost=f"127.0.0.1:{postfix.port}",
            smarthost_tls="opportunistic",
            smarthost_user="relay",
            smarthost_password="bí mật",
        )
        (host,) = await route("postfix.test", cfg, Resolver(cfg.dns), None)
        with pytest.raises(Failure) as failed:
            await Session.open(host, cfg)
        assert failed.value.reply.status == "4.7.0"
        assert "password is not sent" in failed.value.reply.text


class Recorder:
    """An aiosmtpd handler keeping what it received; ``on_mail``/``on_data`` set how it
    misbehaves."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.tls_offered = False
        self.refuse_ehlo = False
        self.mail_then_hang_up = False
        self.data_then_hang_up = False

    async def handle_EHLO(
        self,
        server: SMTP,
        session: ServerSession,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        if self.refuse_ehlo:
            return ["550 5.5.1 EHLO not understood here"]
        session.host_name = hostname
        if self.tls_offered:
            responses.insert(1, "250-STARTTLS")
        return responses

    async def handle_MAIL(
        self,
        server: SMTP,
        session: ServerSession,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        if self.mail_then_hang_up:
            assert server.transport is not None
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
            return "550 5.7.1 Sender refused"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: ServerSession,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        if address.startswith("unknown"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: ServerSession, envelope: Envelope) -> str:
        if self.data_then_hang_up:
            assert server.transport is not None
            server.transport.abort()
            return "250 never heard"
        assert isinstance(envelope.original_content, bytes)
        self.messages.append(envelope.original_content)
        return "250 OK queued"


class BrokenTls(SMTP):
    """Says yes to STARTTLS, then answers the TLS handshake with plaintext."""

    async def smtp_STARTTLS(self, arg: str) -> None:
        await self.push("220 2.0.0 Ready to start TLS")
        await self.push("this is not TLS")


class Server(Controller):
    def __init__(self, handler: Recorder, broken_tls: bool = False) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=free_port())
        self.broken_tls = broken_tls

    def factory(self) -> SMTP:
        cls = BrokenTls if self.broken_tls else SMTP
        return cls(self.handler, decode_data=False, hostname="peer.test")


@contextmanager
def peer(handler: Recorder, broken_tls: bool = False) -> Iterator[int]:
    server = Server(handler, broken_tls)
    server.start()
    try:
        yield server.port
    finally:
        server.stop()


@pytest.mark.parametrize("broken_tls", [False, True], ids=["454", "handshake"])
async def test_failed_starttls_falls_back_to_plaintext_on_the_same_host(
    tmp_path: Path, broken_tls: bool
) -> None:
    # aiosmtpd without a TLS context answers 454 to the STARTTLS it was made to offer.
    handler = Recorder()
    handler.tls_offered = True
    with peer(handler, broken_tls) as port:
        session = await Session.open(plain(port), config(tmp_path))
        try:
            assert session.smtp.get_transport_info("sslcontext") is None
            replies = await session.send(SENDER, ["bob@peer.test"], letter("bob@peer.test"))
        finally:
            await session.close()
    assert replies["bob@peer.test"].code == 250
    assert len(handler.messages) == 1


async def test_required_tls_does_not_fall_back(tmp_path: Path) -> None:
    handler = Recorder()
    handler.tls_offered = True
    with peer(handler) as port, pytest.raises(Failure) as failed:
        await Session.open(Host("localhost", "127.0.0.1", port, "verify"), config(tmp_path))
    assert failed.value.reply.code == 451 and failed.value.greeted
    assert handler.messages == []


async def test_a_refused_ehlo_is_followed_by_helo(tmp_path: Path) -> None:
    handler = Recorder()
    handler.refuse_ehlo = True
    with peer(handler) as port:
        session = await Session.open(plain(port), config(tmp_path))
        try:
            assert session.smtp.esmtp_extensions == {}
            assert not session.eight_bit_ok
            down = downgrade_8bit(letter("bob@peer.test"))
            assert down is not None
            replies = await session.send(SENDER, ["bob@peer.test"], down)
        finally:
            await session.close()
    assert replies["bob@peer.test"].code == 250
    assert body_text(handler.messages[0]).rstrip() == TEXT.rstrip()


# --- lost connections keep what was decided ----------------------------------------------


async def test_a_refusal_before_the_connection_drops_is_kept(tmp_path: Path) -> None:
    handler = Recorder()
    handler.mail_then_hang_up = True
    with peer(handler) as port:
        session = await Session.open(plain(port), config(tmp_path))
        try:
            replies = await session.send(SENDER, ["a@peer.test", "b@peer.test"], b"x\r\n")
        finally:
            await session.close()
    assert {r: str(reply) for r, reply in replies.items()} == {
        "a@peer.test": "550 5.7.1 Sender refused",
        "b@peer.test": "550 5.7.1 Sender refused",
    }


async def test_no_reply_to_the_final_dot_leaves_only_those_recipients_undecided(
    tmp_path: Path,
) -> None:
    handler = Recorder()
    handler.data_then_hang_up = True
    with peer(handler) as port:
        session = await Session.open(plain(port), config(tmp_path))
        assert session.final_timeout_s >= 600  # RFC 5321 §4.5.3.2.6
        try:
            replies = await session.send(
                SENDER, ["a@peer.test", "unknown@peer.test"], letter("a@peer.test")
            )
        finally:
            await session.close()
    # The refused one is decided (it bounces); the accepted one is missing: retried later.
    assert list(replies) == ["unknown@peer.test"] and replies["unknown@peer.test"].code == 550
    assert session.lost and not session.usable


# --- routing ----------------------------------------------------------------------------


@contextmanager
def dns(tmp_path: Path) -> Iterator[tuple[Zone, Config, Resolver]]:
    with dns_server() as (zone, address):
        cfg = Config(
            data_dir=tmp_path,
            hostname="mail.khanhhoa.gov.vn",
            dns=DnsSettings(nameservers=(address,), timeout_s=1.0),
            delivery=DeliverySettings(port=2525),
        )
        yield zone, cfg, Resolver(cfg.dns)


async def test_mail_whose_mx_is_this_server_bounces_as_a_loop(tmp_path: Path) -> None:
    with dns(tmp_path) as (zone, cfg, resolver):
        zone.add("loop.test", "MX", (10, "mail.khanhhoa.gov.vn"))
        with pytest.raises(Failure) as failed:
            await route("loop.test", cfg, resolver, None)
        assert failed.value.reply.code == 554 and failed.value.reply.status == "5.4.6"
        assert "loops back to myself" in failed.value.reply.text
        # Listed as a backup MX: only the better hosts are tried.
        zone.add("backup.test", "MX", (5, "mx1.backup.test"))
        zone.add("backup.test", "MX", (10, "mail.khanhhoa.gov.vn"))
        zone.add("backup.test", "MX", (20, "mx3.backup.test"))
        for name in ("mx1.backup.test", "mx3.backup.test"):
            zone.add(name, "A", "127.0.0.1")
        hosts = await route("backup.test", cfg, resolver, None)
        assert [h.name for h in hosts] == ["mx1.backup.test"]


async def test_mx_addresses_are_capped_and_a_failed_aaaa_keeps_the_a(tmp_path: Path) -> None:
    with dns(tmp_path) as (zone, cfg, resolver):
        zone.add("many.test", "MX", (10, "mx.many.test"))
        for i in range(1, 9):
            zone.add("mx.many.test", "A", f"127.0.0.{i}")
        hosts = await route("many.test", cfg, resolver, None)
        assert len(hosts) == MX_ADDRESS_LIMIT == 5

        # SERVFAIL for AAAA only: the A records still route the mail.
        answer = zone.resolve

        def servfail_aaaa(request: Any, handler: object) -> Any:
            if str(request.q.qname).startswith("mx.v4.test") and request.q.qtype == 28:
                reply = request.reply()
                reply.header.rcode = 2
                return reply
            return answer(request, handler)

        zone.resolve = servfail_aaaa  # type: ignore[method-assign]
        zone.add("v4.test", "MX", (10, "mx.v4.test"))
        zone.add("mx.v4.test", "A", "127.0.0.1")
        hosts = await route("v4.test", cfg, resolver, None)
        assert [h.address for h in hosts] == ["127.0.0.1"]


async def test_session_limit_stops_after_two_servers_that_answered(tmp_path: Path) -> None:
    greeted = 0

    class Counting(Recorder):
        async def handle_EHLO(
            self,
            server: SMTP,
            session: ServerSession,
            envelope: Envelope,
            hostname: str,
            responses: list[str],
        ) -> list[str]:
            nonlocal greeted
            greeted += 1
            return ["421 4.3.2 Going away"]

    with peer(Counting()) as port:
        hosts = [Host(f"mx{i}", "127.0.0.1", port, "opportunistic") for i in range(4)]
        with pytest.raises(Failure) as failed:
            await connect(hosts, config(tmp_path))
    assert failed.value.reply.code == 451 and greeted == 2


# --- MTA-STS ------------------------------------------------------------------------------


@contextmanager
def policy_host(tmp_path: Path, text: str, content_type: str) -> Iterator[tuple[int, list[str]]]:
    """HTTPS on loopback for mta-sts.tinh-b.test; yields its port and the paths asked."""
    asked: list[str] = []

    class PolicyFile(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    write_self_signed(tmp_path / "sts.pem", tmp_path / "sts.key", ["mta-sts.tinh-b.test"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), PolicyFile)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "sts.pem", tmp_path / "sts.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1]), asked
    finally:
        server.shutdown()
        server.server_close()


def sts_zone(zone: Zone) -> None:
    zone.add("tinh-b.test", "MX", (10, "mx.elsewhere.test"))
    zone.add("mx.elsewhere.test", "A", "127.0.0.1")
    zone.add("_mta-sts.tinh-b.test", "TXT", "v=STSv1; id=20261128T01")
    # The first address has no policy host: the second is tried.
    zone.add("mta-sts.tinh-b.test", "A", "127.0.0.2")
    zone.add("mta-sts.tinh-b.test", "A", "127.0.0.1")


async def test_mta_sts_testing_mode_delivers_to_an_mx_it_does_not_name(tmp_path: Path) -> None:
    text = "version: STSv1\r\nmode: testing\r\nmx: mx.tinh-b.test\r\nmax_age: 86400\r\n"
    with (
        policy_host(tmp_path, text, "text/plain; charset=utf-8") as (port, asked),
        dns(tmp_path) as (zone, cfg, resolver),
    ):
        sts_zone(zone)
        settings = DeliverySettings(port=2525, mta_sts_port=port, ca_file=str(tmp_path / "sts.pem"))
        sts = MtaSts(resolver, settings)
        # Sessions starting together share one fetch.
        policies = await asyncio.gather(*(sts.policy("tinh-b.test") for _ in range(5)))
        assert {p.mode if p else None for p in policies} == {"testing"}
        hosts = await route("tinh-b.test", cfg, resolver, sts)
    assert asked == ["/.well-known/mta-sts.txt"]
    assert [(h.name, h.tls) for h in hosts] == [("mx.elsewhere.test", "opportunistic")]


async def test_a_policy_served_as_html_is_no_policy_and_not_fetched_again_at_once(
    tmp_path: Path,
) -> None:
    text = "version: STSv1\r\nmode: enforce\r\nmx: mx.tinh-b.test\r\nmax_age: 86400\r\n"
    with (
        policy_host(tmp_path, text, "text/html; note=text/plain") as (port, asked),
        dns(tmp_path) as (zone, cfg, resolver),
    ):
        sts_zone(zone)
        settings = DeliverySettings(port=2525, mta_sts_port=port, ca_file=str(tmp_path / "sts.pem"))
        sts = MtaSts(resolver, settings)
        assert await sts.policy("tinh-b.test") is None
        assert await sts.policy("tinh-b.test") is None
        hosts = await route("tinh-b.test", cfg, resolver, sts)
    assert len(asked) == 1  # the failure is remembered for a while
    assert [h.name for h in hosts] == ["mx.elsewhere.test"]
