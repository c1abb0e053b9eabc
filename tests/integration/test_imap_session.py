"""IMAP with the stdlib client: login, folders, mail delivered by SMTP, flags, search."""

from __future__ import annotations

import imaplib

import pytest

from tests.integration.mailserver import AN, BINH, PASSWORD, RunningServer, imap, mx


def _deliver(server: RunningServer, subject: str = "Báo cáo tuần", to: str = AN) -> None:
    body = (
        f"From: {BINH}\r\nTo: {to}\r\nSubject: =?utf-8?b?"
        + __import__("base64").b64encode(subject.encode()).decode()
        + "?=\r\nMessage-ID: <x@y>\r\n\r\nNoi dung.\r\n"
    )
    with mx(server) as client:
        client.sendmail("sender@example.org", [to], body.encode())


def test_login_select_fetch(server: RunningServer) -> None:
    _deliver(server)
    client = imap(server)
    typ, data = client.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = client.fetch("1", "(FLAGS RFC822.SIZE ENVELOPE BODY.PEEK[])")
    assert typ == "OK", data
    typ, data = client.uid("SEARCH", None, "SUBJECT", '"bao cao"')
    assert typ == "OK" and data == [b"1"], data
    typ, data = client.store("1", "+FLAGS", "(\\Flagged)")
    assert typ == "OK", data
    typ, data = client.list()
    assert typ == "OK", data
    client.logout()
