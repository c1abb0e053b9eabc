"""The webmail's compose page over HTTP against a real ``govmail serve``: sending to a
colleague through the submission policy, CSRF, refused attachments (R11, R18), replies
and forwards, drafts, directory suggestions, and the sending limit (R23)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.corpus.documents import pdf, windows_exe
from tests.integration.browser import (
    closing_clients,
    csrf_of,
    deliver,
    login,
    message_links,
    simple_message,
)
from tests.integration.mailserver import (
    AN,
    BINH,
    RunningServer,
    mailbox_messages,
    served,
    set_option,
)

__all__ = ["closing_clients"]  # the fixture, used by every test here
pytestmark = pytest.mark.usefixtures("closing_clients")

Files = list[tuple[str, tuple[str, bytes, str]]]


def compose(
    client: httpx.Client,
    fields: dict[str, object],
    files: Files | None = None,
    *,
    action: str = "send",
    page: str = "/compose",
) -> httpx.Response:
    """Submit the compose form as the browser does (multipart, with the CSRF field)."""
    data = {"csrf": csrf_of(client, page), "action": action, **fields}
    # httpx sends multipart only with files: an empty file part, as a browser sends.
    return client.post(
        "/compose",
        data=data,
        files=files or [("attachment", ("", b"", "application/octet-stream"))],
    )


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def hidden(page: str, name: str) -> str | None:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    return found.group(1) if found else None


def test_send_to_a_colleague_lands_in_inbox_and_sent(server: RunningServer) -> None:
    client = login(server, AN)
    page = client.get("/compose")
    assert page.status_code == 200 and "Soạn thư" in page.text
    assert 'data-max-bytes="10485760"' in page.text and "pdf" in page.text
    report = pdf(["Báo cáo tuần 47"])
    reply = compose(
        client,
        {"to": f"Lê Thị Bình <{BINH}>", "subject": "Báo cáo tuần 47", "body": "Kính gửi chị Bình."},
        [("attachment", ("Báo cáo tuần 47.pdf", report, "application/pdf"))],
    )
    assert reply.status_code == 200, reply.text
    assert "Đã gửi thư." in reply.text
    inbox = mailbox_messages(server.data_dir, BINH)
    assert len(inbox) == 1
    received = parsed(inbox[0][1])
    assert received["Subject"] == "Báo cáo tuần 47"
    assert received["From"].addresses[0].addr_spec == AN
    assert received["Message-ID"] and received["Date"]
    assert received["Received"] and "webmail" in received["Received"]
    body = received.get_body(("plain",))
    assert body is not None and "Kính gửi chị Bình." in body.get_content()
    attached = list(received.iter_attachments())
    assert [a.get_filename() for a in attached] == ["Báo cáo tuần 47.pdf"]
    assert attached[0].get_content() == report
    sent = mailbox_messages(server.data_dir, AN, "Sent")
    assert len(sent) == 1 and parsed(sent[0][1])["Message-ID"] == received["Message-ID"]


def test_bcc_is_delivered_but_not_shown(server: RunningServer) -> None:
    client = login(server, AN)
    reply = compose(client, {"to": AN, "bcc": BINH, "subject": "Ẩn", "body": "x"})
    assert reply.status_code == 200, reply.text
    got = mailbox_messages(server.data_dir, BINH)
    assert len(got) == 1 and BINH.encode() not in got[0][1].split(b"\r\n\r\n")[0]


def test_send_requires_the_csrf_token(server: RunningServer) -> None:
    client = login(server, AN)
    fields = {"action": "send", "to": BINH, "subject": "Giả mạo", "body": "x"}
    assert client.post("/compose", data=fields).status_code == 403
    assert client.post("/compose", data={**fields, "csrf": "sai"}).status_code == 403
    assert mailbox_messages(server.data_dir, BINH) == []


def test_unknown_local_recipient_and_bad_address_are_named(server: RunningServer) -> None:
    client = login(server, AN)
    fields = {"to": f"khongco@{AN.split('@')[1]}", "subject": "Thử", "body": "Nội dung giữ lại"}
    reply = compose(client, fields)
    assert reply.status_code == 422
    assert "không tồn tại" in reply.text and "khongco@" in reply.text
    assert "Nội dung giữ lại" in reply.text  # the form stays filled
    reply = compose(client, {"to": "ai do khong co a cong", "subject": "Thử", "body": "x"})
    assert reply.status_code == 422 and "không phải là địa chỉ thư hợp lệ" in reply.text
    reply = compose(client, {"to": "", "subject": "Thử", "body": "x"})
    assert reply.status_code == 422 and "Chưa có người nhận" in reply.text


def test_attachment_over_10_mb_is_refused_by_the_policy(server: RunningServer) -> None:
    client = login(server, AN)
    big = pdf(["Hồ sơ"], filler_bytes=int(10.1 * 1024 * 1024))
    reply = compose(
        client,
        {"to": BINH, "subject": "Hồ sơ lớn", "body": "Gửi hồ sơ."},
        [("attachment", ("ho-so.pdf", big, "application/pdf"))],
    )
    assert reply.status_code == 422, reply.text[:2000]
    assert "Thư chưa được gửi" in reply.text and "10" in reply.text and "MB" in reply.text
    assert "Hồ sơ lớn" in reply.text and "Gửi hồ sơ." in reply.text  # kept
    assert "Hãy chọn lại các tệp đính kèm" in reply.text
    assert mailbox_messages(server.data_dir, BINH) == []


def test_executable_renamed_pdf_is_refused_naming_the_file(server: RunningServer) -> None:
    client = login(server, AN)
    reply = compose(
        client,
        {"to": BINH, "subject": "Tài liệu", "body": "x"},
        [("attachment", ("tai-lieu.pdf", windows_exe(), "application/pdf"))],
    )
    assert reply.status_code == 422
    assert "tai-lieu.pdf" in reply.text
    assert mailbox_messages(server.data_dir, BINH) == []


def _delivered_link(server: RunningServer, client: httpx.Client, message: EmailMessage) -> str:
    deliver(server, message, AN)
    links = message_links(client.get("/").text)
    assert len(links) == 1
    return links[0]


def test_reply_and_reply_all_thread_and_quote(server: RunningServer) -> None:
    client = login(server, AN)
    original = simple_message(
        "Lịch họp giao ban", "Họp lúc 8 giờ.\nPhòng 2.", sender="stc@example.org"
    )
    original["Cc"] = f"{BINH}, {AN}"
    original["Message-ID"] = "<goc-1@example.org>"
    original["References"] = "<dau-0@example.org>"
    link = _delivered_link(server, client, original)
    message_page = client.get(link).text
    folder, uid = link.split("/")[2:4]
    assert f'href="/compose/reply/{folder}/{uid}"' in message_page
    assert f'href="/compose/forward/{folder}/{uid}"' in message_page

    form = client.get(f"/compose/reply/{folder}/{uid}").text
    assert 'value="Re: Lịch họp giao ban"' in form
    assert hidden(form, "to") == "Người ngoài &lt;stc@example.org&gt;"
    assert hidden(form, "in_reply_to") == "&lt;goc-1@example.org&gt;"
    assert "&gt; Họp lúc 8 giờ." in form and "&gt; Phòng 2." in form

    everyone = client.get(f"/compose/reply/{folder}/{uid}?all=1").text
    assert BINH in (hidden(everyone, "cc") or "") and AN not in (hidden(everyone, "cc") or "")

    reply = compose(
        client,
        {
            "to": "stc@example.org",
            "cc": BINH,
            "subject": "Re: Lịch họp giao ban",
            "body": "Tôi sẽ dự.",
            "in_reply_to": "<goc-1@example.org>",
            "references": "<dau-0@example.org> <goc-1@example.org>",
            "reply": f"{folder}:{uid}",
        },
        page=f"/compose/reply/{folder}/{uid}",
    )
    assert reply.status_code == 200, reply.text
    got = parsed(mailbox_messages(server.data_dir, BINH)[0][1])
    assert got["In-Reply-To"] == "<goc-1@example.org>"
    assert got["References"] == "<dau-0@example.org> <goc-1@example.org>"
    assert got["Subject"] == "Re: Lịch họp giao ban"
    inbox = mailbox_messages(server.data_dir, AN)
    assert inbox[0][0].flags & 2  # \\Answered


def test_forward_keeps_the_attachment(server: RunningServer) -> None:
    client = login(server, AN)
    original = simple_message("Công văn 123", "Xem tệp đính kèm.")
    document = pdf(["Công văn số 123/UBND-KT"])
    original.add_attachment(document, maintype="application", subtype="pdf", filename="cv123.pdf")
    link = _delivered_link(server, client, original)
    folder, uid = link.split("/")[2:4]
    form = client.get(f"/compose/forward/{folder}/{uid}").text
    assert 'value="Fwd: Công văn 123"' in form and "cv123.pdf" in form
    assert hidden(form, "source") == f"{folder}:{uid}"
    path = re.search(r'name="keep" value="([\d.]+)"', form)
    assert path is not None
    reply = compose(
        client,
        {
            "to": BINH,
            "subject": "Fwd: Công văn 123",
            "body": "Chuyển chị xử lý.",
            "source": f"{folder}:{uid}",
            "keep": path.group(1),
        },
    )
    assert reply.status_code == 200, reply.text
    got = parsed(mailbox_messages(server.data_dir, BINH)[0][1])
    attached = list(got.iter_attachments())
    assert [a.get_filename() for a in attached] == ["cv123.pdf"]
    assert attached[0].get_content() == document


def test_forward_of_another_mailbox_message_is_not_found(server: RunningServer) -> None:
    deliver(server, simple_message("Riêng của Bình"), BINH)
    owner = login(server, BINH)
    link = message_links(owner.get("/").text)[0]
    folder, uid = link.split("/")[2:4]
    intruder = login(server, AN)
    assert intruder.get(f"/compose/forward/{folder}/{uid}").status_code == 404
    reply = compose(
        intruder,
        {"to": AN, "subject": "x", "body": "x", "source": f"{folder}:{uid}", "keep": "1"},
    )
    assert reply.status_code == 404


def test_draft_is_saved_resumed_and_removed_when_sent(server: RunningServer) -> None:
    client = login(server, AN)
    saved = compose(
        client,
        {"to": BINH, "bcc": AN, "subject": "Dự thảo kế hoạch", "body": "Bản nháp đầu."},
        [("attachment", ("ke-hoach.pdf", pdf(["Kế hoạch"]), "application/pdf"))],
        action="save",
    )
    assert saved.status_code == 303
    saved = client.get(saved.headers["location"])
    assert saved.status_code == 200 and "Đã lưu thư nháp." in saved.text
    drafts = mailbox_messages(server.data_dir, AN, "Drafts")
    assert len(drafts) == 1 and drafts[0][0].flags & 16  # \\Draft
    assert mailbox_messages(server.data_dir, BINH) == []
    page = saved.text
    assert 'value="Dự thảo kế hoạch"' in page and "Bản nháp đầu." in page
    assert hidden(page, "bcc") == AN and "ke-hoach.pdf" in page
    uid = hidden(page, "draft")
    source = hidden(page, "source")
    assert uid is not None and source is not None

    # Saving again replaces the draft rather than adding one.
    again = compose(
        client,
        {
            "to": BINH,
            "subject": "Dự thảo kế hoạch",
            "body": "Bản nháp hai.",
            "draft": uid,
            "source": source,
            "keep": "2",
        },
        action="save",
        page=f"/compose/draft/{uid}",
    )
    assert again.status_code == 303
    again = client.get(again.headers["location"])
    assert again.status_code == 200 and "Bản nháp hai." in again.text
    assert len(mailbox_messages(server.data_dir, AN, "Drafts")) == 1
    uid2, source2 = hidden(again.text, "draft"), hidden(again.text, "source")
    assert "ke-hoach.pdf" in again.text

    sent = compose(
        client,
        {
            "to": BINH,
            "subject": "Dự thảo kế hoạch",
            "body": "Bản cuối.",
            "draft": uid2,
            "source": source2,
            "keep": "2",
        },
        page=f"/compose/draft/{uid2}",
    )
    assert sent.status_code == 200 and "Đã gửi thư." in sent.text, sent.text
    assert mailbox_messages(server.data_dir, AN, "Drafts") == []
    got = parsed(mailbox_messages(server.data_dir, BINH)[0][1])
    assert [a.get_filename() for a in got.iter_attachments()] == ["ke-hoach.pdf"]


def test_directory_suggestions_without_diacritics(server: RunningServer) -> None:
    client = login(server, BINH)
    found = client.get(
        "/compose/suggest", params={"to": "nguyen van"}, headers={"HX-Request": "true"}
    )
    assert found.status_code == 200
    assert "Nguyễn Văn An" in found.text and AN in found.text
    assert f'data-value="Nguyễn Văn An &lt;{AN}&gt;"' in found.text
    assert "Thanh tra tỉnh" in found.text  # the agency
    agency = client.get("/compose/suggest", params={"cc": f"{AN}, ttr"})
    assert "Thanh tra tỉnh" in agency.text and 'data-field="cc"' in agency.text
    assert client.get("/compose/suggest", params={"to": "n"}).text.strip() == ""


@pytest.fixture
def limited(province: Path) -> Iterator[RunningServer]:
    """The province's server with at most 2 recipients per account per hour (R23)."""
    set_option(province, "max_recipients", 2, section="rate")
    with served(province) as running:
        yield running


def test_sending_past_the_rate_limit_is_refused(limited: RunningServer) -> None:
    client = login(limited, AN)
    assert compose(client, {"to": BINH, "subject": "Một", "body": "1"}).status_code == 200
    assert compose(client, {"to": BINH, "subject": "Hai", "body": "2"}).status_code == 200
    reply = compose(client, {"to": BINH, "subject": "Ba", "body": "3"})
    assert reply.status_code == 422
    assert "Tài khoản đã gửi tới 2 người nhận" in reply.text and "hãy thử lại sau" in reply.text
    assert len(mailbox_messages(limited.data_dir, BINH)) == 2
