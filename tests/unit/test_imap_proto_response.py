"""Response building blocks: strings, mailbox names, flags, dates, sequence sets, status lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from govmail.imap.proto import response
from govmail.imap.proto.model import SequenceSet


def test_astring_quoted_or_literal() -> None:
    assert response.astring("INBOX") == b"INBOX"
    assert response.astring("a]b") == b"a]b"
    assert response.astring("") == b'""'
    assert response.astring("nil") == b'"nil"'
    assert response.astring('a "b" \\c') == b'"a \\"b\\" \\\\c"'
    assert response.astring("Thư") == b"{4}\r\nTh\xc6\xb0"
    assert response.astring("Thư", utf8=True) == b'"Th\xc6\xb0"'
    assert response.quoted_or_literal("a\r\nb") == b"{4}\r\na\r\nb"
    assert response.quoted_or_literal(b"a\x00") == b"{2}\r\na\x00"
    assert response.quoted_or_literal(b"\xff", utf8=True) == b"{1}\r\n\xff"
    assert response.quoted_or_literal("x" * 2000).startswith(b"{2000}\r\n")


def test_nstring() -> None:
    assert response.nstring(None) == b"NIL"
    assert response.nstring("NIL") == b'"NIL"'
    assert response.nstring(b"") == b'""'


def test_mailbox() -> None:
    assert response.mailbox("INBOX", False) == b"INBOX"
    assert response.mailbox("Thư đã gửi", False) == b'"Th&AbA- &AREA4w- g&Hu0-i"'
    assert response.mailbox("Thư đã gửi", True) == '"Thư đã gửi"'.encode()
    assert response.mailbox("Hộp/日本語", False) == b"H&Htk-p/&ZeVnLIqe-"


def test_flag_list() -> None:
    assert response.flag_list(["\\Seen", "$Work"]) == b"(\\Seen $Work)"
    assert response.flag_list([]) == b"()"


def test_date_time() -> None:
    moment = datetime(2026, 11, 28, 14, 25, 31, tzinfo=UTC)
    assert response.date_time(moment) == b'"28-Nov-2026 14:25:31 +0000"'
    hanoi = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=7)))
    assert response.date_time(hanoi) == b'"02-Jan-2026 03:04:05 +0700"'
    west = datetime(2026, 1, 2, tzinfo=timezone(-timedelta(hours=3, minutes=30)))
    assert response.date_time(west) == b'"02-Jan-2026 00:00:00 -0330"'
    assert response.date_time(datetime(2026, 5, 6)) == b'"06-May-2026 00:00:00 +0000"'


def test_sequence_set() -> None:
    assert response.sequence_set([9, 1, 2, 3, 5, 7, 8, 2]) == b"1:3,5,7:9"
    assert response.sequence_set([]) == b""
    assert response.sequence_set([4]) == b"4"


@given(st.sets(st.integers(1, 300)))
def test_sequence_set_names_exactly_its_numbers(numbers: set[int]) -> None:
    text = response.sequence_set(numbers).decode()
    ranges = []
    for item in filter(None, text.split(",")):
        low, _, high = item.partition(":")
        ranges.append((int(low), int(high or low)))
    assert set(SequenceSet(tuple(ranges)).iter_within(list(range(1, 301)))) == numbers


def test_status_lines() -> None:
    assert response.tagged("a1", "OK", "LOGIN completed") == b"a1 OK LOGIN completed\r\n"
    assert response.tagged("a1", "NO", "Too big", "TOOBIG") == b"a1 NO [TOOBIG] Too big\r\n"
    assert response.tagged("a1", "NO", "bad\r\n* x") == b"a1 NO bad * x\r\n"
    assert response.untagged("5 EXISTS") == b"* 5 EXISTS\r\n"
    assert response.untagged(b"1 FETCH (BODY[] {2}\r\nhi)") == b"* 1 FETCH (BODY[] {2}\r\nhi)\r\n"
    assert response.continuation() == b"+ \r\n"
    assert response.continuation("Ready") == b"+ Ready\r\n"
