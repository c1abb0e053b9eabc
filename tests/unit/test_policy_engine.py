"""The sending rules put together (policy/engine.py): which findings a message gets in
each direction, which one refuses it, and the message as it goes on."""

from __future__ import annotations

from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from govmail.config import INBOUND_ACTIONS, PolicySettings, RuleActions
from govmail.core.errors import InvalidInput
from govmail.core.legacy import encode_legacy
from govmail.policy.engine import INBOUND, SUBMISSION, Policy
from govmail.policy.parts import parse, split_message
from tests.corpus import documents

MB = 1024 * 1024


@pytest.fixture(scope="module")
def engine() -> Policy:
    return Policy(PolicySettings(), Path("/nonexistent"))


def mail(
    subject: str | None = "Báo cáo tuần 45", body: str = "Kính gửi các đồng chí.\n"
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "nvan@khanhhoa.gov.vn"
    message["To"] = "ltbinh@khanhhoa.gov.vn"
    if subject is not None:
        message["Subject"] = subject
    message["Message-ID"] = "<m1@test>"
    message.set_content(body)
    return message


def attach(message: EmailMessage, name: str, data: bytes) -> EmailMessage:
    message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message


def rules(evaluation: object) -> list[tuple[str, str]]:
    return [(f.rule, f.action) for f in evaluation.findings]  # type: ignore[attr-defined]


def test_a_plain_vietnamese_message_passes_untouched(engine: Policy) -> None:
    raw = mail().as_bytes()
    result = engine.evaluate(raw, SUBMISSION)
    assert result.findings == () and result.rejection is None
    # Only the document type recognised from the subject is added (R14).
    assert result.raw == b"X-Govmail-Document-Type: bao-cao-tuan\r\n" + raw
    assert result.document is not None and result.document.type_id == "bao-cao-tuan"


def test_size_counts_decoded_attachments_and_only_refuses_where_configured(engine: Policy) -> None:
    big = attach(mail(), "a.pdf", documents.pdf(["x"], filler_bytes=int(10.2 * MB))).as_bytes()
    refused = engine.evaluate(big, SUBMISSION).rejection
    assert refused is not None and refused.code == "552 5.3.4"
    assert "10.2 MB" in refused.vi and "10 MB" in refused.vi
    assert engine.evaluate(big, INBOUND).rejection is None  # off for the Internet's mail
    # base64 makes the message ~13.6 MB; only the decoded 9.9 MB count.
    fits = attach(mail(), "a.pdf", documents.pdf(["x"], filler_bytes=int(9.9 * MB))).as_bytes()
    assert len(fits) > 10 * MB and engine.evaluate(fits, SUBMISSION).rejection is None


def test_a_classification_mark_outranks_every_other_refusal(engine: Policy) -> None:
    message = attach(mail(subject=""), "kh.docx", documents.docx(["TUYỆT MẬT", "KẾ HOẠCH"]))
    attach(message, "virus.pdf", documents.windows_exe())
    result = engine.evaluate(message.as_bytes(), SUBMISSION)
    assert {"formats", "subject", "classified"} <= {rule for rule, _ in rules(result)}
    assert result.rejection is not None and result.rejection.rule == "classified"
    assert result.mark is not None and result.mark.level == "TUYỆT MẬT"


def test_inbound_classified_mail_is_labelled_not_refused(engine: Policy) -> None:
    result = engine.evaluate(mail(subject="[MẬT] Hồ sơ").as_bytes(), INBOUND)
    assert ("classified", "warn") in rules(result) and result.rejection is None
    assert b'X-Govmail-Policy: classified; action=warn; reason="The message carries the' in (
        result.raw
    )  # readable ASCII: the Vietnamese mark without its diacritics
    assert b'mark \\"MAT\\"' in result.raw


def test_subject_rule_refuses_only_an_empty_subject(engine: Policy) -> None:
    assert engine.evaluate(mail(subject=None).as_bytes(), SUBMISSION).rejection is not None
    assert engine.evaluate(mail(subject="Re: ").as_bytes(), SUBMISSION).rejection is not None
    warned = engine.evaluate(mail(subject="Meeting invitation").as_bytes(), SUBMISSION)
    assert warned.rejection is None and ("subject", "warn") in rules(warned)
    lenient = Policy(replace(PolicySettings(), submission=RuleActions(subject="warn")), Path("/x"))
    assert lenient.evaluate(mail(subject=None).as_bytes(), SUBMISSION).rejection is None


def test_legacy_text_is_converted_in_the_right_part_of_a_multipart_message(engine: Policy) -> None:
    words = "Kính gửi đồng chí, báo cáo kết quả quản lý văn bản."
    message = EmailMessage()
    message["Subject"] = "Báo cáo"
    message.set_content("Phần đầu bằng Unicode.\n")
    message.add_alternative("<p>Phần HTML.</p>", subtype="html")
    message.make_mixed()
    legacy = EmailMessage()
    legacy.set_payload(encode_legacy(words, "tcvn3"))
    legacy["Content-Type"] = "text/plain; charset=windows-1252"
    legacy["Content-Transfer-Encoding"] = "8bit"
    message.attach(legacy)
    result = engine.evaluate(message.as_bytes(), SUBMISSION)
    assert ("unicode", "convert") in rules(result)
    parsed = message_from_bytes(result.raw, policy=policy.default)
    texts = [p.get_content() for p in parsed.walk() if p.get_content_type() == "text/plain"]
    assert texts[0].strip() == "Phần đầu bằng Unicode."
    assert texts[1].strip() == words


def test_unlabelled_utf8_gets_a_charset_and_keeps_every_byte(engine: Policy) -> None:
    raw = "From: a@example.org\r\nSubject: Đề nghị\r\n\r\nKính gửi Thanh tra.\r\n".encode()
    result = engine.evaluate(raw, INBOUND)
    assert result.findings == ()
    assert result.raw == raw.replace(
        b"\r\n\r\n",
        b"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n",
        1,
    )


def test_forged_govmail_fields_are_removed_with_their_continuations(engine: Policy) -> None:
    raw = (
        b'From: a@example.org\r\nX-Govmail-Signature: valid;\r\n signer="Gia mao"\r\n'
        b"x-govmail-document-type: quyet-dinh\r\nSubject: Hello\r\n\r\nNoi dung\r\n"
    )
    result = engine.evaluate(raw, INBOUND)
    assert result.raw == b"From: a@example.org\r\nSubject: Hello\r\n\r\nNoi dung\r\n"


def test_inline_images_of_an_html_body_are_not_documents(engine: Policy) -> None:
    message = mail()
    message.add_alternative('<p>Chữ ký</p><img src="cid:logo">', subtype="html")
    html = message.get_payload()[1]  # type: ignore[index]
    html.add_related(documents.png(), maintype="image", subtype="gif", cid="<logo>")
    parts = split_message(parse(message.as_bytes()))
    assert [a.inline for a in parts.attachments] == [True]
    assert engine.evaluate(message.as_bytes(), SUBMISSION).rejection is None


def test_unknown_allowed_formats_are_a_configuration_error() -> None:
    with pytest.raises(InvalidInput) as error:
        Policy(replace(PolicySettings(), allowed_formats=("pdf", "pfd")), Path("/x"))
    assert "pfd" in error.value.message_vi


def test_inbound_defaults_are_the_issues() -> None:
    assert RuleActions(
        size="off", formats="off", classified="warn", unicode="convert", subject="off",
        signatures="inform",
    ) == INBOUND_ACTIONS  # fmt: skip
