"""The SMTP edge's pure parts, and the guard on how GovSMTP builds itself from aiosmtpd."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

from govmail.config import Config, SmtpLimits
from govmail.smtp.handler import MX, SUBMISSION, MailHandler
from govmail.smtp.headers import protocol_name
from govmail.smtp.protocol import GovSMTP, HandlerTables
from govmail.smtp.replies import ascii_vietnamese, reply, with_enhanced_code


def _handler(role: str) -> MailHandler:
    return MailHandler(role, Config(data_dir=Path("/nonexistent")), None, None)  # type: ignore[arg-type]


def _connection(handler: MailHandler) -> GovSMTP:
    """A protocol object as a listener makes one (needs a running event loop)."""
    return GovSMTP(
        handler,
        tables=HandlerTables.of(handler),
        limits=SmtpLimits(),
        connections=Counter(),
        hostname="mail.example",
        tls_context=None,
    )


def test_fast_init_matches_what_aiosmtpd_would_build() -> None:
    """GovSMTP sets aiosmtpd's attributes itself (its own __init__ is slow); if an aiosmtpd
    release adds or renames one, this fails instead of the server misbehaving."""

    async def build() -> tuple[Any, Any]:
        handler = _handler(SUBMISSION)
        ours = _connection(handler)
        theirs = SMTP(
            handler, enable_SMTPUTF8=True, hostname="mail.example", auth_require_tls=False
        )
        return ours, theirs

    ours, theirs = asyncio.run(build())
    assert set(vars(theirs)) <= set(vars(ours))
    assert ours._smtp_methods.keys() == theirs._smtp_methods.keys()
    assert ours._handle_hooks.keys() == theirs._handle_hooks.keys()
    assert ours._auth_methods.keys() == theirs._auth_methods.keys() == {"PLAIN", "LOGIN"}
    assert all(not m.is_builtin for m in ours._auth_methods.values())
    assert ours._ehlo_hook_ver == theirs._ehlo_hook_ver == "new"
    # Bound to this connection, not to another one's protocol object.
    assert ours._smtp_methods["DATA"].__self__ is ours


def test_replies_get_default_enhanced_codes() -> None:
    assert with_enhanced_code("250 OK") == "250 2.0.0 OK"
    assert (
        with_enhanced_code("503 Error: need MAIL command") == "503 5.5.1 Error: need MAIL command"
    )
    assert with_enhanced_code("550 5.1.1 User unknown") == "550 5.1.1 User unknown"
    assert with_enhanced_code("354 End data with <CR><LF>.<CR><LF>") == (
        "354 End data with <CR><LF>.<CR><LF>"
    )
    assert with_enhanced_code("220 mail.example ESMTP") == "220 mail.example ESMTP"


def test_vietnamese_replies_are_ascii_unless_smtputf8() -> None:
    assert ascii_vietnamese("Hộp thư đã đầy. Địa chỉ") == "Hop thu da day. Dia chi"
    assert (
        reply("452 4.2.2", "Hộp thư đầy", "Mailbox full") == "452 4.2.2 Hop thu day / Mailbox full"
    )
    assert reply("452 4.2.2", "Hộp thư đầy", "Mailbox full", utf8=True).startswith(
        "452 4.2.2 Hộp thư đầy"
    )


def test_received_protocol_names_follow_rfc_3848_and_6531() -> None:
    assert protocol_name(extended=False, tls=False, authenticated=False, utf8=False) == "SMTP"
    assert protocol_name(extended=True, tls=True, authenticated=True, utf8=False) == "ESMTPSA"
    assert protocol_name(extended=True, tls=True, authenticated=False, utf8=True) == "UTF8SMTPS"
    assert MX != SUBMISSION


def test_limits_count_ipv6_clients_by_their_64_network() -> None:
    from govmail.directory.accounts import client_key

    assert (
        client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    )
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:10.1.2.3") == "10.1.2.3" == client_key("10.1.2.3")


def test_the_fast_path_parser_agrees_with_aiosmtpd() -> None:
    async def parse() -> list[tuple[Any, Any, Any]]:
        ours = _connection(_handler(MX))
        paths = [
            "<nvan@khanhhoa.gov.vn>",
            "<nvan@khanhhoa.gov.vn> SIZE=1000 BODY=8BITMIME",
            " <a.b-c+tag@sub.example.org>",
            "<o'brien@example.ie>",
            "<a..b@example.org>",
            "<@relay.example:user@example.org>",
            '<"quoted@local"@example.org>',
            "<user@[192.0.2.1]>",
            "<>",
            "<unqualified>",
            "<user@-bad-.example>",
            "<a@b.example>x",
            "<a@b.example>  SIZE=1 ",
        ]
        return [(p, ours._getaddr(p), SMTP._getaddr(ours, p)) for p in paths]

    for path, fast, slow in asyncio.run(parse()):
        assert fast == slow, path
