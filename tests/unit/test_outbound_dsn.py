"""Bounces and delay warnings (RFC 3464) as the sender reads them, and remote replies."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email import message_from_bytes, policy

from govmail.core.dsn import DELAYED_SUBJECT, SUBJECT, FailedRecipient, build_dsn
from govmail.delivery.client import Reply

ORIGINAL = b"From: nvan@khanhhoa.gov.vn\r\nTo: a@tinh-b.test\r\nSubject: Hop\r\n\r\nsecret body\r\n"
AT = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def parts(dsn: bytes) -> tuple[str, str, str, str]:
    """Subject, the human text (decoded), the delivery-status part, the returned headers."""
    message = message_from_bytes(dsn, policy=policy.default)
    human, status, headers = message.get_payload()
    text = base64.b64decode(human.get_payload()).decode("utf-8")
    return str(message["Subject"]), text, status.as_string(), headers.get_payload()


def test_remote_refusal_names_the_server_reply_and_what_to_do() -> None:
    failed = FailedRecipient(
        "a@tinh-b.test",
        "5.1.1",
        "smtp; 550 5.1.1 <a@tinh-b.test>: User unknown\r\n more",
        "bị từ chối, máy chủ mx.tinh-b.test trả lời: 550 5.1.1 User unknown",
        "refused, the server mx.tinh-b.test said: 550 5.1.1 User unknown",
        "mx.tinh-b.test",
    )
    dsn = build_dsn(
        reporting_host="mail.khanhhoa.gov.vn",
        sender="nvan@khanhhoa.gov.vn",
        failed=[failed],
        original=ORIGINAL,
        at=AT,
    )
    subject, text, status, headers = parts(dsn)
    assert subject == SUBJECT
    assert "KHÔNG được chuyển" in text and "mx.tinh-b.test trả lời: 550 5.1.1" in text
    assert "kiểm tra lại địa chỉ" in text and "Check the recipient's address" in text
    assert "Action: failed" in status and "Status: 5.1.1" in status
    assert "Remote-MTA: dns; mx.tinh-b.test" in status
    # A reply of several lines stays one field: no header of the remote's making.
    assert "Diagnostic-Code: smtp; 550 5.1.1 <a@tinh-b.test>: User unknown more" in status
    assert "Subject: Hop" in headers and "secret body" not in headers


def test_delay_warning_says_it_is_still_tried_and_until_when() -> None:
    late = FailedRecipient(
        "a@tinh-b.test", "4.4.1", "X-Govmail; 451 4.4.1 connect failed", "chưa gửi", "not yet"
    )
    until = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    dsn = build_dsn(
        reporting_host="mail.khanhhoa.gov.vn",
        sender="nvan@khanhhoa.gov.vn",
        failed=[late],
        original=ORIGINAL,
        at=AT,
        delayed_until=until,
    )
    subject, text, status, _ = parts(dsn)
    assert subject == DELAYED_SUBJECT
    assert "CHƯA chuyển được" in text and "03/12/2026 09:00" in text
    assert "KHÔNG cần gửi lại" in text and "do NOT need to send it again" in text
    assert "Action: delayed" in status and "Status: 4.4.1" in status
    assert "Will-Retry-Until: Thu, 03 Dec 2026 09:00:00" in status
    assert "Remote-MTA" not in status  # no server answered


def test_expired_and_loop_bounces_give_their_own_advice() -> None:
    expired = FailedRecipient("a@b.test", "5.4.7", "X-Govmail; x", "quá hạn", "expired")
    loop = FailedRecipient("c@b.test", "5.4.6", "X-Govmail; y", "vòng lặp", "loop")
    _, text, status, _ = parts(
        build_dsn(
            reporting_host="h", sender="s@h", failed=[expired, loop], original=ORIGINAL, at=AT
        )
    )
    assert "thời gian cho phép" in text and "chuyển vòng" in text
    assert status.count("Action: failed") == 2


def test_reply_status_is_the_enhanced_code_or_its_class() -> None:
    assert Reply(550, "5.1.1 <a@b>: User unknown").status == "5.1.1"
    assert Reply(452, "4.2.2 Mailbox full").status == "4.2.2"
    assert Reply(554, "Transaction failed").status == "5.0.0"
    assert Reply(421, "mx closing").status == "4.0.0"
    assert Reply(556, "5.1.10 null MX").status == "5.1.10"
    assert Reply(550, "x").permanent and not Reply(451, "x").permanent
    assert str(Reply(550, "5.1.1 line one\r\n line two")) == "550 5.1.1 line one line two"


def test_a_bounce_from_the_queue_dates_arrival_and_last_attempt_and_claims_no_delivery() -> None:
    queued = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)
    tried = datetime(2026, 11, 28, 8, 55, tzinfo=UTC)
    refused = FailedRecipient("a@b.test", "5.1.1", "smtp; 550 5.1.1 no", "bị từ chối", "refused")
    _, text, status, _ = parts(
        build_dsn(
            reporting_host="h",
            sender="s@h",
            failed=[refused],
            original=ORIGINAL,
            at=AT,
            arrived=queued,
            last_attempt=tried,
        )
    )
    assert "Arrival-Date: Thu, 26 Nov 2026 08:30:00" in status
    assert "Last-Attempt-Date: Sat, 28 Nov 2026 08:55:00" in status
    # Others may still be waiting in the queue: the notice must not say they received it.
    assert "received it" not in text and "đã nhận được thư" not in text
    assert "you will get another notice" in text and "bạn sẽ nhận thêm thông báo" in text
