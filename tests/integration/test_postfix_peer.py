"""Debian's Postfix as govmail's peer: a private Postfix instance relays Internet mail
into govmail's MX, and the helpers the outbound tests and benchmark use are checked
against Postfix itself (its Maildirs, its ``smtp-sink``)."""

from __future__ import annotations

import json
import smtplib
import time
from email import message_from_bytes, policy
from pathlib import Path

import dkim
import dns.resolver
import pytest

from govmail.config import DnsSettings
from govmail.delivery.resolver import sync_resolver
from tests.integration.clihelp import cli
from tests.integration.dnsserver import dns_server
from tests.integration.mailserver import AN, mailbox_messages, served, set_option, submission
from tests.integration.postfix import private_postfix, smtp_sink

MESSAGE = (
    "From: Bob <bob@postfix.test>\r\n"
    "To: <{to}>\r\n"
    "Subject: =?utf-8?q?H=E1=BB=8Dp_giao_ban?=\r\n"
    "Message-ID: <{tag}@postfix.test>\r\n"
    "\r\n"
    "Kính gửi anh An, {tag}.\r\n"
)


def test_private_postfix_delivers_to_its_maildir() -> None:
    with private_postfix() as postfix:
        with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as client:
            body = MESSAGE.format(to="bob@postfix.test", tag="maildir-check").encode()
            assert client.sendmail("an@other.test", ["bob@postfix.test"], body) == {}
            client.mail("an@other.test")
            code, _ = client.rcpt("nobody-here@postfix.test")
            assert code == 550
            client.rset()
        (delivered,) = postfix.wait_delivered("bob", 1)
        assert b"Delivered-To: bob@postfix.test" in delivered
        assert b"by mta.postfix.test (Postfix)" in delivered
        assert b"maildir-check" in delivered


def test_postfix_relays_into_a_govmail_inbox(province: Path) -> None:
    with dns_server() as (_zone, nameserver):
        # Inbound checks ask this (empty) zone, never the machine's resolver.
        set_option(province, "nameservers", [nameserver], section="dns")
        with served(province) as server:
            relay = f"[127.0.0.1]:{server.port('smtp')}"
            with private_postfix(relayhost=relay) as postfix:
                with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as client:
                    body = MESSAGE.format(to=AN, tag="relayed-by-postfix").encode()
                    assert client.sendmail("bob@postfix.test", [AN], body) == {}
                found = _wait_inbox(province, AN, 1)
                assert found, f"not delivered to govmail; Postfix log:\n{postfix.log()}"
                assert postfix.queue_ids() == []
    (raw,) = found
    assert b"relayed-by-postfix" in raw
    assert b"by mta.postfix.test (Postfix)" in raw  # Postfix's own trace, kept
    assert b"Return-Path: <bob@postfix.test>" in raw


def test_smtp_sink_counts_what_it_receives() -> None:
    with smtp_sink() as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=30) as client:
            for n in range(3):
                body = MESSAGE.format(to="x@sink.test", tag=f"n{n}").encode()
                client.sendmail("a@b.test", ["x@sink.test"], body)
        assert sink.wait_for(3, timeout=10) == 3


def _wait_inbox(data_dir: Path, address: str, count: int, timeout: float = 30.0) -> list[bytes]:
    deadline = time.monotonic() + timeout
    while True:
        found = [raw for _, raw in mailbox_messages(data_dir, address)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.mark.parametrize("eight_bit_mime", [True, False], ids=["8bitmime", "7bit-only"])
def test_govmail_delivers_to_postfix_signed_with_its_published_key(
    province: Path, eight_bit_mime: bool
) -> None:
    """Postfix as the remote MTA: govmail finds it by MX, hands it the mail over SMTP, and
    the copy in Postfix's Maildir carries a signature that verifies against the DKIM
    record `govmail dns records` prints. A Postfix that does not offer 8BITMIME gets the
    Vietnamese text in quoted-printable (RFC 6152), signed as sent."""
    records = json.loads(cli(province, "dns", "records", "--json").stdout)
    settings = {} if eight_bit_mime else {"smtpd_discard_ehlo_keywords": "8bitmime"}
    with private_postfix(settings=settings) as postfix, dns_server() as (zone, nameserver):
        zone.add("postfix.test", "MX", (10, "mta.postfix.test"))
        zone.add("mta.postfix.test", "A", "127.0.0.1")
        for record in records:
            if record["type"] == "TXT":
                zone.add(record["name"], "TXT", record["value"])
        set_option(province, "nameservers", [nameserver], section="dns")
        set_option(province, "port", postfix.port, section="delivery")
        body = (
            # Header fields in RFC 2047 words, as Thunderbird writes them: only the body
            # is 8-bit, and that can be made 7-bit.
            f"From: =?utf-8?b?Tmd1eeG7hW4gVsSDbiBBbg==?= <{AN}>\r\nTo: <bob@postfix.test>\r\n"
            "Subject: =?utf-8?b?R2nhuqV5IG3hu51pIGjhu41w?=\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            "\r\nKính mời ông dự họp.\r\n"
        ).encode()
        with served(province) as server, submission(server) as client:
            assert client.sendmail(AN, ["bob@postfix.test"], body) == {}
            (delivered,) = postfix.wait_delivered("bob", 1)

        resolver = sync_resolver(DnsSettings(nameservers=(nameserver,)))

        def lookup(name: bytes, timeout: int = 5) -> bytes | None:
            """What a receiver's DNS gives dkimpy for the key record."""
            try:
                answer = resolver.resolve(name.decode().rstrip("."), "TXT")
            except dns.resolver.NXDOMAIN:
                return None
            return b"".join(answer[0].strings)

        assert b"Return-Path: <nvan@khanhhoa.gov.vn>" in delivered
        assert dkim.verify(delivered, dnsfunc=lookup)
        message = message_from_bytes(delivered, policy=policy.default)
        assert message.get_content() == "Kính mời ông dự họp.\n"
        assert delivered.isascii() is not eight_bit_mime
        altered = delivered.replace(b"Subject: =?utf-8?b?R2", b"Subject: =?utf-8?b?Q2")
        assert altered != delivered and not dkim.verify(altered, dnsfunc=lookup)
