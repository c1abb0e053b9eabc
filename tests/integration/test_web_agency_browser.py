"""The agency mailbox in a real browser (Playwright driving Debian's Chromium): a delegated
clerk switches to ttr@, opens a letter sent there and acknowledges receipt with one click;
screenshots are kept as test artifacts."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.integration.browser import base_url, browser_page, deliver, screenshot_dir
from tests.integration.clihelp import cli
from tests.integration.mailserver import AN, PASSWORD, TTR, RunningServer

__all__ = ["browser_page"]  # the fixture

SUBJECT = "Đơn kiến nghị về giải phóng mặt bằng"
CITIZEN = "nguoidan@example.org"


@pytest.fixture
def delegated(server: RunningServer) -> RunningServer:
    """nvan@ delegated on ttr@, and a citizen's letter in ttr@'s INBOX (set up before the
    browser starts: Playwright's sync API holds the thread's event loop)."""
    assert cli(server.data_dir, "delegation", "grant", "ttr", AN).exit_code == 0
    letter = EmailMessage()
    letter["From"] = f"Trần Văn Dân <{CITIZEN}>"
    letter["To"] = TTR
    letter["Subject"] = SUBJECT
    letter["Message-ID"] = "<don-kien-nghi@example.org>"
    letter.set_content("Kính gửi Thanh tra tỉnh, tôi xin gửi đơn kiến nghị.")
    deliver(server, letter, TTR, sender=CITIZEN)
    return server


def test_switch_to_the_agency_mailbox_and_acknowledge(
    delegated: RunningServer, browser_page: Any, tmp_path: Path
) -> None:
    server, page = delegated, browser_page
    shots = screenshot_dir(tmp_path)
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)

    page.goto(base_url(server) + "/")
    page.fill('input[name="login"]', "nvan")
    page.fill('input[name="password"]', PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.wait_for_url(base_url(server) + "/")

    # The switcher: the own mailbox and the agency's.
    page.get_by_role("link", name="Chọn hộp thư").click()
    page.wait_for_url("**/mailboxes")
    assert page.get_by_text("Thanh tra tỉnh").is_visible()
    page.screenshot(path=str(shots / "20-chon-hop-thu.png"))
    page.get_by_role("button", name="Mở hộp thư này").click()
    page.wait_for_url(base_url(server) + "/")
    assert page.locator(".who").inner_text() == TTR
    assert page.get_by_role("button", name="Về hộp thư cá nhân").is_visible()
    page.screenshot(path=str(shots / "21-hop-thu-co-quan.png"))

    # Open the letter and acknowledge receipt with one click.
    page.get_by_role("link", name=SUBJECT).first.click()
    page.wait_for_url("**/folder/*/*")
    button = page.get_by_role("button", name="Xác nhận đã tiếp nhận")
    button.wait_for()
    assert page.get_by_role("link", name="Chuyển xử lý").is_visible()
    page.screenshot(path=str(shots / "22-thu-den-co-quan.png"))
    button.click()
    done = page.get_by_text("Đã xác nhận tiếp nhận")
    done.wait_for()
    assert page.get_by_role("button", name="Xác nhận đã tiếp nhận").count() == 0
    page.screenshot(path=str(shots / "23-da-xac-nhan.png"))

    # Seen again after a reload: the state is the store's, not the page's.
    page.reload()
    page.get_by_text("Đã xác nhận tiếp nhận").wait_for()

    # The agency's Sent folder holds the acknowledgement (read in the browser: the
    # store helpers' event loop cannot run beside Playwright's).
    page.locator('.folders a[data-role="sent"]').click()
    page.get_by_role("link", name=f"Đã tiếp nhận: {SUBJECT}").first.wait_for()
    page.screenshot(path=str(shots / "24-da-gui-co-quan.png"))
    assert problems == []
