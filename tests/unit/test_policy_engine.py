"""The sending rules put together (policy/engine.py): which findings a message gets in
each direction, which one refuses it, and the message as it goes on."""

from __future__ import annotations

from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# --- hostile and unusual messages (the review's cases) ------------------------------


def test_legacy_encoded_stamps_are_found_in_subject_body_and_attachments(engine: Policy) -> None:
    stamp = "UBND TỈNH KHÁNH HÒA\nTỐI MẬT\nKẾ HOẠCH bảo vệ mục tiêu"
    for encoding in ("tcvn3", "vni"):
        body = EmailMessage()
        body["Subject"] = "Kế hoạch"
        body.set_payload(encode_legacy(stamp, encoding))
        body["Content-Type"] = "text/plain; charset=windows-1252"
        body["Content-Transfer-Encoding"] = "8bit"
        result = engine.evaluate(body.as_bytes(), SUBMISSION)
        assert result.mark is not None and result.mark.level == "TỐI MẬT", encoding
        as_text = attach(mail(), "ke-hoach.txt", encode_legacy(stamp, encoding))
        assert engine.evaluate(as_text.as_bytes(), SUBMISSION).mark is not None, encoding


def test_raw_utf8_headers_are_read_as_sent(engine: Policy) -> None:
    raw = (
        "From: a@example.org\r\nSubject: TỐI MẬT: kế hoạch\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        "Content-Type: application/octet-stream\r\n"
        'Content-Disposition: attachment; filename="tài liệu.exe"\r\n\r\n'
        "MZ\r\n--b--\r\n"
    ).encode()
    result = engine.evaluate(raw, SUBMISSION)
    assert result.subject == "TỐI MẬT: kế hoạch"
    assert result.mark is not None
    assert any(f.details.get("file") == "tài liệu.exe" for f in result.findings)


@pytest.mark.parametrize(
    "header",
    [
        b"Content-Type : multipart/mixed; boundary=b",
        b"Garbage line\r\nContent-Type: multipart/mixed; boundary=b",
    ],
)
def test_headers_the_stdlib_reads_differently_are_refused_from_officials(
    engine: Policy, header: bytes
) -> None:
    raw = (
        b"From: a@example.org\r\nSubject: Gui tai lieu\r\n" + header + b"\r\n\r\n--b\r\n"
        b"Content-Type: application/pdf; name=QD.pdf\r\n\r\nMZ\x90\x00\r\n--b--\r\n"
    )
    refused = engine.evaluate(raw, SUBMISSION).rejection
    assert refused is not None and refused.code == "554 5.6.0"
    passed = engine.evaluate(raw, INBOUND)  # the Internet's: passed on, never rewritten
    assert passed.rejection is None and passed.raw.endswith(raw)


def test_past_the_caps_on_parts_and_depth_is_refused_not_skipped(engine: Policy) -> None:
    many = mail()
    for n in range(1001):
        many.add_attachment(b"x", maintype="text", subtype="plain", filename=f"{n}.txt")
    many.add_attachment(
        documents.windows_exe(), maintype="application", subtype="pdf", filename="QD.pdf"
    )
    assert engine.evaluate(many.as_bytes(), SUBMISSION).rejection is not None
    inner: bytes = b"Content-Type: text/plain\r\n\r\nTUYET MAT\r\n"
    for level in range(25):
        inner = (
            b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
            + inner
            + b"\r\n--b%d--\r\n" % level
        )
    deep = b"From: a@example.org\r\nSubject: Bao cao\r\n" + inner
    refused = engine.evaluate(deep, SUBMISSION).rejection
    assert refused is not None and refused.details["why"] == "depth"


def test_absurd_nesting_and_bare_cr_never_raise(engine: Policy) -> None:
    nested = b"".join(
        b'Content-Type: multipart/mixed; boundary="%d"\r\n\r\n--%d\r\n' % (n, n)
        for n in range(1500)
    )
    raw = b"From: a@example.org\r\nSubject: x\r\n" + nested + b"\r\nx\r\n"
    assert engine.evaluate(raw, SUBMISSION).rejection is not None
    assert engine.evaluate(raw, INBOUND).rejection is None
    bare = b"From: a@example.org\r\nX-A: 1\r\r\nSubject: x\r\n\r\nx\r\n"
    assert engine.evaluate(bare, SUBMISSION).rejection is not None


def test_hostile_html_costs_milliseconds(engine: Policy) -> None:
    import time

    html = mail()
    html.add_alternative("<a " * 1_000_000, subtype="html")
    start = time.perf_counter()
    engine.evaluate(html.as_bytes(), INBOUND)
    assert time.perf_counter() - start < 2.0


def test_signed_content_is_never_rewritten(engine: Policy) -> None:
    text = encode_legacy("Kính gửi đồng chí, báo cáo kết quả quản lý văn bản.", "tcvn3")
    raw = (
        b"From: a@example.org\r\nSubject: Bao cao\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/signed; boundary=s;"
        b' protocol="application/pkcs7-signature"\r\n\r\n'
        b"--s\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\n" + text + b"\r\n"
        b"--s\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n\r\nMIIB\r\n--s--\r\n"
    )
    result = engine.evaluate(raw, SUBMISSION)
    assert ("unicode", "warn") in rules(result)
    assert result.raw.endswith(raw)


def test_outlook_signature_images_are_inline(engine: Policy) -> None:
    message = mail()
    message.add_alternative('<p>Chữ ký</p><img src="cid:image001.gif@01D">', subtype="html")
    html = message.get_payload()[1]  # type: ignore[index]
    html.add_related(
        documents.png(),
        maintype="image",
        subtype="gif",
        cid="<image001.gif@01D>",
        filename="image001.gif",
        disposition="inline",
    )
    parts = split_message(parse(message.as_bytes()))
    assert [(a.filename, a.inline) for a in parts.attachments] == [("image001.gif", True)]
    assert engine.evaluate(message.as_bytes(), SUBMISSION).rejection is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000), st.sampled_from([SUBMISSION, INBOUND]))
def test_evaluate_never_raises(engine: Policy, tail: bytes, direction: str) -> None:
    raw = (
        b"From: a@example.org\r\nSubject: =?utf-8?q?B=C3=A1o?=\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" + tail
    )
    result = engine.evaluate(raw, direction)
    assert isinstance(result.raw, bytes)
