"""The vacation responder's pure rules: RFC 3834's "when not to answer", the reply message,
the active dates, and the signature placement."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import message_from_bytes, policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govmail.mailstore.autoreply import refusal, reply_message
from govmail.mailstore.preferences import (
    Preferences,
    SettingsError,
    Vacation,
    checked,
    today_in_vietnam,
    with_signature,
)

OWN = frozenset({"nvan@khanhhoa.gov.vn"})
SENDER = "ngoai@example.org"
TO_ME = ("To", "Nguyễn Văn An <nvan@khanhhoa.gov.vn>")

# Headers that say nothing about automation: any mix of them must not stop a reply.
neutral = st.lists(
    st.tuples(
        st.sampled_from(["Subject", "X-Mailer", "Comments", "Cc", "Reply-To", "Keywords"]),
        st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=40),
    ),
    max_size=6,
)
automatic = st.sampled_from(
    [
        ("Auto-Submitted", "auto-generated"),
        ("Auto-Submitted", "auto-replied"),
        ("auto-submitted", " Auto-Notified ; owner-email=x@example.org"),
        ("Precedence", "bulk"),
        ("PRECEDENCE", " List "),
        ("Precedence", "junk"),
        ("List-Id", "<tin-tuc.example.org>"),
        ("List-Unsubscribe", "<mailto:leave@example.org>"),
    ]
)


@given(neutral)
def test_a_personal_message_to_the_mailbox_is_answered(extra: list[tuple[str, str]]) -> None:
    assert refusal(SENDER, [TO_ME, *extra], OWN) is None


@given(neutral, automatic, st.integers(min_value=0, max_value=6))
def test_automatic_bulk_and_list_mail_is_never_answered(
    extra: list[tuple[str, str]], sign: tuple[str, str], at: int
) -> None:
    headers = [TO_ME, *extra]
    headers.insert(min(at, len(headers)), sign)
    assert refusal(SENDER, headers, OWN) is not None


def test_auto_submitted_no_is_a_person() -> None:
    assert refusal(SENDER, [TO_ME, ("Auto-Submitted", "no")], OWN) is None
    assert refusal(SENDER, [TO_ME, ("Auto-Submitted", "No (sent by hand)")], OWN) is None


@given(neutral)
def test_the_null_sender_is_never_answered(extra: list[tuple[str, str]]) -> None:
    assert refusal("", [TO_ME, *extra], OWN) == "null sender"


@given(
    st.sampled_from(
        ["MAILER-DAEMON", "postmaster", "noreply", "no-reply", "owner-ds", "ds-request"]
    )
)
def test_robots_are_never_answered(local: str) -> None:
    assert refusal(f"{local}@example.org", [TO_ME], OWN) == "robot sender"


@given(st.emails())
def test_mail_not_addressed_to_the_mailbox_is_not_answered(other: str) -> None:
    # Bcc'd or list mail: the mailbox is in neither To nor Cc.
    if other.lower() in OWN:
        return
    assert refusal(SENDER, [("To", other), ("Cc", f"<{other}>")], OWN) == (
        "mailbox not in To or Cc"
    )
    assert refusal(SENDER, [("To", other), ("Cc", "NVAN@khanhhoa.gov.vn")], OWN) is None


def test_mail_from_the_mailbox_itself_is_not_answered() -> None:
    assert refusal("NVan@khanhhoa.gov.vn", [TO_ME], OWN) is not None


def test_the_reply_is_marked_threaded_and_addressed_to_the_envelope_sender() -> None:
    raw = reply_message(
        mailbox_address="nvan@khanhhoa.gov.vn",
        sender=SENDER,
        original_subject="Báo cáo tuần 47",
        message_id="<b@example.org>",
        references="<a@example.org>",
        vacation=Vacation(True, text="Tôi nghỉ phép đến hết ngày 5/12."),
        hostname="mail.khanhhoa.gov.vn",
        at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
    )
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["From"] == "nvan@khanhhoa.gov.vn" and message["To"] == SENDER
    assert message["Subject"] == "Trả lời tự động: Báo cáo tuần 47"
    assert message["In-Reply-To"] == "<b@example.org>"
    assert message["References"] == "<a@example.org> <b@example.org>"
    assert "Tôi nghỉ phép" in message.get_content()


def test_a_chosen_subject_replaces_the_default() -> None:
    raw = reply_message(
        mailbox_address="nvan@khanhhoa.gov.vn",
        sender=SENDER,
        original_subject="Hỏi",
        message_id="",
        references="",
        vacation=Vacation(True, subject="Vắng mặt", text="Vắng."),
        hostname="h",
        at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "Vắng mặt" and message["In-Reply-To"] is None


@given(st.dates(), st.one_of(st.none(), st.dates()), st.one_of(st.none(), st.dates()))
def test_the_vacation_is_active_between_its_dates_inclusive(
    day: date, start: date | None, end: date | None
) -> None:
    inside = (start is None or start <= day) and (end is None or day <= end)
    assert Vacation(True, start, end).active_on(day) is inside
    assert Vacation(False, start, end).active_on(day) is False


def test_dates_are_vietnamese_days() -> None:
    # 18:30 UTC on 30 November is already 1 December in Vietnam (UTC+7).
    assert today_in_vietnam(datetime(2026, 11, 30, 18, 30, tzinfo=UTC)) == date(2026, 12, 1)


def test_the_signature_sits_below_a_separator_above_the_quote() -> None:
    assert with_signature("", "Nguyễn Văn An") == "\n\n-- \nNguyễn Văn An\n"
    quoted = with_signature("> câu hỏi", "An")
    assert quoted.index("-- \nAn") < quoted.index("> câu hỏi")
    assert with_signature("> câu hỏi", "") == "> câu hỏi"


def test_settings_are_checked_before_they_are_stored() -> None:
    with pytest.raises(SettingsError, match="longer than 2,000"):
        checked(Preferences(signature="x" * 2001))
    with pytest.raises(SettingsError):
        checked(Preferences(vacation=Vacation(True, date(2026, 12, 5), date(2026, 12, 1), "", "x")))
    with pytest.raises(SettingsError):
        checked(Preferences(vacation=Vacation(True, text="  ")))  # on, but nothing to say
    # A subject stays one header line whatever the form sent.
    kept = checked(Preferences(vacation=Vacation(True, subject="Vắng\r\nBcc: x@y", text="Vắng.")))
    assert kept.vacation.subject == "Vắng Bcc: x@y"
    assert checked(Preferences(signature="An\r\nThanh tra\r\n")).signature == "An\nThanh tra"
