"""The pure parts of the inbound checks: DMARC records, alignment, pct, the
Authentication-Results field and the header surgery on arriving mail."""

from __future__ import annotations

import time
from email.parser import BytesHeaderParser
from email.policy import default

import pytest
from hypothesis import given
from hypothesis import strategies as st
from publicsuffixlist import PublicSuffixList

from govmail.core.mime import header_end
from govmail.delivery.inbound import (
    DkimResult,
    DmarcRecord,
    DmarcResult,
    SpfResult,
    aligned,
    applied_policy,
    authentication_results,
    from_domains,
    header_fields,
    hop_count,
    parse_dmarc,
    read_authserv_id,
    without_forged_results,
)

PSL = PublicSuffixList()


def organization(domain: str) -> str:
    return PSL.privatesuffix(domain) or domain


# --- DMARC records -----------------------------------------------------------------------


def test_a_full_record_is_read() -> None:
    record = parse_dmarc(
        "v=DMARC1; p=Reject; sp=quarantine; adkim=s; aspf=s; pct=20; rua=mailto:d@x.test"
    )
    assert record == DmarcRecord("reject", "quarantine", adkim="s", aspf="s", pct=20)


def test_defaults_relaxed_full_sample_and_sp_from_p() -> None:
    assert parse_dmarc("v=DMARC1;p=quarantine") == DmarcRecord("quarantine", "quarantine")
    assert parse_dmarc("v = DMARC1 ; p = none ;") == DmarcRecord("none", "none")


@pytest.mark.parametrize(
    "text",
    [
        "v=spf1 -all",  # another kind of TXT record
        "p=reject; v=DMARC1",  # v= must come first
        "v=dmarc1; p=reject",  # DMARC1 is case-sensitive
        "v=DMARC1",  # no policy and nobody asking for reports
        "v=DMARC1; p=block",
        "",
    ],
)
def test_what_is_no_usable_record(text: str) -> None:
    assert parse_dmarc(text) is None


def test_a_bad_policy_with_reports_asked_reads_as_none() -> None:
    record = parse_dmarc("v=DMARC1; p=bogus; rua=mailto:r@x.test")
    assert record is not None and record.policy == "none"
    # A bad sp= is as bad as a bad p= (RFC 7489 §6.6.3 step 6).
    assert parse_dmarc("v=DMARC1; p=reject; sp=block") is None
    assert parse_dmarc("v=DMARC1; p=reject; sp=x; rua=mailto:r@x.test") == DmarcRecord(
        "none", "none"
    )


@pytest.mark.parametrize("pct", ["101", "-1", "abc", "", "²", "0100"])
def test_a_bad_pct_means_every_message(pct: str) -> None:
    record = parse_dmarc(f"v=DMARC1; p=reject; pct={pct}")
    assert record is not None and record.pct == 100


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused_without_error(text: str) -> None:
    record = parse_dmarc(text)
    assert record is None or record.policy in ("none", "quarantine", "reject")


# --- alignment and pct ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "author", "mode", "expected"),
    [
        ("sender.test", "sender.test", "s", True),
        ("SENDER.test.", "sender.TEST", "s", True),
        ("mail.sender.test", "sender.test", "s", False),
        ("mail.sender.test", "sender.test", "r", True),
        ("bounces.news.sender.test", "hr.sender.test", "r", True),
        ("other.test", "sender.test", "r", False),
        # gov.vn is a public suffix: two provinces never align.
        ("khanhhoa.gov.vn", "danang.gov.vn", "r", False),
        ("mail.khanhhoa.gov.vn", "khanhhoa.gov.vn", "r", True),
        # github.io is a public suffix too (the list's private part).
        ("a.github.io", "b.github.io", "r", False),
    ],
)
def test_alignment(domain: str, author: str, mode: str, expected: bool) -> None:
    assert aligned(domain, author, mode, organization) is expected


def test_pct_outside_the_sample_steps_down_one_policy() -> None:
    assert applied_policy("reject", 100, 99) == "reject"
    assert applied_policy("reject", 30, 29) == "reject"
    assert applied_policy("reject", 30, 30) == "quarantine"
    assert applied_policy("quarantine", 0, 0) == "none"
    assert applied_policy("none", 0, 50) == "none"


# --- Authentication-Results ----------------------------------------------------------------


def test_the_field_lists_each_result_on_its_own_line() -> None:
    field = authentication_results(
        "mail.khanhhoa.gov.vn",
        SpfResult("pass", "mailfrom", "a@sender.test", "sender.test"),
        [DkimResult("pass", "sender.test", "sel"), DkimResult("fail", "esp.test", "s1")],
        DmarcResult("pass", "sender.test", "reject"),
    )
    assert field == (
        b"Authentication-Results: mail.khanhhoa.gov.vn;\r\n"
        b"\tspf=pass smtp.mailfrom=a@sender.test;\r\n"
        b"\tdkim=pass header.d=sender.test header.s=sel;\r\n"
        b"\tdkim=fail header.d=esp.test header.s=s1;\r\n"
        b"\tdmarc=pass (p=reject dis=none) header.from=sender.test\r\n"
    )
    parsed = BytesHeaderParser(policy=default).parsebytes(field + b"\r\n")
    assert parsed["Authentication-Results"].startswith("mail.khanhhoa.gov.vn;")


def test_null_sender_no_signature_no_policy() -> None:
    field = authentication_results(
        "mx.test",
        SpfResult("none", "helo", "mta.sender.test", "mta.sender.test"),
        [],
        DmarcResult("none", "sender.test"),
    )
    assert field == (
        b"Authentication-Results: mx.test;\r\n\tspf=none smtp.helo=mta.sender.test;\r\n"
        b"\tdkim=none;\r\n\tdmarc=none header.from=sender.test\r\n"
    )


def test_checks_turned_off_are_left_out_and_nothing_checked_adds_nothing() -> None:
    only_dkim = authentication_results("mx.test", None, [DkimResult("pass", "a.test", "s")], None)
    assert (
        only_dkim
        == b"Authentication-Results: mx.test;\r\n\tdkim=pass header.d=a.test header.s=s\r\n"
    )
    assert authentication_results("mx.test", None, None, None) == b""


def test_a_value_that_would_end_the_result_is_quoted() -> None:
    field = authentication_results(
        "mx.test",
        SpfResult("fail", "mailfrom", 'a;dkim=pass "x"@evil.test', "evil.test"),
        [DkimResult("fail", "evil.test; dmarc=pass", "s\r\n")],
        None,
    )
    assert b'smtp.mailfrom="a;dkim=pass \\"x\\"@evil.test"' in field
    assert b'header.d="evil.test; dmarc=pass" header.s="s"' in field
    assert field.count(b"\r\n") == 3  # nothing but our own folding


# --- the arriving header -------------------------------------------------------------------


def fields(raw: bytes) -> list[tuple[str, bytes]]:
    return header_fields(raw)


def test_forged_results_claiming_our_id_are_removed_and_others_kept() -> None:
    raw = (
        b"Received: from a\r\n"
        b"Authentication-Results: mail.khanhhoa.gov.vn; dmarc=pass\r\n"
        b"Authentication-Results: (comment) MAIL.KhanhHoa.gov.vn;\r\n\tspf=pass\r\n"
        b"Authentication-Results: mx.other.test; spf=fail\r\n"
        b"Authentication-Results: mail.khanhhoa.gov.vn.evil.test; spf=pass\r\n"
        b"Subject: x\r\n"
        b"\r\n"
        b"Authentication-Results: mail.khanhhoa.gov.vn; in the body stays\r\n"
    )
    assert without_forged_results(raw, fields(raw), "mail.khanhhoa.gov.vn") == (
        b"Received: from a\r\n"
        b"Authentication-Results: mx.other.test; spf=fail\r\n"
        b"Authentication-Results: mail.khanhhoa.gov.vn.evil.test; spf=pass\r\n"
        b"Subject: x\r\n"
        b"\r\n"
        b"Authentication-Results: mail.khanhhoa.gov.vn; in the body stays\r\n"
    )


def test_the_field_is_removed_not_the_same_bytes_elsewhere() -> None:
    forged = b"Authentication-Results: mail.khanhhoa.gov.vn; dmarc=pass\r\n"
    raw = b"X-Foo: a" + forged + b"Subject: x\r\n" + forged + b"\r\nbody\r\n"
    assert without_forged_results(raw, fields(raw), "mail.khanhhoa.gov.vn") == (
        b"X-Foo: a" + forged + b"Subject: x\r\n\r\nbody\r\n"
    )


@pytest.mark.parametrize(
    "value",
    [
        b' "mail.khanhhoa.gov.vn"; dmarc=pass',  # a quoted-string
        b" ((nested) comment) mail.khanhhoa.gov.vn; dmarc=pass",
        b" (a\\) b) mail.khanhhoa.gov.vn; dmarc=pass",  # quoted-pair in a comment
        b" mail.khanhhoa.gov.vn.; dmarc=pass",  # the root's dot
        b"\r\n\t(x)\r\n MAIL.khanhhoa.gov.vn(y);dmarc=pass",
        b' "mail.khanhhoa\\.gov.vn" 1; dmarc=pass',
    ],
)
def test_every_spelling_of_our_authserv_id_is_read(value: bytes) -> None:
    assert read_authserv_id(value) == "mail.khanhhoa.gov.vn"
    raw = b"Authentication-Results:" + value + b"\r\nSubject: x\r\n\r\nbody\r\n"
    assert without_forged_results(raw, fields(raw), "mail.khanhhoa.gov.vn") == (
        b"Subject: x\r\n\r\nbody\r\n"
    )


@pytest.mark.parametrize("value", [b" (unclosed mail.khanhhoa.gov.vn;", b' "unclosed', b" ;", b""])
def test_a_field_whose_authserv_id_cannot_be_read_is_removed(value: bytes) -> None:
    assert read_authserv_id(value) is None
    raw = b"Authentication-Results:" + value + b"\r\nSubject: x\r\n\r\nbody\r\n"
    assert without_forged_results(raw, fields(raw), "mx.test") == b"Subject: x\r\n\r\nbody\r\n"


def test_a_message_with_nothing_forged_is_the_same_object() -> None:
    raw = b"Subject: x\r\n\r\nbody\r\n"
    assert without_forged_results(raw, fields(raw), "mx.test") is raw


@given(st.binary(max_size=300))
def test_the_fields_join_back_into_the_header(raw: bytes) -> None:
    assert b"".join(f for _, f in header_fields(raw)) == raw[: header_end(raw)]


def test_a_large_folded_header_is_read_in_linear_time() -> None:
    header = b"X-A: a\r\n" + b" folded\r\n" * 300_000 + b"Received: b\r\n\r\nbody"
    started = time.perf_counter()
    found = header_fields(header)
    assert time.perf_counter() - started < 0.5  # quadratic: minutes
    assert [name for name, _ in found] == ["x-a", "received", ""]
    assert hop_count(found) == 1


def test_hops_are_the_received_fields_of_the_header_only() -> None:
    raw = b"Received: a\r\n\tfolded\r\nreceived: b\r\nX-Received: c\r\n\r\nReceived: body\r\n"
    assert hop_count(fields(raw)) == 2


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"From: A <a@Sender.Test>\r\n", [{"sender.test"}]),
        (b"From: a@sender.test, b@sender.test\r\n", [{"sender.test"}]),
        (b"From: a@sender.test, b@other.test\r\n", [{"sender.test", "other.test"}]),
        (b"From: a@sender.test\r\nFrom: a@sender.test\r\n", [{"sender.test"}] * 2),
        (b"Sender: a@sender.test\r\n", []),  # no From at all
        (b"From: undisclosed\r\n", [set()]),
    ],
)
def test_the_author_domains(header: bytes, expected: list[set[str]]) -> None:
    assert from_domains(fields(header + b"Subject: x\r\n\r\nbody\r\n")) == expected
