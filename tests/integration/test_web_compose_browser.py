"""Composing in a real browser (Playwright driving Debian's Chromium): directory suggestion,
the attachment total and the refusal of a too-large attachment before upload, sending to
a colleague who reads it and replies; screenshots kept as test artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.corpus.documents import pdf
from tests.integration.browser import base_url, browser_page, screenshot_dir
from tests.integration.mailserver import AN, BINH, PASSWORD, RunningServer

__all__ = ["browser_page"]  # the fixture

SUBJECT = "Kế hoạch kiểm tra quý IV"


def _log_in(page: Any, server: RunningServer, login: str) -> None:
    page.goto(base_url(server) + "/")
    page.fill('input[name="login"]', login)
    page.fill('input[name="password"]', PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(base_url(server) + "/")


def test_compose_send_read_and_reply_in_chromium(
    server: RunningServer, browser_page: Any, tmp_path: Path
) -> None:
    page = browser_page
    shots = screenshot_dir(tmp_path)
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    big = tmp_path / "ho-so-lon.pdf"
    big.write_bytes(b"%PDF-1.4\n" + b"0" * int(10.1 * 1024 * 1024))
    small = tmp_path / "Kế hoạch.pdf"
    small.write_bytes(pdf(["Kế hoạch kiểm tra"]))

    # An writes to Bình, found in the directory by a name typed without diacritics.
    _log_in(page, server, AN)
    page.get_by_role("link", name="Soạn thư").click()
    page.wait_for_url("**/compose")
    page.locator('input[name="to"]').press_sequentially("le thi", delay=20)
    suggestion = page.locator("#suggest-to button.suggestion").first
    suggestion.wait_for()
    assert "Lê Thị Bình" in suggestion.inner_text() and BINH in suggestion.inner_text()
    suggestion.click()
    assert BINH in page.locator('input[name="to"]').input_value()
    page.fill('input[name="subject"]', SUBJECT)
    page.fill('textarea[name="body"]', "Kính gửi chị Bình,\nGửi chị kế hoạch.")

    # A 10.1 MB file: refused in the browser, before any upload, in Vietnamese.
    page.set_input_files("#attachment", str(big))
    error = page.locator("#attachment-error")
    error.wait_for(state="visible")
    assert "vượt quá giới hạn 10,0 MB" in error.inner_text()
    assert "10,1 MB" in page.locator("#attachment-total").inner_text()
    page.screenshot(path=str(shots / "10-soan-thu-tep-qua-lon.png"), full_page=True)
    page.get_by_role("button", name="Gửi", exact=True).click()
    assert page.url.endswith("/compose") and error.is_visible()  # nothing was sent

    # A small PDF instead: the total shows it and the message goes.
    page.set_input_files("#attachment", str(small))
    error.wait_for(state="hidden")
    assert "KB" in page.locator("#attachment-total").inner_text()
    page.screenshot(path=str(shots / "11-soan-thu.png"), full_page=True)
    page.get_by_role("button", name="Gửi", exact=True).click()
    page.get_by_text("Đã gửi thư.").wait_for()
    page.screenshot(path=str(shots / "12-da-gui.png"), full_page=True)
    page.get_by_role("button", name="Đăng xuất", exact=True).click()
    page.wait_for_url("**/login")

    # Bình reads it and replies.
    _log_in(page, server, BINH)
    page.get_by_role("link", name=SUBJECT).click()
    page.wait_for_url("**/folder/*/*")
    assert page.get_by_text("Gửi chị kế hoạch.").is_visible()
    assert page.get_by_role("link", name="Kế hoạch.pdf").is_visible()
    page.get_by_role("link", name="Trả lời", exact=True).click()
    page.wait_for_url("**/compose/reply/*/*")
    assert page.locator('input[name="subject"]').input_value() == f"Re: {SUBJECT}"
    assert AN in page.locator('input[name="to"]').input_value()
    assert "> Gửi chị kế hoạch." in page.locator('textarea[name="body"]').input_value()
    page.locator('textarea[name="body"]').press("Control+Home")
    page.keyboard.type("Em đã nhận, cảm ơn anh.")
    page.screenshot(path=str(shots / "13-tra-loi.png"), full_page=True)
    page.get_by_role("button", name="Gửi", exact=True).click()
    page.get_by_text("Đã gửi thư.").wait_for()
    page.get_by_role("button", name="Đăng xuất", exact=True).click()
    page.wait_for_url("**/login")

    # The reply reached An.
    _log_in(page, server, AN)
    assert page.get_by_role("link", name=f"Re: {SUBJECT}").is_visible()
    assert problems == [], problems
