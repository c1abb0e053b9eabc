"""The webmail in a real browser (Playwright driving Debian's Chromium): the first login with
its forced password change, reading a message delivered by SMTP, and search without
diacritics; screenshots of the main pages are kept as test artifacts."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser import base_url, browser_page, deliver, screenshot_dir
from tests.integration.clihelp import cli
from tests.integration.mailserver import AN, RunningServer

__all__ = ["browser_page"]  # the fixture


def _report() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Sở Tài chính <stc@example.org>"
    message["To"] = AN
    message["Subject"] = "Báo cáo tuần 47 về giải ngân vốn đầu tư"
    message.set_content("Kính gửi anh An, Sở gửi báo cáo tuần.")
    message.add_alternative(
        "<p>Kính gửi anh An,</p><p>Sở gửi <b>báo cáo tuần</b> về giải ngân.</p>"
        '<img src="https://anh.example/logo.png" alt="logo">',
        subtype="html",
    )
    message.add_attachment(
        b"%PDF-1.4\n", maintype="application", subtype="pdf", filename="Báo cáo tuần 47.pdf"
    )
    return message


@pytest.fixture
def initial_password(server: RunningServer) -> str:
    """Two messages for nvan@ and a new initial password he must change (done before the
    browser starts: Playwright's sync API holds the thread's event loop)."""
    deliver(server, _report(), AN)
    other = EmailMessage()
    other["From"] = "x@example.org"
    other["To"] = AN
    other["Subject"] = "Lịch họp giao ban"
    other.set_content("Thứ Hai.")
    deliver(server, other, AN)
    issued = cli(server.data_dir, "mailbox", "reset-password", AN, "--json")
    return str(json.loads(issued.output)["initial_password"])


def test_first_login_read_and_search_in_chromium(
    server: RunningServer, initial_password: str, browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    initial = initial_password
    shots = screenshot_dir(tmp_path)
    problems: list[str] = []
    page.on(
        "console",
        lambda msg: problems.append(msg.text) if msg.type == "error" else None,
    )

    # Log in with the initial password: the change comes first.
    page.goto(base_url(server) + "/")
    assert page.get_by_role("heading", name="Đăng nhập").is_visible()
    page.screenshot(path=str(shots / "01-dang-nhap.png"))
    page.fill('input[name="login"]', "nvan")
    page.fill('input[name="password"]', initial)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url("**/password")
    assert page.get_by_text("Bạn cần đặt mật khẩu mới").is_visible()
    page.screenshot(path=str(shots / "02-doi-mat-khau.png"))
    page.fill('input[name="new_password"]', "MatKhauMoi2026")
    page.fill('input[name="confirm"]', "MatKhauMoi2026")
    page.get_by_role("button", name="Đổi mật khẩu").click()
    page.wait_for_url("**/?notice=password")
    assert page.get_by_text("Đã đổi mật khẩu").is_visible()
    unread = page.locator('.folders a[data-role="inbox"] .unread')
    assert unread.inner_text() == "2"
    page.screenshot(path=str(shots / "03-hop-thu-den.png"), full_page=True)

    # Read the message delivered by SMTP: its HTML in the sandboxed frame, images blocked.
    page.get_by_role("link", name="Báo cáo tuần 47 về giải ngân vốn đầu tư").click()
    page.wait_for_url("**/folder/*/*")
    frame = page.frame_locator("iframe.html-body")
    assert frame.get_by_text("về giải ngân").is_visible()
    assert page.get_by_text("Đã chặn 1 ảnh").is_visible()
    assert page.get_by_role("link", name="Báo cáo tuần 47.pdf").is_visible()
    assert page.locator(".badge.doctype").inner_text().startswith("Báo cáo")
    # Shown, so marked \Seen (htmx posts it): the unread count drops to 1.
    page.wait_for_function(
        "document.querySelector('.folders a[data-role=\"inbox\"] .unread').textContent === '1'"
    )
    page.screenshot(path=str(shots / "04-doc-thu.png"), full_page=True)

    # Search without diacritics.
    page.fill('input[type="search"][name="q"]', "bao cao tuan")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=bao+cao+tuan")
    results = page.locator("table.messages tbody tr")
    assert results.count() == 1
    assert "Báo cáo tuần 47" in results.first.inner_text()
    page.screenshot(path=str(shots / "05-tim-kiem.png"), full_page=True)

    # Flag from the list (htmx, no page load), then log out.
    page.goto(base_url(server) + "/")
    star = page.locator("button.star").first
    star.click()
    page.wait_for_selector("button.star.on")
    page.get_by_role("button", name="Đăng xuất", exact=True).click()
    page.wait_for_url("**/login")
    # No Content-Security-Policy violation or script error on any page.
    assert problems == [], problems
