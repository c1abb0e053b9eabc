"""MTA-STS policies (RFC 8461): the TXT record's id, the policy file, MX matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govmail.delivery.mta_sts import MAX_POLICY_BYTES, parse_policy, policy_text, record_id

POLICY = (
    "version: STSv1\r\nmode: enforce\r\nmx: mx1.tinh-b.test\r\nmx: *.mail.tinh-b.test\r\n"
    "max_age: 86400\r\n"
)


def test_policy_names_its_mx_hosts_and_wildcards_one_label() -> None:
    policy = parse_policy(POLICY, "id1", 0.0)
    assert policy is not None and policy.enforced and policy.max_age == 86400
    assert policy.allows("mx1.tinh-b.test") and policy.allows("MX1.tinh-b.test.")
    assert policy.allows("a.mail.tinh-b.test")
    assert not policy.allows("a.b.mail.tinh-b.test")  # one label only (RFC 8461 §4.1)
    assert not policy.allows("mail.tinh-b.test")
    assert not policy.allows("mx2.tinh-b.test")


def test_invalid_policies_are_no_policy() -> None:
    assert parse_policy(POLICY.replace("STSv1", "STSv2"), "x", 0.0) is None
    assert parse_policy(POLICY.replace("enforce", "strict"), "x", 0.0) is None
    assert parse_policy(POLICY.replace("max_age: 86400", "max_age: soon"), "x", 0.0) is None
    no_mx = "version: STSv1\nmode: enforce\nmax_age: 10\n"
    assert parse_policy(no_mx, "x", 0.0) is None
    assert parse_policy("<html>not found</html>", "x", 0.0) is None


def test_policy_expires_after_max_age() -> None:
    policy = parse_policy(POLICY, "id1", 100.0)
    assert policy is not None
    assert policy.fresh(100.0 + 86399) and not policy.fresh(100.0 + 86400)


def test_record_id_needs_exactly_one_sts_record() -> None:
    assert record_id(["v=STSv1; id=20261128T01;"]) == "20261128T01"
    assert record_id(["v=spf1 -all", "v=STSv1; id=abc"]) == "abc"
    assert record_id([]) is None
    assert record_id(["v=STSv1; id=a", "v=STSv1; id=b"]) is None  # ambiguous: none
    assert record_id(["v=STSv1;"]) is None
    # id is 1 to 32 letters and digits (RFC 8461 §3.1).
    assert record_id(["v=STSv1; id=" + "a" * 32]) == "a" * 32
    assert record_id(["v=STSv1; id=" + "a" * 33]) is None
    assert record_id(["v=STSv1; id=2026-11-28"]) is None


def response(content_type: str, body: str = POLICY, status: str = "200 OK") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nServer: x\r\nContent-Type: {content_type}\r\n"
        f"X-Note: text/plain\r\n\r\n{body}"
    ).encode()


def test_the_policy_is_a_200_text_plain_body() -> None:
    assert policy_text(response("text/plain")) == POLICY
    assert policy_text(response('Text/Plain; charset="utf-8"')) == POLICY
    for wrong in ("text/html", "text/plainx", "application/octet-stream; x=text/plain"):
        with pytest.raises(ValueError, match="Content-Type"):
            policy_text(response(wrong))  # "text/plain" elsewhere in the head is not enough
    with pytest.raises(ValueError, match="HTTP status"):
        policy_text(response("text/plain", status="301 Moved"))
    with pytest.raises(ValueError, match="64 KB"):
        policy_text(response("text/plain", body=POLICY + "#" * MAX_POLICY_BYTES))


@given(st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,3}", fullmatch=True))
def test_an_exact_pattern_matches_only_its_host(host: str) -> None:
    policy = parse_policy(f"version: STSv1\nmode: enforce\nmx: {host}\nmax_age: 60\n", "i", 0)
    assert policy is not None
    assert policy.allows(host) and policy.allows(host.upper() + ".")
    assert not policy.allows("x" + host) and not policy.allows("a." + host)
