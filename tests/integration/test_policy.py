"""The regulation's sending policy (R11–R18) on a real ``govmail serve``: each case of the
issue's corpus goes through SMTP submission (or the MX) with smtplib, and the test checks
the SMTP answer, what was delivered with which labels, the notice the sender got, the
alerts, and the policy log and quarantine through the real CLI."""

from __future__ import annotations

import base64
import json
import smtplib
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import make_msgid
from pathlib import Path

import pytest

from govmail.core.legacy import encode_legacy
from tests.corpus import documents
from tests.corpus.signing import make_pki, signed_pdf
from tests.integration.clihelp import cli
from tests.integration.mailserver import (
    AN,
    BINH,
    TTR,
    RunningServer,
    db_scalar,
    mailbox_messages,
    mx,
    served,
    set_option,
    submission,
)

MB = 1024 * 1024
OUTSIDER = "citizen@example.org"


@pytest.fixture
def policed(province: Path) -> Iterator[RunningServer]:
    """The province with every submission rule at its default (the subject rule too),
    ttr@ (Thanh tra tỉnh's agency mailbox) as postmaster, and the test CA trusted."""
    set_option(province, "subject", "reject", section="policy.submission")
    set_option(province, "postmaster", "ttr", section="mail")
    (province / "trust").mkdir()
    (province / "trust" / "test-root.pem").write_bytes(make_pki().root_pem)
    (province / "trust" / "test.crl").write_bytes(make_pki().crl_der)
    set_option(province, "trust_roots", ["trust/test-root.pem"], section="policy")
    set_option(province, "crl_files", ["trust/test.crl"], section="policy")
    with served(province) as server:
        yield server


def message(
    subject: str | None = "Báo cáo tuần 45 của Thanh tra tỉnh",
    body: str = "Kính gửi các đồng chí,\nXin gửi báo cáo kèm theo.\n",
    attachments: tuple[tuple[str, bytes], ...] = (),
    sender: str = AN,
    to: str = BINH,
) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    if subject is not None:
        mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="test")
    mail.set_content(body)
    for name, data in attachments:
        mail.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return mail


def send(
    server: RunningServer, mail: EmailMessage, *, utf8: bool = False, to: str = BINH
) -> tuple[int, str]:
    """Submit ``mail`` as nvan@; the final reply (250, or the refusal)."""
    with submission(server) as client:
        try:
            client.sendmail(AN, [to], mail.as_bytes(), mail_options=["SMTPUTF8"] if utf8 else [])
        except smtplib.SMTPDataError as exc:
            return exc.smtp_code, exc.smtp_error.decode("utf-8")
    return 250, ""


def received(server: RunningServer, address: str, message_id: str) -> Message | None:
    for _, raw in mailbox_messages(server.data_dir, address):
        found = parsed(raw)
        if found["Message-ID"] == message_id:
            return found
    return None


def notices(server: RunningServer, address: str = AN) -> list[Message]:
    """The policy notices in ``address``'s INBOX, oldest first."""
    found = [parsed(raw) for _, raw in mailbox_messages(server.data_dir, address)]
    return [m for m in found if str(m["Subject"]).startswith("[Thư điện tử công vụ]")]


def alerts(server: RunningServer) -> list[Message]:
    """The classification alerts in the postmaster's (ttr@) INBOX."""
    found = [m for _, raw in mailbox_messages(server.data_dir, TTR) if (m := parsed(raw))]
    return [m for m in found if "độ mật" in str(m["Subject"])]


def parsed(raw: bytes) -> Message:
    return message_from_bytes(raw, policy=policy.default)


def text_of(mail: Message) -> str:
    body = mail.get_body(("plain",))  # type: ignore[attr-defined]
    assert body is not None
    return str(body.get_content())


def policy_log(server: RunningServer, *args: str) -> list[dict[str, object]]:
    result = cli(server.data_dir, "policy", "log", *args, "--json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output))


# --- R18 size -----------------------------------------------------------------------


def test_attachments_over_10_mb_are_refused_with_the_size_in_vietnamese(
    policed: RunningServer,
) -> None:
    small = message(
        attachments=(("bao-cao.pdf", documents.pdf(["Báo cáo"], filler_bytes=int(9.9 * MB))),)
    )
    assert send(policed, small) == (250, "")
    assert received(policed, BINH, small["Message-ID"]) is not None

    big = message(
        attachments=(("bao-cao.pdf", documents.pdf(["Báo cáo"], filler_bytes=int(10.1 * MB))),)
    )
    first_id = big["Message-ID"]
    code, text = send(policed, big)
    assert code == 552
    assert text.startswith("5.3.4 Tong dung luong tep dinh kem 10.1 MB vuot qua gioi han 10 MB")
    assert received(policed, BINH, big["Message-ID"]) is None

    # With SMTPUTF8 the same words keep their diacritics.
    big.replace_header("Message-ID", make_msgid(domain="test"))
    code, text = send(policed, big, utf8=True)
    assert (code, text.split(" / ")[0]) == (
        552,
        "5.3.4 Tổng dung lượng tệp đính kèm 10.1 MB vượt quá giới hạn 10 MB",
    )

    # The sender is told in full, and the decision is in the log.
    (notice, *_) = notices(policed)
    assert "KHÔNG được gửi đi" in text_of(notice)
    assert "10 MB" in text_of(notice) and "chia tệp" in text_of(notice)
    logged = policy_log(policed, "--rule", "size")  # newest first
    assert [d["message_id"] for d in logged] == [big["Message-ID"], first_id]
    assert {(d["action"], d["sender"], d["direction"]) for d in logged} == {
        ("rejected", AN, "submission")
    }


# --- R11 formats --------------------------------------------------------------------


def test_files_are_judged_by_content_and_refusals_name_the_file(policed: RunningServer) -> None:
    allowed = message(
        subject="Hồ sơ dự thảo kế hoạch",
        attachments=(
            ("Dự thảo.docx", documents.docx(["Dự thảo kế hoạch"])),
            ("Bảng số liệu.odt", documents.odf(["Số liệu"])),
            ("Tờ trình.pdf", documents.pdf(["Tờ trình"])),
            ("Ghi chú.rtf", documents.rtf("Ghi chú")),
            ("ảnh.png", documents.png()),
        ),
    )
    assert send(policed, allowed) == (250, "")
    assert received(policed, BINH, allowed["Message-ID"]) is not None

    for name, data in (
        ("Quyết định.pdf", documents.windows_exe()),
        ("Báo cáo.docm", documents.docx(["Báo cáo"], macros=True)),
        ("chuong-trinh.exe", documents.windows_exe()),
    ):
        mail = message(
            subject="Gửi tài liệu họp",
            attachments=(("Tờ trình.pdf", documents.pdf(["x"])), (name, data)),
        )
        code, text = send(policed, mail, utf8=True)
        assert code == 554, (name, text)
        assert name in text
        assert received(policed, BINH, mail["Message-ID"]) is None
    kinds = [d["details"]["kind"] for d in policy_log(policed, "--rule", "formats")]  # type: ignore[index]
    assert sorted(kinds) == sorted(["mismatch", "macro", "executable"])


# --- R15 classified documents -------------------------------------------------------


def test_classified_stamp_is_held_alerted_and_released_by_the_centre(
    policed: RunningServer,
) -> None:
    stamped = message(
        subject="Kế hoạch bảo vệ",
        attachments=(
            ("Kế hoạch.docx", documents.docx(["UBND TỈNH KHÁNH HÒA", "TỐI MẬT", "KẾ HOẠCH"])),
        ),
    )
    # The agency's IT officer hears of it too (Điều 14.5).
    assert (
        cli(policed.data_dir, "role", "grant", BINH, "it_officer", "--agency", TTR).exit_code == 0
    )
    code, text = send(policed, stamped)
    assert code == 550 and text.startswith("5.7.1 ")
    assert "TOI MAT" in text
    assert received(policed, BINH, stamped["Message-ID"]) is None
    officer = [parsed(raw) for _, raw in mailbox_messages(policed.data_dir, BINH)]
    assert any("độ mật" in str(m["Subject"]) for m in officer)

    # Held for the centre, alerted to the postmaster (ttr@), told to the sender.
    held = json.loads(cli(policed.data_dir, "policy", "quarantine", "--json").output)
    assert [(h["sender"], h["status"], h["message_id"]) for h in held] == [
        (AN, "held", stamped["Message-ID"])
    ]
    (alert,) = alerts(policed)
    assert AN in text_of(alert) and "TỐI MẬT" in text_of(alert)
    assert f"govmail policy release {held[0]['id']}" in text_of(alert)
    (notice,) = notices(policed)
    assert "giữ lại" in text_of(notice)
    assert (
        db_scalar(
            policed.data_dir, "select count(*) from audit_log where action = 'policy.quarantine'"
        )
        == 1
    )

    # The centre reviews it and releases it: the recipient gets it, once.
    result = cli(policed.data_dir, "policy", "release", str(held[0]["id"]), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["delivered"]
    assert received(policed, BINH, stamped["Message-ID"]) is not None
    again = cli(policed.data_dir, "policy", "release", str(held[0]["id"]))
    assert again.exit_code != 0 and "không còn bị giữ" in again.output


def test_harmless_prose_passes_and_a_deleted_hold_is_gone(policed: RunningServer) -> None:
    prose = message(
        subject="Đổi mật khẩu hộp thư và báo cáo mật độ dân số",
        body="Đề nghị các đồng chí đổi mật khẩu. Tài liệu về bảo vệ bí mật nhà nước gửi kèm.\n",
        attachments=(
            (
                "Mật độ dân số.pdf",
                documents.pdf(["BÁO CÁO MẬT ĐỘ DÂN SỐ", "Luật Bảo vệ bí mật nhà nước"]),
            ),
        ),
    )
    assert send(policed, prose) == (250, "")

    stamped = message(
        subject="Báo cáo", attachments=(("bc.pdf", documents.pdf(["UBND TỈNH", "MẬT"])),)
    )
    assert send(policed, stamped)[0] == 550
    (held,) = json.loads(cli(policed.data_dir, "policy", "quarantine", "--json").output)
    assert cli(policed.data_dir, "policy", "delete", str(held["id"])).exit_code == 0
    assert json.loads(cli(policed.data_dir, "policy", "quarantine", "--json").output) == []
    assert received(policed, BINH, stamped["Message-ID"]) is None


# --- R12 legacy encodings -----------------------------------------------------------


def legacy_subject(text: str, encoding: str) -> str:
    """A subject as an old mail client writes it: legacy bytes declared as windows-1252."""
    data = encode_legacy(text, encoding)
    return "=?windows-1252?b?" + base64.b64encode(data).decode() + "?="


@pytest.mark.parametrize("encoding", ["tcvn3", "vni"])
def test_legacy_encoded_subject_and_body_are_converted_and_the_sender_told(
    policed: RunningServer, encoding: str
) -> None:
    words = "Báo cáo kết quả quản lý văn bản"
    raw = (
        (
            f"From: {AN}\r\nTo: {BINH}\r\nSubject: {legacy_subject(words, encoding)}\r\n"
            "Message-ID: <legacy@test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=windows-1252\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
        ).encode()
        + encode_legacy("Kính gửi đồng chí Bình, gửi báo cáo kết quả.", encoding)
        + b"\r\n"
    )
    with submission(policed) as client:
        assert client.sendmail(AN, [BINH], raw) == {}
    delivered = received(policed, BINH, "<legacy@test>")
    assert delivered is not None
    assert str(delivered["Subject"]) == words
    assert "Kính gửi đồng chí Bình, gửi báo cáo kết quả." in text_of(delivered)
    (notice,) = notices(policed)
    assert "Unicode" in text_of(notice)
    assert {d["action"] for d in policy_log(policed, "--rule", "unicode")} == {"converted"}


# --- R13 subject --------------------------------------------------------------------


def test_empty_subject_is_refused_and_foreign_or_bare_subjects_warned(
    policed: RunningServer,
) -> None:
    code, text = send(policed, message(subject=None))
    assert code == 550 and "tieu de" in text.lower()
    english = message(subject="Meeting invitation")
    bare = message(subject="Bao cao tuan 45")
    assert send(policed, english) == (250, "")
    assert send(policed, bare) == (250, "")
    assert received(policed, BINH, english["Message-ID"]) is not None
    kinds = [d["details"]["kind"] for d in policy_log(policed, "--rule", "subject")]  # type: ignore[index]
    assert sorted(kinds) == ["empty", "no_diacritics", "not_vietnamese"]
    assert len(notices(policed)) == 3  # the refusal and both warnings
    labelled = received(policed, BINH, bare["Message-ID"])
    assert labelled is not None and "subject; action=warn" in str(labelled["X-Govmail-Policy"])


# --- R16 signatures and R14 document types ------------------------------------------


def test_pdf_signatures_are_labelled_and_document_types_recorded(policed: RunningServer) -> None:
    pki = make_pki()
    lines = ["UBND TỈNH KHÁNH HÒA", "Số: 123/GM-UBND", "GIẤY MỜI", "Họp giao ban tuần"]
    mail = message(
        subject="Giấy mời họp giao ban tuần",
        attachments=(
            ("Giấy mời.pdf", signed_pdf(pki, "valid", lines)),
            ("Hết hạn.pdf", signed_pdf(pki, "expired", lines)),
            ("Sửa sau khi ký.pdf", signed_pdf(pki, "modified", lines)),
            ("CA lạ.pdf", signed_pdf(pki, "unknown_ca", lines)),
            ("Thu hồi.pdf", signed_pdf(pki, "revoked", lines)),
        ),
    )
    # A sender cannot forge the verdict: a field of its own making is removed.
    mail["X-Govmail-Signature"] = 'valid; signer="Giả mạo"; file="Giấy mời.pdf"'
    assert send(policed, mail) == (250, "")
    delivered = received(policed, BINH, mail["Message-ID"])
    assert delivered is not None
    verdicts = [str(v) for v in delivered.get_all("X-Govmail-Signature", [])]
    assert len(verdicts) == 5, verdicts
    by_file = {v.split('file="')[1].rstrip('"'): v for v in verdicts}
    assert by_file["Giấy mời.pdf"].startswith('valid; signer="Nguyễn Văn An"')
    assert by_file["Hết hạn.pdf"].startswith("invalid; reason=expired")
    assert by_file["Sửa sau khi ký.pdf"].startswith("invalid; reason=modified")
    assert by_file["CA lạ.pdf"].startswith("invalid; reason=untrusted")
    assert by_file["Thu hồi.pdf"].startswith("invalid; reason=revoked")
    assert str(delivered["X-Govmail-Document-Type"]) == 'giay-moi; number="123/GM-UBND"'
    assert (
        db_scalar(policed.data_dir, "select document_type from documents order by id desc limit 1")
        == "giay-moi"
    )
    assert {d["action"] for d in policy_log(policed, "--rule", "signatures")} == {"informed"}


# --- mail from the Internet ---------------------------------------------------------


def test_inbound_classified_mail_is_tagged_alerted_and_delivered(policed: RunningServer) -> None:
    raw = (
        f"From: Công ty A <{OUTSIDER}>\r\nTo: {BINH}\r\nSubject: =?utf-8?b?"
        + base64.b64encode("TỐI MẬT: hồ sơ".encode()).decode()
        + "?=\r\nMessage-ID: <inbound-secret@example.org>\r\n\r\nNội dung\r\n"
    ).encode()
    big = message(
        sender=OUTSIDER,
        subject="Hồ sơ dự thầu",
        attachments=(("hs.pdf", documents.pdf(["x"], filler_bytes=int(10.5 * MB))),),
    )
    with mx(policed) as client:
        assert client.sendmail(OUTSIDER, [BINH], raw) == {}
        # Size and formats are off for mail from the Internet.
        assert client.sendmail(OUTSIDER, [BINH], big.as_bytes()) == {}
    delivered = received(policed, BINH, "<inbound-secret@example.org>")
    assert delivered is not None
    assert "classified; action=warn" in str(delivered["X-Govmail-Policy"])
    assert received(policed, BINH, big["Message-ID"]) is not None
    (alert,) = alerts(policed)
    assert OUTSIDER in text_of(alert)
    assert [d["direction"] for d in policy_log(policed, "--rule", "classified")] == ["inbound"]
